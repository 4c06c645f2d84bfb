use chrono_tz::Tz;

use super::*;

#[test]
fn durations_in_every_real_shape() {
    assert_eq!(parse_duration("0:30"), Some(Duration::minutes(30)));
    assert_eq!(parse_duration("00:20"), Some(Duration::minutes(20)));
    assert_eq!(parse_duration("01:00:30"), Some(Duration::seconds(3630)));
    assert_eq!(parse_duration("10:00"), Some(Duration::hours(10)));
    assert_eq!(parse_duration("00:75"), None);
    assert_eq!(parse_duration("soon"), None);
    assert_eq!(parse_duration("-1:00"), None);
    // Absurd values are refused, never a panic or an overflow.
    assert_eq!(parse_duration("9999999999999:00"), None);
    assert_eq!(parse_duration("9223372036854775807:00"), None);
    assert_eq!(parse_duration("169:00"), None);
    assert_eq!(parse_duration("168:00"), Some(Duration::hours(168)));
}

#[test]
fn dst_gap_moves_forward_and_ambiguity_takes_the_earlier() {
    let tz: Tz = "Europe/Brussels".parse().unwrap();
    let gap = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap().and_hms_opt(2, 30, 0).unwrap();
    assert_eq!(resolve_local(tz, gap).to_rfc3339(), "2026-03-29T03:00:00+02:00");
    let amb = NaiveDate::from_ymd_opt(2026, 10, 25).unwrap().and_hms_opt(2, 30, 0).unwrap();
    assert_eq!(resolve_local(tz, amb).to_rfc3339(), "2026-10-25T02:30:00+02:00");
}

#[test]
fn keys_are_renamed_in_order_around_keys_the_file_uses() {
    let mut keys = Keys::default();
    let got: Vec<String> = ["x", "x", "x~3", "x", "x", "x~2"].iter().map(|k| keys.claim(k, '~')).collect();
    assert_eq!(got, ["x", "x~2", "x~3", "x~4", "x~5", "x~2~2"]);
    let mut rooms = Keys::default();
    assert_eq!([rooms.claim("h", '-'), rooms.claim("h", '-')], ["h", "h-2"]);
}

#[test]
fn duplicate_talk_keys_are_renamed_and_reported_with_the_first_line() {
    let talks: String = (0..3).map(|i| format!("  - {{key: same, title: T{i}, room: A, start: \"2026-03-14 1{i}:00\", duration: 30}}\n")).collect();
    let text = format!("conference: {{title: T, timezone: Europe/Brussels}}\ntalks:\n{talks}");
    let parsed = crate::schedule::read("d.yaml", text.as_bytes(), &ReadOptions::default()).unwrap();
    let keys: Vec<&str> = parsed.conference.talks.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(keys, ["same", "same~2", "same~3"]);
    let dup: Vec<_> = parsed.findings.iter().filter(|f| f.message.contains("duplicate talk key")).collect();
    assert_eq!(dup.len(), 2, "{dup:?}");
    assert!(dup[1].message.contains("first seen at line 3") && dup[1].line == Some(5), "{:?}", dup[1]);
}
