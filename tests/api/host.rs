//! The host's Spin-compatible behaviour, checked with the real main app and the probe component.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mio_host::{App, Limits};
use mio_tests::{Options, TestApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A tiny HTTP upstream on 127.0.0.1 that answers 200 to everything and counts connections.
struct Upstream {
    url: String,
    connections: Arc<AtomicUsize>,
}

async fn upstream() -> Upstream {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind upstream");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _read = stream.read(&mut buf).await;
                let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                if stream.write_all(reply).await.is_ok() {
                    drop(stream.shutdown().await);
                }
            });
        }
    });
    Upstream { url, connections }
}

fn probe_options(upstream: &str) -> Options {
    Options {
        manifest: "tests/fixtures/probe/spin.toml".into(),
        variables: HashMap::from([("SPIN_VARIABLE_UPSTREAM".into(), upstream.to_owned())]),
        limits: Limits {
            max_memory_bytes: 64 << 20,
            request_timeout: Duration::from_secs(2),
        },
        cron: false,
    }
}

async fn get(app: &TestApp, path: &str) -> (u16, String) {
    let res = app.client.get(app.url(path)).send().await.expect("request");
    let status = res.status().as_u16();
    (status, res.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_not_in_manifest_answers_404() {
    let app = TestApp::spawn().await;
    for path in ["/", "/api/v1", "/api/v1/unknown", "/api/v1/customersx"] {
        let (status, _) = get(&app, path).await;
        assert_eq!(status, 404, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_call_to_unlisted_host_fails_in_guest_without_connecting() {
    let allowed = upstream().await;
    let forbidden = upstream().await;
    let app = TestApp::spawn_with(probe_options(&allowed.url)).await;

    let (status, body) = get(&app, &format!("/probe/outbound?{}/x", forbidden.url)).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("outbound error"), "{body}");
    assert_eq!(
        forbidden.connections.load(Ordering::SeqCst),
        0,
        "no connection made"
    );

    let (status, body) = get(&app, &format!("/probe/outbound?{}/x", allowed.url)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "upstream answered 200");
    assert_eq!(allowed.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trapping_guest_answers_500_and_next_request_succeeds() {
    let up = upstream().await;
    let app = TestApp::spawn_with(probe_options(&up.url)).await;
    let (status, _) = get(&app, "/probe/trap").await;
    assert_eq!(status, 500);
    let (status, body) = get(&app, "/probe/static").await;
    assert_eq!((status, body.as_str()), (200, "1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runaway_guest_is_stopped_by_the_time_limit() {
    let up = upstream().await;
    let app = TestApp::spawn_with(probe_options(&up.url)).await;
    let (status, _) = get(&app, "/probe/spin").await;
    assert_eq!(status, 500);
    let (status, _) = get(&app, "/probe/static").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_hungry_guest_is_stopped_by_the_memory_limit() {
    let up = upstream().await;
    let app = TestApp::spawn_with(probe_options(&up.url)).await;
    let (status, _) = get(&app, "/probe/alloc").await;
    assert_eq!(status, 500);
    let (status, _) = get(&app, "/probe/static").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_gets_a_fresh_instance_but_key_value_state_persists() {
    let up = upstream().await;
    let app = TestApp::spawn_with(probe_options(&up.url)).await;
    for _ in 0..3 {
        let (status, body) = get(&app, "/probe/static").await;
        assert_eq!(
            (status, body.as_str()),
            (200, "1"),
            "guest statics never leak"
        );
    }
    let counts: Vec<String> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(get(&app, "/probe/kv").await.1);
        }
        v
    };
    assert_eq!(counts, ["1", "2", "3"]);
    assert!(app.state_dir().join("sqlite_key_value.db").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn component_sees_only_its_own_variables() {
    let up = upstream().await;
    let app = TestApp::spawn_with(probe_options(&up.url)).await;
    let (status, body) = get(&app, "/probe/variable?greeting").await;
    assert_eq!((status, body.as_str()), (200, "hello"));
    // `upstream` is an application variable the component did not map into its own variables.
    let (status, _) = get(&app, "/probe/variable?upstream").await;
    assert_eq!(status, 404);
    let (status, _) = get(&app, "/probe/variable?Not-Valid").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn component_without_sqlite_databases_gets_access_denied() {
    let up = upstream().await;
    let app = TestApp::spawn_with(probe_options(&up.url)).await;
    let (status, body) = get(&app, "/probe/sqlite").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.to_lowercase().contains("access"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_required_variable_stops_start_up_naming_it() {
    let mut options = probe_options("http://127.0.0.1:9");
    options.variables.clear();
    let state = tempfile::tempdir().expect("tempdir");
    let err = App::load(&options.config(state.path()))
        .err()
        .expect("start-up must fail");
    let text = format!("{err:#}");
    assert!(text.contains("upstream"), "{text}");
    assert!(text.contains("SPIN_VARIABLE_UPSTREAM"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_wasm_stops_start_up_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("spin.toml");
    std::fs::write(
        &manifest,
        r#"spin_manifest_version = 2
[application]
name = "missing"
[[trigger.http]]
route = "/..."
component = "ghost"
[component.ghost]
source = "ghost.wasm"
"#,
    )
    .expect("write manifest");
    let mut config = mio_host::HostConfig::new(&manifest);
    config.state_dir = Some(dir.path().join(".spin"));
    let err = App::load(&config).err().expect("start-up must fail");
    let text = format!("{err:#}");
    assert!(
        text.contains("ghost.wasm") && text.contains("does not exist"),
        "{text}"
    );
}

fn header_map(body: &str) -> HashMap<String, String> {
    body.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_receives_spin_headers_for_a_wildcard_route() {
    let up = upstream().await;
    let app = TestApp::spawn_with(probe_options(&up.url)).await;
    let (status, body) = get(&app, "/probe/headers?x=1").await;
    assert_eq!(status, 200);
    let h = header_map(&body);
    assert_eq!(h["spin-full-url"], app.url("/probe/headers?x=1"));
    assert_eq!(h["spin-path-info"], "/headers");
    assert_eq!(h["spin-matched-route"], "/probe/...");
    assert_eq!(h["spin-raw-component-route"], "/probe/...");
    assert_eq!(h["spin-component-route"], "/probe");
    assert_eq!(h["spin-base-path"], "/");
    assert!(h["spin-client-addr"].starts_with("127.0.0.1:"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_receives_named_segments_as_path_match_headers() {
    let up = upstream().await;
    let app = TestApp::spawn_with(probe_options(&up.url)).await;
    let (status, body) = get(&app, "/named/42/items/abc").await;
    assert_eq!(status, 200);
    let h = header_map(&body);
    assert_eq!(h["spin-path-match-id"], "42");
    assert_eq!(h["spin-path-match-item"], "abc");
    assert_eq!(h["spin-matched-route"], "/named/:id/items/:item");
    assert_eq!(h["spin-path-info"], "");

    let (status, body) = get(&app, "/exact").await;
    assert_eq!(status, 200);
    assert_eq!(header_map(&body)["spin-matched-route"], "/exact");
    let (status, _) = get(&app, "/exact/more").await;
    assert_eq!(status, 404, "an exact route does not match longer paths");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_health_path_is_answered_by_the_host() {
    let up = upstream().await;
    let app = TestApp::spawn_with(probe_options(&up.url)).await;
    let (status, body) = get(&app, "/.well-known/spin/health").await;
    assert_eq!((status, body.as_str()), (200, "OK"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_event_runs_the_components_handle_cron_event_export() {
    let up = upstream().await;
    let app = TestApp::spawn_with(probe_options(&up.url)).await;
    let outcome = app
        .app()
        .fire_cron("probe", 1_700_000_000)
        .await
        .expect("no trap");
    assert_eq!(outcome, Ok(()));
    assert_eq!(get(&app, "/probe/kv-read?cron").await.1, "1");

    let outcome = app.app().fire_cron("probe", 0).await.expect("no trap");
    let message = outcome.expect_err("the guest rejects timestamp 0");
    assert!(message.contains("timestamp 0"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_schedule_fires_by_itself() {
    let up = upstream().await;
    let mut options = probe_options(&up.url);
    options.cron = true; // "* * * * * *": every second
    let app = TestApp::spawn_with(options).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let count: u64 = get(&app, "/probe/kv-read?cron")
            .await
            .1
            .parse()
            .expect("count");
        if count >= 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the every-second schedule fired only {count} times in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_cron_expression_stops_start_up() {
    let root = mio_tests::workspace_root();
    let text = std::fs::read_to_string(root.join("tests/fixtures/probe/spin.toml"))
        .expect("probe manifest")
        .replace("\"* * * * * *\"", "\"every minute\"");
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture = root.join("tests/fixtures/probe");
    let text = text.replace(
        "source = \"../../../",
        &format!("source = \"{}/../../../", fixture.display()),
    );
    let manifest = dir.path().join("spin.toml");
    std::fs::write(&manifest, text).expect("write manifest");
    let mut config = mio_host::HostConfig::new(&manifest);
    config.state_dir = Some(dir.path().join(".spin"));
    config.variables.overrides =
        HashMap::from([("SPIN_VARIABLE_UPSTREAM".into(), "http://127.0.0.1:9".into())]);
    let err = App::load(&config).err().expect("start-up must fail");
    let text = format!("{err:#}");
    assert!(text.contains("every minute"), "{text}");
}

/// Sends one request and answers its status and the host calls `component` made for it.
async fn calls_of(
    app: &TestApp,
    component: &str,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value, mio_host::HostCalls) {
    let before = app.calls_after(component, 0).await;
    let (status, answer) = app.call(method, path, token, body).await;
    let after = app.calls_after(component, before.invocations + 1).await;
    assert_eq!(after.invocations, before.invocations + 1, "{path}");
    let calls = mio_host::HostCalls {
        sqlite: after.calls.sqlite - before.calls.sqlite,
        key_value: after.calls.key_value - before.calls.key_value,
        variables: after.calls.variables - before.calls.variables,
        outbound_http: after.calls.outbound_http - before.calls.outbound_http,
    };
    (status, answer, calls)
}

fn sqlite(n: u64) -> mio_host::HostCalls {
    mio_host::HostCalls {
        sqlite: n,
        ..mio_host::HostCalls::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_route_costs_the_connection_and_one_statement() {
    use reqwest::Method;
    use serde_json::json;
    let app = TestApp::spawn().await;
    let (_, token) = app.create_account("Counting Cleaning").await;
    let token = Some(token.as_str());
    let api = "customer-api";
    // Open the connection, then one statement that checks the token and the schema and reads
    // or writes: an empty page too.
    let (status, _, calls) = calls_of(
        &app,
        api,
        Method::GET,
        "/api/v1/customers?limit=5",
        token,
        None,
    )
    .await;
    assert_eq!((status, calls), (200, sqlite(2)));
    let (status, _, calls) =
        calls_of(&app, api, Method::GET, "/api/v1/activity", token, None).await;
    assert_eq!((status, calls), (200, sqlite(2)));
    let (status, customer, calls) = calls_of(
        &app,
        api,
        Method::POST,
        "/api/v1/customers",
        token,
        Some(json!({"name": "Ada"})),
    )
    .await;
    assert_eq!((status, calls), (201, sqlite(2)), "{customer}");
    let id = customer["id"].as_str().expect("id");
    let (status, _, calls) = calls_of(
        &app,
        api,
        Method::GET,
        &format!("/api/v1/customers/{id}"),
        token,
        None,
    )
    .await;
    assert_eq!((status, calls), (200, sqlite(2)));

    // A booking whose rules plan jobs: settings and overrides in one statement, then the
    // bookings and their jobs.
    let (status, _) = app
        .call(
            Method::PUT,
            "/api/v1/settings/automations",
            token,
            Some(
                json!({"payment": {"enabled": true, "trigger": "before_start",
                                    "offset_minutes": 1440},
                        "feedback": {"enabled": true, "delay_minutes": 60}}),
            ),
        )
        .await;
    assert_eq!(status, 200);
    let booking = json!({"customer_id": id, "service_type": "standard",
        "start_at": "2030-01-01T10:00:00Z", "end_at": "2030-01-01T12:00:00Z",
        "amount_cents": 12500, "currency": "cad"});
    let (status, created, calls) = calls_of(
        &app,
        api,
        Method::POST,
        "/api/v1/bookings",
        token,
        Some(booking),
    )
    .await;
    assert_eq!((status, calls), (201, sqlite(4)), "{created}");

    // What the one statement cannot settle is settled by the usual token check: a stranger's
    // token, an unknown customer.
    let stranger = mio_shared::ApiToken::from_random(&[7; 32]);
    let (status, _, calls) = calls_of(
        &app,
        api,
        Method::GET,
        "/api/v1/customers",
        Some(stranger.expose_secret()),
        None,
    )
    .await;
    assert_eq!((status, calls), (401, sqlite(3)));
    let unknown = mio_shared::CustomerId::from_random(&[9; 16]);
    let unknown = format!("/api/v1/customers/{unknown}");
    let (status, _, calls) = calls_of(&app, api, Method::GET, &unknown, token, None).await;
    assert_eq!((status, calls), (404, sqlite(4)));

    // A tick with nothing due: its token variable, the connection and the claim.
    let (status, _, calls) = calls_of(
        &app,
        "scheduled-tick",
        Method::POST,
        "/api/v1/internal/tick",
        Some(mio_tests::TICK_TOKEN),
        None,
    )
    .await;
    assert_eq!(
        (status, calls),
        (
            200,
            mio_host::HostCalls {
                sqlite: 2,
                variables: 1,
                ..mio_host::HostCalls::default()
            }
        )
    );
}
