//! The cron trigger: fires each `[[trigger.cron]]` schedule through the component's
//! `handle-cron-event` export (`fermyon:spin-cron@2.0.0`), as Spin's cron trigger plugin does.
//!
//! Expressions use the plugin's format, seconds first: `sec min hour day-of-month month
//! day-of-week [year]` (so `0 * * * * *` is every minute at second 0). Each firing gets a fresh
//! instance under the same limits as an HTTP request; a run that is still going when the next is
//! due does not delay it (runs may overlap, as with the plugin). `metadata.timestamp` is the
//! firing time in seconds since the Unix epoch.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use chrono::Utc;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::bindings::cron::fermyon::spin_cron::cron_types::{Error as CronError, Metadata};
use crate::manifest::CronTrigger;
use crate::server::{forward_guest_output, new_store};

/// One parsed `[[trigger.cron]]`.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    /// The component it runs.
    pub component: String,
    /// The expression as written.
    pub expression: String,
    schedule: cron::Schedule,
}

impl CronSchedule {
    /// Parses a trigger's expression; an invalid one stops start-up.
    pub fn parse(trigger: &CronTrigger) -> anyhow::Result<CronSchedule> {
        let schedule = cron::Schedule::from_str(&trigger.cron_expression).with_context(|| {
            format!(
                "trigger.cron for {:?}: invalid cron_expression {:?} (expected `sec min hour day-of-month month day-of-week [year]`)",
                trigger.component, trigger.cron_expression
            )
        })?;
        Ok(CronSchedule {
            component: trigger.component.clone(),
            expression: trigger.cron_expression.clone(),
            schedule,
        })
    }

    /// The next firing time strictly after now.
    fn next(&self) -> Option<chrono::DateTime<Utc>> {
        self.schedule.upcoming(Utc).next()
    }
}

impl App {
    /// The cron schedules of the application.
    pub fn cron_schedules(&self) -> &[CronSchedule] {
        &self.schedules
    }

    /// Runs `component`'s `handle-cron-event` once with `timestamp`, exactly as a scheduled firing
    /// does. The outer error is a host-side failure or trap; the inner one is the guest's answer.
    pub async fn fire_cron(
        &self,
        component: &str,
        timestamp: u64,
    ) -> anyhow::Result<Result<(), String>> {
        let loaded = self
            .components
            .get(component)
            .with_context(|| format!("no component {component:?}"))?;
        let pre = loaded
            .cron
            .as_ref()
            .with_context(|| format!("component {component:?} has no cron trigger"))?;
        let mut guest = new_store(self, loaded);
        let timeout = self.limits.request_timeout;
        let result = tokio::time::timeout(timeout, async {
            let instance = pre.instantiate_async(&mut guest.store).await?;
            instance
                .call_handle_cron_event(&mut guest.store, Metadata { timestamp })
                .await
        })
        .await;
        self.calls
            .record(&loaded.runtime.id, "cron", guest.store.data().host_calls());
        forward_guest_output(&loaded.runtime.id, &guest.stdout, &guest.stderr);
        match result {
            Err(_) => anyhow::bail!("cron run exceeded the {timeout:?} time limit"),
            Ok(Err(trap)) => Err(anyhow::Error::from(trap).context("cron handler trapped")),
            Ok(Ok(Ok(()))) => Ok(Ok(())),
            Ok(Ok(Err(CronError::Other(message)))) => Ok(Err(message)),
        }
    }
}

/// Fires every schedule of an app until dropped.
pub struct CronScheduler {
    tasks: Vec<JoinHandle<()>>,
}

impl CronScheduler {
    /// Starts one timer task per schedule in the current tokio runtime.
    pub fn start(app: Arc<App>) -> CronScheduler {
        let tasks = (0..app.schedules.len())
            .map(|index| {
                let app = Arc::clone(&app);
                tokio::spawn(async move { run_schedule(app, index).await })
            })
            .collect();
        CronScheduler { tasks }
    }
}

impl Drop for CronScheduler {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn run_schedule(app: Arc<App>, index: usize) {
    let schedule = app.schedules[index].clone();
    while let Some(next) = schedule.next() {
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait).await;
        let app = Arc::clone(&app);
        let component = schedule.component.clone();
        let timestamp = u64::try_from(next.timestamp()).unwrap_or_default();
        tokio::spawn(async move {
            let started = Instant::now();
            let outcome = app.fire_cron(&component, timestamp).await;
            let failure = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(message)) => Some(format!("returned an error: {message}")),
                Err(e) => Some(format!("{e:?}")),
            };
            if let Some(failure) = failure {
                eprintln!(
                    "[mio-host] {component} cron run at {timestamp} failed after {:?}: {failure}",
                    started.elapsed()
                );
            }
        });
    }
    eprintln!(
        "[mio-host] cron schedule {:?} for {} has no future firing",
        schedule.expression, schedule.component
    );
}
