//! `mio-host up --runtime-config-file <path>`: the part of Spin's runtime configuration file
//! (<https://spinframework.dev/v3/dynamic-configuration>) that this host can serve.
//!
//! The file is read as Spin reads it (`crates/runtime-config/src/lib.rs` in spinframework/spin):
//! every top-level key must be one Spin knows, or start-up fails. Of those keys:
//!
//! - `[sqlite_database.<label>]` with `type = "spin"`, optional `path` and `allow_attach_file`
//!   (`crates/sqlite/src/lib.rs`): served. Without `path`, each `open` gets a new in-memory
//!   database, as in Spin. A relative `path` is resolved against the current working directory:
//!   Spin's `sqlite_config_resolver` passes `std::env::current_dir()` as the base.
//!   `type = "libsql"` and unknown types are refused.
//! - `[key_value_store.<label>]` with `type = "spin"` and optional `path`
//!   (`crates/key-value-spin/src/lib.rs`): served. Without `path`, an in-memory store for the
//!   process's lifetime, as in Spin. A relative `path` is resolved against the folder of the
//!   runtime configuration file: Spin's `key_value_config_resolver` passes that folder as the
//!   base. `redis`, `azure_cosmos`, `aws_dynamo` and unknown types are refused.
//! - `[[config_provider]]` / `[[variables_provider]]` (`crates/runtime-config/src/variables.rs`):
//!   `type = "env"` with an optional `prefix` and `type = "static"` with `values` are served;
//!   `vault`, `azure_key_vault` and `dotenv_path` are refused. As in Spin, the providers listed
//!   are asked first, in file order, then the default `SPIN_VARIABLE_` environment provider.
//! - `state_dir`: honoured unless `--state-dir` is given (an empty string: no state directory,
//!   the default database and store are in memory). `max_instance_memory` (bytes): honoured
//!   unless `--max-memory-mb` is given.
//! - Refused, because this host cannot honour them: `[llm_compute]` (no LLM interface),
//!   `[outbound_networking]` (blocked networks, connection limits), `[[client_tls]]` (custom
//!   roots and client certificates), `[outbound_http]` (connection limits and pooling).
//! - Ignored with a note, because nothing here depends on them: `log_dir` (this host writes
//!   component output to its own stderr, not to log files) and the connection limits
//!   `[outbound_redis]`, `[outbound_pg]`, `[outbound_mysql]`, `[outbound_mqtt]` of interfaces
//!   this host does not provide (a component importing them cannot start here anyway).
//!
//! The `default` database and store exist whether or not the file defines them (in the state
//! directory: `sqlite_db.db`, `sqlite_key_value.db`); other labels exist only when defined here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail, ensure};
use serde::Deserialize;

use crate::manifest::{DEFAULT_LABEL, Manifest};

/// Where a database or store defined with `type = "spin"` lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// In memory (no `path`).
    Memory,
    /// This file (absolute).
    File(PathBuf),
}

/// One `[sqlite_database.<label>]` with `type = "spin"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteDatabase {
    /// Where it lives.
    pub location: Location,
    /// Whether `ATTACH` of an existing file is allowed (Spin's default: no).
    pub allow_attach_file: bool,
}

/// One variables provider from `[[config_provider]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VariableProvider {
    /// `type = "env"`: the environment variable `<prefix>_<NAME>` (prefix `SPIN_VARIABLE` when
    /// unset).
    Env {
        /// `prefix`.
        prefix: Option<String>,
    },
    /// `type = "static"`: fixed values by variable name.
    Static(BTreeMap<String, String>),
}

impl VariableProvider {
    /// The provider's value for application variable `name`, reading the environment through
    /// `env`. Spin's env provider joins prefix and upper-cased name with `_` always
    /// (`crates/variables-env/src/lib.rs`, `get_sync`).
    pub fn lookup(&self, name: &str, env: &impl Fn(&str) -> Option<String>) -> Option<String> {
        match self {
            VariableProvider::Env { prefix } => {
                let prefix = prefix.as_deref().unwrap_or("SPIN_VARIABLE");
                env(&format!("{prefix}_{}", name.to_ascii_uppercase()))
            }
            VariableProvider::Static(values) => values.get(name).cloned(),
        }
    }
}

