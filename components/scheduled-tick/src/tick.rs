//! One tick: claim due payment jobs in batches and run each one (re-check, charge or reconcile,
//! record), within a time budget well under the host's request limit.

use crate::lease;
use crate::storage::{self, Attempt, ChargeFacts};
use crate::stripe_http::Stripe;
use anyhow::{Context, anyhow};
use mio_platform::claims::{self, ClaimedJob};
use mio_platform::overrides::load_overrides;
use mio_platform::settings::{AccountSettings, load_settings};
use mio_platform::{SpinDb, db, system};
use mio_shared::charge::{
    LedgerOutcome, OUTCOME_ABANDONED, Precheck, PrecheckInput, Run, Step, ledger_outcome,
    needs_lookup, precheck, recorded_outcome, run_error_entry, settle_abandoned, settle_charge,
    settle_precheck, unknown_key_prefix,
};
use mio_shared::rules::{Automation, Decision, resolve};
use mio_shared::stripe::{
    ChargeOutcome, ChargeRequest, Lookup, PAYMENT_INTENTS_PATH, classify, find_in_list,
    list_intents_path,
};
use mio_shared::{ActivityId, JobStatus, Timestamp};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Jobs claimed per statement.
const BATCH: u32 = 25;
/// How long a claimed job stays ours; far longer than a tick can run (the host stops a run
/// after 30 s), so a live tick never loses a job, and a crashed one's jobs come back soon.
const LEASE_MINUTES: i64 = 2;
/// No job is started after this much time: the slowest Stripe call (connect + first byte +
/// reading) still ends before the host's 30 s limit. Claimed jobs left over are released for
/// the next tick.
const BUDGET: Duration = Duration::from_secs(10);

const STRIPE_SECRET_KEY_VARIABLE: &str = "stripe_secret_key";
const STRIPE_API_BASE_VARIABLE: &str = "stripe_api_base";

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
    let stripe = Stripe::new(
        &spin_sdk::variables::get(STRIPE_API_BASE_VARIABLE)
            .context("the stripe_api_base variable")?,
        system::secret_variable(STRIPE_SECRET_KEY_VARIABLE)
            .ok_or_else(|| anyhow!("the stripe_secret_key variable is not set"))?,
    )?;
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
            match run_job(&db, &stripe, owner, job) {
                Ok(status) => summary.count(status),
                Err(error) => {
                    // Left leased: it is claimed again once the lease expires. The business
                    // sees that it stopped; the cause stays in the log.
                    eprintln!("tick: job {} failed to run: {error:#}", job.id);
                    summary.errors += 1;
                    if let Err(write) = record_run_error(&db, job) {
                        eprintln!(
                            "tick: job {}: the stopped run is not in activity: {write:#}",
                            job.id
                        );
                    }
                }
            }
        }
    }
    Ok(summary)
}

/// Everything one run of one job decided from.
struct JobInputs {
    facts: Option<ChargeFacts>,
    settings: Option<AccountSettings>,
    decision: Decision,
}

/// Writes the activity entry of a run that stopped before it settled.
fn record_run_error(db: &SpinDb, job: &ClaimedJob) -> anyhow::Result<()> {
    let entry = run_error_entry(&job.id, job.attempt, job.late);
    let id = ActivityId::from_random(&system::random_bytes()?);
    storage::store_activity(db, job, &entry, &id, system::now()?)
}

