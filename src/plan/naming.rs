//! The naming template engine: `{name}` placeholders in alias and room-name templates (`naming` in the config).
//!
//! A leaf: it knows the variables a template may use and fills them. It must not import the config (the config
//! checks its templates with [`check_template`]) nor anything else of the plan.

/// The variables a naming template may use.
pub const TEMPLATE_VARS: [&str; 7] =
    ["conference", "kind", "track", "talk", "conference_title", "track_name", "talk_title"];

/// Why a template is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("an unclosed '{{' in {template:?}")]
    Unclosed { template: String },
    #[error("unknown variable {{{name}}} in {template:?}; known: {}", TEMPLATE_VARS.map(|v| format!("{{{v}}}")).join(" "))]
    UnknownVariable { name: String, template: String },
}

/// Fills `{name}` placeholders; unknown names were refused when the config was parsed.
pub fn render(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match vars.iter().find(|(k, _)| *k == name) {
                    Some((_, v)) => out.push_str(v),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Refuses unclosed braces and variables outside [`TEMPLATE_VARS`].
pub fn check_template(template: &str) -> Result<(), TemplateError> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(TemplateError::Unclosed { template: template.to_string() });
        };
        let name = &after[..close];
        if !TEMPLATE_VARS.contains(&name) {
            return Err(TemplateError::UnknownVariable { name: name.to_string(), template: template.to_string() });
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_fills_known_and_keeps_unknown() {
        assert_eq!(render("{conference}-{track}", &[("conference", "c"), ("track", "rust")]), "c-rust");
        assert_eq!(render("a{b", &[]), "a{b");
    }

    #[test]
    fn check_names_the_unknown_variable_and_lists_the_known() {
        let err = check_template("{conference}-{tlak}").unwrap_err().to_string();
        assert!(err.starts_with("unknown variable {tlak} in \"{conference}-{tlak}\"; known: {conference} {kind}"), "{err}");
        assert_eq!(check_template("x{talk").unwrap_err().to_string(), "an unclosed '{' in \"x{talk\"");
        assert!(check_template("{conference}-talk-{talk}").is_ok());
    }
}
