//! The config reference in `docs/guide.md` checked against the config types, so it cannot go stale.
//!
//! The keys are derived from the types themselves, not from a list kept beside them: every section refuses unknown
//! keys (`deny_unknown_fields`), and serde's refusal names every key the struct accepts ("unknown field `x`,
//! expected one of `a`, `b`"). [`keys`] probes the config with a key no struct has, at the top and then inside each
//! key it finds (as a map, or as a list of maps), and collects the answers into the tree of every key. A struct that
//! takes the probe without refusing it does not refuse unknown keys: that is an error too.
//!
//! The guide's reference lists keys in the first column of its tables, in backticks, between the markers
//! [`BEGIN`] and [`END`]; `rooms.support[].key` is the key `key` of each item of the list `rooms.support`. A segment
//! in angle brackets stands for any key whose own row is there: `timeline.actions.<kind>.enabled` covers
//! `timeline.actions.live_soon.enabled` because `timeline.actions.live_soon` is listed. [`check`] reports every key
//! the types accept that the guide does not document, and every key the guide documents that the types do not
//! accept.
//!
//! Test support only (compiled for tests): nothing here runs in the program.

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use serde_json::json;

/// Where the checked reference starts in the guide.
pub const BEGIN: &str = "<!-- config reference: checked by src/config/reference.rs -->";
/// Where it ends.
pub const END: &str = "<!-- end of the config reference -->";

/// A key no config struct has.
const PROBE: &str = "__stagehand_probe__";

/// Every key `T` accepts, as dotted paths (`timeline.opened.join_rule`, `rooms.support[].key`), with the paths of
/// sections and list items too (`timeline.opened`, `rooms.support[]`).
pub fn keys<T: DeserializeOwned>() -> Result<BTreeSet<String>, String> {
    let mut out = BTreeSet::new();
    let fields = struct_fields::<T>(&[])?.ok_or("the top level is not a struct")?;
    walk::<T>(&mut Vec::new(), fields, &mut out)?;
    Ok(out)
}

/// One step of a path: a key, or "each item of this list".
#[derive(Clone)]
enum Seg {
    Key(String),
    Items,
}

/// A path as the guide writes it, in backticks; the empty path is the top level.
fn name(path: &[Seg]) -> String {
    if path.is_empty() { "the top level".to_string() } else { format!("`{}`", render(path)) }
}

fn render(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if s.is_empty() => s.push_str(k),
            Seg::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Seg::Items => s.push_str("[]"),
        }
    }
    s
}

fn walk<T: DeserializeOwned>(path: &mut Vec<Seg>, fields: Vec<String>, out: &mut BTreeSet<String>) -> Result<(), String> {
    for field in fields {
        path.push(Seg::Key(field));
        out.insert(render(path));
        if let Some(inner) = struct_fields::<T>(path)? {
            walk::<T>(path, inner, out)?;
        } else {
            path.push(Seg::Items);
            if let Some(inner) = struct_fields::<T>(path)? {
                out.insert(render(path));
                walk::<T>(path, inner, out)?;
            }
            path.pop();
        }
        path.pop();
    }
    Ok(())
}

/// The fields of the struct at `path`, or `None` when what is there is not a struct (a value, a map of values, a
/// list of values). An error when a struct there takes an unknown key without refusing it.
fn struct_fields<T: DeserializeOwned>(path: &[Seg]) -> Result<Option<Vec<String>>, String> {
    // The probe's value is a list of maps, which no value in a config is: a map of values (request headers) refuses
    // it as a value, and only a struct that ignores unknown keys takes it.
    let mut doc = json!({ PROBE: [{ PROBE: 1 }] });
    for seg in path.iter().rev() {
        doc = match seg {
            Seg::Key(k) => json!({ k.as_str(): doc }),
            Seg::Items => json!([doc]),
        };
    }
    // JSON is YAML: the probe goes through the same reader as a config file.
    let text = doc.to_string();
    let message = match yaml_serde::from_str::<T>(&text) {
        Ok(_) => return Err(format!("{} takes unknown keys without refusing them (add deny_unknown_fields)", name(path))),
        Err(e) => e.to_string(),
    };
    let refusal = format!("unknown field `{PROBE}`");
    let Some(at) = message.find(&refusal) else {
        // A type error (a value, a list where a map was probed) or an enum refusing the probe as a variant.
        if path.is_empty() || message.contains("missing field") {
            return Err(format!("{} takes unknown keys without refusing them: {message}", name(path)));
        }
        return Ok(None);
    };
    let rest = &message[at + refusal.len()..];
    if rest.starts_with(", there are no fields") {
        return Ok(Some(Vec::new()));
    }
    // ", expected `a`", ", expected `a` or `b`", ", expected one of `a`, `b`, `c`", then maybe " at line 1 ...".
    let names = rest.split('`').skip(1).step_by(2).map(str::to_string).collect::<Vec<_>>();
    if names.is_empty() {
        return Err(format!("{}: cannot read the keys from {message:?}", name(path)));
    }
    Ok(Some(names))
}

