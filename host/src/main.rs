//! The `mio-host` command line: `build` and `up`, mirroring `spin build` and `spin up`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use mio_host::manifest::Manifest;
use mio_host::{App, CronScheduler, HostConfig, RuntimeConfig, Server, builder};

/// Prints a line on stdout. A closed stdout (piped into `head`, a supervisor that stopped
/// reading) must not stop a running server, so a failed write is dropped.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*).ok();
    }};
}

const USAGE: &str = "\
usage:
  mio-host build [--manifest spin.toml]
  mio-host up [--build] [--manifest spin.toml] [--listen 127.0.0.1:3000] [--state-dir .spin]
              [--runtime-config-file runtime-config.toml]
              [--sqlite SQL|@file.sql[:label]]... [--max-memory-mb 256] [--request-timeout-secs 30]
              [--compile-cache DIR] [--log-host-calls]

--runtime-config-file reads a Spin runtime configuration file: local SQLite databases and
key-value stores (type = \"spin\", optional path), env/static variables providers, state_dir,
max_instance_memory. Kinds this host cannot serve (libsql, redis, vault, ...) stop start-up.

--log-host-calls logs, for every request, the calls the component made into the host
(SQLite statements, key-value operations, variable reads, outbound HTTP requests).

Variables come from SPIN_VARIABLE_<NAME> environment variables or their spin.toml defaults.";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

struct Args {
    words: std::vec::IntoIter<String>,
}

impl Args {
    fn value(&mut self, flag: &str) -> anyhow::Result<String> {
        self.words
            .next()
            .with_context(|| format!("{flag} needs a value\n\n{USAGE}"))
    }
}

fn run(argv: Vec<String>) -> anyhow::Result<()> {
    let mut args = Args {
        words: argv.into_iter(),
    };
    let command = args.words.next().unwrap_or_default();
    let mut manifest = PathBuf::from("spin.toml");
    let mut build = false;
    let mut config = HostConfig::new("spin.toml");
    let mut runtime_config_file = None;
    let mut max_memory_given = false;
    while let Some(flag) = args.words.next() {
        match flag.as_str() {
            "--manifest" | "-f" => manifest = PathBuf::from(args.value(&flag)?),
            "--build" if command == "up" => build = true,
            "--listen" if command == "up" => {
                let value = args.value(&flag)?;
                config.listen = value.parse::<SocketAddr>().with_context(|| {
                    format!("--listen {value:?} is not an address like 127.0.0.1:3000")
                })?;
            }
            "--state-dir" if command == "up" => {
                config.state_dir = Some(PathBuf::from(args.value(&flag)?));
            }
            "--sqlite" if command == "up" => config.sqlite_statements.push(args.value(&flag)?),
            "--max-memory-mb" if command == "up" => {
                let mb: usize = args.value(&flag)?.parse().context("--max-memory-mb")?;
                config.limits.max_memory_bytes = mb << 20;
                max_memory_given = true;
            }
            "--request-timeout-secs" if command == "up" => {
                let secs: u64 = args
                    .value(&flag)?
                    .parse()
                    .context("--request-timeout-secs")?;
                config.limits.request_timeout = Duration::from_secs(secs);
            }
            "--compile-cache" if command == "up" => {
                config.compile_cache = Some(PathBuf::from(args.value(&flag)?));
            }
            "--log-host-calls" if command == "up" => config.log_host_calls = true,
            "--runtime-config-file" if command == "up" => {
                runtime_config_file = Some(PathBuf::from(args.value(&flag)?));
            }
            "-h" | "--help" => {
                say!("{USAGE}");
                return Ok(());
            }
            other => bail!("unexpected argument {other:?}\n\n{USAGE}"),
        }
    }
    config.manifest = manifest.clone();
    match command.as_str() {
        "build" => builder::build_all(&Manifest::load(&manifest)?),
        "up" => {
            if let Some(file) = runtime_config_file {
                let runtime_config = RuntimeConfig::load(&file)?;
                if let Some(bytes) = runtime_config.max_instance_memory
                    && !max_memory_given
                {
                    config.limits.max_memory_bytes = bytes;
                }
                eprintln!("{}", runtime_config.summary());
                for note in &runtime_config.notes {
                    eprintln!("[mio-host] runtime config {}: {note}", file.display());
                }
                config.runtime_config = Some(runtime_config);
            }
            if build {
                builder::build_all(&Manifest::load(&manifest)?)?;
            }
            up(config)
        }
        "" | "-h" | "--help" | "help" => {
            say!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command {other:?}\n\n{USAGE}"),
    }
}

fn up(config: HostConfig) -> anyhow::Result<()> {
    let app = Arc::new(App::load(&config)?);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let server = Server::start(Arc::clone(&app), listener)?;
        let cron = CronScheduler::start(Arc::clone(&app));
        say!("Serving http://{}", server.addr());
        say!("Available Routes:");
        for trigger in &app.manifest().http_triggers {
            say!(
                "  {}: http://{}{}",
                trigger.component,
                server.addr(),
                trigger.route
            );
        }
        for schedule in app.cron_schedules() {
            say!("  {}: cron \"{}\"", schedule.component, schedule.expression);
        }
        tokio::signal::ctrl_c()
            .await
            .context("cannot wait for Ctrl-C")?;
        say!("Shutting down");
        drop(cron);
        server.stop().await;
        Ok(())
    })
}
