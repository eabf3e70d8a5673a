//! The part of Spin's application manifest (`spin.toml`, manifest version 2) that this host runs.
//!
//! It parses and validates the manifest the way `spin up` would for what our components use:
//! `[application]`, `[variables]`, `[[trigger.http]]`, `[[trigger.cron]]` and `[component.<id>]`
//! with `source`, `allowed_outbound_hosts`, `key_value_stores`, `sqlite_databases`,
//! `[component.<id>.variables]` and `[component.<id>.build]`. Anything else Spin accepts but this
//! host cannot honour (other trigger types, `files`) is rejected with a clear error rather than
//! silently ignored. Store and database labels other than `default` are accepted here and must be
//! defined by the runtime configuration file at start-up (`crate::runtime_config`), as in Spin.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use serde::Deserialize;

use crate::template;

/// The store / database label every Spin host provides without runtime configuration.
pub const DEFAULT_LABEL: &str = "default";

/// A parsed, validated manifest with paths resolved against the manifest's folder.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The folder holding `spin.toml`; build commands run here and sources resolve from here.
    pub root: PathBuf,
    /// `[application].name`.
    pub name: String,
    /// Application variables by name.
    pub variables: BTreeMap<String, VariableDecl>,
    /// HTTP triggers in manifest order.
    pub http_triggers: Vec<HttpTrigger>,
    /// Cron triggers in manifest order.
    pub cron_triggers: Vec<CronTrigger>,
    /// Components by id.
    pub components: BTreeMap<String, ComponentDecl>,
}

/// One `[variables]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariableDecl {
    /// Value used when no provider has one.
    pub default: Option<String>,
    /// Start-up fails when no provider has a value and there is no default.
    #[serde(default)]
    pub required: bool,
    /// Never printed.
    #[serde(default)]
    pub secret: bool,
    /// Free text.
    pub description: Option<String>,
}

/// One `[[trigger.http]]` entry.
#[derive(Debug, Clone)]
pub struct HttpTrigger {
    /// The route as written.
    pub route: String,
    /// The component id it runs.
    pub component: String,
}

/// One `[[trigger.cron]]` entry.
#[derive(Debug, Clone)]
pub struct CronTrigger {
    /// Spin's cron expression (seconds first).
    pub cron_expression: String,
    /// The component id it runs.
    pub component: String,
}

/// One `[component.<id>]` table.
#[derive(Debug, Clone)]
pub struct ComponentDecl {
    /// The component id.
    pub id: String,
    /// Absolute path of the `.wasm` file.
    pub source: PathBuf,
    /// `allowed_outbound_hosts`, as written (templates unexpanded).
    pub allowed_outbound_hosts: Vec<String>,
    /// `key_value_stores` labels.
    pub key_value_stores: Vec<String>,
    /// `sqlite_databases` labels.
    pub sqlite_databases: Vec<String>,
    /// `[component.<id>.variables]`: component variable name → template.
    pub variables: BTreeMap<String, String>,
    /// `[component.<id>.build]`.
    pub build: Option<BuildDecl>,
    /// Free text.
    pub description: Option<String>,
}

/// One `[component.<id>.build]` table.
#[derive(Debug, Clone, Deserialize)]
pub struct BuildDecl {
    /// Shell command, run from `workdir` (default: the manifest's folder).
    pub command: String,
    /// Working directory relative to the manifest's folder.
    pub workdir: Option<String>,
    /// Files `spin watch` follows; unused here, accepted for compatibility.
    #[serde(default)]
    pub watch: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    spin_manifest_version: toml::Value,
    application: RawApplication,
    #[serde(default)]
    variables: BTreeMap<String, VariableDecl>,
    #[serde(default)]
    trigger: BTreeMap<String, Vec<toml::Table>>,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
}

#[derive(Deserialize)]
struct RawApplication {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    source: toml::Value,
    description: Option<String>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    key_value_stores: Vec<String>,
    #[serde(default)]
    sqlite_databases: Vec<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    build: Option<BuildDecl>,
}