fn run_job(
    db: &SpinDb,
    stripe: &Stripe,
    owner: &str,
    job: &ClaimedJob,
) -> anyhow::Result<JobStatus> {
    let now = system::now()?;
    let inputs = load_inputs(db, job)?;
    let verdict = verdict(&inputs);
    let existing = storage::load_attempt(db, job)?;
    let step = match (existing, &verdict) {
        (Some(attempt), _) if attempt.outcome.is_some() => {
            settle_recorded(job, &inputs, &attempt, now)
        }
        (Some(attempt), _) => resume(db, stripe, job, &inputs, &verdict, &attempt, now)?,
        (
            None,
            Precheck::Charge {
                amount_cents,
                currency,
            },
        ) => {
            let request = charge_request(job, &inputs, *amount_cents, currency)?;
            let key = request.idempotency_key();
            storage::insert_attempt(db, job, &key, *amount_cents, currency, now)?;
            let outcome = send(stripe, &request);
            record(db, job, &outcome, now)?;
            let run = run_of(job, &inputs, Some(*amount_cents), Some(currency));
            settle_charge(&run, &outcome, 0, now)
        }
        (None, _) => {
            let facts = inputs.facts.as_ref();
            let run = run_of(
                job,
                &inputs,
                facts.map(|f| f.amount_cents - f.paid_cents),
                facts.map(|f| f.currency.as_str()),
            );
            settle_precheck(&run, &verdict)
                .ok_or_else(|| anyhow!("a charge verdict reached the no-charge branch"))?
        }
    };
    apply(db, job, owner, &step, now)?;
    Ok(step.job_status)
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
        stripe_customer: facts.stripe_customer.as_deref(),
        payment_method: facts.payment_method.as_deref(),
    })
}

fn run_of<'a>(
    job: &'a ClaimedJob,
    inputs: &'a JobInputs,
    amount_cents: Option<i64>,
    currency: Option<&'a str>,
) -> Run<'a> {
    Run {
        job_id: &job.id,
        attempt: job.attempt,
        amount_cents,
        currency,
        decision: &inputs.decision,
        late: job.late,
    }
}

/// The request of `job`'s current attempt; only called once the re-check said "charge", which
/// guarantees every Stripe id is present.
fn charge_request(
    job: &ClaimedJob,
    inputs: &JobInputs,
    amount_cents: i64,
    currency: &str,
) -> anyhow::Result<ChargeRequest> {
    let facts = inputs.facts.as_ref();
    let missing = || anyhow!("a Stripe id vanished after the re-check");
    Ok(ChargeRequest {
        amount_cents,
        currency: currency.to_owned(),
        stripe_customer: facts
            .and_then(|f| f.stripe_customer.clone())
            .ok_or_else(missing)?,
        payment_method: facts
            .and_then(|f| f.payment_method.clone())
            .ok_or_else(missing)?,
        stripe_account: stripe_account(inputs).ok_or_else(missing)?.to_owned(),
        account_id: job.account_id.clone(),
        booking_id: job.booking_id.clone(),
        job_id: job.id.clone(),
        attempt: job.attempt,
    })
}

fn stripe_account(inputs: &JobInputs) -> Option<&str> {
    inputs
        .settings
        .as_ref()
        .and_then(|s| s.stripe_account_id.as_deref())
}

/// Sends the charge; no answer at all is an unknown outcome.
fn send(stripe: &Stripe, request: &ChargeRequest) -> ChargeOutcome {
    match stripe.post_form(
        PAYMENT_INTENTS_PATH,
        &request.stripe_account,
        &request.idempotency_key(),
        &request.form_body(),
    ) {
        Ok(answer) => classify(answer.status, &answer.body),
        Err(error) => ChargeOutcome::Unknown {
            reason: format!("no answer from Stripe: {error:#}"),
        },
    }
}

/// Records a settled outcome in the ledger (nothing for an unknown one).
fn record(
    db: &SpinDb,
    job: &ClaimedJob,
    outcome: &ChargeOutcome,
    now: Timestamp,
) -> anyhow::Result<()> {
    match ledger_outcome(outcome) {
        Some(row) => storage::record_outcome(db, job, &row, now),
        None => Ok(()),
    }
}