/// The keys the guide documents: backticked paths in the first column of the tables between [`BEGIN`] and [`END`].
pub fn documented(guide: &str) -> Result<BTreeSet<String>, String> {
    let start = guide.find(BEGIN).ok_or("the guide has no config reference start marker")? + BEGIN.len();
    let len = guide[start..].find(END).ok_or("the guide's config reference has no end marker")?;
    let mut out = BTreeSet::new();
    for line in guide[start..start + len].lines() {
        let Some(first) = line.strip_prefix('|').and_then(|l| l.split('|').next()) else { continue };
        out.extend(first.split('`').skip(1).step_by(2).filter(|k| !k.is_empty() && !k.contains(' ')).map(str::to_string));
    }
    Ok(out)
}

/// Whether a documented path (perhaps with `<placeholder>` segments) covers `key`: each placeholder stands for a
/// segment whose own path is documented literally.
fn covers(doc: &str, key: &str, documented: &BTreeSet<String>) -> bool {
    let (d, k): (Vec<&str>, Vec<&str>) = (doc.split('.').collect(), key.split('.').collect());
    d.len() == k.len()
        && d.iter().zip(&k).enumerate().all(|(i, (ds, ks))| {
            if ds.starts_with('<') && ds.ends_with('>') { documented.contains(&k[..=i].join(".")) } else { ds == ks }
        })
}

