//! One tick: claim due jobs (payments and rating requests) in batches and run each one within a time budget well under
//! the job's lease. A run is a short loop around the core's state machine
//! (`mio_shared::attempt`): load the attempt, hand it the tick's re-check, carry out the effects
//! (at most one Stripe request per run), feed the answer back, store.

use crate::lease;
use crate::storage::{self, ChargeFacts};
use anyhow::anyhow;
use mio_platform::claims::{self, ClaimedJob};
use mio_platform::overrides::load_overrides;
use mio_platform::payments::{self, Actor, JobRef};
use mio_platform::settings::{AccountSettings, load_settings};
use mio_platform::stripe_http::Stripe;
use mio_platform::{SpinDb, db, system};
use mio_shared::JobStatus;
use mio_shared::attempt::{Attempt, Effect, Event, Ledger, Machine};
use mio_shared::charge::{Precheck, PrecheckInput, precheck, run_error_prefix};
use mio_shared::rules::{Automation, Decision, resolve};
use mio_shared::stripe::ChargeRequest;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Jobs claimed per statement.
const BATCH: u32 = 25;
/// How long a claimed job stays ours. A run makes at most one Stripe request, which the tick
/// itself stops after `stripe_http::REQUEST_DEADLINE` (15 s) even on a host with no request
/// timeout; with [`BUDGET`] that bounds a tick to about 25 s, far inside the lease, so a live
/// tick never loses a job, and a crashed one's jobs come back soon.
const LEASE_MINUTES: i64 = 2;
/// No job is started after this much time. Claimed jobs left over are released for the next
/// tick.
const BUDGET: Duration = Duration::from_secs(10);

/// What one tick did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Summary {
    claimed: u32,
    succeeded: u32,
    failed: u32,
    skipped: u32,
    retrying: u32,
    unknown: u32,
    errors: u32,
}

impl Summary {
    /// The answer of `POST /api/v1/internal/tick`. `retrying` includes the `unknown` outcomes.
    pub fn to_json(self) -> Value {
        json!({
            "claimed": self.claimed,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "skipped": self.skipped,
            "retrying": self.retrying,
            "unknown": self.unknown,
            "errors": self.errors,
        })
    }

    fn count(&mut self, status: JobStatus) {
        match status {
            JobStatus::Succeeded => self.succeeded += 1,
            JobStatus::Failed => self.failed += 1,
            JobStatus::Skipped => self.skipped += 1,
            JobStatus::Retrying => self.retrying += 1,
            JobStatus::Unknown => {
                self.retrying += 1;
                self.unknown += 1;
            }
            JobStatus::Scheduled | JobStatus::Running | JobStatus::Cancelled => self.errors += 1,
        }
    }
}

/// The HTTP path: an explicit request always runs the claims (the key-value lease is only a
/// fast path for overlapping cron firings; the SQL claim is what keeps runs apart).
pub fn run_requested() -> anyhow::Result<Value> {
    let owner = owner()?;
    Ok(run(&owner)?.to_json())
}

/// The cron path: returns early while another tick holds a fresh lease.
pub fn run_scheduled() -> anyhow::Result<()> {
    let owner = owner()?;
    let now = system::now()?;
    match lease::held_by_other(&owner, now) {
        Ok(true) => {
            eprintln!("tick: another tick holds the lease; skipping this firing");
            return Ok(());
        }
        Ok(false) => {}
        // The lease is a hint: without the store, run anyway (the claims stay atomic).
        Err(error) => eprintln!("tick: lease unavailable ({error:#}); running anyway"),
    }
    let result = run(&owner);
    if let Err(error) = lease::release(&owner) {
        eprintln!("tick: could not release the lease ({error:#}); it expires by itself");
    }
    let summary = result?;
    eprintln!("tick: {}", summary.to_json());
    Ok(())
}

