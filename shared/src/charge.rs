//! Running one payment job: the re-check right before charging, what each Stripe outcome does to
//! the job, and the activity entry that tells the business about it.
//!
//! Pure: the tick loads the inputs, calls these functions with `now`, and stores what comes back.
//! Not here: HTTP, SQL, the clock; the Stripe wire format is [`crate::stripe`]'s.

use serde::Serialize;

use crate::booking::BookingStatus;
use crate::plan::JobStatus;
use crate::rules::{Decision, Source};
use crate::stripe::{
    ChargeOutcome, SOFT_DECLINE_RETRY_MINUTES, next_soft_decline_retry, unknown_backoff_minutes,
};
use crate::time::Timestamp;

/// What the tick knows about a payment job's booking, customer and account right before charging.
#[derive(Debug, Clone, Copy)]
pub struct PrecheckInput<'a> {
    /// The booking's status now (a deleted customer's booking reads as cancelled).
    pub booking_status: BookingStatus,
    /// The booking's price.
    pub amount_cents: i64,
    /// What has been collected so far (the sum of succeeded attempts).
    pub paid_cents: i64,
    /// The booking's currency.
    pub currency: &'a str,
    /// The effective payment automation for this customer and booking, now.
    pub decision: &'a Decision,
    /// Whether the account has MioPay on.
    pub miopay_enabled: bool,
    /// The account's Stripe Connect account (`acct_…`).
    pub stripe_account: Option<&'a str>,
    /// Why that account cannot charge at all, when Stripe said so (charges disabled, or the
    /// platform disconnected): the run fails without sending anything.
    pub charges_blocked: Option<&'a str>,
    /// The customer's Stripe id (`cus_…`).
    pub stripe_customer: Option<&'a str>,
    /// The customer's primary card (`pm_…`).
    pub payment_method: Option<&'a str>,
}

/// The verdict of [`precheck`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precheck {
    /// Charge this much: the outstanding balance, never more.
    Charge {
        /// The balance due.
        amount_cents: i64,
        /// Lower-case ISO 4217.
        currency: String,
    },
    /// Nothing to do any more (cancelled, paid, automation off): the job is skipped.
    Skip {
        /// Why, for the activity entry.
        reason: String,
    },
    /// The charge cannot be made (no MioPay, no card): the job fails.
    Fail {
        /// Why, for the activity entry.
        reason: String,
    },
}

/// Re-checks a payment job right before charging (DESIGN §3: booking still open, balance still
/// due, automation still on, and the means to charge present).
pub fn precheck(input: &PrecheckInput<'_>) -> Precheck {
    let skip = |reason: String| Precheck::Skip { reason };
    let fail = |reason: &str| Precheck::Fail {
        reason: reason.to_owned(),
    };
    if input.booking_status == BookingStatus::Cancelled {
        return skip("booking cancelled".into());
    }
    let balance = input.amount_cents.saturating_sub(input.paid_cents);
    if balance <= 0 {
        return skip("already paid".into());
    }
    if !input.decision.enabled {
        return skip(format!("payment automation {}", input.decision.explanation));
    }
    let has = |value: Option<&str>| value.is_some_and(|v| !v.is_empty());
    if !input.miopay_enabled || !has(input.stripe_account) {
        return fail("MioPay is not enabled for this account");
    }
    if let Some(reason) = input.charges_blocked {
        return Precheck::Fail {
            reason: format!("MioPay cannot charge: {reason}"),
        };
    }
    if !has(input.stripe_customer) || !has(input.payment_method) {
        return fail("no primary card");
    }
    Precheck::Charge {
        amount_cents: balance,
        currency: input.currency.to_owned(),
    }
}

/// Why automated charges of an account cannot go through now, or `None` when MioPay is ready:
/// on, with a connected account, which has not refused the platform's access since the last
/// request it accepted (`refusal`).
pub fn miopay_not_ready<'a>(
    enabled: bool,
    stripe_account: Option<&str>,
    refusal: Option<&'a str>,
) -> Option<&'a str> {
    if !enabled {
        Some("MioPay is off")
    } else if stripe_account.is_none_or(str::is_empty) {
        Some("no Stripe account is set")
    } else {
        refusal
    }
}