/// What is wrong with the guide's reference against the keys of `T`: undocumented keys, then documented keys that
/// do not exist. Sections (keys with keys below them) need no row of their own unless a placeholder stands for them.
pub fn check<T: DeserializeOwned>(guide: &str) -> Result<(), Vec<String>> {
    let keys = keys::<T>().map_err(|e| vec![e])?;
    let documented = documented(guide).map_err(|e| vec![e])?;
    let is_section = |k: &String| keys.iter().any(|other| other.len() > k.len() && other.starts_with(k.as_str()) && other[k.len()..].starts_with(['.', '[']));
    let mut problems = Vec::new();
    for key in keys.iter().filter(|k| !is_section(k)) {
        if !documented.iter().any(|d| covers(d, key, &documented)) {
            problems.push(format!("`{key}` is accepted by the config but not documented in the guide's reference"));
        }
    }
    for doc in &documented {
        if !keys.iter().any(|k| covers(doc, k, &documented)) {
            problems.push(format!("`{doc}` is documented in the guide's reference but the config does not accept it"));
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(problems) }
}

mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::config::Config;

    /// The guide as committed.
    fn guide() -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/guide.md");
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn the_guide_documents_every_config_key_and_no_other() {
        if let Err(problems) = check::<Config>(&guide()) {
            panic!("docs/guide.md's config reference is out of date:\n{}", problems.join("\n"));
        }
    }

    #[test]
    fn the_guides_config_example_is_a_valid_config() {
        let guide = guide();
        let example = guide.split("```yaml\n").nth(1).and_then(|rest| rest.split("```").next()).expect("a YAML example");
        if let Err(e) = Config::parse("docs/guide.md", example) {
            panic!("the guide's example config: {e}");
        }
    }

    #[test]
    fn keys_are_read_from_the_types() {
        let keys = keys::<Config>().unwrap();
        for k in [
            "conference.id",
            "homeserver.url",
            "schedule.headers",
            "tracks.rules[]",
            "tracks.rules[].type",
            "rooms.support[].public",
            "people.identity_server.accept_terms",
            "timeline.opened.join_rule",
            "timeline.actions.live_soon.grace_seconds",
            "timeline.actions.retry.max_in_flight",
        ] {
            assert!(keys.contains(k), "{k} not found in {keys:#?}");
        }
        assert!(!keys.iter().any(|k| k.starts_with("schedule.headers.")), "a map of values is one key");
        assert!(!keys.iter().any(|k| k.starts_with("tracks.default_kind.")), "an enum is one key");
    }

    // The mechanism on small types: a config grows a key, loses one, or forgets to refuse unknown keys.

    #[allow(dead_code)]
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Toy {
        alpha: Option<u32>,
        inner: Option<Inner>,
        list: Option<Vec<Item>>,
        names: Option<Vec<String>>,
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        beta: bool,
        #[serde(rename = "type")]
        kind: Option<String>,
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Item {
        gamma: String,
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    struct Lax {
        alpha: Option<u32>,
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct LaxInside {
        inner: Option<Lax>,
    }

    fn doc(rows: &[&str]) -> String {
        let table: String = rows.iter().map(|r| format!("| `{r}` | x |\n")).collect();
        format!("# Guide\n| `not.checked` |\n{BEGIN}\n| key | meaning |\n|---|---|\n{table}{END}\n")
    }

    const TOY: [&str; 6] = ["alpha", "inner.beta", "inner.type", "list[].gamma", "names", "list"];

    #[test]
    fn the_walk_finds_nested_sections_lists_of_sections_and_renamed_keys() {
        let keys = keys::<Toy>().unwrap();
        let want = ["alpha", "inner", "inner.beta", "inner.type", "list", "list[]", "list[].gamma", "names"];
        assert_eq!(keys.into_iter().collect::<Vec<_>>(), want);
        assert_eq!(check::<Toy>(&doc(&TOY)), Ok(()));
    }

    #[test]
    fn an_undocumented_key_fails_the_check() {
        let without_gamma: Vec<&str> = TOY.iter().copied().filter(|k| *k != "list[].gamma").collect();
        let problems = check::<Toy>(&doc(&without_gamma)).unwrap_err();
        assert_eq!(problems, ["`list[].gamma` is accepted by the config but not documented in the guide's reference"]);
    }

    #[test]
    fn a_documented_key_the_config_does_not_accept_fails_the_check() {
        let mut rows = TOY.to_vec();
        rows.push("inner.delta");
        let problems = check::<Toy>(&doc(&rows)).unwrap_err();
        assert_eq!(problems, ["`inner.delta` is documented in the guide's reference but the config does not accept it"]);
    }

    #[test]
    fn a_section_that_takes_unknown_keys_fails_the_check() {
        assert!(keys::<Lax>().unwrap_err().contains("top level"));
        let e = check::<LaxInside>(&doc(&["inner.alpha"])).unwrap_err();
        assert!(e[0].contains("`inner` takes unknown keys"), "{e:?}");
    }

    #[test]
    fn a_placeholder_covers_only_keys_whose_own_row_is_there() {
        let documented: BTreeSet<String> = ["a.one", "a.<kind>.x"].into_iter().map(String::from).collect();
        assert!(covers("a.<kind>.x", "a.one.x", &documented));
        assert!(!covers("a.<kind>.x", "a.two.x", &documented), "a.two has no row");
        assert!(!covers("a.<kind>.x", "a.one.y", &documented));
        assert!(!covers("a.<kind>.x", "a.one", &documented));
    }

    #[test]
    fn only_the_reference_between_the_markers_counts() {
        let d = documented(&doc(&["alpha", "inner.beta"])).unwrap();
        assert_eq!(d.into_iter().collect::<Vec<_>>(), ["alpha", "inner.beta"]);
        assert!(documented("no markers").is_err());
    }
}
