//! The payment state machine against a small model of Stripe, under random interleavings of
//! ticks, Stripe answers (success, soft and hard declines, answers lost after charging, saved and
//! unsaved 5xx, timeouts, rate limits, a revoked key), lagging search, and webhook deliveries
//! that are duplicated, reordered and late.
//!
//! The model shell stores only what the effects say (like the SQL shell does) and loads the
//! attempt from that store before each event, so a disagreement between the machine's state and
//! its effects shows up here.

use super::*;
use crate::charge::ActivityStatus;
use crate::rules::Source;
use proptest::prelude::*;
use std::collections::HashMap;

const JOB: &str = "job_1";
const PRICE: i64 = 12_500;
/// Stripe keeps idempotency keys for at least 24 hours; the model prunes them right then.
const KEY_LIFETIME_MINUTES: i64 = 24 * 60;

/// What the model Stripe does with the next request that reaches execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Succeed,
    SoftDecline,
    HardDecline,
    /// Charges, saves the success, and the answer is lost.
    SucceedThenDrop,
    /// Charges, saves and answers a 500 (indeterminate; the success webhook still fires).
    SucceedThen500,
    /// Saves a 500 without charging.
    ServerErrorSaved,
    /// No answer, nothing executed.
    Timeout,
    /// 429, nothing executed.
    RateLimit,
    /// 401, nothing executed.
    Unauthorized,
}

fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        3 => Just(Fate::Succeed),
        2 => Just(Fate::SoftDecline),
        1 => Just(Fate::HardDecline),
        2 => Just(Fate::SucceedThenDrop),
        2 => Just(Fate::SucceedThen500),
        1 => Just(Fate::ServerErrorSaved),
        2 => Just(Fate::Timeout),
        1 => Just(Fate::RateLimit),
        1 => Just(Fate::Unauthorized),
    ]
}

#[derive(Debug, Clone, Copy)]
enum Action {
    Tick,
    /// A tick whose host dies right after its first Stripe request left: Stripe executes it,
    /// but nothing after the send is stored.
    CrashAfterSend,
    Advance(i64),
    Deliver(usize),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        5 => Just(Action::Tick),
        1 => Just(Action::CrashAfterSend),
        4 => (1i64..30).prop_map(Action::Advance),
        1 => (30i64..6000).prop_map(Action::Advance),
        2 => any::<usize>().prop_map(Action::Deliver),
    ]
}

#[derive(Debug, Clone)]
struct ModelIntent {
    json: String,
    succeeded: bool,
    created: Timestamp,
}

#[derive(Default)]
struct Stripe {
    /// Saved answers by idempotency key: (status, body).
    /// Saved answers by idempotency key: (status, body, saved at). Stripe prunes keys after
    /// 24 hours, and then the same key executes anew.
    saved: HashMap<String, (u16, String, Timestamp)>,
    intents: Vec<ModelIntent>,
    /// Webhook events: the intent JSON at the time.
    events: Vec<String>,
    fates: Vec<Fate>,
    next_fate: usize,
    search_lag_minutes: i64,
}

impl Stripe {
    fn fate(&mut self) -> Fate {
        let fate = self.fates[self.next_fate % self.fates.len()];
        self.next_fate += 1;
        fate
    }