/// An outcome as the ledger (`payment_attempts`) records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerOutcome {
    /// `succeeded`, `declined`, `authentication_required`, `rejected` or `canceled`.
    pub outcome: &'static str,
    /// `pi_…`, when known.
    pub payment_intent_id: Option<String>,
    /// The decline code (or Stripe's error code for a rejection).
    pub decline_code: Option<String>,
    /// Stripe's message.
    pub message: Option<String>,
}

/// How `outcome` is recorded in the ledger; `None` for an unknown one (nothing to record yet).
pub fn ledger_outcome(outcome: &ChargeOutcome) -> Option<LedgerOutcome> {
    Some(match outcome {
        ChargeOutcome::Succeeded { payment_intent, .. } => LedgerOutcome {
            outcome: "succeeded",
            payment_intent_id: Some(payment_intent.clone()),
            decline_code: None,
            message: None,
        },
        ChargeOutcome::AuthenticationRequired {
            payment_intent,
            message,
        } => LedgerOutcome {
            outcome: "authentication_required",
            payment_intent_id: payment_intent.clone(),
            decline_code: Some("authentication_required".into()),
            message: Some(message.clone()),
        },
        ChargeOutcome::Declined {
            payment_intent,
            decline_code,
            message,
            ..
        } => LedgerOutcome {
            outcome: "declined",
            payment_intent_id: payment_intent.clone(),
            decline_code: Some(decline_code.clone()),
            message: Some(message.clone()),
        },
        ChargeOutcome::Rejected { code, message } => LedgerOutcome {
            outcome: "rejected",
            payment_intent_id: None,
            decline_code: code.clone(),
            message: Some(message.clone()),
        },
        ChargeOutcome::Canceled { payment_intent } => LedgerOutcome {
            outcome: "canceled",
            payment_intent_id: Some(payment_intent.clone()),
            decline_code: None,
            message: Some("the PaymentIntent was canceled".into()),
        },
        ChargeOutcome::Unknown { .. }
        | ChargeOutcome::NotExecuted { .. }
        | ChargeOutcome::Credentials { .. } => return None,
    })
}

/// The outcome a ledger row recorded (the inverse of [`ledger_outcome`]); `None` for a value
/// that is not a settled charge outcome (`not_sent`, or `abandoned` from older versions).
pub fn recorded_outcome(
    outcome: &str,
    payment_intent_id: Option<String>,
    decline_code: Option<String>,
    message: Option<String>,
    amount_cents: i64,
) -> Option<ChargeOutcome> {
    let message = message.unwrap_or_default();
    Some(match outcome {
        "succeeded" => ChargeOutcome::Succeeded {
            payment_intent: payment_intent_id?,
            amount_cents,
        },
        "authentication_required" => ChargeOutcome::AuthenticationRequired {
            payment_intent: payment_intent_id,
            message,
        },
        "declined" => {
            let decline_code = decline_code.unwrap_or_else(|| "card_declined".into());
            ChargeOutcome::Declined {
                payment_intent: payment_intent_id,
                soft: crate::stripe::is_soft_decline(&decline_code),
                decline_code,
                message,
            }
        }
        "rejected" => ChargeOutcome::Rejected {
            code: decline_code,
            message,
        },
        "canceled" => ChargeOutcome::Canceled {
            payment_intent: payment_intent_id?,
        },
        _ => return None,
    })
}

/// How an activity entry reads to the business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityStatus {
    /// The automation did its job.
    Success,
    /// It could not, and will not try again by itself.
    Failed,
    /// It was no longer needed.
    Skipped,
    /// It will try again.
    Retrying,
}

impl ActivityStatus {
    /// The storage and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityStatus::Success => "success",
            ActivityStatus::Failed => "failed",
            ActivityStatus::Skipped => "skipped",
            ActivityStatus::Retrying => "retrying",
        }
    }
}

