//! Benchmark (not a test): what each component costs a host before it serves anything — its
//! `.wasm` size, the time to compile every component with Cranelift (no cache), and the cost of
//! one fresh instance (a new store and instance: what every request pays before the guest runs).
//!
//! Run: `cargo bench -p mio-tests --bench components` (after `scripts/test` or a wasm build).

use std::time::Instant;

use mio_host::App;
use mio_tests::{Options, TestApp};

const INSTANTIATIONS: u32 = 2_000;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let state = tempfile::tempdir().expect("temporary directory");
    let mut config = Options::default().config(state.path());
    config.compile_cache = None;
    let started = Instant::now();
    let uncached = App::load(&config).expect("the app loads");
    println!(
        "compile every component with Cranelift (no cache): {:.2?}",
        started.elapsed()
    );
    drop(uncached);

    let app = TestApp::spawn().await;
    println!(
        "{:<16} {:>12} {:>14}",
        "component", ".wasm bytes", "instantiate"
    );
    for (id, decl) in &app.app().manifest().components {
        let bytes = std::fs::metadata(&decl.source)
            .expect("a built component")
            .len();
        app.app().instantiate_only(id).await.expect("instantiate");
        let started = Instant::now();
        for _ in 0..INSTANTIATIONS {
            app.app().instantiate_only(id).await.expect("instantiate");
        }
        println!(
            "{id:<16} {bytes:>12} {:>14.1?}   ({INSTANTIATIONS} fresh instances, no request)",
            started.elapsed() / INSTANTIATIONS
        );
    }
}