    fn intent(&mut self, form: &str, fate: Fate, now: Timestamp) -> String {
        let pairs: HashMap<String, String> = form_urlencoded::parse(form.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let amount: i64 = pairs["amount"].parse().expect("amount");
        let id = format!("pi_{}", self.intents.len() + 1);
        let succeeded = matches!(
            fate,
            Fate::Succeed | Fate::SucceedThenDrop | Fate::SucceedThen500
        );
        let (status, error) = match fate {
            _ if succeeded => ("succeeded", "null".to_owned()),
            Fate::HardDecline => (
                "requires_payment_method",
                r#"{"type":"card_error","code":"card_declined","decline_code":"stolen_card","message":"declined"}"#.to_owned(),
            ),
            _ => (
                "requires_payment_method",
                r#"{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds","message":"declined"}"#.to_owned(),
            ),
        };
        let json = format!(
            r#"{{"id":"{id}","object":"payment_intent","status":"{status}","amount":{amount},"amount_received":{},"currency":"{}","metadata":{{"mio_job_id":"{}","mio_attempt":"{}"}},"last_payment_error":{error}}}"#,
            if succeeded { amount } else { 0 },
            pairs["currency"],
            pairs["metadata[mio_job_id]"],
            pairs["metadata[mio_attempt]"],
        );
        self.intents.push(ModelIntent {
            json: json.clone(),
            succeeded,
            created: now,
        });
        self.events.push(json.clone());
        json
    }

    fn send(&mut self, request: &SentRequest, now: Timestamp) -> Reply {
        self.saved
            .retain(|_, (_, _, at)| at.plus_minutes(KEY_LIFETIME_MINUTES) > now);
        if let Some((status, body, _)) = self.saved.get(&request.idempotency_key) {
            return Reply::Answered {
                status: *status,
                body: body.clone(),
            };
        }
        let fate = self.fate();
        let decline = |intent: &str| {
            format!(
                r#"{{"error":{{"type":"card_error","code":"card_declined","decline_code":"{}","message":"declined","payment_intent":{intent}}}}}"#,
                if intent.contains("stolen_card") {
                    "stolen_card"
                } else {
                    "insufficient_funds"
                }
            )
        };
        let (saved, reply) = match fate {
            Fate::Succeed | Fate::SucceedThenDrop | Fate::SucceedThen500 => {
                let intent = self.intent(&request.form_body, fate, now);
                match fate {
                    Fate::Succeed => ((200, intent.clone()), Some((200, intent))),
                    Fate::SucceedThenDrop => ((200, intent), None),
                    _ => {
                        let error = r#"{"error":{"type":"api_error","message":"oops"}}"#;
                        ((500, error.to_owned()), Some((500, error.to_owned())))
                    }
                }
            }
            Fate::SoftDecline | Fate::HardDecline => {
                let intent = self.intent(&request.form_body, fate, now);
                let body = decline(&intent);
                ((402, body.clone()), Some((402, body)))
            }
            Fate::ServerErrorSaved => {
                let error = r#"{"error":{"type":"api_error","message":"oops"}}"#.to_owned();
                ((500, error.clone()), Some((500, error)))
            }
            Fate::Timeout => {
                return Reply::NoAnswer {
                    reason: "timed out".into(),
                };
            }
            Fate::RateLimit => {
                return Reply::Answered {
                    status: 429,
                    body: r#"{"error":{"type":"invalid_request_error","code":"rate_limit"}}"#
                        .into(),
                };
            }
            Fate::Unauthorized => {
                return Reply::Answered {
                    status: 401,
                    body:
                        r#"{"error":{"type":"invalid_request_error","message":"Invalid API Key"}}"#
                            .into(),
                };
            }
        };
        self.saved
            .insert(request.idempotency_key.clone(), (saved.0, saved.1, now));
        match reply {
            Some((status, body)) => Reply::Answered { status, body },
            None => Reply::NoAnswer {
                reason: "connection dropped".into(),
            },
        }
    }

    fn search(&self, now: Timestamp) -> Reply {
        let visible: Vec<&str> = self
            .intents
            .iter()
            .filter(|i| i.created.plus_minutes(self.search_lag_minutes) <= now)
            .map(|i| i.json.as_str())
            .collect();
        Reply::Answered {
            status: 200,
            body: format!(
                r#"{{"object":"search_result","data":[{}]}}"#,
                visible.join(",")
            ),
        }
    }

    fn successes(&self) -> usize {
        self.intents.iter().filter(|i| i.succeeded).count()
    }
}

/// One attempt's stored row, as the SQL shell keeps it.
#[derive(Debug, Clone)]
struct Row {
    request: SentRequest,
    started_at: Timestamp,
    tries: u32,
    maybe_executed: bool,
    in_flight: bool,
    outcome: Option<LedgerOutcome>,
}

/// The model shell: the job row, the ledger rows, the activity.
struct Shell {
    stripe: Stripe,
    status: JobStatus,
    attempt: u32,
    next_at: Timestamp,
    rows: HashMap<u32, Row>,
    paid: i64,
    activity: Vec<(String, ActivityStatus)>,
    now: Timestamp,
    started: Vec<u32>,
}

fn decision() -> Decision {
    Decision {
        enabled: true,
        source: Source::Account,
        timing: None,
        timing_source: Source::Account,
        explanation: "on by the account rule".into(),
    }
}

impl Shell {
    fn load(&self, number: u32) -> Attempt {
        let ledger = match self.rows.get(&number) {
            None => Ledger::NotStarted,
            Some(row) => match &row.outcome {
                None => Ledger::Open {
                    request: Some(row.request.clone()),
                    amount_cents: row.request.amount_cents,
                    currency: row.request.currency.clone(),
                    started_at: row.started_at,
                    tries: row.tries,
                    maybe_executed: row.maybe_executed || row.in_flight,
                },
                Some(outcome) => settled_ledger(
                    row.request.amount_cents,
                    row.request.currency.clone(),
                    outcome.outcome,
                    outcome.payment_intent_id.clone(),
                    outcome.decline_code.clone(),
                    outcome.message.clone(),
                ),
            },
        };
        Attempt {
            job_id: JOB.into(),
            number,
            current: number == self.attempt,
            job_status: self.status,
            late: false,
            ledger,
        }
    }