impl Manifest {
    /// Reads and validates the manifest at `path`.
    pub fn load(path: &Path) -> anyhow::Result<Manifest> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read manifest {}", path.display()))?;
        // `spin.toml` alone has the empty path as its parent: that is the current folder.
        let root = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        }
        .canonicalize()
        .with_context(|| format!("cannot resolve the folder of {}", path.display()))?;
        Manifest::parse(&text, &root)
            .with_context(|| format!("invalid manifest {}", path.display()))
    }

    /// Parses manifest text; relative paths resolve against `root`.
    pub fn parse(text: &str, root: &Path) -> anyhow::Result<Manifest> {
        let raw: RawManifest = toml::from_str(text)?;
        ensure!(
            raw.spin_manifest_version.as_integer() == Some(2),
            "spin_manifest_version must be 2"
        );
        for (name, decl) in &raw.variables {
            ensure!(
                template::is_valid_variable_name(name),
                "invalid variable name {name:?}: use lower-case letters, digits and underscores, starting with a letter"
            );
            ensure!(
                !(decl.required && decl.default.is_some()),
                "variable {name:?} cannot be both required and have a default"
            );
            ensure!(
                decl.required || decl.default.is_some(),
                "variable {name:?} must have a default or be required"
            );
        }

        let mut components = BTreeMap::new();
        for (id, c) in raw.component {
            let source = match &c.source {
                toml::Value::String(s) => root.join(s),
                _ => bail!("component {id:?}: only a local file `source` is supported"),
            };
            // Labels other than `default` are checked at start-up against the runtime
            // configuration (`RuntimeConfig::check_labels`), as Spin checks them.
            for (name, value) in &c.variables {
                ensure!(
                    template::is_valid_variable_name(name),
                    "component {id:?}: invalid variable name {name:?}"
                );
                for reference in template::references(value)
                    .with_context(|| format!("component {id:?}: variable {name:?}"))?
                {
                    ensure!(
                        raw.variables.contains_key(&reference),
                        "component {id:?}: variable {name:?} refers to undefined application variable {reference:?}"
                    );
                }
            }
            for host in &c.allowed_outbound_hosts {
                for reference in template::references(host)
                    .with_context(|| format!("component {id:?}: allowed_outbound_hosts"))?
                {
                    ensure!(
                        raw.variables.contains_key(&reference),
                        "component {id:?}: allowed_outbound_hosts refers to undefined application variable {reference:?}"
                    );
                }
            }
            components.insert(
                id.clone(),
                ComponentDecl {
                    id,
                    source,
                    allowed_outbound_hosts: c.allowed_outbound_hosts,
                    key_value_stores: c.key_value_stores,
                    sqlite_databases: c.sqlite_databases,
                    variables: c.variables,
                    build: c.build,
                    description: c.description,
                },
            );
        }

        let mut http_triggers = Vec::new();
        let mut cron_triggers = Vec::new();
        for (kind, entries) in raw.trigger {
            for entry in entries {
                let component = trigger_component(&kind, &entry, &components)?;
                match kind.as_str() {
                    "http" => {
                        let route = entry
                            .get("route")
                            .and_then(toml::Value::as_str)
                            .with_context(|| {
                                format!("trigger.http for {component:?}: `route` must be a string")
                            })?;
                        if let Some(executor) = entry.get("executor") {
                            let kind = executor.get("type").and_then(toml::Value::as_str);
                            ensure!(
                                kind == Some("spin"),
                                "trigger.http for {component:?}: only the default `spin` executor is supported"
                            );
                        }
                        http_triggers.push(HttpTrigger {
                            route: route.to_string(),
                            component,
                        });
                    }
                    "cron" => {
                        let cron_expression = entry
                            .get("cron_expression")
                            .and_then(toml::Value::as_str)
                            .with_context(|| {
                                format!("trigger.cron for {component:?}: `cron_expression` must be a string")
                            })?;
                        cron_triggers.push(CronTrigger {
                            cron_expression: cron_expression.to_string(),
                            component,
                        });
                    }
                    other => bail!("trigger type {other:?} is not supported by this host"),
                }
            }
        }

        Ok(Manifest {
            root: root.to_path_buf(),
            name: raw.application.name,
            variables: raw.variables,
            http_triggers,
            cron_triggers,
            components,
        })
    }
}

fn trigger_component(
    kind: &str,
    entry: &toml::Table,
    components: &BTreeMap<String, ComponentDecl>,
) -> anyhow::Result<String> {
    let id = match entry.get("component") {
        Some(toml::Value::String(id)) => id.clone(),
        _ => bail!("every trigger.{kind} needs `component = \"<id>\"` naming a [component.<id>]"),
    };
    ensure!(
        components.contains_key(&id),
        "trigger.{kind} refers to component {id:?}, which has no [component.{id}] table"
    );
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
spin_manifest_version = 2
[application]
name = "demo"
[variables]
token = { required = true, secret = true }
api_base = { default = "http://127.0.0.1:9" }
[[trigger.http]]
route = "/api/..."
component = "api"
[component.api]
source = "api.wasm"
allowed_outbound_hosts = ["{{ api_base }}"]
sqlite_databases = ["default"]
[component.api.variables]
token = "{{ token }}"
[component.api.build]
command = "true"
"#;

    #[test]
    fn valid_manifest_parses_with_paths_resolved() {
        let m = Manifest::parse(GOOD, Path::new("/app")).expect("valid");
        assert_eq!(m.name, "demo");
        assert_eq!(m.http_triggers[0].route, "/api/...");
        assert_eq!(m.components["api"].source, Path::new("/app/api.wasm"));
        assert!(m.variables["token"].required);
    }

    #[test]
    fn trigger_naming_unknown_component_is_rejected() {
        let text = GOOD.replace("component = \"api\"", "component = \"nope\"");
        let err = Manifest::parse(&text, Path::new("/app")).expect_err("must fail");
        assert!(format!("{err:#}").contains("nope"), "{err:#}");
    }

    #[test]
    fn variable_template_naming_undefined_variable_is_rejected() {
        let text = GOOD.replace("token = \"{{ token }}\"", "token = \"{{ missing }}\"");
        let err = Manifest::parse(&text, Path::new("/app")).expect_err("must fail");
        assert!(format!("{err:#}").contains("missing"), "{err:#}");
    }

    #[test]
    fn variable_without_default_or_required_is_rejected() {
        let text = GOOD.replace("{ default = \"http://127.0.0.1:9\" }", "{ secret = true }");
        assert!(Manifest::parse(&text, Path::new("/app")).is_err());
    }

    #[test]
    fn named_databases_parse_and_are_checked_against_the_runtime_config_later() {
        let text = GOOD.replace("[\"default\"]", "[\"other\"]");
        let m = Manifest::parse(&text, Path::new("/app")).expect("labels parse");
        assert_eq!(m.components["api"].sqlite_databases, ["other"]);
        assert!(crate::runtime_config::RuntimeConfig::check_labels(None, &m).is_err());
    }

    #[test]
    fn manifest_version_one_is_rejected() {
        let text = GOOD.replace("spin_manifest_version = 2", "spin_manifest_version = 1");
        assert!(Manifest::parse(&text, Path::new("/app")).is_err());
    }
}
