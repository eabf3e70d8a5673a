//! The `mio-host` command line as a newcomer uses it: run from the workspace root with relative
//! paths, real `.wasm` components, real HTTP. Requires the components to be built (`scripts/test`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ is inside the workspace")
        .to_path_buf()
}

/// Kills the server when the test ends, pass or fail.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Err(e) = self.0.kill() {
            eprintln!("mio-host already exited: {e}");
        }
        if let Err(e) = self.0.wait() {
            eprintln!("cannot reap mio-host: {e}");
        }
    }
}

fn mio_host() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mio-host"));
    cmd.current_dir(workspace_root()).env_clear();
    cmd
}

#[test]
fn up_serves_the_app_from_relative_paths_and_prints_its_address() {
    let state = tempfile::tempdir().expect("tempdir");
    let child = mio_host()
        .args(["up", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(state.path())
        .args(["--compile-cache", "target/mio-host-compile-cache"])
        .env("SPIN_VARIABLE_ADMIN_TOKEN", "cli-admin")
        .env("SPIN_VARIABLE_TICK_TOKEN", "cli-tick")
        .env("SPIN_VARIABLE_STRIPE_SECRET_KEY", "sk_test_unused")
        .env("SPIN_VARIABLE_STRIPE_WEBHOOK_SECRET", "whsec_unused")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start mio-host");
    let mut running = Running(child);
    let stdout = running.0.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a line").expect("utf-8");
    // Keep reading what the server prints, as a terminal would.
    std::thread::spawn(move || lines.for_each(drop));
    let addr = first
        .strip_prefix("Serving http://")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();

    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let res = client
        .post(format!("http://{addr}/api/v1/admin/accounts"))
        .bearer_auth("cli-admin")
        .json(&serde_json::json!({"name": "Cli Co", "timezone": "UTC"}))
        .send()
        .expect("request");
    assert_eq!(res.status(), 201);
    assert!(state.path().join("sqlite_db.db").is_file());
}

#[test]
fn up_without_a_required_variable_exits_non_zero_naming_it() {
    let out = mio_host()
        .args(["up", "--listen", "127.0.0.1:0"])
        .output()
        .expect("run mio-host");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SPIN_VARIABLE_ADMIN_TOKEN"), "{stderr}");
}

#[test]
fn up_with_a_missing_manifest_exits_non_zero_with_a_clear_message() {
    let out = mio_host()
        .args(["up", "--manifest", "no/such/spin.toml"])
        .output()
        .expect("run mio-host");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no/such/spin.toml"), "{stderr}");
}
