//! `naming`: alias localpart and room name templates. Owns their defaults and checks; the template engine itself is
//! the plan's ([`crate::plan::naming`]).

use serde::Deserialize;

use crate::plan::naming::check_template;

/// Alias localpart and name templates. Variables: `{conference}`, `{kind}`, `{track}`, `{talk}`; names also
/// `{conference_title}`, `{track_name}`, `{talk_title}`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NamingConfig {
    pub root_alias: String,
    pub subspace_alias: String,
    pub track_alias: String,
    pub backstage_alias: String,
    pub talk_alias: String,
    pub stand_alias: String,
    pub root_name: String,
    pub track_name: String,
    pub backstage_name: String,
    pub talk_name: String,
}

impl Default for NamingConfig {
    fn default() -> Self {
        NamingConfig {
            root_alias: "{conference}".into(),
            subspace_alias: "{conference}-{kind}".into(),
            track_alias: "{conference}-{track}".into(),
            backstage_alias: "{conference}-{track}-backstage".into(),
            talk_alias: "{conference}-talk-{talk}".into(),
            stand_alias: "{conference}-stand-{track}".into(),
            root_name: "{conference_title}".into(),
            track_name: "{track_name}".into(),
            backstage_name: "{track_name} (backstage)".into(),
            talk_name: "{talk_title}".into(),
        }
    }
}

impl NamingConfig {
    pub(super) fn check(&self) -> Result<(), String> {
        for (field, t) in [
            ("root_alias", &self.root_alias),
            ("subspace_alias", &self.subspace_alias),
            ("track_alias", &self.track_alias),
            ("backstage_alias", &self.backstage_alias),
            ("talk_alias", &self.talk_alias),
            ("stand_alias", &self.stand_alias),
            ("root_name", &self.root_name),
            ("track_name", &self.track_name),
            ("backstage_name", &self.backstage_name),
            ("talk_name", &self.talk_name),
        ] {
            check_template(t).map_err(|e| format!("naming.{field}: {e}"))?;
        }
        if !self.talk_alias.contains("{talk}") {
            return Err("naming.talk_alias must contain {talk}, or every talk would share one alias".into());
        }
        for (field, t) in [("track_alias", &self.track_alias), ("backstage_alias", &self.backstage_alias)] {
            if !t.contains("{track}") {
                return Err(format!("naming.{field} must contain {{track}}"));
            }
        }
        if self.track_alias == self.backstage_alias {
            return Err("naming.track_alias and naming.backstage_alias must differ".into());
        }
        Ok(())
    }
}
