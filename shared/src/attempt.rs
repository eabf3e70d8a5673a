//! The whole life of a payment attempt, as one pure state machine:
//! `(state, event, now) → (new state, effects)`.
//!
//! A payment job charges a booking through one or more *attempts*. Each attempt is one
//! PaymentIntent request with its own idempotency key (`mio-{job}-attempt-{n}`). This module is
//! every rule about what happens to an attempt and its job; the tick and the webhook only load
//! the [`Attempt`], feed it [`Event`]s, carry out the [`Effect`]s in order and store them.
//!
//! # The rules
//! 1. **A new attempt** starts only when the re-check says "charge" and the job has no open
//!    attempt. Its exact request (account, customer, card, amount, currency, metadata, key) is
//!    stored *before* it is sent ([`Effect::StartAttempt`]), and every resend is that stored copy,
//!    byte for byte: Stripe refuses a key reused with other parameters.
//! 2. **A known answer settles the attempt**: success (the ledger counts it once, the booking's
//!    balance is recomputed from the ledger), a decline (soft ones retry on the account's schedule
//!    with a new attempt, hard ones fail), "customer must authenticate" (fails), a refused request
//!    (fails), a canceled PaymentIntent (fails: someone stopped it on purpose).
//! 3. **An unknown outcome** (5xx, timeout, dropped connection, a PaymentIntent still processing,
//!    `idempotency_error`) leaves the attempt open: `maybe_executed` is set, and the job is
//!    `unknown`. While Stripe surely still holds the key ([`RESEND_WITHIN_MINUTES`]) and the
//!    charge is still wanted, runs alternate between resending the stored request with the same
//!    key (a lost answer comes back as a replay; nothing can charge twice) and *looking it up*
//!    (Stripe replays a saved `500` for ever, so only a lookup or a webhook can settle that).
//!    After that, only lookups ask, by the metadata and Stripe account the attempt itself sent.
//! 4. **No new attempt without proof.** An open attempt that may have executed ends only with
//!    proof: a success, or a PaymentIntent in a final non-succeeded state, from an answer, a
//!    lookup or a webhook. "Not found" is not proof. Without proof after
//!    [`GIVE_UP_AFTER_MINUTES`], the job is Failed with "outcome unknown: check Stripe before
//!    charging again", and nothing is charged automatically.
//! 5. **Turned away before execution** (`429`, `401`, `403`): nothing ran, so the same stored
//!    request may be sent again later, and `maybe_executed` is unchanged. A send is marked in
//!    flight before it leaves ([`Effect::StartAttempt`], [`Effect::Sending`]) and cleared by its
//!    answer, so a run that dies mid-request leaves the attempt "may have executed": only proof
//!    settles it, never a resend that assumes nothing ran. A `401`/`403` is the
//!    platform's credential problem, never the customer's: the job retries and the activity says
//!    why; a `403` also marks the connected account's MioPay "not ready" until a request
//!    succeeds again.
//! 6. **Webhooks apply in any order.** An event is compared with the stored attempt: a success
//!    is never undone (a later failure event changes nothing), a success overrides any earlier
//!    non-success, a repeated event changes nothing, and an event whose amount, currency or
//!    Stripe account differ from what the attempt sent is ignored.
//! 7. **Nothing loops forever.** A run that stops with an internal error is retried
//!    [`RUN_ERRORS`] times (each one an activity entry), then the job is Failed.
//!
//! Not here: HTTP, SQL, the clock, the wording of entries ([`crate::charge`]) and the wire format
//! ([`crate::stripe`]).

use crate::charge::{
    ActivityEntry, LedgerOutcome, Precheck, Run, Step, give_up, ledger_outcome, recorded_outcome,
    retry_now, run_error_entry, run_errors_exhausted, settle_charge, settle_precheck,
};
use crate::plan::JobStatus;
use crate::rules::Decision;
use crate::stripe::{
    ChargeOutcome, ChargeRequest, Intent, Lookup, find_attempt, idempotency_key, intent_outcome,
    search_attempt_path,
};
use crate::time::Timestamp;

/// Resend an open attempt only this long after it was first sent: Stripe keeps idempotency keys
/// for *at least* 24 hours (https://docs.stripe.com/api/idempotent_requests); after that a
/// resend could execute anew and charge twice.
pub const RESEND_WITHIN_MINUTES: i64 = 23 * 60;