/// The `state_dir` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateDir {
    /// `state_dir = ""`: no state directory.
    Unset,
    /// This folder (absolute).
    Path(PathBuf),
}

/// A runtime configuration file, checked against what this host serves.
#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    /// The file it was read from, as given.
    pub file: PathBuf,
    /// `state_dir`, when present.
    pub state_dir: Option<StateDir>,
    /// `max_instance_memory` in bytes, when present.
    pub max_instance_memory: Option<usize>,
    /// `[sqlite_database.<label>]` entries.
    pub sqlite_databases: BTreeMap<String, SqliteDatabase>,
    /// `[key_value_store.<label>]` entries.
    pub key_value_stores: BTreeMap<String, Location>,
    /// `[[config_provider]]` entries in file order.
    pub variable_providers: Vec<VariableProvider>,
    /// Keys this host accepted but ignores, to print at start-up.
    pub notes: Vec<String>,
}

#[derive(Deserialize)]
struct Typed {
    #[serde(rename = "type")]
    kind: String,
    #[serde(flatten)]
    rest: toml::Table,
}

/// Spin's `InProcDatabase` (`crates/sqlite/src/lib.rs`): unknown fields are an error there too.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpinSqlite {
    path: Option<PathBuf>,
    #[serde(default)]
    allow_attach_file: bool,
}

/// Spin's `EnvVariablesConfig` (`crates/variables-env/src/lib.rs`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvProvider {
    prefix: Option<String>,
    dotenv_path: Option<PathBuf>,
}

/// Spin's `StaticVariablesProvider` (`crates/variables-static/src/lib.rs`).
#[derive(Deserialize)]
struct StaticProvider {
    values: BTreeMap<String, String>,
}

const SERVED_SQLITE: &str = "mio-host serves SQLite databases only from local files: type = \"spin\" with an optional `path`";
const SERVED_KV: &str = "mio-host serves key-value stores only from local SQLite files: type = \"spin\" with an optional `path`";
const SERVED_VARIABLES: &str = "mio-host reads variables only from the environment (type = \"env\", optional `prefix`) and from static values (type = \"static\", `values`)";

fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

