//! Loading an application: manifest, variables, state directory, compiled components.
//!
//! Each component is compiled once (optionally through an on-disk compilation cache) and linked
//! into an `InstancePre`; every request then gets a fresh instance from it, as Spin does.

use crate::calls::CallLog;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, ensure};
use wasmtime::component::{Component, HasSelf, InstancePre, Linker};
use wasmtime::{Cache, CacheConfig, Config, Engine};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::bindings::cron::SpinCronPre;
use crate::bindings::fermyon::spin;
use crate::cron::CronSchedule;
use crate::manifest::{DEFAULT_LABEL, Manifest};
use crate::outbound::AllowedHosts;
use crate::router::Router;
use crate::runtime_config::{Location, RuntimeConfig, SqliteDatabase, StateDir};
use crate::state::{ComponentRuntime, RequestState, Stores};
use crate::variables::AppVariables;
use crate::{key_value, sqlite};

/// How often the epoch advances; the wall-time limit is counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Per-request resource limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most linear memory one instance may grow to.
    pub max_memory_bytes: usize,
    /// Longest one request may run, guest and host calls together.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_memory_bytes: 256 << 20,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Where variable values come from.
#[derive(Debug, Clone, Default)]
pub struct VariableSource {
    /// Environment-style entries (`SPIN_VARIABLE_<NAME>` → value) consulted first.
    pub overrides: HashMap<String, String>,
    /// Whether the process environment is consulted after `overrides`.
    pub inherit_process_env: bool,
}

impl VariableSource {
    /// Reads variables from the process environment only, as `spin up` does.
    pub fn process() -> Self {
        VariableSource {
            overrides: HashMap::new(),
            inherit_process_env: true,
        }
    }

    fn lookup(&self, key: &str) -> Option<String> {
        self.overrides.get(key).cloned().or_else(|| {
            self.inherit_process_env
                .then(|| std::env::var(key).ok())
                .flatten()
        })
    }
}

/// Everything `mio-host up` needs to start an application.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Path of `spin.toml`.
    pub manifest: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Where SQLite and key-value data live (Spin: `.spin` beside the manifest).
    pub state_dir: Option<PathBuf>,
    /// SQL to run against the default database before serving (`--sqlite`).
    pub sqlite_statements: Vec<String>,
    /// Per-request limits.
    pub limits: Limits,
    /// Variable values.
    pub variables: VariableSource,
    /// Folder for compiled components, so a restart does not recompile.
    pub compile_cache: Option<PathBuf>,
    /// Log each invocation's host calls (`--log-host-calls`).
    pub log_host_calls: bool,
    /// The runtime configuration file (`--runtime-config-file`): databases, key-value stores,
    /// variables providers, `state_dir` (used when `state_dir` above is `None`). Its
    /// `max_instance_memory` is not applied here: the caller decides between it and `limits`.
    pub runtime_config: Option<RuntimeConfig>,
}

impl HostConfig {
    /// Defaults for the manifest at `manifest`.
    pub fn new(manifest: impl Into<PathBuf>) -> Self {
        HostConfig {
            manifest: manifest.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            state_dir: None,
            sqlite_statements: Vec::new(),
            limits: Limits::default(),
            variables: VariableSource::process(),
            compile_cache: None,
            log_host_calls: false,
            runtime_config: None,
        }
    }
}

pub(crate) struct LoadedComponent {
    pub(crate) runtime: Arc<ComponentRuntime>,
    pub(crate) pre: InstancePre<RequestState>,
    /// Present when an HTTP trigger routes to the component.
    pub(crate) http: Option<ProxyPre<RequestState>>,
    /// Present when a cron trigger runs the component.
    pub(crate) cron: Option<SpinCronPre<RequestState>>,
}