/// The `details` of a payment activity entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentDetails {
    /// The amount charged or meant to be charged.
    pub amount_cents: Option<i64>,
    /// Lower-case ISO 4217.
    pub currency: Option<String>,
    /// `pi_…`, when Stripe made one.
    pub payment_intent_id: Option<String>,
    /// Stripe's decline code, for a decline.
    pub decline_code: Option<String>,
    /// Stripe's message, or why nothing was charged.
    pub message: Option<String>,
    /// Which attempt of the job this was (1-based).
    pub attempt: u32,
    /// The effective rule, in words.
    pub rule: String,
    /// Where the effective rule came from; `None` when the run stopped before reading it.
    pub rule_source: Option<Source>,
    /// Whether the job ran later than its rule asked (the booking was made or moved inside the
    /// rule's window).
    pub late: bool,
    /// When the job runs again, if it does.
    pub next_attempt_at: Option<Timestamp>,
    /// The attempt's `Idempotency-Key`, where a person may need it to look the payment up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// One activity entry, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityEntry {
    /// How it reads.
    pub status: ActivityStatus,
    /// One sentence.
    pub summary: String,
    /// The structured details.
    pub details: PaymentDetails,
    /// Unique per job, attempt and outcome: writing the same entry twice stores it once.
    pub dedupe_key: String,
}

/// What to do with a job after one run, and what to tell the business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The job's next state: succeeded, failed, skipped, retrying or unknown.
    pub job_status: JobStatus,
    /// When it runs again (retrying, unknown).
    pub next_attempt_at: Option<Timestamp>,
    /// The failure or reason kept on the job row.
    pub last_error: Option<String>,
    /// The entry to store.
    pub activity: ActivityEntry,
}

/// The run a [`Step`] is about.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    /// `job_…`.
    pub job_id: &'a str,
    /// The job's attempt (1-based).
    pub attempt: u32,
    /// The amount of the attempt, if one was made or meant.
    pub amount_cents: Option<i64>,
    /// Its currency.
    pub currency: Option<&'a str>,
    /// The effective payment automation; `None` when a webhook settles the run (the rules were
    /// not read).
    pub decision: Option<&'a Decision>,
    /// Whether the job ran late.
    pub late: bool,
}

impl Run<'_> {
    fn details(&self) -> PaymentDetails {
        PaymentDetails {
            amount_cents: self.amount_cents,
            currency: self.currency.map(str::to_owned),
            payment_intent_id: None,
            decline_code: None,
            message: None,
            attempt: self.attempt,
            rule: self.decision.map_or_else(
                || "not evaluated: settled from Stripe's report of the payment".to_owned(),
                |d| d.explanation.clone(),
            ),
            rule_source: self.decision.map(|d| d.source.clone()),
            late: self.late,
            next_attempt_at: None,
            idempotency_key: None,
        }
    }

    fn money(&self) -> String {
        match (self.amount_cents, self.currency) {
            (Some(cents), Some(currency)) => format_money(cents, currency),
            _ => "the balance".to_owned(),
        }
    }

    fn key(&self, what: &str) -> String {
        format!("{}:{}:{what}", self.job_id, self.attempt)
    }

    fn step(
        &self,
        job_status: JobStatus,
        status: ActivityStatus,
        summary: String,
        details: PaymentDetails,
        dedupe_key: String,
    ) -> Step {
        Step {
            job_status,
            next_attempt_at: details.next_attempt_at,
            last_error: match status {
                ActivityStatus::Success => None,
                _ => Some(summary.clone()),
            },
            activity: ActivityEntry {
                status,
                summary,
                details,
                dedupe_key,
            },
        }
    }
}

/// The entry for a run that stopped before it could settle (its booking's stored data could not
/// be read, or storage failed mid-run): the `n`-th such stop (1-based) of this attempt. The job
/// keeps its lease and the same attempt runs again once the lease expires, so it reads as
/// retrying. The cause is logged, never shown: it may be an internal error.
pub fn run_error_entry(job_id: &str, attempt: u32, n: u32, late: bool) -> ActivityEntry {
    ActivityEntry {
        status: ActivityStatus::Retrying,
        summary: "The payment run stopped before it finished and will run again; nothing was \
                  recorded as charged by this run."
            .to_owned(),
        details: PaymentDetails {
            amount_cents: None,
            currency: None,
            payment_intent_id: None,
            decline_code: None,
            message: Some("an internal error stopped the run; it is logged".to_owned()),
            attempt,
            rule: "not evaluated: the run stopped before the rules were read".to_owned(),
            rule_source: None,
            late,
            next_attempt_at: None,
            idempotency_key: None,
        },
        dedupe_key: format!("{}{n}", run_error_prefix(job_id, attempt)),
    }
}

