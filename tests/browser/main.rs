//! The console (`/app/`) in a real browser. The app is served as the API tests serve it (the
//! real `.wasm` in mio-host on 127.0.0.1, on a fake Stripe); what the scenarios need is set up
//! through the HTTP API (three accounts, customers, a card on file, bookings, a tick that
//! charged one of them and failed the other); then Node's test runner runs the scenarios of
//! `tests/browser/console.test.mjs`, which drive Debian's Chromium with playwright-core, and
//! this test fails with their whole output if any of them fails. The scenarios read what was
//! set up from `MIO_*` variables (listed at the top of that file).
//!
//! Node.js, Chromium (`/usr/bin/chromium`) and the npm packages `tests/browser/package-lock.json`
//! pins are installed by `scripts/setup-browser` (`scripts/test` runs it while Rust compiles);
//! without them this test fails saying so, it never skips. Variables this test reads:
//!
//! - `MIO_SCREENSHOT_DIR`: where the screenshot scenario saves a PNG of each screen
//!   (`scripts/screenshots` points it at `docs/screens/`); unset, a temporary directory.
//! - `MIO_BROWSER_TESTS`: run only the scenarios whose names match this regular expression
//!   (Node's `--test-name-pattern`), e.g. `MIO_BROWSER_TESTS='^c\.'`.
//! - `MIO_CHROMIUM`: a Chromium binary other than `/usr/bin/chromium`.

// Shared with the API tests: the app on a fake Stripe, customers, a card on file, bookings and
// the tick. This binary uses a part of them.
#[allow(
    dead_code,
    reason = "each test binary uses a part of the shared helpers"
)]
#[path = "../api/support.rs"]
mod support;

use std::io::{Read, Seek};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use mio_tests::fake_stripe::FakeStripe;
use mio_tests::{Options, TestApp, workspace_root};
use reqwest::Method;
use serde_json::{Value, json};
use support::{book, create_customer, give_card, put_ok, spawn_on_stripe, tick};

/// The longest the scenarios may take together (they take well under a minute).
const SCENARIOS_TIMEOUT: Duration = Duration::from_secs(600);

const STRIPE_ACCOUNT: &str = "acct_1ShineBiz";
const STRIPE_CUSTOMER: &str = "cus_StripeAdaLovelace";
const CARD: &str = "pm_ada_visa";

/// Customers of the third account: more than one page of the customer list.
const MANY_CUSTOMERS: usize = 120;

/// The scenarios' directory: `console.test.mjs`, `package.json`, `node_modules/`.
fn scenarios_dir() -> PathBuf {
    workspace_root().join("tests").join("browser")
}

