#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each, one after the other, and prints a summary:
# executions, exec/s, coverage and what was found (crash, timeout, OOM) with the reproducer's path.
#
#   fuzz/run.sh [SECONDS] [TARGET...]        SECONDS defaults to 60; targets default to all five
#
# Environment:
#   SANITIZER=address|none   cargo fuzz sanitizer (default address; `none` runs faster and needs no ASan runtime)
#   REV=<git rev>            fuzz that commit (exported to fuzz/target/rev-<sha>/) instead of the working tree,
#                            e.g. REV=HEAD while src/ is mid-edit; corpora, artifacts and logs stay in fuzz/
#   MAX_LEN=<bytes>          largest input libFuzzer generates (default 1048576)
#   SHARED=<dir>             where the shared sample schedules live (default ../shared/schedules beside the repository)
#
# Stable Rust works: cargo fuzz needs nightly flags, so RUSTC_BOOTSTRAP=1 is set here. One target runs at a time,
# in one process on one core (no -jobs or -fork), so the machine stays usable. Corpora (fuzz/corpus), artifacts
# (fuzz/artifacts) and the build (fuzz/target) are git-ignored. Exit status: 0 when nothing was found, 1 otherwise.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
secs=${1:-60}
[[ $# -gt 0 ]] && shift
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(fuzz_xml fuzz_json fuzz_yaml fuzz_people fuzz_config)
sanitizer=${SANITIZER:-address}
max_len=${MAX_LEN:-1048576}
shared=${SHARED:-$repo/../shared/schedules}
seed_max=65536 # larger sample files make slow seeds; the big FOSDEM files are left out
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz from crates.io"
    cargo install cargo-fuzz --locked
fi

# What to build: the working tree, or a snapshot of REV with today's fuzz crate dropped in.
fuzz_dir=$here
if [[ -n ${REV:-} ]]; then
    sha=$(git -C "$repo" rev-parse --verify "$REV^{commit}")
    snap=$here/target/rev-${sha:0:12}
    if [[ ! -d $snap ]]; then
        mkdir -p "$snap"
        git -C "$repo" archive "$sha" | tar -x -C "$snap"
    fi
    mkdir -p "$snap/fuzz"
    cp "$here/Cargo.toml" "$snap/fuzz/"
    [[ -f $here/Cargo.lock ]] && cp "$here/Cargo.lock" "$snap/fuzz/"
    rm -rf "$snap/fuzz/fuzz_targets"
    cp -r "$here/fuzz_targets" "$snap/fuzz/"
    fuzz_dir=$snap/fuzz
    echo "fuzzing commit $sha (snapshot in $snap)"
else
    echo "fuzzing the working tree of $repo"
fi

# Seeds: copied in at run time because fuzz/corpus is git-ignored. Files already there (earlier finds) are kept.
seed() { # seed TARGET FILE...
    local dir=$here/corpus/$1 f
    shift
    mkdir -p "$dir"
    for f in "$@"; do
        [[ -f $f ]] || continue
        [[ $(stat -c %s "$f") -le $seed_max ]] || continue
        [[ -e $dir/seed-$(basename "$f") ]] || cp "$f" "$dir/seed-$(basename "$f")"
    done
}
seed fuzz_xml "$shared"/conference-bot/*.xml "$shared"/pretalx/*.xml "$shared"/frab/*.xml
seed fuzz_json "$shared"/pretalx/*.json "$shared"/frab/*.json "$shared"/conference-bot/anyconf.json "$repo"/tests/fixtures/hub-schedule2.json
seed fuzz_yaml "$repo"/schedules/example.yaml "$repo"/tests/fixtures/feed-talks.yaml "$shared"/yaml/*.yml
seed fuzz_people "$here"/seeds/people/* "$shared"/conference-bot/fosdem_democon.json # FOSDEM speaker feed
seed fuzz_config "$here"/seeds/config/* "$repo"/schedules/*.config.yaml

dict_for() {
    case $1 in
        fuzz_xml) echo "$here/dict/xml.dict" ;;
        fuzz_json) echo "$here/dict/json.dict" ;;
        *) echo "$here/dict/yaml.dict" ;;
    esac
}

cargo_fuzz_opts=(--fuzz-dir "$fuzz_dir" --target-dir "$here/target" --sanitizer "$sanitizer")
echo "building ${targets[*]} (sanitizer $sanitizer)"
for t in "${targets[@]}"; do
    nice -n 10 cargo fuzz build "${cargo_fuzz_opts[@]}" "$t"
done

mkdir -p "$here/target/logs"
summary=$here/target/logs/summary-$(date +%Y%m%d-%H%M%S).tsv
printf 'target\tseconds\texecutions\texec/s\tcov\tft\tcorpus\tpeak_rss_mb\tfinding\treproducer\n' >"$summary"
found=0
for t in "${targets[@]}"; do
    log=$here/target/logs/$t.log
    mkdir -p "$here/artifacts/$t"
    echo "=== $t: ${secs}s"
    start=$(date +%s)
    status=0
    cargo fuzz run "${cargo_fuzz_opts[@]}" "$t" "$here/corpus/$t" -- \
        -artifact_prefix="$here/artifacts/$t/" -dict="$(dict_for "$t")" -max_total_time="$secs" \
        -rss_limit_mb=2048 -timeout=10 -max_len="$max_len" -print_final_stats=1 >"$log" 2>&1 || status=$?
    elapsed=$(($(date +%s) - start))

    final_stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
    execs=$(final_stat number_of_executed_units)
    rate=$(final_stat average_exec_per_sec)
    rss=$(final_stat peak_rss_mb)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    finding=none
    if [[ -n $artifact ]]; then
        case $(basename "$artifact") in
            crash-*) finding=crash ;;
            timeout-*) finding=timeout ;;
            oom-*) finding=oom ;;
            leak-*) finding=leak ;;
            slow-unit-*) finding=slow-unit ;;
            *) finding=other ;;
        esac
    elif [[ $status -ne 0 ]]; then
        finding="error (exit $status, see $log)"
    fi
    [[ $finding != none ]] && found=1
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$elapsed" "${execs:-?}" "${rate:-?}" "${cov:-?}" \
        "${ft:-?}" "${corp:-?}" "${rss:-?}" "$finding" "${artifact:--}" >>"$summary"
    echo "$t: ${execs:-?} executions in ${elapsed}s (${rate:-?}/s), cov ${cov:-?}, finding: $finding ${artifact}"
    if [[ $finding != none ]]; then
        echo "--- $t: panic message and stack (full log: $log)"
        grep -n -A40 -m1 -E "panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer|ALARM:|out-of-memory" "$log" |
            head -60 || true
    fi
done

echo
column -t -s $'\t' "$summary"
echo "(summary: $summary; logs: $here/target/logs/)"
exit $found