    /// Carries out `effects` for attempt `number`; returns the follow-up event, if any.
    fn apply(&mut self, number: u32, effects: Vec<Effect>) -> Option<Event<'static>> {
        let mut next = None;
        for effect in effects {
            match effect {
                Effect::StartAttempt(request) => {
                    for (n, row) in &self.rows {
                        assert!(
                            *n >= number || row.outcome.is_some(),
                            "attempt {number} started while attempt {n} is open"
                        );
                    }
                    assert!(!self.rows.contains_key(&number), "attempt started twice");
                    self.started.push(number);
                    self.rows.insert(
                        number,
                        Row {
                            request,
                            started_at: self.now,
                            tries: 0,
                            maybe_executed: false,
                            in_flight: true,
                            outcome: None,
                        },
                    );
                }
                Effect::Send(request) => {
                    let stored = &self.rows[&number].request;
                    assert_eq!(&request, stored, "a resend differs from the stored request");
                    next = Some(Event::Answer(self.stripe.send(&request, self.now)));
                }
                Effect::Lookup { .. } => {
                    next = Some(Event::LookupAnswer(self.stripe.search(self.now)));
                }
                Effect::Record(outcome) => {
                    let row = self.rows.get_mut(&number).expect("a row to record on");
                    let was_success = row
                        .outcome
                        .as_ref()
                        .is_some_and(|o| o.outcome == "succeeded");
                    if !was_success && (row.outcome.is_none() || outcome.outcome == "succeeded") {
                        row.outcome = Some(outcome);
                    }
                }
                Effect::NoteTry { maybe_executed } => {
                    let row = self.rows.get_mut(&number).expect("a row");
                    row.tries += 1;
                    row.maybe_executed |= maybe_executed;
                    row.in_flight = false;
                }
                Effect::RecomputePaid => {
                    self.paid = self
                        .rows
                        .values()
                        .filter(|r| r.outcome.as_ref().is_some_and(|o| o.outcome == "succeeded"))
                        .map(|r| r.request.amount_cents)
                        .sum();
                }
                Effect::Settle { step, .. } => {
                    self.status = step.job_status;
                    self.next_at = step.next_attempt_at.unwrap_or(self.now);
                    self.activity
                        .push((step.activity.dedupe_key, step.activity.status));
                }
                Effect::Activity(entry) => self.activity.push((entry.dedupe_key, entry.status)),
                Effect::Sending => {
                    self.rows.get_mut(&number).expect("a row").in_flight = true;
                }
                Effect::AccountReady { .. } | Effect::Ignore(_) => {}
            }
        }
        next
    }