/// An open attempt without proof of its outcome after this long fails the job for a person to
/// check. 72 hours: three times Stripe's idempotency-key lifetime, and as long as Stripe keeps
/// retrying an undelivered webhook event in live mode (https://docs.stripe.com/webhooks#retries),
/// so every automatic source of proof has had its chance.
pub const GIVE_UP_AFTER_MINUTES: i64 = 72 * 60;

/// A run that stops before settling is retried this many times, then the job is Failed.
pub const RUN_ERRORS: u32 = 3;

/// The stored copy of the request an attempt sends; every resend is exactly this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRequest {
    /// `Stripe-Account`: the connected account the attempt charges on.
    pub stripe_account: String,
    /// `Idempotency-Key`.
    pub idempotency_key: String,
    /// The form body, byte for byte.
    pub form_body: String,
    /// The amount it asks for (also inside `form_body`).
    pub amount_cents: i64,
    /// Its currency (also inside `form_body`).
    pub currency: String,
}

impl SentRequest {
    /// The stored copy of `request`.
    pub fn of(request: &ChargeRequest) -> SentRequest {
        SentRequest {
            stripe_account: request.stripe_account.clone(),
            idempotency_key: request.idempotency_key(),
            form_body: request.form_body(),
            amount_cents: request.amount_cents,
            currency: request.currency.clone(),
        }
    }
}

/// Where an attempt stands, as its ledger row says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ledger {
    /// The job's current attempt has not started.
    NotStarted,
    /// Started; its outcome is not known.
    Open {
        /// What it sent (`None` for a row written before requests were stored: it is never
        /// resent, only settled by a webhook, or given up after the window).
        request: Option<SentRequest>,
        /// The amount it asks for.
        amount_cents: i64,
        /// Its currency.
        currency: String,
        /// When it was first sent.
        started_at: Timestamp,
        /// Sends and lookups so far that ended without a known outcome.
        tries: u32,
        /// Whether any send may have reached Stripe's execution: an unknown answer, or a send
        /// whose answer was never stored (the run died). While false, every send so far was
        /// answered and every answer proved that nothing ran.
        maybe_executed: bool,
    },
    /// Settled: the ledger has its outcome.
    Settled {
        /// The amount it asked for.
        amount_cents: i64,
        /// Its currency.
        currency: String,
        /// What happened (`None`: ended without being executed, see [`OUTCOME_NOT_SENT`], or a
        /// legacy value).
        outcome: Option<ChargeOutcome>,
    },
}

impl Ledger {
    /// The amount and currency the attempt asks for, once it started.
    pub fn amount(&self) -> Option<(i64, &str)> {
        match self {
            Ledger::Open {
                amount_cents,
                currency,
                ..
            }
            | Ledger::Settled {
                amount_cents,
                currency,
                ..
            } => Some((*amount_cents, currency.as_str())),
            Ledger::NotStarted => None,
        }
    }
}

/// The ledger value of an attempt that ended before Stripe executed it (the charge was no
/// longer wanted while every earlier send had been turned away).
pub const OUTCOME_NOT_SENT: &str = "not_sent";

/// An attempt and the job it belongs to, as loaded by the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// `job_…`.
    pub job_id: String,
    /// Which attempt (1-based).
    pub number: u32,
    /// Whether this is the job's current attempt (a webhook may name an older one).
    pub current: bool,
    /// The job's status now.
    pub job_status: JobStatus,
    /// Whether the job was planned late.
    pub late: bool,
    /// The attempt's ledger row.
    pub ledger: Ledger,
}

/// An HTTP exchange with Stripe, as the shell saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Stripe answered.
    Answered {
        /// HTTP status.
        status: u16,
        /// Body text.
        body: String,
    },
    /// No answer (timeout, refused or dropped connection).
    NoAnswer {
        /// What happened.
        reason: String,
    },
}

/// Something that happens to an attempt.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    /// A tick claimed the job.
    TickDue {
        /// The re-check's verdict now.
        check: &'a Precheck,
        /// What a new attempt would send (present when `check` says charge).
        request: Option<&'a ChargeRequest>,
        /// The effective payment automation now, for the entry.
        decision: &'a Decision,
        /// The balance the re-check saw, for the entry of a run that charges nothing.
        balance_cents: Option<i64>,
        /// The booking's currency.
        currency: Option<&'a str>,
    },
    /// The answer to [`Effect::Send`].
    Answer(Reply),
    /// The answer to [`Effect::Lookup`].
    LookupAnswer(Reply),
    /// A verified webhook event about this attempt's PaymentIntent, on `stripe_account`.
    Webhook {
        /// The PaymentIntent in the event.
        intent: &'a Intent,
        /// The event's `account`.
        stripe_account: &'a str,
    },
    /// The run stopped with an internal error; `errors` counts this one and the earlier ones.
    RunError {
        /// Errors of this attempt so far, this one included.
        errors: u32,
    },
}

