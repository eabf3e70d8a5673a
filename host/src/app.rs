//! Loading an application: manifest, variables, state directory, compiled components.
//!
//! Each component is compiled once (optionally through an on-disk compilation cache) and linked
//! into an `InstancePre`; every request then gets a fresh instance from it, as Spin does.

use crate::calls::CallLog;
use std::collections::HashMap;
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
use crate::manifest::Manifest;
use crate::outbound::AllowedHosts;
use crate::router::Router;
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
        let variables = AppVariables::resolve(&manifest, |key| config.variables.lookup(key))?;
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

        let state_dir = config
            .state_dir
            .clone()
            .unwrap_or_else(|| manifest.root.join(".spin"));
        std::fs::create_dir_all(&state_dir)
            .with_context(|| format!("cannot create state directory {}", state_dir.display()))?;
        let stores = Arc::new(Stores {
            key_value: key_value::open(&state_dir)?,
            sqlite: sqlite::open(&state_dir)?,
        });
        for statement in &config.sqlite_statements {
            let sql = match statement.strip_prefix('@') {
                Some(file) => std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read --sqlite file {file}"))?,
                None => statement.clone(),
            };
            sqlite::run_batch(&stores.sqlite, &sql).context("--sqlite statement failed")?;
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
