//! Spin application variables: resolution at start-up and the `fermyon:spin/variables` import.
//!
//! Like Spin's default providers, a variable's value comes from the environment variable
//! `SPIN_VARIABLE_<NAME>` (name upper-cased) when set, else from its `default` in `spin.toml`.
//! A `required` variable with neither stops start-up, naming it. Components see only their own
//! `[component.<id>.variables]`, whose values are templates over application variables.
//! Secret values are never printed. The runtime configuration file may add `env` (another
//! prefix) and `static` providers, asked first; Vault and Azure Key Vault are not supported.

use std::collections::{BTreeMap, HashMap};

use anyhow::Context;

use crate::bindings::fermyon::spin::variables as wit;
use crate::manifest::Manifest;
use crate::runtime_config::VariableProvider;
use crate::state::RequestState;
use crate::template;

/// The prefix of environment variables that provide application variable values.
pub const ENV_PREFIX: &str = "SPIN_VARIABLE_";

/// Resolved application variables.
#[derive(Debug, Clone, Default)]
pub struct AppVariables {
    values: HashMap<String, String>,
}

impl AppVariables {
    /// Resolves every `[variables]` entry from `env` (a lookup such as `std::env::var`) and defaults.
    pub fn resolve(
        manifest: &Manifest,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<AppVariables> {
        AppVariables::resolve_with(manifest, &[], env)
    }

    /// Like [`AppVariables::resolve`], asking the runtime configuration's `providers` first, in
    /// order, then `SPIN_VARIABLE_<NAME>`, then the default: Spin's order (the providers from
    /// the file, then the default environment provider; `crates/runtime-config/src/variables.rs`).
    pub fn resolve_with(
        manifest: &Manifest,
        providers: &[VariableProvider],
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<AppVariables> {
        let mut values = HashMap::new();
        let mut missing = Vec::new();
        for (name, decl) in &manifest.variables {
            let from_env = providers
                .iter()
                .find_map(|p| p.lookup(name, &env))
                .or_else(|| env(&format!("{ENV_PREFIX}{}", name.to_ascii_uppercase())));
            match from_env.or_else(|| decl.default.clone()) {
                Some(value) => {
                    values.insert(name.clone(), value);
                }
                None => missing.push(name.clone()),
            }
        }
        if !missing.is_empty() {
            let hints: Vec<String> = missing
                .iter()
                .map(|n| format!("{n} (set {ENV_PREFIX}{})", n.to_ascii_uppercase()))
                .collect();
            anyhow::bail!("required variable(s) without a value: {}", hints.join(", "));
        }
        Ok(AppVariables { values })
    }

    /// Expands a template (`"{{ name }}"`) over the application variables.
    pub fn expand(&self, text: &str) -> anyhow::Result<String> {
        template::expand(text, |name| self.values.get(name).cloned())
    }

    /// Resolves one component's `[component.<id>.variables]` into final values.
    pub fn component_values(
        &self,
        id: &str,
        templates: &BTreeMap<String, String>,
    ) -> anyhow::Result<HashMap<String, String>> {
        templates
            .iter()
            .map(|(name, text)| {
                let value = self
                    .expand(text)
                    .with_context(|| format!("component {id:?}: variable {name:?}"))?;
                Ok((name.clone(), value))
            })
            .collect()
    }
}

impl wit::Host for RequestState {
    fn get(&mut self, name: String) -> wasmtime::Result<Result<String, wit::Error>> {
        self.calls.variables += 1;
        if !template::is_valid_variable_name(&name) {
            return Ok(Err(wit::Error::InvalidName(format!(
                "{name:?} is not a valid variable name"
            ))));
        }
        Ok(match self.component.variables.get(&name) {
            Some(value) => Ok(value.clone()),
            None => Err(wit::Error::Undefined(format!(
                "no variable named {name:?} for component {:?}",
                self.component.id
            ))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn manifest() -> Manifest {
        Manifest::parse(
            r#"
spin_manifest_version = 2
[application]
name = "t"
[variables]
admin_token = { required = true, secret = true }
base = { default = "http://127.0.0.1:1" }
"#,
            Path::new("/"),
        )
        .expect("manifest")
    }

    #[test]
    fn environment_overrides_default() {
        let vars = AppVariables::resolve(&manifest(), |k| match k {
            "SPIN_VARIABLE_ADMIN_TOKEN" => Some("a".into()),
            "SPIN_VARIABLE_BASE" => Some("http://x:2".into()),
            _ => None,
        })
        .expect("resolved");
        assert_eq!(vars.expand("{{ base }}").expect("expand"), "http://x:2");
    }

    #[test]
    fn missing_required_variable_names_it() {
        let err = AppVariables::resolve(&manifest(), |_| None).expect_err("must fail");
        let text = format!("{err:#}");
        assert!(text.contains("admin_token"), "{text}");
        assert!(text.contains("SPIN_VARIABLE_ADMIN_TOKEN"), "{text}");
    }

    #[test]
    fn runtime_config_providers_come_first_then_the_default_environment() {
        let providers = [
            VariableProvider::Env {
                prefix: Some("MIO".into()),
            },
            VariableProvider::Static(BTreeMap::from([(
                "base".to_string(),
                "http://static:3".to_string(),
            )])),
        ];
        let env = |k: &str| match k {
            "MIO_ADMIN_TOKEN" => Some("from-prefix".into()),
            "SPIN_VARIABLE_ADMIN_TOKEN" => Some("from-default-env".into()),
            "SPIN_VARIABLE_BASE" => Some("http://env:2".into()),
            _ => None,
        };
        let vars = AppVariables::resolve_with(&manifest(), &providers, env).expect("resolved");
        assert_eq!(
            vars.expand("{{ admin_token }} {{ base }}").expect("expand"),
            "from-prefix http://static:3"
        );
    }
}