/// The common prefix of every [`run_error_entry`] of an attempt (to count them).
pub fn run_error_prefix(job_id: &str, attempt: u32) -> String {
    format!("{job_id}:{attempt}:run-error:")
}

/// The step once runs of an attempt stopped `errors` times: the job is Failed for a person to
/// look at. With an attempt that may have reached Stripe (`key`), the entry says to check Stripe
/// under that key before charging again.
pub fn run_errors_exhausted(run: &Run<'_>, errors: u32, key: Option<&str>) -> Step {
    let mut details = run.details();
    details.idempotency_key = key.map(str::to_owned);
    let check = match key {
        Some(key) => format!(
            " Check Stripe for attempt {} (idempotency key {key}) before charging again.",
            run.attempt
        ),
        None => String::new(),
    };
    details.message = Some(format!("the run stopped {errors} times"));
    run.step(
        JobStatus::Failed,
        ActivityStatus::Failed,
        format!(
            "Payment of {} failed: the run stopped {errors} times before it finished; it is \
             not retried automatically.{check}",
            run.money()
        ),
        details,
        run.key("run-errors-exhausted"),
    )
}

/// The step when an attempt's outcome stayed unknown past the window: Failed, for a person to
/// check on Stripe; nothing is charged automatically.
pub fn give_up(run: &Run<'_>, key: &str) -> Step {
    let mut details = run.details();
    details.idempotency_key = Some(key.to_owned());
    details.message = Some(format!(
        "outcome unknown: check Stripe before charging again (job {}, attempt {}, idempotency \
         key {key})",
        run.job_id, run.attempt
    ));
    run.step(
        JobStatus::Failed,
        ActivityStatus::Failed,
        format!(
            "Payment of {} failed: outcome unknown: check Stripe before charging again. Stripe \
             never confirmed attempt {} (idempotency key {key}); nothing will be charged \
             automatically.",
            run.money(),
            run.attempt
        ),
        details,
        run.key("outcome-unknown"),
    )
}

/// The step when an attempt ended without being sent and the charge is still wanted: a new
/// attempt runs at once.
pub fn retry_now(run: &Run<'_>, now: Timestamp) -> Step {
    let mut details = run.details();
    details.message = Some("the attempt ended before Stripe executed it".into());
    details.next_attempt_at = Some(now);
    run.step(
        JobStatus::Retrying,
        ActivityStatus::Retrying,
        format!(
            "Attempt {} of {} ended before Stripe executed it; trying again with a new attempt.",
            run.attempt,
            run.money()
        ),
        details,
        run.key("not-sent"),
    )
}

/// An amount in minor units as people read it: `125.00 CAD`, `12500 JPY`, `1.250 KWD`.
pub fn format_money(minor_units: i64, currency: &str) -> String {
    let sign = if minor_units < 0 { "-" } else { "" };
    let abs = minor_units.unsigned_abs();
    let code = currency.to_ascii_uppercase();
    match minor_unit_digits(currency) {
        0 => format!("{sign}{abs} {code}"),
        digits => {
            let scale = 10u64.pow(digits);
            let width = digits as usize;
            format!("{sign}{}.{:0width$} {code}", abs / scale, abs % scale)
        }
    }
}

/// How many decimal digits a currency's minor unit has in Stripe's amounts: 0 for Stripe's
/// zero-decimal currencies (an amount of `500` JPY is ¥500), 3 for the three-decimal ones, 2 for
/// the rest (<https://docs.stripe.com/currencies#zero-decimal>, `#three-decimal`).
pub fn minor_unit_digits(currency: &str) -> u32 {
    const ZERO_DECIMAL: [&str; 16] = [
        "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
        "xaf", "xof", "xpf",
    ];
    const THREE_DECIMAL: [&str; 5] = ["bhd", "jod", "kwd", "omr", "tnd"];
    let currency = currency.to_ascii_lowercase();
    if ZERO_DECIMAL.contains(&currency.as_str()) {
        0
    } else if THREE_DECIMAL.contains(&currency.as_str()) {
        3
    } else {
        2
    }
}