/// A loaded application, ready to serve.
pub struct App {
    pub(crate) engine: Engine,
    pub(crate) manifest: Manifest,
    pub(crate) router: Router,
    pub(crate) components: HashMap<String, LoadedComponent>,
    pub(crate) stores: Arc<Stores>,
    pub(crate) limits: Limits,
    pub(crate) schedules: Vec<CronSchedule>,
    pub(crate) calls: Arc<CallLog>,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for App {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl App {
    /// Host calls per component since the app was loaded: invocations and their calls.
    pub fn host_calls(&self) -> std::collections::BTreeMap<String, crate::calls::CallTotals> {
        self.calls.totals()
    }

    /// Loads, validates and compiles the application described by `config`.
    pub fn load(config: &HostConfig) -> anyhow::Result<App> {
        let manifest = Manifest::load(&config.manifest)?;
        let runtime_config = config.runtime_config.as_ref();
        RuntimeConfig::check_labels(runtime_config, &manifest)?;
        let providers = runtime_config.map_or(&[][..], |c| &c.variable_providers);
        let variables =
            AppVariables::resolve_with(&manifest, providers, |key| config.variables.lookup(key))?;
        for c in manifest.components.values() {
            ensure!(
                c.source.is_file(),
                "component {:?}: {} does not exist; build it first (`mio-host build` or `mio-host up --build`)",
                c.id,
                c.source.display()
            );
        }
        let schedules = manifest
            .cron_triggers
            .iter()
            .map(CronSchedule::parse)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let router = Router::build(
            manifest
                .http_triggers
                .iter()
                .map(|t| (t.route.clone(), t.component.clone())),
        )?;

        let stores = Arc::new(open_stores(config, &manifest)?);
        for statement in &config.sqlite_statements {
            run_sqlite_statement(&stores, statement)?;
        }

        let engine = engine(config.compile_cache.as_deref())?;
        let linker = linker(&engine)?;
        let mut components = HashMap::new();
        for decl in manifest.components.values() {
            let allowed = decl
                .allowed_outbound_hosts
                .iter()
                .map(|h| variables.expand(h))
                .collect::<anyhow::Result<Vec<_>>>()
                .with_context(|| format!("component {:?}: allowed_outbound_hosts", decl.id))?;
            let runtime =
                Arc::new(ComponentRuntime {
                    id: Arc::from(decl.id.as_str()),
                    variables: variables.component_values(&decl.id, &decl.variables)?,
                    key_value_stores: decl.key_value_stores.clone(),
                    sqlite_databases: decl.sqlite_databases.clone(),
                    allowed: Arc::new(AllowedHosts::parse(&allowed).with_context(|| {
                        format!("component {:?}: allowed_outbound_hosts", decl.id)
                    })?),
                });
            let component = Component::from_file(&engine, &decl.source)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("cannot compile component {:?}", decl.id))?;
            let pre = linker
                .instantiate_pre(&component)
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!(
                        "component {:?} imports something this host does not provide",
                        decl.id
                    )
                })?;
            let http = manifest
                .http_triggers
                .iter()
                .any(|t| t.component == decl.id)
                .then(|| {
                    ProxyPre::new(pre.clone())
                        .map_err(anyhow::Error::from)
                        .with_context(|| {
                            format!(
                                "component {:?} has an HTTP trigger but does not export wasi:http/incoming-handler",
                                decl.id
                            )
                        })
                })
                .transpose()?;
            let cron = manifest
                .cron_triggers
                .iter()
                .any(|t| t.component == decl.id)
                .then(|| {
                    SpinCronPre::new(pre.clone())
                        .map_err(anyhow::Error::from)
                        .with_context(|| {
                            format!(
                                "component {:?} has a cron trigger but does not export handle-cron-event (fermyon:spin-cron@2.0.0)",
                                decl.id
                            )
                        })
                })
                .transpose()?;
            components.insert(
                decl.id.clone(),
                LoadedComponent {
                    runtime,
                    pre,
                    http,
                    cron,
                },
            );
        }

        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(engine.clone(), Arc::clone(&ticker_stop));
        Ok(App {
            engine,
            manifest,
            router,
            components,
            stores,
            limits: config.limits,
            schedules,
            calls: Arc::new(CallLog::new(config.log_host_calls)),
            ticker_stop,
        })
    }

    /// The application's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Creates and drops one instance of `component` without running it: exactly the
    /// per-request set-up cost, which the benchmark measures.
    pub async fn instantiate_only(&self, component: &str) -> anyhow::Result<()> {
        let loaded = self
            .components
            .get(component)
            .with_context(|| format!("no component {component:?}"))?;
        let mut guest = crate::server::new_store(self, loaded);
        loaded.pre.instantiate_async(&mut guest.store).await?;
        Ok(())
    }
}

