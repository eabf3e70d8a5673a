//! One tick: claim due jobs (payments and rating requests) in batches and run each one within a time budget well under
//! the job's lease. A run is a short loop around the core's state machine
//! (`mio_shared::attempt`): load the attempt, hand it the tick's re-check, carry out the effects
//! (at most one Stripe request per run), feed the answer back, store.

use crate::feedback::{self, FeedbackProgress, FeedbackRun};
use crate::lease;
use crate::storage::{self, ChargeFacts};
use anyhow::anyhow;
use mio_platform::claims::{self, ClaimedJob};
use mio_platform::outbound::{self, Pending};
use mio_platform::overrides::load_overrides;
use mio_platform::payments::{self, Actor, JobRef};
use mio_platform::settings::{AccountSettings, load_settings};
use mio_platform::stripe_http::{self, Stripe};
use mio_platform::{SpinDb, db, system};
use mio_shared::JobStatus;
use mio_shared::attempt::{Attempt, Effect, Event, Ledger, Machine, Reply};
use mio_shared::charge::{Precheck, PrecheckInput, precheck, run_error_prefix};
use mio_shared::pace::{self, Pace};
use mio_shared::rules::{Automation, Decision, resolve};
use mio_shared::stripe::ChargeRequest;
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Jobs claimed per statement, at least (a run claims twice its in-flight bound at a time).
const BATCH: u32 = 25;
/// How long a claimed job stays ours. A job's run waits on one Stripe request at a time, each
/// stopped after `outbound::REQUEST_DEADLINE_NS` (15 s) even on a host with no request
/// timeout; with [`BUDGET`] that bounds a tick to well under a minute, inside the lease, so a
/// live tick never loses a job, and a crashed one's jobs come back soon.
const LEASE_MINUTES: i64 = 2;
/// No job is started after this much time; the jobs in flight then finish. Claimed jobs left
/// over are released for the next tick. At Stripe's pace with requests in flight together, one
/// run charges a backlog of a thousand or more; it stays inside hosts that cut a request off at
/// 30 s.
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

/// The bound on Stripe requests in flight, from the `tick_concurrency` variable.
fn in_flight_bound() -> usize {
    let text = spin_sdk::variables::get("tick_concurrency").unwrap_or_default();
    pace::parse_in_flight(&text).unwrap_or_else(|error| {
        eprintln!("tick: {error}; using {}", pace::DEFAULT_IN_FLIGHT);
        pace::DEFAULT_IN_FLIGHT
    })
}

/// Milliseconds on the monotonic clock, for the pace.
fn mono_ms() -> u64 {
    wasi::clocks::monotonic_clock::now() / 1_000_000
}

/// A job waiting on the network: a payment on its Stripe request, or a feedback job on its
/// messages.
enum Waiting {
    Payment {
        task: Box<Task>,
        call: Call,
        pending: Pending,
    },
    Feedback(Box<FeedbackRun>),
}