/// The step for a job the re-check stopped (`Skip` or `Fail`); `None` for `Charge`.
pub fn settle_precheck(run: &Run<'_>, verdict: &Precheck) -> Option<Step> {
    let (job_status, status, reason) = match verdict {
        Precheck::Charge { .. } => return None,
        Precheck::Skip { reason } => (JobStatus::Skipped, ActivityStatus::Skipped, reason),
        Precheck::Fail { reason } => (JobStatus::Failed, ActivityStatus::Failed, reason),
    };
    let verb = match status {
        ActivityStatus::Skipped => "skipped",
        _ => "failed",
    };
    let mut details = run.details();
    details.message = Some(reason.clone());
    Some(run.step(
        job_status,
        status,
        format!("Payment {verb}: {reason}."),
        details,
        run.key(status.as_str()),
    ))
}

/// The step after Stripe answered (or did not): `unknowns_so_far` counts the earlier unknown
/// outcomes of this same attempt.
pub fn settle_charge(
    run: &Run<'_>,
    outcome: &ChargeOutcome,
    unknowns_so_far: u32,
    now: Timestamp,
) -> Step {
    let mut details = run.details();
    match outcome {
        ChargeOutcome::Succeeded {
            payment_intent,
            amount_cents,
        } => {
            details.amount_cents = Some(*amount_cents);
            details.payment_intent_id = Some(payment_intent.clone());
            let money = run.currency.map_or_else(
                || format!("{amount_cents} cents"),
                |c| format_money(*amount_cents, c),
            );
            run.step(
                JobStatus::Succeeded,
                ActivityStatus::Success,
                format!("Charged {money} to the card on file."),
                details,
                run.key(ActivityStatus::Success.as_str()),
            )
        }
        ChargeOutcome::AuthenticationRequired {
            payment_intent,
            message,
        } => {
            details.payment_intent_id = payment_intent.clone();
            details.decline_code = Some("authentication_required".into());
            details.message = Some(message.clone());
            run.step(
                JobStatus::Failed,
                ActivityStatus::Failed,
                format!(
                    "Payment of {} failed: the customer must authenticate it with their bank; \
                     it is not retried automatically.",
                    run.money()
                ),
                details,
                run.key(ActivityStatus::Failed.as_str()),
            )
        }
        ChargeOutcome::Declined {
            payment_intent,
            decline_code,
            soft,
            message,
        } => {
            details.payment_intent_id = payment_intent.clone();
            details.decline_code = Some(decline_code.clone());
            details.message = Some(message.clone());
            let retry = soft
                .then(|| next_soft_decline_retry(run.attempt, SOFT_DECLINE_RETRY_MINUTES, now))
                .flatten();
            match retry {
                Some(at) => {
                    details.next_attempt_at = Some(at);
                    run.step(
                        JobStatus::Retrying,
                        ActivityStatus::Retrying,
                        format!(
                            "Card declined ({decline_code}) for {}; trying again at {at}.",
                            run.money()
                        ),
                        details,
                        run.key(ActivityStatus::Retrying.as_str()),
                    )
                }
                None => {
                    let why = if *soft {
                        "the retry schedule is used up"
                    } else {
                        "this decline is final"
                    };
                    run.step(
                        JobStatus::Failed,
                        ActivityStatus::Failed,
                        format!(
                            "Card declined ({decline_code}) for {}; not retried: {why}.",
                            run.money()
                        ),
                        details,
                        run.key(ActivityStatus::Failed.as_str()),
                    )
                }
            }
        }
        ChargeOutcome::Rejected { code, message } => {
            details.decline_code = code.clone();
            details.message = Some(message.clone());
            run.step(
                JobStatus::Failed,
                ActivityStatus::Failed,
                format!(
                    "Stripe refused the payment request for {}: {message}",
                    run.money()
                ),
                details,
                run.key(ActivityStatus::Failed.as_str()),
            )
        }
        ChargeOutcome::Canceled { payment_intent } => {
            details.payment_intent_id = Some(payment_intent.clone());
            details.message = Some("the PaymentIntent was canceled on Stripe".into());
            run.step(
                JobStatus::Failed,
                ActivityStatus::Failed,
                format!(
                    "Payment of {} was canceled on Stripe; nothing was charged and it is not \
                     retried automatically.",
                    run.money()
                ),
                details,
                run.key(ActivityStatus::Failed.as_str()),
            )
        }
        ChargeOutcome::Unknown { reason } | ChargeOutcome::NotExecuted { reason } => {
            let at = now.plus_minutes(i64::from(unknown_backoff_minutes(unknowns_so_far)));
            details.message = Some(reason.clone());
            details.next_attempt_at = Some(at);
            run.step(
                JobStatus::Unknown,
                ActivityStatus::Retrying,
                format!(
                    "Not known yet whether {} was charged ({reason}); checking with Stripe again \
                     at {at}. No new charge is made until Stripe confirms this one did not go \
                     through.",
                    run.money()
                ),
                details,
                unknown_key(run.job_id, run.attempt, unknowns_so_far),
            )
        }
        ChargeOutcome::Credentials { status, message } => {
            let at = now.plus_minutes(i64::from(unknown_backoff_minutes(unknowns_so_far)));
            details.message = Some(message.clone());
            details.next_attempt_at = Some(at);
            let whose = if *status == 403 {
                "the business's Stripe account refused the platform's access (HTTP 403): \
                 reconnect the account"
            } else {
                "Stripe refused the platform's secret key (HTTP 401): check the \
                 stripe_secret_key variable"
            };
            run.step(
                JobStatus::Retrying,
                ActivityStatus::Retrying,
                format!(
                    "Payment of {} is waiting: {whose}. This is not the customer's card; it is \
                     tried again at {at}.",
                    run.money()
                ),
                details,
                format!(
                    "{}{unknowns_so_far}",
                    credentials_key_prefix(run.job_id, run.attempt)
                ),
            )
        }
    }
}