impl RuntimeConfig {
    /// Reads and checks the runtime configuration file at `file`.
    pub fn load(file: &Path) -> anyhow::Result<RuntimeConfig> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read runtime config file {}", file.display()))?;
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        RuntimeConfig::parse(&text, file, &cwd)
    }

    /// Parses runtime configuration text read from `file`; `cwd` is the folder relative paths
    /// resolve from where Spin resolves them from the current directory.
    pub fn parse(text: &str, file: &Path, cwd: &Path) -> anyhow::Result<RuntimeConfig> {
        RuntimeConfig::parse_table(text, file, cwd)
            .with_context(|| format!("runtime config file {}", file.display()))
    }

    fn parse_table(text: &str, file: &Path, cwd: &Path) -> anyhow::Result<RuntimeConfig> {
        let table: toml::Table = toml::from_str(text).context("not valid TOML")?;
        // Spin's `key_value_config_resolver` gets the file's folder, `Path::parent` of the path
        // as given; a relative one is then relative to the current directory.
        let file_dir = resolve(cwd, file.parent().unwrap_or(Path::new("")));
        let mut config = RuntimeConfig {
            file: file.to_path_buf(),
            ..RuntimeConfig::default()
        };
        let mut providers_key = None;
        // Every refused section is reported at once, not only the first.
        let mut errors = Vec::new();
        for (key, value) in &table {
            if let Err(e) = config.apply(
                key,
                value,
                (&file_dir, cwd),
                &mut providers_key,
                &mut errors,
            ) {
                errors.push(format!("{e:#}"));
            }
        }
        match errors.as_slice() {
            [] => Ok(config),
            [one] => bail!("{one}"),
            many => bail!(
                "{} sections cannot be served:\n- {}",
                many.len(),
                many.join("\n- ")
            ),
        }
    }

    /// Reads one top-level key; errors of single labels go to `errors`, others are returned.
    fn apply(
        &mut self,
        key: &str,
        value: &toml::Value,
        (file_dir, cwd): (&Path, &Path),
        providers_key: &mut Option<String>,
        errors: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        match key {
            "sqlite_database" => {
                for (label, entry) in labelled(key, value)? {
                    match sqlite_database(entry, cwd) {
                        Ok(db) => {
                            self.sqlite_databases.insert(label.clone(), db);
                        }
                        Err(e) => errors.push(format!("[sqlite_database.{label}]: {e:#}")),
                    }
                }
            }
            "key_value_store" => {
                for (label, entry) in labelled(key, value)? {
                    match key_value_store(label, entry, file_dir, &mut self.notes) {
                        Ok(store) => {
                            self.key_value_stores.insert(label.clone(), store);
                        }
                        Err(e) => errors.push(format!("[key_value_store.{label}]: {e:#}")),
                    }
                }
            }
            "config_provider" | "variables_provider" => {
                // Spin reads `variables_provider` and, only without it, `config_provider`;
                // the other key would then be unused, which Spin refuses.
                ensure!(
                    providers_key.is_none(),
                    "both [[variables_provider]] and [[config_provider]] are present; Spin reads only one of them"
                );
                *providers_key = Some(key.to_string());
                let entries = value
                    .as_array()
                    .with_context(|| format!("`{key}` must be an array of tables: [[{key}]]"))?;
                for entry in entries {
                    match variable_provider(entry) {
                        Ok(provider) => self.variable_providers.push(provider),
                        Err(e) => errors.push(format!("[[{key}]]: {e:#}")),
                    }
                }
            }
            "state_dir" => {
                let dir = value
                    .as_str()
                    .context("`state_dir` must be a string (a folder path)")?;
                self.state_dir = Some(if dir.is_empty() {
                    StateDir::Unset
                } else {
                    StateDir::Path(resolve(cwd, Path::new(dir)))
                });
            }
            "max_instance_memory" => {
                let bytes = value
                    .as_integer()
                    .and_then(|n| usize::try_from(n).ok())
                    .context("`max_instance_memory` must be a number of bytes")?;
                self.max_instance_memory = Some(bytes);
            }
            "log_dir" => self.notes.push(
                "`log_dir` ignored: mio-host writes component output to its own stderr, not to log files"
                    .into(),
            ),
            "outbound_redis" | "outbound_pg" | "outbound_mysql" | "outbound_mqtt" => {
                self.notes.push(format!(
                    "[{key}] ignored: mio-host does not provide this interface, so a component importing it cannot start here"
                ));
            }
            "llm_compute" => bail!(
                "[llm_compute] is not supported: mio-host does not provide the LLM interface (fermyon:spin/llm); Spin serves it"
            ),
            "outbound_networking" => bail!(
                "[outbound_networking] is not supported: mio-host cannot block networks or cap connections; it enforces only each component's allowed_outbound_hosts"
            ),
            "client_tls" => bail!(
                "[[client_tls]] is not supported: mio-host makes outbound TLS connections only with the platform's default roots and no client certificate"
            ),
            "outbound_http" => bail!(
                "[outbound_http] is not supported: mio-host cannot cap or configure outbound HTTP connections"
            ),
            other => bail!(
                "unknown key `{other}`: Spin refuses it too (\"unused runtime config key(s): {other}\"); see https://spinframework.dev/v3/dynamic-configuration"
            ),
        }
        Ok(())
    }

    /// One line for start-up, like Spin's "Using runtime config [...] from <file>".
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        for (label, store) in &self.key_value_stores {
            parts.push(format!(
                "[key_value_store.{label}: spin {}]",
                describe(store)
            ));
        }
        for (label, db) in &self.sqlite_databases {
            parts.push(format!(
                "[sqlite_database.{label}: spin {}]",
                describe(&db.location)
            ));
        }
        if !self.variable_providers.is_empty() {
            parts.push(format!(
                "[{} variables provider(s)]",
                self.variable_providers.len()
            ));
        }
        format!(
            "Using runtime config {} from {}",
            if parts.is_empty() {
                "(defaults only)".to_string()
            } else {
                parts.join(", ")
            },
            self.file.display()
        )
    }

    /// Checks that every label a component uses is defined: `default` always is, others only
    /// in this file. With the same wording as Spin's `ensure_allowed_databases_are_configured`
    /// (`crates/factor-sqlite/src/lib.rs`) and the key-value factor's check
    /// (`crates/factor-key-value/src/lib.rs`).
    pub fn check_labels(config: Option<&RuntimeConfig>, manifest: &Manifest) -> anyhow::Result<()> {
        let sqlite_defined = |label: &str| {
            label == DEFAULT_LABEL || config.is_some_and(|c| c.sqlite_databases.contains_key(label))
        };
        let kv_defined = |label: &str| {
            label == DEFAULT_LABEL || config.is_some_and(|c| c.key_value_stores.contains_key(label))
        };
        let mut missing = Vec::new();
        for c in manifest.components.values() {
            for label in c.sqlite_databases.iter().filter(|l| !sqlite_defined(l)) {
                missing.push(format!("- Component {} uses database '{label}'", c.id));
            }
            for label in c.key_value_stores.iter().filter(|l| !kv_defined(l)) {
                missing.push(format!(
                    "- Component {} uses key-value store '{label}'",
                    c.id
                ));
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let hint = match config {
            Some(c) => format!("define them in {}", c.file.display()),
            None => "pass --runtime-config-file with a file that defines them".to_string(),
        };
        bail!(
            "One or more components use SQLite databases or key-value stores which are not defined.\n\
             Check the spelling, or {hint} ([sqlite_database.<label>] / [key_value_store.<label>] with type = \"spin\").\n\
             See https://spinframework.dev/v3/dynamic-configuration\nDetails:\n{}",
            missing.join("\n")
        )
    }
}

fn describe(location: &Location) -> String {
    match location {
        Location::Memory => "(in memory)".into(),
        Location::File(path) => format!("{:?}", path.display().to_string()),
    }
}

fn labelled<'a>(key: &str, value: &'a toml::Value) -> anyhow::Result<&'a toml::Table> {
    value
        .as_table()
        .with_context(|| format!("`{key}` must be a table of labels: [{key}.<label>]"))
}

