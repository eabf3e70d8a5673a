//! Counting the calls a guest makes into the host, per request: SQLite statements, key-value
//! operations, variable reads and outbound HTTP requests. Each host call is a round trip that a
//! production Spin host (with its own SQLite, Redis or libSQL behind it) pays far more for than
//! this host does, so the count per request is the portable measure of a route's cost.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

/// Host calls of one request (or a sum of them).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HostCalls {
    /// `fermyon:spin/sqlite` calls: opening a connection and each statement.
    pub sqlite: u64,
    /// `fermyon:spin/key-value` calls: opening a store and each operation.
    pub key_value: u64,
    /// `fermyon:spin/variables` reads.
    pub variables: u64,
    /// Outbound `wasi:http` requests.
    pub outbound_http: u64,
}

impl HostCalls {
    /// All of them.
    pub fn total(&self) -> u64 {
        self.sqlite + self.key_value + self.variables + self.outbound_http
    }

    fn add(&mut self, other: &HostCalls) {
        self.sqlite += other.sqlite;
        self.key_value += other.key_value;
        self.variables += other.variables;
        self.outbound_http += other.outbound_http;
    }
}

impl fmt::Display for HostCalls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "host calls {} (sqlite {}, key-value {}, variables {}, outbound http {})",
            self.total(),
            self.sqlite,
            self.key_value,
            self.variables,
            self.outbound_http
        )
    }
}

/// Running totals per component since the app was loaded.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CallTotals {
    /// Invocations (HTTP requests and cron firings).
    pub invocations: u64,
    /// Their host calls, summed.
    pub calls: HostCalls,
}

/// The app's totals, per component id.
#[derive(Debug, Default)]
pub struct CallLog {
    totals: Mutex<BTreeMap<String, CallTotals>>,
    /// Whether each invocation's calls are also logged.
    log_each: bool,
}

impl CallLog {
    /// An empty log; `log_each` also logs every invocation.
    pub fn new(log_each: bool) -> CallLog {
        CallLog {
            totals: Mutex::default(),
            log_each,
        }
    }

    /// Adds one invocation of `component` and logs it when asked to.
    pub fn record(&self, component: &str, what: &str, calls: HostCalls) {
        if self.log_each {
            eprintln!("[mio-host] {component} {what}: {calls}");
        }
        let mut totals = self
            .totals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = totals.entry(component.to_owned()).or_default();
        entry.invocations += 1;
        entry.calls.add(&calls);
    }

    /// The totals so far, per component id.
    pub fn totals(&self) -> BTreeMap<String, CallTotals> {
        self.totals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}