/// The dedupe key of the `n`-th (0-based) unknown outcome of an attempt.
pub fn unknown_key(job_id: &str, attempt: u32, n: u32) -> String {
    format!("{}{n}", unknown_key_prefix(job_id, attempt))
}

/// The common prefix of every [`unknown_key`] of an attempt (to count them).
pub fn unknown_key_prefix(job_id: &str, attempt: u32) -> String {
    format!("{job_id}:{attempt}:unknown:")
}

/// The common prefix of the credential-problem entries of an attempt.
pub fn credentials_key_prefix(job_id: &str, attempt: u32) -> String {
    format!("{job_id}:{attempt}:credentials:")
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::rules::testing::ts;
    use crate::rules::{
        AccountRules, Automation, FeedbackRule, Offset, PaymentRule, Timing, Trigger,
    };
    use crate::rules::{CustomerOverride, OverrideState, resolve};
    use std::collections::BTreeMap;

    fn rules() -> AccountRules {
        let offset = Offset::from_minutes(1440).expect("valid");
        AccountRules {
            payment: PaymentRule {
                enabled: true,
                timing: Timing {
                    trigger: Trigger::BeforeStart,
                    offset,
                    local_time: None,
                },
                service_types: BTreeMap::new(),
            },
            feedback: FeedbackRule {
                enabled: false,
                delay: offset,
                stale_after: offset,
            },
        }
    }

    fn on() -> Decision {
        resolve(Automation::Payment, Some(&rules()), None, None)
    }

    fn input(decision: &Decision) -> PrecheckInput<'_> {
        PrecheckInput {
            booking_status: BookingStatus::Scheduled,
            amount_cents: 12_500,
            paid_cents: 0,
            currency: "cad",
            decision,
            miopay_enabled: true,
            stripe_account: Some("acct_biz"),
            charges_blocked: None,
            stripe_customer: Some("cus_1"),
            payment_method: Some("pm_1"),
        }
    }

    fn run(decision: &Decision) -> Run<'_> {
        Run {
            job_id: "job_1",
            attempt: 1,
            amount_cents: Some(12_500),
            currency: Some("cad"),
            decision: Some(decision),
            late: false,
        }
    }

    #[test]
    fn an_open_booking_with_a_card_is_charged_its_balance_only() {
        let decision = on();
        let mut i = input(&decision);
        i.paid_cents = 2_500;
        assert_eq!(
            precheck(&i),
            Precheck::Charge {
                amount_cents: 10_000,
                currency: "cad".into()
            }
        );
    }

    #[test]
    fn a_cancelled_or_paid_booking_is_skipped() {
        let decision = on();
        let mut i = input(&decision);
        i.booking_status = BookingStatus::Cancelled;
        assert_eq!(
            precheck(&i),
            Precheck::Skip {
                reason: "booking cancelled".into()
            }
        );
        let mut i = input(&decision);
        i.paid_cents = 12_500;
        assert_eq!(
            precheck(&i),
            Precheck::Skip {
                reason: "already paid".into()
            }
        );
    }

    #[test]
    fn a_customer_override_switched_off_after_planning_skips_with_its_provenance() {
        let off = CustomerOverride {
            state: OverrideState::Disabled,
            timing: None,
            updated_at: ts("2026-11-02T10:00:00Z"),
            updated_by: "tok_abc".into(),
        };
        let decision = resolve(Automation::Payment, Some(&rules()), Some(&off), None);
        match precheck(&input(&decision)) {
            Precheck::Skip { reason } => {
                assert!(reason.contains("customer override"), "{reason}");
                assert!(reason.contains("tok_abc"), "{reason}");
            }
            other => panic!("expected a skip, got {other:?}"),
        }
    }

    #[test]
    fn no_miopay_or_no_card_fails_with_the_reason() {
        let decision = on();
        let mut i = input(&decision);
        i.miopay_enabled = false;
        assert_eq!(
            precheck(&i),
            Precheck::Fail {
                reason: "MioPay is not enabled for this account".into()
            }
        );
        let mut i = input(&decision);
        i.payment_method = None;
        assert_eq!(
            precheck(&i),
            Precheck::Fail {
                reason: "no primary card".into()
            }
        );
        let mut i = input(&decision);
        i.charges_blocked = Some("Stripe has disabled charges on the account");
        assert_eq!(
            precheck(&i),
            Precheck::Fail {
                reason: "MioPay cannot charge: Stripe has disabled charges on the account".into()
            }
        );
    }

    #[test]
    fn a_soft_decline_retries_on_schedule_and_a_hard_one_fails() {
        let decision = on();
        let now = ts("2026-03-01T09:00:00Z");
        let soft = ChargeOutcome::Declined {
            payment_intent: Some("pi_1".into()),
            decline_code: "insufficient_funds".into(),
            soft: true,
            message: "declined".into(),
        };
        let step = settle_charge(&run(&decision), &soft, 0, now);
        assert_eq!(step.job_status, JobStatus::Retrying);
        assert_eq!(step.next_attempt_at, Some(now.plus_minutes(24 * 60)));
        assert_eq!(step.activity.status, ActivityStatus::Retrying);
        let mut last = run(&decision);
        last.attempt = 4;
        assert_eq!(
            settle_charge(&last, &soft, 0, now).job_status,
            JobStatus::Failed
        );
        let hard = ChargeOutcome::Declined {
            payment_intent: None,
            decline_code: "stolen_card".into(),
            soft: false,
            message: "declined".into(),
        };
        let step = settle_charge(&run(&decision), &hard, 0, now);
        assert_eq!(step.job_status, JobStatus::Failed);
        assert_eq!(
            step.activity.details.decline_code.as_deref(),
            Some("stolen_card")
        );
    }

    #[test]
    fn unknown_outcomes_back_off_and_each_gets_its_own_entry() {
        let decision = on();
        let now = ts("2026-03-01T09:00:00Z");
        let unknown = ChargeOutcome::Unknown {
            reason: "timeout".into(),
        };
        let first = settle_charge(&run(&decision), &unknown, 0, now);
        let third = settle_charge(&run(&decision), &unknown, 2, now);
        assert_eq!(first.job_status, JobStatus::Unknown);
        assert_eq!(first.activity.status, ActivityStatus::Retrying);
        assert_eq!(first.next_attempt_at, Some(now.plus_minutes(1)));
        assert_eq!(third.next_attempt_at, Some(now.plus_minutes(4)));
        assert_ne!(first.activity.dedupe_key, third.activity.dedupe_key);
        assert!(
            first
                .activity
                .dedupe_key
                .starts_with(&unknown_key_prefix("job_1", 1))
        );
    }

    #[test]
    fn authentication_required_fails_without_retry_and_says_so() {
        let decision = on();
        let outcome = ChargeOutcome::AuthenticationRequired {
            payment_intent: None,
            message: "auth".into(),
        };
        let step = settle_charge(&run(&decision), &outcome, 0, ts("2026-03-01T09:00:00Z"));
        assert_eq!(step.job_status, JobStatus::Failed);
        assert_eq!(step.next_attempt_at, None);
        assert!(step.activity.summary.contains("must authenticate"));
    }

    #[test]
    fn every_settled_outcome_reads_back_from_the_ledger() {
        let outcomes = [
            ChargeOutcome::Succeeded {
                payment_intent: "pi_1".into(),
                amount_cents: 500,
            },
            ChargeOutcome::Declined {
                payment_intent: Some("pi_2".into()),
                decline_code: "lost_card".into(),
                soft: false,
                message: "m".into(),
            },
            ChargeOutcome::AuthenticationRequired {
                payment_intent: Some("pi_3".into()),
                message: "m".into(),
            },
            ChargeOutcome::Rejected {
                code: Some("resource_missing".into()),
                message: "m".into(),
            },
        ];
        for outcome in outcomes {
            let row = ledger_outcome(&outcome).expect("settled");
            let back = recorded_outcome(
                row.outcome,
                row.payment_intent_id,
                row.decline_code,
                row.message,
                500,
            );
            assert_eq!(back, Some(outcome));
        }
        assert_eq!(
            ledger_outcome(&ChargeOutcome::Unknown { reason: "x".into() }),
            None
        );
        assert_eq!(recorded_outcome("abandoned", None, None, None, 1), None);
    }

    #[test]
    fn a_stopped_run_reads_as_retrying_once_per_stop_without_internal_details() {
        let entry = run_error_entry("job_1", 2, 1, false);
        assert_eq!(entry.status, ActivityStatus::Retrying);
        assert_eq!(entry.dedupe_key, "job_1:2:run-error:1");
        assert_ne!(
            run_error_entry("job_1", 2, 2, false).dedupe_key,
            entry.dedupe_key
        );
        assert!(entry.dedupe_key.starts_with(&run_error_prefix("job_1", 2)));
        assert_eq!(entry.details.rule_source, None);
        assert_eq!(entry.details.attempt, 2);
    }

    #[test]
    fn giving_up_names_the_job_the_attempt_and_the_key() {
        let decision = on();
        let step = give_up(&run(&decision), "mio-job_1-attempt-1");
        assert_eq!(step.job_status, JobStatus::Failed);
        assert!(
            step.activity
                .summary
                .contains("check Stripe before charging again")
        );
        let message = step.activity.details.message.expect("a message");
        assert!(message.contains("job_1") && message.contains("mio-job_1-attempt-1"));
        assert_eq!(
            step.activity.details.idempotency_key.as_deref(),
            Some("mio-job_1-attempt-1")
        );
    }

    #[test]
    fn money_reads_as_units_and_cents() {
        assert_eq!(format_money(12_500, "cad"), "125.00 CAD");
        assert_eq!(format_money(5, "usd"), "0.05 USD");
        assert_eq!(format_money(-250, "eur"), "-2.50 EUR");
        assert_eq!(format_money(12_500, "jpy"), "12500 JPY");
        assert_eq!(format_money(1_250, "KWD"), "1.250 KWD");
    }
}