    /// A claim followed by one run, as the tick does it.
    fn tick(&mut self) {
        self.run_tick(false);
    }

    /// A tick that dies right after its Stripe request left, before anything else is stored;
    /// its lease then expires and the job is claimable again.
    fn crash_after_send(&mut self) {
        self.run_tick(true);
    }

    fn run_tick(&mut self, crash: bool) {
        // `running` here is a crashed run whose lease expired: claimable, same attempt.
        let due = matches!(
            self.status,
            JobStatus::Scheduled | JobStatus::Retrying | JobStatus::Unknown | JobStatus::Running
        ) && self.next_at <= self.now;
        if !due {
            return;
        }
        // The claim's guard: a new attempt only when the current one is not open.
        let open = self
            .rows
            .get(&self.attempt)
            .is_some_and(|r| r.outcome.is_none());
        if self.status == JobStatus::Scheduled || (self.status == JobStatus::Retrying && !open) {
            self.attempt += 1;
        }
        self.status = JobStatus::Running;
        let balance = PRICE - self.paid;
        let check = if balance <= 0 {
            Precheck::Skip {
                reason: "already paid".into(),
            }
        } else {
            Precheck::Charge {
                amount_cents: balance,
                currency: "cad".into(),
            }
        };
        let request = ChargeRequest {
            amount_cents: balance,
            currency: "cad".into(),
            stripe_customer: "cus_1".into(),
            payment_method: "pm_1".into(),
            stripe_account: "acct_1".into(),
            account_id: "acc_1".into(),
            booking_id: "bkg_1".into(),
            job_id: JOB.into(),
            attempt: self.attempt,
        };
        let decision = decision();
        let number = self.attempt;
        let mut machine = Machine::new(self.load(number));
        let effects = machine.handle(
            Event::TickDue {
                check: &check,
                request: (balance > 0).then_some(&request),
                decision: &decision,
                balance_cents: Some(balance),
                currency: Some("cad"),
            },
            self.now,
        );
        let mut next = self.apply(number, effects);
        if crash && matches!(next, Some(Event::Answer(_))) {
            // The request reached Stripe; the answer and everything after it are lost. The job
            // stays `running` under a lease that expires in two minutes.
            self.next_at = self.now.plus_minutes(2);
            return;
        }
        while let Some(event) = next.take() {
            let effects = machine.handle(event, self.now);
            next = self.apply(number, effects);
        }
        assert_ne!(
            self.status,
            JobStatus::Running,
            "a run left its job running"
        );
    }

    fn deliver(&mut self, index: usize) {
        if self.stripe.events.is_empty() {
            return;
        }
        let json = self.stripe.events[index % self.stripe.events.len()].clone();
        let intent: Intent = serde_json::from_str(&json).expect("intent json");
        let (_, number) = intent.attempt_ref().expect("our metadata");
        let mut machine = Machine::new(self.load(number));
        let effects = machine.handle(
            Event::Webhook {
                intent: &intent,
                stripe_account: "acct_1",
            },
            self.now,
        );
        assert!(
            self.apply(number, effects).is_none(),
            "a webhook sends nothing"
        );
    }

    fn ledger_successes(&self) -> usize {
        self.rows
            .values()
            .filter(|r| r.outcome.as_ref().is_some_and(|o| o.outcome == "succeeded"))
            .count()
    }
}