fn typed(entry: &toml::Value) -> anyhow::Result<Typed> {
    entry
        .clone()
        .try_into()
        .map_err(|e| anyhow!("needs `type = \"...\"` and its settings: {e}"))
}

fn sqlite_database(entry: &toml::Value, cwd: &Path) -> anyhow::Result<SqliteDatabase> {
    let Typed { kind, rest } = typed(entry)?;
    match kind.as_str() {
        "spin" => {
            let spin: SpinSqlite = rest
                .try_into()
                .map_err(|e| anyhow!("type = \"spin\": {e}"))?;
            Ok(SqliteDatabase {
                location: match spin.path {
                    Some(path) => Location::File(resolve(cwd, &path)),
                    None => Location::Memory,
                },
                allow_attach_file: spin.allow_attach_file,
            })
        }
        "libsql" => bail!(
            "type = \"libsql\" is not supported: {SERVED_SQLITE}; libSQL (e.g. Turso) databases are served by Spin and SpinKube"
        ),
        other => bail!(
            "type = {other:?} is not a SQLite database type Spin knows (\"spin\", \"libsql\"); {SERVED_SQLITE}"
        ),
    }
}

fn key_value_store(
    label: &str,
    entry: &toml::Value,
    file_dir: &Path,
    notes: &mut Vec<String>,
) -> anyhow::Result<Location> {
    let Typed { kind, mut rest } = typed(entry)?;
    match kind.as_str() {
        "spin" => {
            // Spin's `SpinKeyValueRuntimeConfig` has only `path` and ignores other fields.
            let path = match rest.remove("path") {
                None => None,
                Some(toml::Value::String(path)) => Some(PathBuf::from(path)),
                Some(_) => bail!("type = \"spin\": `path` must be a string"),
            };
            for field in rest.keys() {
                notes.push(format!(
                    "[key_value_store.{label}] `{field}` ignored: type = \"spin\" takes only `path` (Spin ignores it too)"
                ));
            }
            Ok(match path {
                Some(path) => Location::File(resolve(file_dir, &path)),
                None => Location::Memory,
            })
        }
        "redis" | "azure_cosmos" | "aws_dynamo" => bail!(
            "type = {kind:?} is not supported: {SERVED_KV}; {kind:?} stores are served by Spin and SpinKube"
        ),
        other => bail!(
            "type = {other:?} is not a key-value store type Spin knows (\"spin\", \"redis\", \"azure_cosmos\", \"aws_dynamo\"); {SERVED_KV}"
        ),
    }
}