/// One run: claims due jobs and keeps up to the pace's bound of Stripe requests in flight,
/// claiming more as slots free up, until nothing is due or the budget is spent. A feedback job's
/// messages wait alongside the charges and take one slot, like a charge.
fn run(owner: &str) -> anyhow::Result<Summary> {
    let started = Instant::now();
    // The schema is checked by the first claim that finds work (`claims::claim_checked`).
    let db = db::connect()?;
    let mut schema = claims::SchemaChecked::default();
    let mut stripe = LazyStripe(None);
    let mut summary = Summary::default();
    // Read once there is work: a tick with nothing due reads no variable.
    let mut pace: Option<Pace> = None;
    let mut queue: VecDeque<ClaimedJob> = VecDeque::new();
    let mut waiting: Vec<Waiting> = Vec::new();
    let mut drained = false;
    loop {
        // Start jobs while the pace allows.
        while started.elapsed() < BUDGET
            && pace
                .as_ref()
                .is_none_or(|p| p.may_start(waiting.len(), mono_ms()))
        {
            if queue.is_empty() && !drained {
                let now = system::now()?;
                let lease = now.plus_minutes(LEASE_MINUTES);
                let batch = pace.as_ref().map_or(BATCH, |p| {
                    BATCH.max(u32::try_from(p.limit() * 2).unwrap_or(u32::MAX))
                });
                queue.extend(claims::claim_checked(
                    &db,
                    &mut schema,
                    owner,
                    batch,
                    lease,
                    now,
                )?);
                drained = queue.is_empty();
            }
            let Some(job) = queue.pop_front() else { break };
            pace.get_or_insert_with(|| Pace::new(in_flight_bound()));
            summary.claimed += 1;
            let begun = match job.automation {
                Automation::Payment => Task::begin(&db, &mut stripe, owner, job.clone()),
                Automation::Feedback => {
                    feedback::begin(&db, owner, &job).map(|progress| match progress {
                        FeedbackProgress::Done(status) => Progress::Done(status),
                        FeedbackProgress::Sending(run) => Progress::Messages(run),
                    })
                }
            };
            settle_progress(&db, owner, &job, begun, &mut waiting, &mut summary);
        }
        if waiting.is_empty() {
            let out_of_work = queue.is_empty() && drained;
            if out_of_work || started.elapsed() >= BUDGET {
                break;
            }
            // Paused by a 429 with nothing in flight: wait out the pause.
            if let Some(until) = pace.as_ref().and_then(|p| p.paused_until(mono_ms())) {
                system::sleep_ms(until.saturating_sub(mono_ms()));
            }
            continue;
        }
        // Wait for answers (or the end of a pause, to start more).
        let pace = pace.get_or_insert_with(|| Pace::new(in_flight_bound()));
        let until = pace
            .paused_until(mono_ms())
            .map(|ms| ms.saturating_mul(1_000_000));
        let mut pendings: Vec<&Pending> = Vec::new();
        let mut owners: Vec<(usize, usize)> = Vec::new();
        for (index, entry) in waiting.iter().enumerate() {
            match entry {
                Waiting::Payment { pending, .. } => {
                    pendings.push(pending);
                    owners.push((index, 0));
                }
                Waiting::Feedback(run) => {
                    for (sub, (_, pending)) in run.pending.iter().enumerate() {
                        pendings.push(pending);
                        owners.push((index, sub));
                    }
                }
            }
        }
        let mut ready: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for at in outbound::wait_any(&pendings, until) {
            let (index, sub) = owners[at];
            ready.entry(index).or_default().push(sub);
        }
        drop(pendings);
        // Highest index first: `swap_remove` and the pushes of resumed jobs then never move
        // an entry still to be handled.
        for (index, mut subs) in ready.into_iter().rev() {
            match waiting.swap_remove(index) {
                Waiting::Payment {
                    task,
                    call,
                    pending,
                } => {
                    let finished = pending.finish();
                    let status = match &finished.reply {
                        outbound::Reply::Answered { status, .. } => Some(*status),
                        _ => None,
                    };
                    pace.observe(status, finished.retry_after_secs, mono_ms());
                    let job = task.job.clone();
                    let answer = stripe_http::answer(finished);
                    let resumed = task.resume(&db, &mut stripe, owner, call, answer);
                    settle_progress(&db, owner, &job, resumed, &mut waiting, &mut summary);
                }
                Waiting::Feedback(mut run) => {
                    let job = run.job().clone();
                    subs.sort_unstable();
                    let answered = subs
                        .into_iter()
                        .rev()
                        .try_for_each(|sub| run.answer(&db, sub));
                    let progress = match answered {
                        Err(error) => Err(error),
                        Ok(()) if run.pending.is_empty() => {
                            run.complete(&db, owner).map(Progress::Done)
                        }
                        Ok(()) => Ok(Progress::Messages(run)),
                    };
                    settle_progress(&db, owner, &job, progress, &mut waiting, &mut summary);
                }
            }
        }
    }
    let unrun: Vec<&str> = queue.iter().map(|j| j.id.as_str()).collect();
    claims::release(&db, owner, &unrun, system::now()?)?;
    if let Some(pace) = pace.filter(|p| p.rate_limited() > 0) {
        eprintln!(
            "tick: Stripe rate-limited this run {} times; it slowed down to {} in flight",
            pace.rate_limited(),
            pace.limit()
        );
    }
    Ok(summary)
}