fn start() -> Timestamp {
    Timestamp::parse("2026-03-01T09:00:00Z").expect("valid")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn a_job_charges_at_most_once_never_overlaps_attempts_and_always_ends(
        fates in proptest::collection::vec(fate(), 1..12),
        actions in proptest::collection::vec(action(), 0..120),
        lag in 0i64..600,
        final_order in any::<bool>(),
    ) {
        let mut shell = Shell {
            stripe: Stripe { fates, search_lag_minutes: lag, ..Stripe::default() },
            status: JobStatus::Scheduled,
            attempt: 0,
            next_at: start(),
            rows: HashMap::new(),
            paid: 0,
            activity: Vec::new(),
            now: start(),
            started: Vec::new(),
        };
        for action in actions {
            match action {
                Action::Tick => shell.tick(),
                Action::CrashAfterSend => shell.crash_after_send(),
                Action::Advance(minutes) => shell.now = shell.now.plus_minutes(minutes),
                Action::Deliver(index) => shell.deliver(index),
            }
            prop_assert!(shell.stripe.successes() <= 1, "Stripe charged twice");
            prop_assert!(shell.ledger_successes() <= shell.stripe.successes());
        }
        // Every event arrives at last (in either order, twice), and time runs on.
        let count = shell.stripe.events.len();
        for round in 0..2 {
            for i in 0..count {
                let index = if final_order ^ (round == 1) { i } else { count - 1 - i };
                shell.deliver(index);
            }
        }
        for _ in 0..20 {
            shell.now = shell.now.plus_minutes(80 * 60);
            shell.tick();
            let count = shell.stripe.events.len();
            for i in 0..count {
                shell.deliver(i);
            }
        }
        prop_assert!(shell.stripe.successes() <= 1, "Stripe charged twice");
        prop_assert!(
            matches!(shell.status, JobStatus::Succeeded | JobStatus::Failed | JobStatus::Skipped),
            "the job did not end: {:?}", shell.status
        );
        prop_assert_eq!(shell.ledger_successes(), shell.stripe.successes(),
            "a charge Stripe made is missing from the ledger (or the other way round)");
        if shell.stripe.successes() == 1 {
            prop_assert_eq!(shell.status, JobStatus::Succeeded);
            prop_assert_eq!(shell.paid, PRICE);
        } else {
            prop_assert_ne!(shell.status, JobStatus::Succeeded);
            prop_assert_eq!(shell.paid, 0);
        }
        let successes = shell.activity.iter().filter(|(_, s)| *s == ActivityStatus::Success);
        let keys: std::collections::BTreeSet<&String> = successes.map(|(k, _)| k).collect();
        prop_assert!(keys.len() <= 1, "two different success entries: {:?}", keys);
        // Attempts start in order, one at a time.
        let expected: Vec<u32> = (1..=u32::try_from(shell.started.len()).unwrap_or(0)).collect();
        prop_assert_eq!(&shell.started, &expected);
    }
}

fn sent() -> SentRequest {
    SentRequest {
        stripe_account: "acct_1".into(),
        idempotency_key: "mio-job_1-attempt-1".into(),
        form_body: "amount=12500&currency=cad".into(),
        amount_cents: PRICE,
        currency: "cad".into(),
    }
}

fn open(started_at: Timestamp, tries: u32, maybe_executed: bool) -> Attempt {
    Attempt {
        job_id: JOB.into(),
        number: 1,
        current: true,
        job_status: JobStatus::Running,
        late: false,
        ledger: Ledger::Open {
            request: Some(sent()),
            amount_cents: PRICE,
            currency: "cad".into(),
            started_at,
            tries,
            maybe_executed,
        },
    }
}

fn tick_due(machine: &mut Machine, now: Timestamp) -> Vec<Effect> {
    static CHECK: std::sync::OnceLock<(Precheck, Decision)> = std::sync::OnceLock::new();
    let (check, decision) = CHECK.get_or_init(|| {
        (
            Precheck::Charge {
                amount_cents: PRICE,
                currency: "cad".into(),
            },
            decision(),
        )
    });
    machine.handle(
        Event::TickDue {
            check,
            request: None,
            decision,
            balance_cents: Some(PRICE),
            currency: Some("cad"),
        },
        now,
    )
}