fn variable_provider(entry: &toml::Value) -> anyhow::Result<VariableProvider> {
    let Typed { kind, rest } = typed(entry)?;
    match kind.as_str() {
        "env" => {
            let env: EnvProvider = rest
                .try_into()
                .map_err(|e| anyhow!("type = \"env\": {e}"))?;
            ensure!(
                env.dotenv_path.is_none(),
                "type = \"env\" with `dotenv_path` is not supported: mio-host does not read dotenv files; {SERVED_VARIABLES}"
            );
            Ok(VariableProvider::Env { prefix: env.prefix })
        }
        "static" => {
            let values: StaticProvider = rest
                .try_into()
                .map_err(|e| anyhow!("type = \"static\": {e}"))?;
            Ok(VariableProvider::Static(values.values))
        }
        "vault" | "azure_key_vault" => bail!(
            "type = {kind:?} is not supported: {SERVED_VARIABLES}; Spin and SpinKube serve {kind:?}"
        ),
        other => bail!(
            "type = {other:?} is not a variables provider Spin knows (\"env\", \"static\", \"vault\", \"azure_key_vault\"); {SERVED_VARIABLES}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<RuntimeConfig> {
        RuntimeConfig::parse(text, Path::new("conf/rc.toml"), Path::new("/work"))
    }

    fn refused(text: &str) -> String {
        format!("{:#}", parse(text).expect_err("must be refused"))
    }

    #[test]
    fn spin_databases_and_stores_resolve_paths_as_spin_does() {
        let c = parse(
            r#"
            [sqlite_database.default]
            type = "spin"
            path = "data/app.db"

            [sqlite_database.scratch]
            type = "spin"

            [sqlite_database.abs]
            type = "spin"
            path = "/var/lib/abs.db"
            allow_attach_file = true

            [key_value_store.default]
            type = "spin"
            path = "kv.db"

            [key_value_store.cache]
            type = "spin"
            "#,
        )
        .expect("accepted");
        // SQLite: relative to the current directory.
        assert_eq!(
            c.sqlite_databases["default"],
            SqliteDatabase {
                location: Location::File("/work/data/app.db".into()),
                allow_attach_file: false,
            }
        );
        assert_eq!(c.sqlite_databases["scratch"].location, Location::Memory);
        assert_eq!(
            c.sqlite_databases["abs"].location,
            Location::File("/var/lib/abs.db".into())
        );
        assert!(c.sqlite_databases["abs"].allow_attach_file);
        // Key-value: relative to the runtime config file's folder.
        assert_eq!(
            c.key_value_stores["default"],
            Location::File("/work/conf/kv.db".into())
        );
        assert_eq!(c.key_value_stores["cache"], Location::Memory);
        assert!(c.notes.is_empty(), "{:?}", c.notes);
    }

    #[test]
    fn an_empty_file_is_accepted() {
        let c = parse("").expect("accepted");
        assert!(c.sqlite_databases.is_empty() && c.key_value_stores.is_empty());
    }

    #[test]
    fn state_dir_memory_and_variable_providers_are_read() {
        let c = parse(
            r#"
            state_dir = "state"
            max_instance_memory = 134217728
            log_dir = "logs"

            [[config_provider]]
            type = "env"
            prefix = "MIO"

            [[config_provider]]
            type = "static"
            values = { public_base_url = "https://example.com" }
            "#,
        )
        .expect("accepted");
        assert_eq!(c.state_dir, Some(StateDir::Path("/work/state".into())));
        assert_eq!(c.max_instance_memory, Some(128 << 20));
        assert_eq!(c.notes.len(), 1, "log_dir is noted: {:?}", c.notes);
        let env = |key: &str| (key == "MIO_ADMIN_TOKEN").then(|| "x".to_string());
        assert_eq!(
            c.variable_providers[0].lookup("admin_token", &env),
            Some("x".into())
        );
        assert_eq!(
            c.variable_providers[1].lookup("public_base_url", &env),
            Some("https://example.com".into())
        );
        assert_eq!(
            parse("state_dir = \"\"").expect("accepted").state_dir,
            Some(StateDir::Unset)
        );
    }

    #[test]
    fn remote_and_unknown_storage_kinds_are_refused_naming_file_and_section() {
        let err = refused(
            r#"
            [sqlite_database.default]
            type = "libsql"
            url = "https://example.turso.io"
            token = "t"
            "#,
        );
        assert!(err.contains("conf/rc.toml"), "{err}");
        assert!(err.contains("[sqlite_database.default]"), "{err}");
        assert!(
            err.contains("libsql") && err.contains("type = \"spin\""),
            "{err}"
        );

        for kind in ["redis", "azure_cosmos", "aws_dynamo", "memcached"] {
            let err = refused(&format!(
                "[key_value_store.default]\ntype = \"{kind}\"\nurl = \"redis://x\""
            ));
            assert!(err.contains("[key_value_store.default]"), "{err}");
            assert!(
                err.contains(kind) && err.contains("type = \"spin\""),
                "{err}"
            );
        }
        let err = refused("[sqlite_database.other]\ntype = \"postgres\"");
        assert!(err.contains("[sqlite_database.other]"), "{err}");
    }

    #[test]
    fn every_refused_section_is_reported_at_once() {
        let err = refused(
            r#"
            [sqlite_database.default]
            type = "libsql"
            url = "https://example.turso.io"
            token = "t"

            [key_value_store.default]
            type = "redis"
            url = "redis://localhost"

            [key_value_store.local]
            type = "spin"
            "#,
        );
        assert!(err.contains("2 sections cannot be served"), "{err}");
        assert!(err.contains("[sqlite_database.default]"), "{err}");
        assert!(err.contains("[key_value_store.default]"), "{err}");
        assert!(!err.contains("[key_value_store.local]"), "{err}");
    }

    #[test]
    fn the_deploy_examples_are_refused_and_accepted_as_documented() {
        let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
        let root = deploy.join("..");
        let production = deploy.join("runtime-config.toml");
        let text = std::fs::read_to_string(&production).expect("deploy/runtime-config.toml");
        let err = format!(
            "{:#}",
            RuntimeConfig::parse(&text, &production, &root).expect_err("libSQL and Redis")
        );
        assert!(
            err.contains("\"libsql\"") && err.contains("\"redis\""),
            "{err}"
        );

        let local = deploy.join("runtime-config.local.toml");
        let text = std::fs::read_to_string(&local).expect("deploy/runtime-config.local.toml");
        let c = RuntimeConfig::parse(&text, &local, &root).expect("local files are served");
        // The same files as without the flag, from the repository root.
        assert_eq!(
            c.sqlite_databases["default"].location,
            Location::File(root.join(".spin/sqlite_db.db"))
        );
        assert_eq!(
            c.key_value_stores["default"],
            Location::File(deploy.join("../.spin/sqlite_key_value.db"))
        );
    }

    #[test]
    fn malformed_entries_are_refused() {
        // Spin's InProcDatabase denies unknown fields.
        assert!(
            refused("[sqlite_database.default]\ntype = \"spin\"\nfile = \"x.db\"").contains("file")
        );
        assert!(refused("[sqlite_database.default]\npath = \"x.db\"").contains("type"));
        assert!(refused("sqlite_database = 1").contains("table"));
        assert!(refused("[key_value_store.default]\ntype = \"spin\"\npath = 3").contains("path"));
    }

    #[test]
    fn unknown_spin_kv_fields_are_noted_not_refused() {
        let c = parse("[key_value_store.x]\ntype = \"spin\"\npath = \"x.db\"\nsize = 3")
            .expect("Spin ignores them");
        assert_eq!(c.notes.len(), 1);
    }

    #[test]
    fn sections_this_host_cannot_honour_are_refused() {
        for (text, section) in [
            (
                "[[config_provider]]\ntype = \"vault\"\nurl = \"http://127.0.0.1:8200\"\ntoken = \"root\"\nmount = \"secret\"",
                "[[config_provider]]",
            ),
            (
                "[[variables_provider]]\ntype = \"azure_key_vault\"\nvault_url = \"https://x.vault.azure.net\"",
                "[[variables_provider]]",
            ),
            (
                "[[config_provider]]\ntype = \"env\"\ndotenv_path = \".env\"",
                "dotenv_path",
            ),
            ("[llm_compute]\ntype = \"spin\"", "[llm_compute]"),
            (
                "[outbound_networking]\nblock_networks = [\"private\"]",
                "[outbound_networking]",
            ),
            (
                "[[client_tls]]\ncomponent_ids = [\"a\"]\nhosts = [\"x:443\"]",
                "[[client_tls]]",
            ),
            ("[outbound_http]\nmax_connections = 1", "[outbound_http]"),
            ("colour = \"blue\"", "unknown key `colour`"),
        ] {
            let err = refused(text);
            assert!(err.contains(section), "{section}: {err}");
            assert!(err.contains("conf/rc.toml"), "{err}");
        }
    }

    #[test]
    fn limits_of_interfaces_this_host_lacks_are_noted() {
        let c = parse("[outbound_redis]\nmax_connections = 4").expect("accepted");
        assert_eq!(c.notes.len(), 1);
    }

    fn manifest(kv: &str, sqlite: &str) -> Manifest {
        let text = format!(
            "spin_manifest_version = 2\n[application]\nname = \"x\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"api\"\n[component.api]\nsource = \"api.wasm\"\nkey_value_stores = [{kv}]\nsqlite_databases = [{sqlite}]\n"
        );
        Manifest::parse(&text, Path::new("/app")).expect("manifest")
    }

    #[test]
    fn labels_other_than_default_need_the_runtime_config_to_define_them() {
        let m = manifest("\"default\", \"cache\"", "\"default\", \"reports\"");
        let err = format!(
            "{:#}",
            RuntimeConfig::check_labels(None, &m).expect_err("undefined labels")
        );
        assert!(err.contains("database 'reports'"), "{err}");
        assert!(err.contains("key-value store 'cache'"), "{err}");
        assert!(err.contains("--runtime-config-file"), "{err}");

        let only_db = parse("[sqlite_database.reports]\ntype = \"spin\"").expect("accepted");
        let err = format!(
            "{:#}",
            RuntimeConfig::check_labels(Some(&only_db), &m).expect_err("cache is undefined")
        );
        assert!(
            err.contains("'cache'") && !err.contains("'reports'"),
            "{err}"
        );

        let both = parse(
            "[sqlite_database.reports]\ntype = \"spin\"\n[key_value_store.cache]\ntype = \"spin\"",
        )
        .expect("accepted");
        RuntimeConfig::check_labels(Some(&both), &m).expect("all defined");
        RuntimeConfig::check_labels(None, &manifest("\"default\"", "\"default\""))
            .expect("default needs no runtime config");
    }
}