/// The Chromium the scenarios drive.
fn chromium() -> PathBuf {
    std::env::var_os("MIO_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// What the scenarios need from outside the repository, as a list of what is missing.
fn missing_tools() -> Vec<String> {
    let mut missing = Vec::new();
    let node = std::process::Command::new("node")
        .arg("--version")
        .stdin(Stdio::null())
        .output();
    match node {
        Ok(output) if output.status.success() => {}
        Ok(output) => missing.push(format!(
            "a working `node` (`node --version` exited with {})",
            output.status
        )),
        Err(error) => missing.push(format!("`node` on the PATH ({error})")),
    }
    let chromium = chromium();
    if !chromium.is_file() {
        missing.push(format!("Chromium at {}", chromium.display()));
    }
    for package in ["playwright-core", "axe-core"] {
        let manifest = scenarios_dir()
            .join("node_modules")
            .join(package)
            .join("package.json");
        if !manifest.is_file() {
            missing.push(format!(
                "the npm package {package} ({})",
                manifest.display()
            ));
        }
    }
    missing
}

/// `GET path` as `token`; the answer (a 200 is asserted).
async fn get_ok(app: &TestApp, token: &str, path: &str) -> Value {
    let (status, answer) = app.call(Method::GET, path, Some(token), None).await;
    assert_eq!(status, 200, "GET {path}: {answer}");
    answer
}

/// Sets up, through the HTTP API, what the scenarios need; the variables that tell them.
async fn world(app: &TestApp, stripe: &FakeStripe) -> Vec<(&'static str, String)> {
    // Account A: no automation rules yet, one customer.
    let (_, a_token) = app.create_account("Sparkle Cleaning").await;
    let margaret = create_customer(
        app,
        &a_token,
        json!({"name": "Margaret Hamilton", "email": "margaret@example.com"}),
    )
    .await;
    let view = get_ok(
        app,
        &a_token,
        &format!("/api/v1/customers/{margaret}/automations"),
    )
    .await;
    assert_eq!(view["rules_configured"], false, "{view}");

    // Account B: MioPay on, "charge 24 hours before start", a rating asked 2 hours after
    // completion. Ada has a card on file, Grace none; both have a visit in a few hours, so both
    // charges are due now: the tick charges Ada's card and fails Grace's run. Ada's next visit,
    // in three days, keeps a planned charge. Katherine and Dorothy are for switching one
    // customer off.
    let (_, b_token) = app.create_account("Shine Cleaning").await;
    put_ok(
        app,
        &b_token,
        "/api/v1/settings/miopay",
        json!({"enabled": true, "stripe_account_id": STRIPE_ACCOUNT}),
    )
    .await;
    put_ok(
        app,
        &b_token,
        "/api/v1/settings/automations",
        json!({
            "payment": {"enabled": true, "trigger": "before_start", "offset_minutes": 1440},
            "feedback": {"enabled": true, "delay_minutes": 120}
        }),
    )
    .await;
    let ada = create_customer(
        app,
        &b_token,
        json!({
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "phone": "+14165550100",
            "service_address": "12 Analytical Row, Toronto ON",
            "notes": "Side door; the cat stays inside.",
            "notifications": {"email": true, "sms": false},
            "stripe_customer_id": STRIPE_CUSTOMER
        }),
    )
    .await;
    give_card(
        app,
        stripe,
        &b_token,
        STRIPE_ACCOUNT,
        &ada,
        STRIPE_CUSTOMER,
        CARD,
    )
    .await;
    let grace = create_customer(
        app,
        &b_token,
        json!({"name": "Grace Hopper", "email": "grace@example.com"}),
    )
    .await;
    let katherine = create_customer(app, &b_token, json!({"name": "Katherine Johnson"})).await;
    let dorothy = create_customer(app, &b_token, json!({"name": "Dorothy Vaughan"})).await;
    book(app, &b_token, &ada, 2, 12_500).await;
    book(app, &b_token, &grace, 3, 9_800).await;
    let summary = tick(app).await;
    assert_eq!(
        (
            &summary["claimed"],
            &summary["succeeded"],
            &summary["failed"]
        ),
        (&json!(2), &json!(1), &json!(1)),
        "the tick charges Ada and fails Grace: {summary}"
    );
    let upcoming = book(app, &b_token, &ada, 72, 12_500).await;
    let activity = get_ok(app, &b_token, "/api/v1/activity").await;
    assert_eq!(
        activity["data"].as_array().map(Vec::len),
        Some(2),
        "{activity}"
    );

    // Account C: more customers than one page of the list shows.
    let (_, c_token) = app.create_account("Plenty Cleaning").await;
    let rows: Vec<Value> = (1..=MANY_CUSTOMERS)
        .map(|n| json!({"name": format!("Client {n:03}")}))
        .collect();
    let (status, report) = app
        .call(
            Method::POST,
            "/api/v1/customers/import",
            Some(&c_token),
            Some(Value::Array(rows)),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["created"], MANY_CUSTOMERS, "{report}");

    vec![
        ("MIO_BASE_URL", app.base.clone()),
        ("MIO_A_TOKEN", a_token),
        ("MIO_A_CUSTOMER", margaret),
        ("MIO_B_TOKEN", b_token),
        ("MIO_B_CARD_CUSTOMER", ada),
        ("MIO_B_NO_CARD_CUSTOMER", grace),
        ("MIO_B_TOGGLE_CUSTOMERS", format!("{katherine},{dorothy}")),
        ("MIO_B_BOOKING", upcoming),
        ("MIO_C_TOKEN", c_token),
        ("MIO_CHROMIUM", chromium().display().to_string()),
    ]
}

/// The process group of a spawned `node`: it, and the Chromium it starts, are killed when this
/// is dropped (after a timeout, or when the test panics), so nothing outlives the test.
struct ProcessGroup(Option<u32>);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            // Already gone when node exited normally (Chromium closes with it); then this
            // finds no process and does nothing.
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Runs the scenarios with `env` (and `MIO_SCREENSHOT_DIR` as given, made absolute); the exit
/// status and everything node printed, stdout and stderr interleaved.
async fn run_scenarios(
    env: &[(&'static str, String)],
) -> (Option<std::process::ExitStatus>, String) {
    let mut log = tempfile::tempfile().expect("a log file for node");
    let mut node = tokio::process::Command::new("node");
    node.arg("--test-reporter=spec");
    if let Some(pattern) = std::env::var_os("MIO_BROWSER_TESTS") {
        let mut arg = std::ffi::OsString::from("--test-name-pattern=");
        arg.push(pattern);
        node.arg(arg);
    }
    node.arg("console.test.mjs")
        .current_dir(scenarios_dir())
        .envs(env.iter().map(|(name, value)| (*name, value)))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log.try_clone().expect("log handle"))
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = std::env::var_os("MIO_SCREENSHOT_DIR") {
        node.env("MIO_SCREENSHOT_DIR", workspace_root().join(dir));
    }
    let mut child = node.spawn().expect("node starts");
    let group = ProcessGroup(child.id());
    let status = tokio::time::timeout(SCENARIOS_TIMEOUT, child.wait())
        .await
        .ok()
        .map(|status| status.expect("waiting for node"));
    drop(group);
    let mut output = String::new();
    log.rewind().expect("log rewinds");
    log.read_to_string(&mut output).expect("node's output");
    (status, output)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_chromium() {
    let missing = missing_tools();
    assert!(
        missing.is_empty(),
        "the browser scenarios need what scripts/setup-browser installs (scripts/test runs it); \
         run `scripts/setup-browser`, then this test again. Missing: {}",
        missing.join("; ")
    );
    let stripe = FakeStripe::start().await;
    let app = spawn_on_stripe(Options::default(), &stripe).await;
    let env = world(&app, &stripe).await;

    let started = Instant::now();
    let (status, output) = run_scenarios(&env).await;
    let took = started.elapsed().as_secs();
    match status {
        Some(status) if status.success() => {
            println!("{output}\nthe browser scenarios passed in {took} s");
        }
        Some(status) => panic!(
            "the browser scenarios failed ({status}, after {took} s); node printed:\n{output}"
        ),
        None => panic!(
            "the browser scenarios did not finish within {} s; node printed:\n{output}",
            SCENARIOS_TIMEOUT.as_secs()
        ),
    }
    // A pattern (MIO_BROWSER_TESTS) that matches no scenario must not pass as a run.
    let passed = output
        .lines()
        .find_map(|line| line.trim().strip_prefix("ℹ pass "))
        .and_then(|count| count.trim().parse::<u32>().ok());
    assert!(
        passed.is_some_and(|count| count > 0),
        "node ran no scenario:\n{output}"
    );
}