#[test]
fn an_unknown_attempt_is_resent_byte_for_byte_and_looked_up_in_turn() {
    let now = start();
    let mut machine = Machine::new(open(now, 1, true));
    assert_eq!(
        tick_due(&mut machine, now.plus_minutes(5)),
        vec![Effect::Sending, Effect::Send(sent())]
    );
    let mut machine = Machine::new(open(now, 2, true));
    assert!(matches!(
        tick_due(&mut machine, now.plus_minutes(5)).as_slice(),
        [Effect::Lookup { stripe_account, .. }] if stripe_account == "acct_1"
    ));
    // Past the key's lifetime, never resent.
    let mut machine = Machine::new(open(now, 1, true));
    assert!(matches!(
        tick_due(&mut machine, now.plus_minutes(RESEND_WITHIN_MINUTES + 1)).as_slice(),
        [Effect::Lookup { .. }]
    ));
}

#[test]
fn not_found_is_not_proof_and_the_window_ends_in_check_stripe() {
    let now = start();
    let mut machine = Machine::new(open(now, 2, true));
    tick_due(&mut machine, now.plus_minutes(10));
    let effects = machine.handle(
        Event::LookupAnswer(Reply::Answered {
            status: 200,
            body: r#"{"object":"search_result","data":[]}"#.into(),
        }),
        now.plus_minutes(10),
    );
    assert!(effects.iter().all(|e| !matches!(e, Effect::Record(_))));
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Settle { step, .. } if step.job_status == JobStatus::Unknown
    )));
    let mut machine = Machine::new(open(now, 2, true));
    let effects = tick_due(&mut machine, now.plus_minutes(GIVE_UP_AFTER_MINUTES + 1));
    match effects.as_slice() {
        [Effect::Settle { step, .. }] => {
            assert_eq!(step.job_status, JobStatus::Failed);
            assert!(
                step.activity
                    .summary
                    .contains("check Stripe before charging again")
            );
            assert_eq!(
                step.activity.details.idempotency_key.as_deref(),
                Some("mio-job_1-attempt-1")
            );
        }
        other => panic!("expected the give-up, got {other:?}"),
    }
}

#[test]
fn an_idempotency_error_on_a_resend_is_unknown_never_a_decline() {
    let now = start();
    let mut machine = Machine::new(open(now, 1, true));
    tick_due(&mut machine, now.plus_minutes(2));
    let effects = machine.handle(
        Event::Answer(Reply::Answered {
            status: 400,
            body: r#"{"error":{"type":"idempotency_error","message":"Keys for idempotent requests can only be used with the same parameters they were first used with."}}"#.into(),
        }),
        now.plus_minutes(2),
    );
    assert!(effects.iter().all(|e| !matches!(e, Effect::Record(_))));
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Settle { step, .. } if step.job_status == JobStatus::Unknown
    )));
}

#[test]
fn a_revoked_connected_account_waits_without_blaming_the_card_and_marks_miopay_not_ready() {
    let now = start();
    let mut machine = Machine::new(open(now, 0, false));
    tick_due(&mut machine, now);
    let effects = machine.handle(
        Event::Answer(Reply::Answered {
            status: 403,
            body: r#"{"error":{"type":"invalid_request_error","code":"account_invalid","message":"no access"}}"#.into(),
        }),
        now,
    );
    assert!(effects.contains(&Effect::AccountReady {
        stripe_account: "acct_1".into(),
        ready: false,
        reason: Some("Stripe refused access to the account: no access".into()),
    }));
    match effects.last() {
        Some(Effect::Settle { step, .. }) => {
            assert_eq!(step.job_status, JobStatus::Retrying);
            assert_eq!(step.activity.status, ActivityStatus::Retrying);
            assert!(step.activity.summary.contains("not the customer's card"));
        }
        other => panic!("expected a settle, got {other:?}"),
    }
}