/// The state directory as Spin resolves it: `--state-dir`, else the runtime configuration's
/// `state_dir` (empty: none), else `.spin` beside the manifest. `None`: no state directory, so
/// the default database and store are in memory.
fn state_dir(config: &HostConfig, manifest: &Manifest) -> Option<PathBuf> {
    let from_file = config
        .runtime_config
        .as_ref()
        .and_then(|c| c.state_dir.clone());
    match (&config.state_dir, from_file) {
        (Some(dir), _) => Some(dir.clone()),
        (None, Some(StateDir::Path(dir))) => Some(dir),
        (None, Some(StateDir::Unset)) => None,
        (None, None) => Some(manifest.root.join(".spin")),
    }
}

/// Opens every database and store: `default` (in the state directory unless the runtime
/// configuration defines it) and each label the runtime configuration defines.
///
/// Nothing here locks the state directory: another `mio-host` (or Spin) may use the same files
/// at the same time, each statement waiting up to the busy timeout for the other's locks.
fn open_stores(config: &HostConfig, manifest: &Manifest) -> anyhow::Result<Stores> {
    let state_dir = state_dir(config, manifest);
    if let Some(dir) = &state_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create state directory {}", dir.display()))?;
    }
    let in_state_dir = |file: &str| match &state_dir {
        Some(dir) => Location::File(dir.join(file)),
        None => Location::Memory,
    };
    let mut databases = BTreeMap::from([(
        DEFAULT_LABEL.to_string(),
        SqliteDatabase {
            location: in_state_dir(sqlite::FILE_NAME),
            allow_attach_file: false,
        },
    )]);
    let mut kv_stores = BTreeMap::from([(
        DEFAULT_LABEL.to_string(),
        in_state_dir(key_value::FILE_NAME),
    )]);
    if let Some(rc) = &config.runtime_config {
        databases.extend(rc.sqlite_databases.clone());
        kv_stores.extend(rc.key_value_stores.clone());
    }
    let mut stores = Stores {
        key_value: HashMap::new(),
        sqlite: HashMap::new(),
    };
    for (label, db) in &databases {
        let pool = sqlite::open_database(db)
            .with_context(|| format!("cannot open SQLite database {label:?}"))?;
        stores.sqlite.insert(label.clone(), pool);
    }
    for (label, location) in &kv_stores {
        let pool = key_value::open_store(location)
            .with_context(|| format!("cannot open key-value store {label:?}"))?;
        stores.key_value.insert(label.clone(), pool);
    }
    Ok(stores)
}

/// Runs one `--sqlite` value as Spin does: `@file` or `@file:label` runs the file's statements
/// against that database (`default` without a label), anything else runs against `default`
/// (`crates/trigger/src/cli/sqlite_statements.rs`).
fn run_sqlite_statement(stores: &Stores, statement: &str) -> anyhow::Result<()> {
    let (sql, label) = match statement.strip_prefix('@') {
        Some(spec) => {
            let spec = spec.trim();
            let (file, label) = match spec.split_once(':') {
                Some((file, label)) if !file.trim().is_empty() && !label.trim().is_empty() => {
                    (file.trim(), label.trim())
                }
                Some(_) => anyhow::bail!("--sqlite @{spec}: expected @file or @file:label"),
                None => (spec, DEFAULT_LABEL),
            };
            let sql = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read --sqlite file {file}"))?;
            (sql, label)
        }
        None => (statement.to_string(), DEFAULT_LABEL),
    };
    let pool = stores
        .sqlite
        .get(label)
        .with_context(|| format!("--sqlite: no SQLite database {label:?} is defined"))?;
    sqlite::run_batch(pool, &sql)
        .with_context(|| format!("--sqlite statement failed against database {label:?}"))
}

fn engine(cache_dir: Option<&Path>) -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    if let Some(dir) = cache_dir {
        let dir = std::path::absolute(dir)
            .with_context(|| format!("cannot resolve compile cache {}", dir.display()))?;
        let mut cache = CacheConfig::new();
        cache.with_directory(dir);
        config.cache(Some(Cache::new(cache)?));
    }
    Ok(Engine::new(&config)?)
}

fn linker(engine: &Engine) -> anyhow::Result<Linker<RequestState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    spin::key_value::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    spin::sqlite::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    spin::variables::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    Ok(linker)
}

