//! Test harness: starts the real `.wasm` components in `mio-host`, in-process, on 127.0.0.1 port 0
//! with a fresh state directory, and talks to them over real HTTP. Used by the integration suite
//! and the benchmarks.
//!
//! The components must be built first (`scripts/test` does it); a missing `.wasm` fails the test
//! with the host's own message saying so.

pub mod fake_stripe;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mio_host::{App, CronScheduler, HostConfig, Limits, Server, VariableSource};
use serde_json::{Value, json};
use tempfile::TempDir;

/// The admin token every test app is started with.
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// The workspace root (where `spin.toml` lives).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits inside the workspace")
        .to_path_buf()
}

/// Where compiled components are cached between test processes.
fn compile_cache() -> PathBuf {
    workspace_root()
        .join("target")
        .join("mio-host-compile-cache")
}

/// Options for one test app.
#[derive(Debug, Clone)]
pub struct Options {
    /// Manifest, relative to the workspace root.
    pub manifest: PathBuf,
    /// `SPIN_VARIABLE_*` values.
    pub variables: HashMap<String, String>,
    /// Per-request limits.
    pub limits: Limits,
    /// Whether `[[trigger.cron]]` schedules fire on their own (off: tests fire them explicitly).
    pub cron: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            manifest: PathBuf::from("spin.toml"),
            variables: HashMap::from([("SPIN_VARIABLE_ADMIN_TOKEN".into(), ADMIN_TOKEN.into())]),
            limits: Limits::default(),
            cron: false,
        }
    }
}

impl Options {
    /// The host configuration these options describe, with state in `state_dir`.
    pub fn config(&self, state_dir: &Path) -> HostConfig {
        let mut config = HostConfig::new(workspace_root().join(&self.manifest));
        config.listen = "127.0.0.1:0".parse().expect("literal address");
        config.state_dir = Some(state_dir.to_path_buf());
        config.limits = self.limits;
        config.variables = VariableSource {
            overrides: self.variables.clone(),
            inherit_process_env: false,
        };
        config.compile_cache = Some(compile_cache());
        config
    }
}

/// A running app with its own state directory; stops when dropped.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// A client for it.
    pub client: reqwest::Client,
    options: Options,
    state: TempDir,
    server: Option<Server>,
    cron: Option<CronScheduler>,
    app: Arc<App>,
}

impl TestApp {
    /// Starts the main application with default options.
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(Options::default()).await
    }

    /// Starts an application with `options`.
    pub async fn spawn_with(options: Options) -> TestApp {
        let state = tempfile::tempdir().expect("temp state dir");
        let (app, server) = start(&options, state.path()).await.expect("host starts");
        let cron = options.cron.then(|| CronScheduler::start(Arc::clone(&app)));
        TestApp {
            app,
            cron,
            base: format!("http://{}", server.addr()),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
            options,
            state,
            server: Some(server),
        }
    }

    /// The loaded application behind the server.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// The state directory (`.spin` equivalent).
    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// Stops the host and starts a new one on the same state directory.
    pub async fn restart(&mut self) {
        self.cron = None;
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
        let (app, server) = start(&self.options, self.state.path())
            .await
            .expect("host restarts");
        self.cron = self
            .options
            .cron
            .then(|| CronScheduler::start(Arc::clone(&app)));
        self.app = app;
        self.base = format!("http://{}", server.addr());
        self.server = Some(server);
    }

    /// Full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Creates an account through the admin route; returns (account id, API token).
    pub async fn create_account(&self, name: &str) -> (String, String) {
        let res = self
            .client
            .post(self.url("/api/v1/admin/accounts"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"name": name, "timezone": "America/Toronto"}))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 201, "account creation");
        let body: Value = res.json().await.expect("json");
        let id = body["account"]["id"]
            .as_str()
            .expect("account id")
            .to_owned();
        let token = body["api_token"].as_str().expect("token").to_owned();
        (id, token)
    }

    /// Sends `method path` with an optional bearer token and JSON body; returns status and body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }
}

async fn start(options: &Options, state_dir: &Path) -> anyhow::Result<(Arc<App>, Server)> {
    let config = options.config(state_dir);
    let app = tokio::task::spawn_blocking(move || App::load(&config))
        .await
        .context("loader task")??;
    let app = Arc::new(app);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let server = Server::start(Arc::clone(&app), listener)?;
    Ok((app, server))
}