#[test]
fn a_failure_event_after_a_success_changes_nothing() {
    let success = Attempt {
        ledger: Ledger::Settled {
            amount_cents: PRICE,
            currency: "cad".into(),
            outcome: Some(ChargeOutcome::Succeeded {
                payment_intent: "pi_1".into(),
                amount_cents: PRICE,
            }),
        },
        job_status: JobStatus::Succeeded,
        ..open(start(), 0, true)
    };
    let failed: Intent = serde_json::from_str(
        r#"{"id":"pi_1","status":"requires_payment_method","amount":12500,"currency":"cad",
        "metadata":{"mio_job_id":"job_1","mio_attempt":"1"},
        "last_payment_error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds"}}"#,
    )
    .expect("intent");
    let mut machine = Machine::new(success);
    let effects = machine.handle(
        Event::Webhook {
            intent: &failed,
            stripe_account: "acct_1",
        },
        start(),
    );
    assert!(matches!(effects.as_slice(), [Effect::Ignore(_)]));
}

#[test]
fn an_event_for_another_amount_or_account_is_ignored() {
    let intent: Intent = serde_json::from_str(
        r#"{"id":"pi_1","status":"succeeded","amount":99,"amount_received":99,"currency":"cad",
        "metadata":{"mio_job_id":"job_1","mio_attempt":"1"}}"#,
    )
    .expect("intent");
    let mut machine = Machine::new(open(start(), 0, true));
    assert!(matches!(
        machine
            .handle(
                Event::Webhook {
                    intent: &intent,
                    stripe_account: "acct_1"
                },
                start()
            )
            .as_slice(),
        [Effect::Ignore(_)]
    ));
    let intent: Intent = serde_json::from_str(
        r#"{"id":"pi_1","status":"succeeded","amount":12500,"amount_received":12500,"currency":"cad",
        "metadata":{"mio_job_id":"job_1","mio_attempt":"1"}}"#,
    )
    .expect("intent");
    let mut machine = Machine::new(open(start(), 0, true));
    assert!(matches!(
        machine
            .handle(
                Event::Webhook {
                    intent: &intent,
                    stripe_account: "acct_other"
                },
                start()
            )
            .as_slice(),
        [Effect::Ignore(_)]
    ));
}

#[test]
fn runs_that_keep_stopping_end_failed_after_the_bound() {
    let now = start();
    let mut machine = Machine::new(open(now, 0, true));
    assert!(matches!(
        machine.handle(Event::RunError { errors: 1 }, now).as_slice(),
        [Effect::Activity(entry)] if entry.status == ActivityStatus::Retrying
    ));
    match machine
        .handle(Event::RunError { errors: RUN_ERRORS }, now)
        .as_slice()
    {
        [Effect::Settle { step, .. }] => {
            assert_eq!(step.job_status, JobStatus::Failed);
            assert!(step.activity.summary.contains("mio-job_1-attempt-1"));
        }
        other => panic!("expected a failed settle, got {other:?}"),
    }
}

#[test]
fn a_canceled_payment_intent_settles_an_open_attempt_as_failed_without_a_retry() {
    let canceled: Intent = serde_json::from_str(
        r#"{"id":"pi_1","status":"canceled","amount":12500,"currency":"cad",
        "metadata":{"mio_job_id":"job_1","mio_attempt":"1"}}"#,
    )
    .expect("intent");
    let waiting = Attempt {
        job_status: JobStatus::Unknown,
        ..open(start(), 1, true)
    };
    let mut machine = Machine::new(waiting);
    let effects = machine.handle(
        Event::Webhook {
            intent: &canceled,
            stripe_account: "acct_1",
        },
        start(),
    );
    match effects.as_slice() {
        [
            Effect::Record(record),
            Effect::Settle { step, from_webhook },
        ] => {
            assert_eq!(record.outcome, "canceled");
            assert!(*from_webhook);
            assert_eq!(step.job_status, JobStatus::Failed);
            assert_eq!(step.next_attempt_at, None);
        }
        other => panic!("expected a record and a settle, got {other:?}"),
    }
}
