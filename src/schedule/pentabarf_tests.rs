//! Tests of the pentabarf reader (kept beside it, indented as they were inline).

    use super::*;

    fn read_str(s: &str) -> Result<RawSchedule, ScheduleError> {
        read("t.xml", s, &ReadOptions::default())
    }

    #[test]
    fn newline_count_matches_a_plain_count() {
        let text: Vec<u8> = (0..5000u32).map(|i| if i % 7 == 0 { b'\n' } else { b'a' }).collect();
        for end in [0, 1, 254, 255, 256, 4999, 5000] {
            assert_eq!(count_newlines(&text[..end]), text[..end].iter().filter(|&&b| b == b'\n').count());
        }
    }

    #[test]
    fn reads_direct_children_only() {
        let raw = read_str(
            r#"<schedule><day index="1" date="2025-12-27"><room name="A">
            <event guid="g1" id="1"><start>10:00</start><duration>0:30</duration>
              <links><link href="x"><title>NOT THIS</title></link></links>
              <title>Real &amp; right</title>
              <persons><person id="7">Ann</person></persons>
            </event></room></day></schedule>"#,
        )
        .unwrap();
        assert_eq!(raw.events.len(), 1);
        assert_eq!(raw.events[0].title, "Real & right");
        assert_eq!(raw.events[0].persons[0].id.as_deref(), Some("7"));
        assert_eq!(raw.events[0].line, Some(2));
    }

    #[test]
    fn billion_laughs_is_refused() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>
            <schedule><conference><title>&lol2;</title></conference></schedule>"#;
        let err = read_str(bomb).unwrap_err();
        assert!(err.message.contains("entities"), "{err}");
    }

    #[test]
    fn external_entity_is_refused() {
        let xxe = r#"<!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/passwd">]><schedule>&x;</schedule>"#;
        assert!(read_str(xxe).is_err());
        // Even without a DTD, an undefined entity is an error, not an expansion.
        let err = read_str("<schedule><conference><title>&x;</title></conference></schedule>").unwrap_err();
        assert!(err.message.contains("undefined entity &x;"), "{err}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = format!("<schedule>{}{}</schedule>", "<a>".repeat(10_000), "</a>".repeat(10_000));
        let err = read_str(&deep).unwrap_err();
        assert!(err.message.contains("nested"), "{err}");
    }

    #[test]
    fn truncated_file_says_so() {
        let err = read_str("<schedule><day index=\"1\" date=\"2025-01-01\"><room name=\"A\">").unwrap_err();
        assert!(err.message.contains("truncated"), "{err}");
    }

    #[test]
    fn wrong_root_says_what_it_is() {
        let err = read_str("<html><body/></html>").unwrap_err();
        assert!(err.message.contains("<html>"), "{err}");
    }
