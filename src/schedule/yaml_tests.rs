//! Tests of the yaml reader (kept beside it, indented as they were inline).

    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(parse_human_duration("30m"), Some(Duration::minutes(30)));
        assert_eq!(parse_human_duration("1h30m"), Some(Duration::minutes(90)));
        assert_eq!(parse_human_duration("1h"), Some(Duration::minutes(60)));
        assert_eq!(parse_human_duration("45"), Some(Duration::minutes(45)));
        assert_eq!(parse_human_duration("0:25"), Some(Duration::minutes(25)));
        assert_eq!(parse_human_duration("1h3"), None);
        assert_eq!(parse_human_duration("soon"), None);
        assert_eq!(parse_human_duration("99999999999999999h"), None);
        assert_eq!(parse_human_duration("9999999999"), None);
    }

    #[test]
    fn typo_in_a_key_is_an_error_with_a_line() {
        let err = read("c.yaml", "conference:\n  title: X\ntalks:\n  - key: a\n    titel: Oops\n", 64).unwrap_err();
        assert_eq!(err.line, Some(5));
        assert!(err.message.contains("titel"), "{err}");
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x]\n");
        let names = ["b", "c", "d", "e", "f", "g", "h", "i"];
        let mut prev = "a";
        for n in names {
            bomb.push_str(&format!("{n}: &{n} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
            prev = n;
        }
        bomb.push_str("conference: {title: *i}\n");
        // 9^9 strings if expanded: it must be refused, not built.
        let err = read("bomb.yaml", &bomb, 64).unwrap_err();
        assert!(!err.message.is_empty());
    }

    #[test]
    fn deep_flow_nesting_is_refused_before_the_yaml_library_scans_it() {
        let deep = format!("conference: {{title: T}}\npeople:\n  - {{key: a, name: A, matrix: {}{}}}\n", "[".repeat(100_000), "]".repeat(100_000));
        let err = read("deep.yaml", &deep, 64).unwrap_err();
        assert_eq!(err.line, Some(3), "{err}");
        assert!(err.message.contains("nested more than 64 deep"), "{err}");
    }

    #[test]
    fn brackets_in_text_quotes_comments_and_block_scalars_do_not_count() {
        let mut text = String::from("conference: {title: \"[[[[\", timezone: 'it''s [['}\n# [[[[[[\ntalks:\n");
        for i in 0..100 {
            text.push_str(&format!("  - key: t{i}\n    title: Unbalanced [ja {{no\n    abstract: |\n      [[[ {{{{ a block\n      [[[\n    start: \"2026-03-14 10:00\"\n    duration: 30\n"));
        }
        assert_eq!(shape(&text, 2), None);
        assert_eq!(shape("a: [[[x]]]\n", 2), Some(Shape::TooDeep(5)));
        assert_eq!(shape("- {a: [b, {c: [d]}]}\n", 3), Some(Shape::TooDeep(14)));
    }

    #[test]
    fn more_values_than_a_schedule_holds_are_refused_before_parsing() {
        let many = format!("conference: {{title: T}}\nrooms: [{}]\n", vec!["a"; MAX_VALUES].join(","));
        let err = read("many.yaml", &many, 64).unwrap_err();
        assert_eq!(err.line, Some(2), "{err}");
        assert!(err.message.contains("more than 1000000 keys and values"), "{err}");
        let fits = format!("rooms: [{}]\n", vec!["'a'"; MAX_VALUES - 2].join(","));
        assert_eq!(shape(&fits, 64), None);
    }