/// Files a job's progress: in flight again, done, or stopped by an error (recorded).
fn settle_progress(
    db: &SpinDb,
    owner: &str,
    job: &ClaimedJob,
    progress: anyhow::Result<Progress>,
    waiting: &mut Vec<Waiting>,
    summary: &mut Summary,
) {
    match progress {
        Ok(Progress::Waiting(task, call, pending)) => waiting.push(Waiting::Payment {
            task,
            call,
            pending,
        }),
        Ok(Progress::Messages(run)) => waiting.push(Waiting::Feedback(run)),
        Ok(Progress::Done(status)) => summary.count(status),
        Err(error) if job.automation == Automation::Feedback => {
            eprintln!("tick: job {} failed to run: {error:#}", job.id);
            summary.errors += 1;
            match feedback::stopped(db, owner, job) {
                Ok(status) => summary.count(status),
                // Left leased: it comes back when the lease expires.
                Err(write) => eprintln!("tick: job {}: not settled: {write:#}", job.id),
            }
        }
        Err(error) => {
            // Left leased: it is claimed again once the lease expires, a bounded number of
            // times. The business sees that it stopped; the cause stays in the log.
            eprintln!("tick: job {} failed to run: {error:#}", job.id);
            summary.errors += 1;
            match record_run_error(db, owner, job) {
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

/// Which Stripe request a job waits on.
#[derive(Debug, Clone, Copy)]
enum Call {
    Send,
    Lookup,
}

/// Where a job's run stands.
enum Progress {
    /// A Stripe request is in flight; its answer goes to [`Task::resume`].
    Waiting(Box<Task>, Call, Pending),
    /// A feedback job's messages are in flight.
    Messages(Box<FeedbackRun>),
    /// The run is over, with the job's status.
    Done(JobStatus),
}

/// One run of one payment job: the core's machine, fed by this shell. The core decides; this
/// carries the storage effects out and starts the Stripe requests it asks for.
struct Task {
    job: ClaimedJob,
    job_ref: JobRef,
    machine: Machine,
}

impl Task {
    /// Re-checks the job and hands it to its machine.
    fn begin(
        db: &SpinDb,
        stripe: &mut LazyStripe,
        owner: &str,
        job: ClaimedJob,
    ) -> anyhow::Result<Progress> {
        let now = system::now()?;
        let inputs = load_inputs(db, &job)?;
        let check = verdict(&inputs);
        let request = charge_request(&job, &inputs, &check);
        let facts = inputs.facts.as_ref();
        let job_ref = job_ref(&job);
        let mut machine = Machine::new(payments::load_attempt(db, &job_ref, job_ref.attempt)?);
        let effects = machine.handle(
            Event::TickDue {
                check: &check,
                request: request.as_ref(),
                decision: &inputs.decision,
                balance_cents: facts.map(|f| f.amount_cents - f.paid_cents),
                currency: facts.map(|f| f.currency.as_str()),
            },
            now,
        );
        Task {
            job,
            job_ref,
            machine,
        }
        .carry_out(db, stripe, owner, &effects)
    }

    /// Feeds the answer of the request it waited on.
    fn resume(
        mut self,
        db: &SpinDb,
        stripe: &mut LazyStripe,
        owner: &str,
        call: Call,
        reply: Reply,
    ) -> anyhow::Result<Progress> {
        let event = match call {
            Call::Send => Event::Answer(reply),
            Call::Lookup => Event::LookupAnswer(reply),
        };
        let effects = self.machine.handle(event, system::now()?);
        self.carry_out(db, stripe, owner, &effects)
    }

    /// Performs the storage effects in order and starts the Stripe request, if any (the
    /// machine asks for at most one at a time).
    fn carry_out(
        self,
        db: &SpinDb,
        stripe: &mut LazyStripe,
        owner: &str,
        effects: &[Effect],
    ) -> anyhow::Result<Progress> {
        let now = system::now()?;
        let mut started = None;
        for effect in effects {
            match effect {
                Effect::Send(request) => {
                    started = Some((Call::Send, stripe.get()?.start_send(request)));
                }
                Effect::Lookup {
                    stripe_account,
                    path_with_query,
                } => {
                    let pending = stripe.get()?.start_get(path_with_query, stripe_account);
                    started = Some((Call::Lookup, pending));
                }
                other => payments::perform(
                    db,
                    &self.job_ref,
                    self.job_ref.attempt,
                    other,
                    Actor::Tick(owner),
                    now,
                )?,
            }
        }
        match (started, self.machine.attempt.job_status) {
            (Some((call, pending)), _) => Ok(Progress::Waiting(Box::new(self), call, pending)),
            // Not settled: a run error, so it is retried a bounded number of times.
            (None, JobStatus::Running) => Err(anyhow!("the run ended without settling the job")),
            (None, status) => Ok(Progress::Done(status)),
        }
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