/// An attempt whose outcome the ledger already has (a run that crashed before settling the job):
/// settle from it, without asking Stripe again.
fn settle_recorded(
    job: &ClaimedJob,
    inputs: &JobInputs,
    attempt: &Attempt,
    now: Timestamp,
) -> Step {
    let run = run_of(
        job,
        inputs,
        Some(attempt.amount_cents),
        Some(&attempt.currency),
    );
    let outcome = attempt.outcome.as_deref().and_then(|outcome| {
        recorded_outcome(
            outcome,
            attempt.payment_intent_id.clone(),
            attempt.decline_code.clone(),
            attempt.message.clone(),
            attempt.amount_cents,
        )
    });
    match outcome {
        Some(outcome) => settle_charge(&run, &outcome, 0, now),
        None => settle_abandoned(&run, now),
    }
}

/// An attempt that was sent before without a known outcome: send it again with the same key,
/// or look it up first when a re-send cannot be trusted or is no longer wanted.
fn resume(
    db: &SpinDb,
    stripe: &Stripe,
    job: &ClaimedJob,
    inputs: &JobInputs,
    verdict: &Precheck,
    attempt: &Attempt,
    now: Timestamp,
) -> anyhow::Result<Step> {
    let unknowns = storage::count_activity(db, job, &unknown_key_prefix(&job.id, job.attempt))?;
    let wanted = matches!(verdict, Precheck::Charge { .. });
    let run = run_of(
        job,
        inputs,
        Some(attempt.amount_cents),
        Some(&attempt.currency),
    );
    if !needs_lookup(unknowns, attempt.started_at, wanted, now) {
        let request = charge_request(job, inputs, attempt.amount_cents, &attempt.currency)?;
        let outcome = send(stripe, &request);
        record(db, job, &outcome, now)?;
        return Ok(settle_charge(&run, &outcome, unknowns, now));
    }
    match lookup(stripe, job, inputs) {
        Lookup::Found(outcome) => {
            record(db, job, &outcome, now)?;
            Ok(settle_charge(&run, &outcome, unknowns, now))
        }
        Lookup::NotFound => {
            let abandoned = LedgerOutcome {
                outcome: OUTCOME_ABANDONED,
                payment_intent_id: None,
                decline_code: None,
                message: Some("no PaymentIntent found for this attempt".into()),
            };
            storage::record_outcome(db, job, &abandoned, now)?;
            Ok(match settle_precheck(&run, verdict) {
                Some(stopped) => stopped,
                None => settle_abandoned(&run, now),
            })
        }
        Lookup::Inconclusive { reason } => Ok(settle_charge(
            &run,
            &ChargeOutcome::Unknown { reason },
            unknowns,
            now,
        )),
    }
}

/// Looks the current attempt's PaymentIntent up in the customer's list (read-after-write,
/// unlike search).
fn lookup(stripe: &Stripe, job: &ClaimedJob, inputs: &JobInputs) -> Lookup {
    let customer = inputs
        .facts
        .as_ref()
        .and_then(|f| f.stripe_customer.as_deref());
    let (Some(account), Some(customer)) = (stripe_account(inputs), customer) else {
        return Lookup::Inconclusive {
            reason: "the Stripe account or customer is no longer known".into(),
        };
    };
    match stripe.get(&list_intents_path(customer), account) {
        Ok(answer) => find_in_list(answer.status, &answer.body, &job.id, job.attempt),
        Err(error) => Lookup::Inconclusive {
            reason: format!("no answer from Stripe: {error:#}"),
        },
    }
}

/// Stores the step: the paid amount first (when charged), then the activity entry and the job.
fn apply(
    db: &SpinDb,
    job: &ClaimedJob,
    owner: &str,
    step: &Step,
    now: Timestamp,
) -> anyhow::Result<()> {
    if step.job_status == JobStatus::Succeeded {
        storage::recompute_paid(db, job, now)?;
    }
    let id = ActivityId::from_random(&system::random_bytes()?);
    storage::store_step(db, job, owner, step, &id, now)
}