fn spawn_epoch_ticker(engine: Engine, stop: Arc<AtomicBool>) {
    std::thread::Builder::new()
        .name("mio-host-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        })
        .map(drop)
        .unwrap_or_else(|e| eprintln!("[mio-host] cannot start the epoch ticker: {e}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An application without components: loading it opens only the stores.
    fn app_dir() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let manifest = dir.path().join("spin.toml");
        std::fs::write(
            &manifest,
            "spin_manifest_version = 2\n[application]\nname = \"empty\"\n",
        )
        .expect("manifest");
        (dir, manifest)
    }

    fn runtime_config(dir: &Path, text: &str) -> RuntimeConfig {
        let file = dir.join("conf/rc.toml");
        RuntimeConfig::parse(text, &file, dir).expect("runtime config")
    }

    fn labels(map: &HashMap<String, Arc<crate::pool::Pool>>) -> Vec<&str> {
        let mut labels: Vec<&str> = map.keys().map(String::as_str).collect();
        labels.sort_unstable();
        labels
    }

    #[test]
    fn without_a_runtime_config_the_default_files_live_in_the_state_dir() {
        let (dir, manifest) = app_dir();
        let app = App::load(&HostConfig::new(&manifest)).expect("loads");
        let state = dir.path().join(".spin");
        assert_eq!(labels(&app.stores.sqlite), ["default"]);
        assert_eq!(labels(&app.stores.key_value), ["default"]);
        assert!(state.join("sqlite_db.db").is_file());
        assert!(state.join("sqlite_key_value.db").is_file());
    }

    #[test]
    fn runtime_config_labels_and_paths_are_opened() {
        let (dir, manifest) = app_dir();
        let db = dir.path().join("data/app.db");
        let mut config = HostConfig::new(&manifest);
        config.runtime_config = Some(runtime_config(
            dir.path(),
            &format!(
                "[sqlite_database.default]\ntype = \"spin\"\npath = {:?}\n\
                 [sqlite_database.scratch]\ntype = \"spin\"\n\
                 [key_value_store.cache]\ntype = \"spin\"\npath = \"kv/cache.db\"\n",
                db.display().to_string()
            ),
        ));
        std::fs::write(dir.path().join("seed.sql"), "CREATE TABLE seeded (x);").expect("sql");
        config.sqlite_statements = vec![
            "CREATE TABLE t (x)".into(),
            format!("@{}:scratch", dir.path().join("seed.sql").display()),
        ];
        let app = App::load(&config).expect("loads");
        assert_eq!(labels(&app.stores.sqlite), ["default", "scratch"]);
        assert_eq!(labels(&app.stores.key_value), ["cache", "default"]);
        assert_eq!(app.stores.sqlite["default"].path(), Some(db.as_path()));
        assert!(
            db.is_file(),
            "the default database moved to {}",
            db.display()
        );
        assert!(!dir.path().join(".spin/sqlite_db.db").exists());
        // Key-value paths are relative to the runtime config file's folder.
        assert!(dir.path().join("conf/kv/cache.db").is_file());
        assert!(dir.path().join(".spin/sqlite_key_value.db").is_file());

        let missing = format!("@{}:nowhere", dir.path().join("seed.sql").display());
        config.sqlite_statements = vec![missing];
        let err = App::load(&config).err().expect("undefined label");
        assert!(format!("{err:#}").contains("\"nowhere\""), "{err:#}");
    }

    #[test]
    fn state_dir_from_the_runtime_config_yields_to_the_flag() {
        let (dir, manifest) = app_dir();
        let mut config = HostConfig::new(&manifest);
        config.runtime_config = Some(runtime_config(dir.path(), "state_dir = \"from-file\""));
        App::load(&config).expect("loads");
        assert!(dir.path().join("from-file/sqlite_db.db").is_file());

        config.state_dir = Some(dir.path().join("from-flag"));
        App::load(&config).expect("loads");
        assert!(dir.path().join("from-flag/sqlite_db.db").is_file());

        // An empty state_dir: no state directory, the defaults are in memory.
        let (dir, manifest) = app_dir();
        let mut config = HostConfig::new(&manifest);
        config.runtime_config = Some(runtime_config(dir.path(), "state_dir = \"\""));
        let app = App::load(&config).expect("loads");
        assert_eq!(app.stores.sqlite["default"].path(), None);
        assert!(!dir.path().join(".spin").exists());
    }
}
