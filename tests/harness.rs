//! Test harness: starts the real `.wasm` components in `mio-host`, in-process, on 127.0.0.1 port 0
//! with a fresh state directory, and talks to them over real HTTP. Used by the integration suite
//! and the benchmarks.
//!
//! The components must be built first (`scripts/test` does it); a missing `.wasm` fails the test
//! with the host's own message saying so.

pub mod fake_notify;
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

/// The tick token every test app is started with.
pub const TICK_TOKEN: &str = "test-tick-token";

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
            variables: HashMap::from([
                ("SPIN_VARIABLE_ADMIN_TOKEN".into(), ADMIN_TOKEN.into()),
                ("SPIN_VARIABLE_TICK_TOKEN".into(), TICK_TOKEN.into()),
                // No Stripe unless a test starts the fake and points these at it.
                (
                    "SPIN_VARIABLE_STRIPE_SECRET_KEY".into(),
                    "sk_test_unused".into(),
                ),
                (
                    "SPIN_VARIABLE_STRIPE_API_BASE".into(),
                    "http://127.0.0.1:9".into(),
                ),
                (
                    "SPIN_VARIABLE_STRIPE_WEBHOOK_SECRET".into(),
                    "whsec_test_unused".into(),
                ),
            ]),
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
    state: StateDir,
    server: Option<Server>,
    cron: Option<CronScheduler>,
    app: Arc<App>,
}

/// The state directory of a [`TestApp`], and whether dropping the app may delete it.
enum StateDir {
    /// A temporary directory made by [`TestApp::spawn_with`], shared with the app's replicas
    /// ([`TestApp::replica`]): deleted when the last of them is dropped.
    Owned(Arc<TempDir>),
    /// A directory the app was given ([`TestApp::spawn_in`]): never deleted by it.
    Borrowed(PathBuf),
}

impl StateDir {
    fn path(&self) -> &Path {
        match self {
            StateDir::Owned(dir) => dir.path(),
            StateDir::Borrowed(path) => path,
        }
    }
}

impl TestApp {
    /// Starts the main application with default options.
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(Options::default()).await
    }

    /// Starts an application with `options`.
    pub async fn spawn_with(options: Options) -> TestApp {
        let state = tempfile::tempdir().expect("temp state dir");
        TestApp::spawn_on(options, StateDir::Owned(Arc::new(state))).await
    }

    /// Starts an independent host (its own port, its own loaded [`App`] with its own database
    /// connections and, with `options.cron`, its own cron scheduler) on the existing state
    /// directory `state_dir`, so on the same SQLite files as whatever else uses it: a second
    /// replica of a deployment. The directory is not deleted when this app is dropped; whoever
    /// made it must keep it alive while this app runs. [`TestApp::restart`] restarts it on the
    /// same directory.
    pub async fn spawn_in(options: Options, state_dir: &Path) -> TestApp {
        TestApp::spawn_on(options, StateDir::Borrowed(state_dir.to_path_buf())).await
    }

    /// Starts a replica of this app: an independent host (as [`TestApp::spawn_in`]) on this app's
    /// state directory, with `options` (often `self.options().clone()`, or the same with other
    /// limits). When this app owns its directory, the replica shares that ownership: the
    /// directory is deleted once this app and all its replicas have been dropped, in any order.
    pub async fn replica(&self, options: Options) -> TestApp {
        let state = match &self.state {
            StateDir::Owned(dir) => StateDir::Owned(Arc::clone(dir)),
            StateDir::Borrowed(path) => StateDir::Borrowed(path.clone()),
        };
        TestApp::spawn_on(options, state).await
    }

    /// The options this app was started with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    async fn spawn_on(options: Options, state: StateDir) -> TestApp {
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

    /// The host calls of `component` since load, once `invocations` of it are recorded (the host
    /// records an invocation when its instance is dropped, just after it answers).
    pub async fn calls_after(&self, component: &str, invocations: u64) -> mio_host::CallTotals {
        for _ in 0..200 {
            let totals = self
                .app()
                .host_calls()
                .get(component)
                .copied()
                .unwrap_or_default();
            if totals.invocations >= invocations {
                return totals;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("{component} never reached {invocations} invocations");
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

/// Asserts that the OpenAPI document `doc` describes a response: `method path_template` (as
/// written in `doc.paths`, e.g. `/api/v1/customers/{id}`) documents `status`, and every field
/// of the JSON `body` is declared by that response's schema with a JSON type it allows (`null`
/// only where it allows null), every required field present, nested objects and array items
/// likewise. A method the path does not document must have answered 405.
pub fn assert_documented(
    doc: &Value,
    method: &reqwest::Method,
    path_template: &str,
    status: u16,
    body: &Value,
) {
    let what = format!("{method} {path_template} → {status}");
    let path_item = doc["paths"]
        .get(path_template)
        .unwrap_or_else(|| panic!("{what}: the path is not in the OpenAPI document"));
    let Some(operation) = path_item.get(method.as_str().to_ascii_lowercase()) else {
        assert_eq!(
            status, 405,
            "{what}: the method is not documented for this path, so it must answer 405"
        );
        return;
    };
    let responses = &operation["responses"];
    let response = responses
        .get(status.to_string())
        .or_else(|| responses.get(format!("{}XX", status / 100)))
        .or_else(|| responses.get("default"))
        .unwrap_or_else(|| panic!("{what}: status not documented; documented: {responses}"));
    let response = openapi_resolve(doc, response);
    let content = &response["content"];
    if body.is_null() {
        assert!(
            content.is_null() || status == 204,
            "{what}: an empty body, but the document promises content"
        );
        return;
    }
    let media = ["application/json", "application/problem+json"]
        .into_iter()
        .find_map(|media| content.get(media))
        .unwrap_or_else(|| panic!("{what}: a JSON body, but no JSON content documented"));
    let schema = openapi_resolve(doc, &media["schema"]);
    if let Err(problem) = openapi_check(doc, schema, body, "body") {
        panic!("{what}: {problem}\nbody: {body}");
    }
}

/// Follows local `$ref`s (`#/components/...`) until a schema or object without one.
fn openapi_resolve<'a>(doc: &'a Value, mut node: &'a Value) -> &'a Value {
    for _ in 0..32 {
        match node.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let pointer = reference
                    .strip_prefix('#')
                    .unwrap_or_else(|| panic!("only local $refs are supported: {reference}"));
                node = doc
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("$ref {reference} does not resolve"));
            }
            None => return node,
        }
    }
    panic!("$ref cycle");
}