fn owner() -> anyhow::Result<String> {
    let bytes: [u8; 8] = system::random_bytes()?;
    Ok(format!(
        "tick-{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

fn run(owner: &str) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let db = db::open(system::now()?)?;
    let mut stripe = LazyStripe(None);
    let mut summary = Summary::default();
    'claims: while started.elapsed() < BUDGET {
        let now = system::now()?;
        let jobs = claims::claim(&db, owner, BATCH, now.plus_minutes(LEASE_MINUTES), now)?;
        if jobs.is_empty() {
            break;
        }
        for (index, job) in jobs.iter().enumerate() {
            if started.elapsed() >= BUDGET {
                let unrun: Vec<&str> = jobs[index..].iter().map(|j| j.id.as_str()).collect();
                claims::release(&db, owner, &unrun, system::now()?)?;
                break 'claims;
            }
            summary.claimed += 1;
            let result = match job.automation {
                Automation::Payment => run_job(&db, &mut stripe, owner, job),
                Automation::Feedback => crate::feedback::run_job(&db, owner, job),
            };
            match result {
                Ok(status) => summary.count(status),
                Err(error) => {
                    // Left leased: it is claimed again once the lease expires, a bounded
                    // number of times. The business sees that it stopped; the cause stays in
                    // the log.
                    eprintln!("tick: job {} failed to run: {error:#}", job.id);
                    summary.errors += 1;
                    match record_run_error(&db, owner, job) {
                        // Still leased (runs again): already counted as an error.
                        Ok(JobStatus::Running) => {}
                        Ok(status) => summary.count(status),
                        Err(write) => eprintln!(
                            "tick: job {}: the stopped run is not in activity: {write:#}",
                            job.id
                        ),
                    }
                }
            }
        }
    }
    Ok(summary)
}

/// The Stripe client, made from the variables the first time a run needs it: a tick with
/// nothing to charge reads no Stripe variable.
struct LazyStripe(Option<Stripe>);

impl LazyStripe {
    fn get(&mut self) -> anyhow::Result<&Stripe> {
        match &mut self.0 {
            Some(stripe) => Ok(stripe),
            empty => Ok(empty.insert(Stripe::from_variables()?)),
        }
    }
}

/// Everything one run of one job decided from.
struct JobInputs {
    facts: Option<ChargeFacts>,
    settings: Option<AccountSettings>,
    decision: Decision,
}

/// The claimed job as storage effects name it.
pub(crate) fn job_ref(job: &ClaimedJob) -> JobRef {
    JobRef {
        id: job.id.clone(),
        account_id: job.account_id.clone(),
        customer_id: job.customer_id.clone(),
        booking_id: job.booking_id.clone(),
        attempt: job.attempt,
        status: JobStatus::Running,
        late: job.late,
    }
}

/// Tells the core a run stopped, and stores what it says: an entry (the job stays leased and
/// runs again), or, past the bound, the job Failed. Returns the job's status after it.
fn record_run_error(db: &SpinDb, owner: &str, job: &ClaimedJob) -> anyhow::Result<JobStatus> {
    let job = job_ref(job);
    let now = system::now()?;
    let earlier = payments::count_activity(db, &job, &run_error_prefix(&job.id, job.attempt))?;
    // When even the attempt cannot be read, assume it may have reached Stripe.
    let attempt = payments::load_attempt(db, &job, job.attempt).unwrap_or_else(|error| {
        eprintln!("tick: job {}: attempt unreadable: {error:#}", job.id);
        Attempt {
            job_id: job.id.clone(),
            number: job.attempt,
            current: true,
            job_status: JobStatus::Running,
            late: job.late,
            ledger: Ledger::Open {
                request: None,
                amount_cents: 0,
                currency: String::new(),
                started_at: now,
                tries: 0,
                maybe_executed: true,
            },
        }
    });
    let mut machine = Machine::new(attempt);
    let effects = machine.handle(
        Event::RunError {
            errors: earlier.saturating_add(1),
        },
        now,
    );
    for effect in &effects {
        payments::perform(db, &job, job.attempt, effect, Actor::Tick(owner), now)?;
    }
    Ok(machine.attempt.job_status)
}

/// One run of one job: the core decides, this carries it out.
fn run_job(
    db: &SpinDb,
    stripe: &mut LazyStripe,
    owner: &str,
    job: &ClaimedJob,
) -> anyhow::Result<JobStatus> {
    let now = system::now()?;
    let inputs = load_inputs(db, job)?;
    let check = verdict(&inputs);
    let request = charge_request(job, &inputs, &check);
    let facts = inputs.facts.as_ref();
    let job = job_ref(job);
    let mut machine = Machine::new(payments::load_attempt(db, &job, job.attempt)?);
    let mut effects = machine.handle(
        Event::TickDue {
            check: &check,
            request: request.as_ref(),
            decision: &inputs.decision,
            balance_cents: facts.map(|f| f.amount_cents - f.paid_cents),
            currency: facts.map(|f| f.currency.as_str()),
        },
        now,
    );
    loop {
        let now = system::now()?;
        let mut next = None;
        for effect in &effects {
            match effect {
                Effect::Send(request) => next = Some(Event::Answer(stripe.get()?.send(request))),
                Effect::Lookup {
                    stripe_account,
                    path_with_query,
                } => {
                    next = Some(Event::LookupAnswer(
                        stripe.get()?.get(path_with_query, stripe_account),
                    ));
                }
                other => payments::perform(db, &job, job.attempt, other, Actor::Tick(owner), now)?,
            }
        }
        match next {
            Some(event) => effects = machine.handle(event, system::now()?),
            None => break,
        }
    }
    match machine.attempt.job_status {
        // Not settled: a run error, so it is retried a bounded number of times.
        JobStatus::Running => Err(anyhow!("the run ended without settling the job")),
        status => Ok(status),
    }
}

fn load_inputs(db: &SpinDb, job: &ClaimedJob) -> anyhow::Result<JobInputs> {
    let facts = storage::load_facts(db, job)?;
    let settings = load_settings(db, &job.account_id)?;
    let overrides = load_overrides(db, &job.account_id, &job.customer_id)?;
    let decision = resolve(
        Automation::Payment,
        settings.as_ref().and_then(|s| s.rules.as_ref()),
        overrides.payment.as_ref(),
        facts.as_ref().and_then(|f| f.service_type.as_ref()),
    );
    Ok(JobInputs {
        facts,
        settings,
        decision,
    })
}

/// The core's re-check; a booking or account that no longer exists reads as cancelled.
fn verdict(inputs: &JobInputs) -> Precheck {
    let (Some(facts), Some(settings)) = (&inputs.facts, &inputs.settings) else {
        return Precheck::Skip {
            reason: "booking cancelled".into(),
        };
    };
    precheck(&PrecheckInput {
        booking_status: facts.booking_status,
        amount_cents: facts.amount_cents,
        paid_cents: facts.paid_cents,
        currency: &facts.currency,
        decision: &inputs.decision,
        miopay_enabled: settings.miopay_enabled,
        stripe_account: settings.stripe_account_id.as_deref(),
        charges_blocked: settings
            .charges_blocked
            .then_some(settings.stripe_refusal.as_deref())
            .flatten(),
        stripe_customer: facts.stripe_customer.as_deref(),
        payment_method: facts.payment_method.as_deref(),
    })
}

/// The request a new attempt of `job` would send, when the re-check says charge; built from
/// the booking, customer and account as they are now (a resend never is: it is the stored copy).
fn charge_request(job: &ClaimedJob, inputs: &JobInputs, check: &Precheck) -> Option<ChargeRequest> {
    let Precheck::Charge {
        amount_cents,
        currency,
    } = check
    else {
        return None;
    };
    let facts = inputs.facts.as_ref()?;
    Some(ChargeRequest {
        amount_cents: *amount_cents,
        currency: currency.clone(),
        stripe_customer: facts.stripe_customer.clone()?,
        payment_method: facts.payment_method.clone()?,
        stripe_account: inputs.settings.as_ref()?.stripe_account_id.clone()?,
        account_id: job.account_id.clone(),
        booking_id: job.booking_id.clone(),
        job_id: job.id.clone(),
        attempt: job.attempt,
    })
}