/// What the shell must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Store the new attempt with its request, marked in flight, before sending it.
    StartAttempt(SentRequest),
    /// Mark the stored attempt in flight before a resend: until its answer is noted, a reload
    /// reads the attempt as maybe executed.
    Sending,
    /// Send this request to Stripe and feed the answer back as [`Event::Answer`].
    Send(SentRequest),
    /// Search for the attempt's PaymentIntent on this connected account (`GET path`), and feed
    /// the answer back as [`Event::LookupAnswer`].
    Lookup {
        /// `Stripe-Account`: the account the attempt charged on.
        stripe_account: String,
        /// Path and query.
        path_with_query: String,
    },
    /// Record the attempt's outcome: never over a success; a success over anything else.
    Record(LedgerOutcome),
    /// Count one more try without a known outcome (and remember if it may have executed); the
    /// send it answers is no longer in flight.
    NoteTry {
        /// Whether this try may have reached execution.
        maybe_executed: bool,
    },
    /// Recompute the booking's paid amount from the ledger.
    RecomputePaid,
    /// Move the job and write the entry. From a tick, only while the tick holds the job's
    /// lease; from a webhook (`from_webhook`), from any state but `running` (a tick holds the
    /// job then, and settles it itself from the ledger).
    Settle {
        /// The job's next state and the entry.
        step: Step,
        /// Whether a webhook settles it.
        from_webhook: bool,
    },
    /// Write an activity entry without moving the job (the job keeps its lease).
    Activity(ActivityEntry),
    /// The connected account accepted a request (`true`) or refused our access (`false`).
    AccountReady {
        /// The connected account (`acct_…`) it is about.
        stripe_account: String,
        /// Ready or not.
        ready: bool,
        /// Why not.
        reason: Option<String>,
    },
    /// Nothing changes; this is why (for the log).
    Ignore(String),
}

/// The machine for one attempt: [`Machine::handle`] each event, carry out what it returns.
#[derive(Debug, Clone)]
pub struct Machine {
    /// The attempt as it stands after the events handled so far.
    pub attempt: Attempt,
    // What the tick's re-check said (owned, so a machine can wait on Stripe on its own).
    decision: Option<Decision>,
    check: Option<Precheck>,
    balance: Option<(i64, String)>,
}

impl Machine {
    /// A machine for `attempt` as loaded.
    pub fn new(attempt: Attempt) -> Machine {
        Machine {
            attempt,
            decision: None,
            check: None,
            balance: None,
        }
    }

    /// Handles one event at `now`; returns what to do, in order.
    pub fn handle(&mut self, event: Event<'_>, now: Timestamp) -> Vec<Effect> {
        match event {
            Event::TickDue {
                check,
                request,
                decision,
                balance_cents,
                currency,
            } => {
                self.decision = Some(decision.clone());
                self.check = Some(check.clone());
                self.balance = balance_cents.zip(currency.map(str::to_owned));
                self.tick_due(check, request, now)
            }
            Event::Answer(reply) => {
                let outcome = match reply {
                    Reply::Answered { status, body } => crate::stripe::classify(status, &body),
                    Reply::NoAnswer { reason } => ChargeOutcome::Unknown {
                        reason: format!("no answer from Stripe: {reason}"),
                    },
                };
                self.outcome(outcome, now)
            }
            Event::LookupAnswer(reply) => self.looked_up(reply, now),
            Event::Webhook {
                intent,
                stripe_account,
            } => self.webhook(intent, stripe_account, now),
            Event::RunError { errors } => self.run_error(errors),
        }
    }

    fn wanted(&self) -> bool {
        matches!(self.check, Some(Precheck::Charge { .. }))
    }