/// Checks `value` (found `at`) against `schema`: its JSON type, and for objects that every
/// field is declared (in `properties`, or by an `additionalProperties` schema) and every
/// required one present, recursively; array items against `items`. `oneOf` / `anyOf` pass
/// when one alternative does; `allOf` merges its parts. Formats and ranges are not checked.
fn openapi_check(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = openapi_resolve(doc, schema);
    for key in ["oneOf", "anyOf"] {
        if let Some(alternatives) = schema.get(key).and_then(Value::as_array) {
            let failures: Vec<String> = alternatives
                .iter()
                .filter_map(|alternative| openapi_check(doc, alternative, value, at).err())
                .collect();
            return if failures.len() < alternatives.len() {
                Ok(())
            } else {
                Err(format!(
                    "{at} matches none of {key}: {}",
                    failures.join("; ")
                ))
            };
        }
    }
    if !openapi_allows_type(doc, schema, value) {
        return Err(format!("{at} is {value}, which its schema does not allow"));
    }
    match value {
        Value::Object(object) => openapi_check_object(doc, schema, object, at),
        Value::Array(items) => match schema.get("items") {
            Some(item_schema) => items.iter().enumerate().try_for_each(|(index, item)| {
                openapi_check(doc, item_schema, item, &format!("{at}[{index}]"))
            }),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

fn openapi_check_object(
    doc: &Value,
    schema: &Value,
    object: &serde_json::Map<String, Value>,
    at: &str,
) -> Result<(), String> {
    let mut properties = serde_json::Map::new();
    let mut required = Vec::new();
    let mut additional = schema.get("additionalProperties");
    let mut parts = vec![schema];
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        parts.extend(all.iter().map(|part| openapi_resolve(doc, part)));
    }
    for part in parts {
        if let Some(props) = part.get("properties").and_then(Value::as_object) {
            for (name, property) in props {
                properties
                    .entry(name.clone())
                    .or_insert_with(|| property.clone());
            }
        }
        if let Some(names) = part.get("required").and_then(Value::as_array) {
            required.extend(names.iter().filter_map(Value::as_str).map(str::to_owned));
        }
        additional = additional.or_else(|| part.get("additionalProperties"));
    }
    let additional = additional.filter(|schema| schema.is_object());
    if properties.is_empty() && additional.is_none() {
        // A free-form object (e.g. the OpenAPI document itself).
        return Ok(());
    }
    for (name, field) in object {
        let property = properties
            .get(name)
            .or(additional)
            .ok_or_else(|| format!("{at}.{name} is not declared in the schema"))?;
        openapi_check(doc, property, field, &format!("{at}.{name}"))?;
    }
    match required.iter().find(|name| !object.contains_key(*name)) {
        Some(missing) => Err(format!("{at}.{missing} is required but missing")),
        None => Ok(()),
    }
}

/// Whether `schema` admits `value`'s JSON type (only the type, not formats or ranges).
fn openapi_allows_type(doc: &Value, schema: &Value, value: &Value) -> bool {
    let schema = openapi_resolve(doc, schema);
    if let Some(constant) = schema.get("const") {
        return constant == value;
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alternatives) = schema.get(key).and_then(Value::as_array) {
            return alternatives
                .iter()
                .any(|alternative| openapi_allows_type(doc, alternative, value));
        }
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        return all.iter().all(|part| openapi_allows_type(doc, part, value));
    }
    let name = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    match &schema["type"] {
        Value::String(t) => t == name || (t == "number" && name == "integer"),
        Value::Array(types) => types
            .iter()
            .any(|t| t == name || (t == "number" && name == "integer")),
        // No `type`: anything goes.
        _ => true,
    }
}