    /// The run the entries describe: the attempt's own amount once it has one.
    fn run(&self) -> Run<'_> {
        let balance = self.balance.as_ref().map(|(cents, c)| (*cents, c.as_str()));
        let (amount_cents, currency) = match self.attempt.ledger.amount().or(balance) {
            Some((cents, currency)) => (Some(cents), Some(currency)),
            None => (None, None),
        };
        Run {
            job_id: &self.attempt.job_id,
            attempt: self.attempt.number,
            amount_cents,
            currency,
            decision: self.decision.as_ref(),
            late: self.attempt.late,
        }
    }

    fn tick_due(
        &mut self,
        check: &Precheck,
        request: Option<&ChargeRequest>,
        now: Timestamp,
    ) -> Vec<Effect> {
        match self.attempt.ledger.clone() {
            Ledger::NotStarted => match (check, request) {
                (Precheck::Charge { .. }, Some(request)) => {
                    let sent = SentRequest::of(request);
                    self.attempt.ledger = Ledger::Open {
                        request: Some(sent.clone()),
                        amount_cents: sent.amount_cents,
                        currency: sent.currency.clone(),
                        started_at: now,
                        tries: 0,
                        maybe_executed: false,
                    };
                    vec![Effect::StartAttempt(sent.clone()), Effect::Send(sent)]
                }
                (Precheck::Charge { .. }, None) => {
                    vec![Effect::Ignore(
                        "a charge verdict came without its request".into(),
                    )]
                }
                (stop, _) => {
                    let step = settle_precheck(&self.run(), stop);
                    self.settle(step, false)
                }
            },
            // A run that stopped after the outcome was recorded: settle from the ledger.
            Ledger::Settled { outcome, .. } => {
                let step = match &outcome {
                    Some(outcome) => Some(settle_charge(&self.run(), outcome, 0, now)),
                    // Ended unsent: stop if no longer wanted, else a new attempt now.
                    None => settle_precheck(&self.run(), check)
                        .or_else(|| Some(retry_now(&self.run(), now))),
                };
                let mut effects = Vec::new();
                if matches!(outcome, Some(ChargeOutcome::Succeeded { .. })) {
                    effects.push(Effect::RecomputePaid);
                }
                effects.extend(self.settle(step, false));
                effects
            }
            Ledger::Open {
                request,
                started_at,
                tries,
                maybe_executed,
                ..
            } => {
                let age = now.unix_millis() - started_at.unix_millis();
                if age > GIVE_UP_AFTER_MINUTES * 60_000 {
                    let key = request.as_ref().map_or_else(
                        || idempotency_key(&self.attempt.job_id, self.attempt.number),
                        |r| r.idempotency_key.clone(),
                    );
                    let step = give_up(&self.run(), &key);
                    return self.settle(Some(step), false);
                }
                let Some(request) = request else {
                    // Written before requests were stored: only a webhook (or the window)
                    // settles it.
                    return self.unknown(
                        "waiting for Stripe's webhook about this attempt".into(),
                        true,
                        now,
                    );
                };
                if !maybe_executed {
                    // Every earlier send was turned away before execution: nothing was
                    // charged, so sending the same request again is safe at any age.
                    return if self.wanted() {
                        vec![Effect::Sending, Effect::Send(request)]
                    } else {
                        let mut effects = vec![Effect::Record(not_sent())];
                        self.attempt.ledger = Ledger::Settled {
                            amount_cents: request.amount_cents,
                            currency: request.currency.clone(),
                            outcome: None,
                        };
                        let step = settle_precheck(&self.run(), check);
                        effects.extend(self.settle(step, false));
                        effects
                    };
                }
                // Odd tries resend (the first retry is a resend: a lost answer comes back at
                // once as a replay), even ones look up.
                if self.wanted() && tries % 2 == 1 && age <= RESEND_WITHIN_MINUTES * 60_000 {
                    vec![Effect::Sending, Effect::Send(request)]
                } else {
                    vec![Effect::Lookup {
                        stripe_account: request.stripe_account.clone(),
                        path_with_query: search_attempt_path(
                            &self.attempt.job_id,
                            self.attempt.number,
                        ),
                    }]
                }
            }
        }
    }

    fn looked_up(&mut self, reply: Reply, now: Timestamp) -> Vec<Effect> {
        let lookup = match reply {
            Reply::Answered { status, body } => {
                find_attempt(status, &body, &self.attempt.job_id, self.attempt.number)
            }
            Reply::NoAnswer { reason } => Lookup::Inconclusive {
                reason: format!("no answer from Stripe: {reason}"),
            },
        };
        let outcome = match lookup {
            Lookup::Found(outcome) => outcome,
            Lookup::NotFound => ChargeOutcome::Unknown {
                reason: "Stripe shows no PaymentIntent for this attempt yet".into(),
            },
            Lookup::Inconclusive { reason } => ChargeOutcome::Unknown { reason },
            Lookup::Credentials { status, message } => {
                ChargeOutcome::Credentials { status, message }
            }
        };
        let proof_of_no_charge = !matches!(
            outcome,
            ChargeOutcome::Succeeded { .. }
                | ChargeOutcome::Unknown { .. }
                | ChargeOutcome::NotExecuted { .. }
                | ChargeOutcome::Credentials { .. }
        );
        if proof_of_no_charge && !self.wanted() {
            // Stripe confirms nothing was charged, and the charge is no longer wanted.
            let mut effects = self.record(&outcome);
            let step = self
                .check
                .as_ref()
                .and_then(|check| settle_precheck(&self.run(), check));
            effects.extend(self.settle(step, false));
            return effects;
        }
        self.outcome(outcome, now)
    }

    /// What an outcome from an answer or a lookup does.
    fn outcome(&mut self, outcome: ChargeOutcome, now: Timestamp) -> Vec<Effect> {
        let was_executed = match &self.attempt.ledger {
            Ledger::Open { maybe_executed, .. } => *maybe_executed,
            _ => true,
        };
        match outcome {
            ChargeOutcome::Unknown { reason } => self.unknown(reason, true, now),
            ChargeOutcome::NotExecuted { reason } => self.unknown(reason, was_executed, now),
            ChargeOutcome::Credentials { status, message } => {
                let mut effects = Vec::new();
                if let (403, Some(stripe_account)) = (status, self.stripe_account()) {
                    effects.push(Effect::AccountReady {
                        stripe_account,
                        ready: false,
                        reason: Some(format!("Stripe refused access to the account: {message}")),
                    });
                }
                let mut step = settle_charge(
                    &self.run(),
                    &ChargeOutcome::Credentials { status, message },
                    self.tries(),
                    now,
                );
                if was_executed {
                    // Still an attempt that may have charged: it stays unknown.
                    step.job_status = JobStatus::Unknown;
                }
                effects.extend(self.note_try(was_executed));
                effects.extend(self.settle(Some(step), false));
                effects
            }
            settled => {
                let stripe_account = self.stripe_account();
                let mut effects = self.record(&settled);
                if matches!(settled, ChargeOutcome::Succeeded { .. }) {
                    effects.push(Effect::RecomputePaid);
                    if let Some(stripe_account) = stripe_account {
                        effects.push(Effect::AccountReady {
                            stripe_account,
                            ready: true,
                            reason: None,
                        });
                    }
                }
                let step = settle_charge(&self.run(), &settled, 0, now);
                effects.extend(self.settle(Some(step), false));
                effects
            }
        }
    }

    /// The connected account the open attempt charges on.
    fn stripe_account(&self) -> Option<String> {
        match &self.attempt.ledger {
            Ledger::Open {
                request: Some(request),
                ..
            } => Some(request.stripe_account.clone()),
            _ => None,
        }
    }

    fn tries(&self) -> u32 {
        match &self.attempt.ledger {
            Ledger::Open { tries, .. } => *tries,
            _ => 0,
        }
    }

    /// No known outcome: the job waits, `unknown` while the attempt may have executed, else
    /// `retrying` (the same attempt is sent again: nothing ran).
    fn unknown(&mut self, reason: String, maybe_executed: bool, now: Timestamp) -> Vec<Effect> {
        let mut step = settle_charge(
            &self.run(),
            &ChargeOutcome::Unknown { reason },
            self.tries(),
            now,
        );
        if !maybe_executed {
            step.job_status = JobStatus::Retrying;
        }
        let mut effects = self.note_try(maybe_executed);
        effects.extend(self.settle(Some(step), false));
        effects
    }

    fn note_try(&mut self, executed: bool) -> Vec<Effect> {
        if let Ledger::Open {
            tries,
            maybe_executed,
            ..
        } = &mut self.attempt.ledger
        {
            *tries += 1;
            *maybe_executed |= executed;
            return vec![Effect::NoteTry {
                maybe_executed: executed,
            }];
        }
        Vec::new()
    }

    /// Records a settled outcome in the ledger and the machine.
    fn record(&mut self, outcome: &ChargeOutcome) -> Vec<Effect> {
        let (amount_cents, currency) = self.attempt.ledger.amount().unwrap_or((0, ""));
        self.attempt.ledger = Ledger::Settled {
            amount_cents,
            currency: currency.to_owned(),
            outcome: Some(outcome.clone()),
        };
        ledger_outcome(outcome)
            .map(Effect::Record)
            .into_iter()
            .collect()
    }

    fn settle(&mut self, step: Option<Step>, from_webhook: bool) -> Vec<Effect> {
        match step {
            Some(step) => {
                self.attempt.job_status = step.job_status;
                vec![Effect::Settle { step, from_webhook }]
            }
            None => vec![Effect::Ignore("nothing to settle".into())],
        }
    }

    fn webhook(&mut self, intent: &Intent, stripe_account: &str, now: Timestamp) -> Vec<Effect> {
        let outcome = intent_outcome(intent);
        if let ChargeOutcome::Unknown { reason } = &outcome {
            return vec![Effect::Ignore(format!("not a settled state: {reason}"))];
        }
        let (amount_cents, currency, sent_account, settled) = match &self.attempt.ledger {
            Ledger::NotStarted => {
                return vec![Effect::Ignore("no such attempt was started".into())];
            }
            Ledger::Open {
                request,
                amount_cents,
                currency,
                ..
            } => (
                *amount_cents,
                currency.clone(),
                request.as_ref().map(|r| r.stripe_account.clone()),
                None,
            ),
            Ledger::Settled {
                amount_cents,
                currency,
                outcome,
            } => (*amount_cents, currency.clone(), None, Some(outcome.clone())),
        };
        if intent.amount != amount_cents || !intent.currency.eq_ignore_ascii_case(&currency) {
            return vec![Effect::Ignore(format!(
                "the event is for {} {}, the attempt asked for {amount_cents} {currency}",
                intent.amount, intent.currency
            ))];
        }
        if sent_account.is_some_and(|sent| sent != stripe_account) {
            return vec![Effect::Ignore(
                "the event's Stripe account is not the one the attempt charged on".into(),
            )];
        }
        let success = matches!(outcome, ChargeOutcome::Succeeded { .. });
        match settled {
            Some(Some(ChargeOutcome::Succeeded { .. })) => {
                return vec![Effect::Ignore("the attempt already succeeded".into())];
            }
            Some(_) if !success => {
                return vec![Effect::Ignore("the attempt is already settled".into())];
            }
            _ => {}
        }
        let mut effects = self.record(&outcome);
        if success {
            effects.push(Effect::RecomputePaid);
        }
        // A success moves the job from wherever it is (money moved); a failure only settles a
        // job still waiting on this very attempt.
        let waiting = self.attempt.current
            && matches!(
                self.attempt.job_status,
                JobStatus::Unknown | JobStatus::Retrying
            );
        let moves = if success {
            !matches!(
                self.attempt.job_status,
                JobStatus::Succeeded | JobStatus::Running
            )
        } else {
            waiting
        };
        if moves {
            let step = settle_charge(&self.run(), &outcome, 0, now);
            effects.extend(self.settle(Some(step), true));
        }
        effects
    }

    fn run_error(&mut self, errors: u32) -> Vec<Effect> {
        if errors < RUN_ERRORS {
            return vec![Effect::Activity(run_error_entry(
                &self.attempt.job_id,
                self.attempt.number,
                errors,
                self.attempt.late,
            ))];
        }
        let key = match &self.attempt.ledger {
            Ledger::Open {
                request: Some(request),
                ..
            } => Some(request.idempotency_key.clone()),
            Ledger::Open { request: None, .. } => {
                Some(idempotency_key(&self.attempt.job_id, self.attempt.number))
            }
            _ => None,
        };
        let step = run_errors_exhausted(&self.run(), errors, key.as_deref());
        self.settle(Some(step), false)
    }
}

fn not_sent() -> LedgerOutcome {
    LedgerOutcome {
        outcome: OUTCOME_NOT_SENT,
        payment_intent_id: None,
        decline_code: None,
        message: Some("every send was turned away before Stripe executed it".into()),
    }
}

/// Reads a settled ledger row back (the inverse of [`ledger_outcome`]).
pub fn settled_ledger(
    amount_cents: i64,
    currency: String,
    outcome: &str,
    payment_intent_id: Option<String>,
    decline_code: Option<String>,
    message: Option<String>,
) -> Ledger {
    Ledger::Settled {
        outcome: recorded_outcome(
            outcome,
            payment_intent_id,
            decline_code,
            message,
            amount_cents,
        ),
        amount_cents,
        currency,
    }
}

#[cfg(test)]
mod tests;
