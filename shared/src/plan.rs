//! Job planning: from the current state of one booking (its times and status, the account's
//! rules, the customer's overrides) and the jobs it already has, the job changes to make.
//!
//! Planning is state-based, so every kind of change (booking created, rescheduled, completed,
//! cancelled, deleted; rules changed; override changed) is handled the same way, and planning
//! twice is the same as planning once. At most one job exists per (booking, automation, phase).

use crate::zone::Zone;
use serde::Serialize;

use crate::booking::BookingStatus;
use crate::rules::{
    AccountRules, Automation, CustomerOverride, Decision, ServiceType, Source, resolve,
};
use crate::time::Timestamp;
use crate::timing::{BookingTimes, due_at};

/// The step of an automation a job performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Payment: charge the card.
    Charge,
    /// Feedback: send the rating request.
    Request,
}

impl Phase {
    /// The wire / storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Charge => "charge",
            Phase::Request => "request",
        }
    }

    /// Parses the storage name.
    pub fn parse(text: &str) -> Option<Phase> {
        [Phase::Charge, Phase::Request]
            .into_iter()
            .find(|p| p.as_str() == text)
    }

    /// The phase an automation's job performs.
    pub fn of(automation: Automation) -> Phase {
        match automation {
            Automation::Payment => Phase::Charge,
            Automation::Feedback => Phase::Request,
        }
    }
}

/// A job's lifecycle state (DESIGN §3 "Jobs").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for `due_at`.
    Scheduled,
    /// Claimed by a tick (leased).
    Running,
    /// Done.
    Succeeded,
    /// Done, failed (see the activity entry).
    Failed,
    /// Not run: no longer applicable when its time came.
    Skipped,
    /// Cancelled before running.
    Cancelled,
    /// A payment whose outcome is not known yet (timeout, 5xx): reconciled later.
    Unknown,
    /// A transient failure; runs again at `next_attempt_at`.
    Retrying,
}

impl JobStatus {
    /// The storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Scheduled => "scheduled",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Skipped => "skipped",
            JobStatus::Cancelled => "cancelled",
            JobStatus::Unknown => "unknown",
            JobStatus::Retrying => "retrying",
        }
    }

    /// Parses the storage name.
    pub fn parse(text: &str) -> Option<JobStatus> {
        use JobStatus::*;
        [
            Scheduled, Running, Succeeded, Failed, Skipped, Cancelled, Unknown, Retrying,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Whether planning may still move or cancel a job in this state (only `scheduled`; a job
    /// that started running or has an attempt behind it is the tick's to settle).
    pub fn is_plannable(self) -> bool {
        self == JobStatus::Scheduled
    }
}

/// What planning needs to know about one booking.
#[derive(Debug, Clone)]
pub struct BookingState {
    /// Scheduled, completed or cancelled (a deleted booking or customer counts as cancelled).
    pub status: BookingStatus,
    /// Start, end, completion.
    pub times: BookingTimes,
    /// The booking's service type.
    pub service_type: ServiceType,
}

/// A job the booking already has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExistingJob {
    /// Which automation.
    pub automation: Automation,
    /// Which phase.
    pub phase: Phase,
    /// Its state.
    pub status: JobStatus,
    /// When it is due.
    pub due_at: Timestamp,
}

/// Everything [`plan`] decides from.
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    /// The booking.
    pub booking: &'a BookingState,
    /// The account's rules; `None` until configured.
    pub rules: Option<&'a AccountRules>,
    /// The customer's payment override, if any.
    pub payment_override: Option<&'a CustomerOverride>,
    /// The customer's feedback override, if any.
    pub feedback_override: Option<&'a CustomerOverride>,
    /// The account's time zone.
    pub tz: &'a Zone,
    /// The booking's existing jobs (any state).
    pub existing: &'a [ExistingJob],
    /// Now.
    pub now: Timestamp,
}

/// One change to the jobs table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobChange {
    /// Create a `scheduled` job.
    Create {
        /// Which automation.
        automation: Automation,
        /// Which phase.
        phase: Phase,
        /// When it runs; never before `now`.
        due_at: Timestamp,
        /// The computed time had already passed: it runs at the next tick (say so in activity).
        late: bool,
        /// Which rule decided the timing.
        source: Source,
    },
    /// Move a `scheduled` job, or revive a `cancelled` one: set its `due_at` and its status to
    /// `scheduled` (the unique (booking, automation, phase) key allows no second row).
    Move {
        /// Which automation.
        automation: Automation,
        /// Which phase.
        phase: Phase,
        /// The new due time; never before `now`.
        due_at: Timestamp,
        /// The computed time had already passed.
        late: bool,
        /// Which rule decided the timing.
        source: Source,
    },
    /// Cancel a `scheduled` job.
    Cancel {
        /// Which automation.
        automation: Automation,
        /// Which phase.
        phase: Phase,
        /// Why, for the activity log ("booking cancelled", "disabled by customer override …").
        reason: String,
    },
}

/// The job changes that bring the booking's jobs in line with its current state.
///
/// For each automation, in [`Automation::ALL`] order, at most one change for its (automation,
/// phase):
/// - A job is desired when the booking is not cancelled, [`resolve`] says the automation is on,
///   and its due time is known: payment while the booking is scheduled or completed (once
///   completed, a `before_start` / `after_end` job stays desired: the tick re-checks the
///   balance; `after_complete` waits for completion); feedback only once completed. A due time
///   before `now` becomes `now` with `late = true`.
/// - No job yet and desired: [`JobChange::Create`].
/// - A `scheduled` job, desired at another time: [`JobChange::Move`]; at the same time, or when
///   both its stored time and the computed one are already due (not after `now`): nothing, so
///   replanning a late job does not push it along with the clock.
/// - A `scheduled` job no longer desired: [`JobChange::Cancel`] with the reason.
/// - A `cancelled` job desired again (override switched back on, booking completed, …):
///   [`JobChange::Move`], which revives it, because `unique(booking, automation, phase)`
///   forbids a second row. The caller sets it back to `scheduled` with the new due time.
/// - A job in any other state (running, succeeded, failed, skipped, unknown, retrying) belongs
///   to the tick: never touched, never duplicated.
///
/// Applying the changes and planning again with the same input yields no changes.
pub fn plan(input: &PlanInput<'_>) -> Vec<JobChange> {
    Automation::ALL
        .into_iter()
        .filter_map(|automation| plan_one(input, automation))
        .collect()
}

/// What planning wants for one automation: a job due at a time, or none, and why not.
enum Wanted {
    Job {
        due_at: Timestamp,
        late: bool,
        source: Source,
    },
    None {
        reason: String,
    },
}

fn plan_one(input: &PlanInput<'_>, automation: Automation) -> Option<JobChange> {
    let phase = Phase::of(automation);
    let existing = input
        .existing
        .iter()
        .find(|job| job.automation == automation && job.phase == phase);
    match (wanted(input, automation), existing) {
        (Wanted::Job { .. }, Some(job))
            if !matches!(job.status, JobStatus::Scheduled | JobStatus::Cancelled) =>
        {
            None
        }
        (
            Wanted::Job {
                due_at,
                late,
                source,
            },
            Some(job),
        ) => {
            let revive = job.status == JobStatus::Cancelled;
            let unchanged = job.due_at == due_at || (late && job.due_at <= input.now);
            (revive || !unchanged).then_some(JobChange::Move {
                automation,
                phase,
                due_at,
                late,
                source,
            })
        }
        (
            Wanted::Job {
                due_at,
                late,
                source,
            },
            None,
        ) => Some(JobChange::Create {
            automation,
            phase,
            due_at,
            late,
            source,
        }),
        (Wanted::None { reason }, Some(job)) if job.status.is_plannable() => {
            Some(JobChange::Cancel {
                automation,
                phase,
                reason,
            })
        }
        (Wanted::None { .. }, _) => None,
    }
}

fn wanted(input: &PlanInput<'_>, automation: Automation) -> Wanted {
    let booking = input.booking;
    if booking.status == BookingStatus::Cancelled {
        return Wanted::None {
            reason: "booking cancelled".to_owned(),
        };
    }
    let customer_override = match automation {
        Automation::Payment => input.payment_override,
        Automation::Feedback => input.feedback_override,
    };
    let decision = resolve(
        automation,
        input.rules,
        customer_override,
        Some(&booking.service_type),
    );
    let timing = match (&decision, decision.timing) {
        (Decision { enabled: true, .. }, Some(timing)) => timing,
        _ => {
            return Wanted::None {
                reason: disabled_reason(&decision.source),
            };
        }
    };
    if automation == Automation::Feedback && booking.status != BookingStatus::Completed {
        return Wanted::None {
            reason: "feedback is requested only once the booking is completed".to_owned(),
        };
    }
    let Some(due) = due_at(&timing, &booking.times, input.tz) else {
        return Wanted::None {
            reason: "runs only once the booking is completed".to_owned(),
        };
    };
    let late = due < input.now;
    Wanted::Job {
        due_at: if late { input.now } else { due },
        late,
        source: decision.timing_source,
    }
}

/// Why a disabled automation has no job, for the activity log.
fn disabled_reason(source: &Source) -> String {
    match source {
        Source::NotConfigured => "no automation rules configured".to_owned(),
        Source::Customer {
            updated_at,
            updated_by,
        } => format!("disabled by customer override set {updated_at} by {updated_by}"),
        Source::Account | Source::ServiceType { .. } => {
            "automation disabled by the account rule".to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::*;
    use crate::rules::{OverrideState, Trigger};
    use proptest::prelude::*;
    use std::sync::LazyLock;

    use crate::test_support::zone;

    static TORONTO: LazyLock<Zone> = LazyLock::new(|| zone("America/Toronto"));

    fn now() -> Timestamp {
        ts("2026-06-01T12:00:00Z")
    }

    /// A 2-hour visit on June 10th, 14:00 UTC (10:00 in Toronto).
    fn booking(status: BookingStatus, service_type: &str) -> BookingState {
        BookingState {
            status,
            times: BookingTimes {
                start: ts("2026-06-10T14:00:00Z"),
                end: ts("2026-06-10T16:00:00Z"),
                completed_at: (status == BookingStatus::Completed)
                    .then(|| ts("2026-06-10T16:30:00Z")),
            },
            service_type: service(service_type),
        }
    }

    fn input<'a>(
        booking: &'a BookingState,
        rules: Option<&'a AccountRules>,
        existing: &'a [ExistingJob],
    ) -> PlanInput<'a> {
        PlanInput {
            booking,
            rules,
            payment_override: None,
            feedback_override: None,
            tz: &TORONTO,
            existing,
            now: now(),
        }
    }

    fn job(automation: Automation, status: JobStatus, due_at: &str) -> ExistingJob {
        ExistingJob {
            automation,
            phase: Phase::of(automation),
            status,
            due_at: ts(due_at),
        }
    }

    fn create(automation: Automation, due_at: &str, late: bool, source: Source) -> JobChange {
        JobChange::Create {
            automation,
            phase: Phase::of(automation),
            due_at: ts(due_at),
            late,
            source,
        }
    }

    fn cancel(automation: Automation, reason: &str) -> JobChange {
        JobChange::Cancel {
            automation,
            phase: Phase::of(automation),
            reason: reason.to_owned(),
        }
    }

    #[test]
    fn a_new_booking_gets_its_payment_job_and_no_feedback_job_yet() {
        let rules = rules(true, true);
        let booking = booking(BookingStatus::Scheduled, "windows");
        let changes = plan(&input(&booking, Some(&rules), &[]));
        assert_eq!(
            changes,
            [create(
                Automation::Payment,
                "2026-06-09T14:00:00Z",
                false,
                Source::Account
            )]
        );
    }

    #[test]
    fn a_completed_booking_gets_its_feedback_job() {
        let rules = rules(true, true);
        let booking = booking(BookingStatus::Completed, "windows");
        let existing = [job(
            Automation::Payment,
            JobStatus::Succeeded,
            "2026-06-09T14:00:00Z",
        )];
        let changes = plan(&input(&booking, Some(&rules), &existing));
        assert_eq!(
            changes,
            [create(
                Automation::Feedback,
                "2026-06-10T17:30:00Z",
                false,
                Source::Account
            )]
        );
    }

    #[test]
    fn a_booking_without_rules_gets_no_jobs() {
        let booking = booking(BookingStatus::Completed, "windows");
        assert_eq!(plan(&input(&booking, None, &[])), []);
    }

    #[test]
    fn a_cancelled_booking_cancels_its_scheduled_jobs_only() {
        let rules = rules(true, true);
        let booking = booking(BookingStatus::Cancelled, "windows");
        let existing = [
            job(
                Automation::Payment,
                JobStatus::Scheduled,
                "2026-06-09T14:00:00Z",
            ),
            job(
                Automation::Feedback,
                JobStatus::Succeeded,
                "2026-06-10T17:30:00Z",
            ),
        ];
        let changes = plan(&input(&booking, Some(&rules), &existing));
        assert_eq!(changes, [cancel(Automation::Payment, "booking cancelled")]);
    }

    #[test]
    fn a_rescheduled_booking_moves_its_scheduled_job() {
        let rules = rules(true, true);
        let booking = booking(BookingStatus::Scheduled, "windows");
        let existing = [job(
            Automation::Payment,
            JobStatus::Scheduled,
            "2026-06-05T14:00:00Z",
        )];
        let changes = plan(&input(&booking, Some(&rules), &existing));
        assert_eq!(
            changes,
            [JobChange::Move {
                automation: Automation::Payment,
                phase: Phase::Charge,
                due_at: ts("2026-06-09T14:00:00Z"),
                late: false,
                source: Source::Account,
            }]
        );
    }

    #[test]
    fn a_job_already_at_its_time_is_left_alone() {
        let rules = rules(true, true);
        let booking = booking(BookingStatus::Scheduled, "windows");
        let existing = [job(
            Automation::Payment,
            JobStatus::Scheduled,
            "2026-06-09T14:00:00Z",
        )];
        assert_eq!(plan(&input(&booking, Some(&rules), &existing)), []);
    }

    #[test]
    fn a_booking_inside_its_offset_window_runs_now_and_says_it_is_late() {
        let rules = rules(true, true);
        let booking = booking(BookingStatus::Scheduled, "windows");
        let mut input = input(&booking, Some(&rules), &[]);
        input.now = ts("2026-06-10T10:00:00Z");
        assert_eq!(
            plan(&input),
            [create(
                Automation::Payment,
                "2026-06-10T10:00:00Z",
                true,
                Source::Account
            )]
        );
    }

    #[test]
    fn a_late_job_already_due_is_not_moved_along_with_the_clock() {
        let rules = rules(true, true);
        let booking = booking(BookingStatus::Scheduled, "windows");
        let existing = [job(
            Automation::Payment,
            JobStatus::Scheduled,
            "2026-06-10T10:00:00Z",
        )];
        let mut input = input(&booking, Some(&rules), &existing);
        input.now = ts("2026-06-10T10:05:00Z");
        assert_eq!(plan(&input), []);
    }

    #[test]
    fn the_service_type_timing_is_used_and_named() {
        let rules = rules(true, true);
        let booking = booking(BookingStatus::Scheduled, "deep_clean");
        let changes = plan(&input(&booking, Some(&rules), &[]));
        assert_eq!(
            changes,
            [create(
                Automation::Payment,
                "2026-06-10T18:00:00Z",
                false,
                Source::ServiceType {
                    service_type: service("deep_clean")
                }
            )]
        );
    }

    #[test]
    fn customer_override_disables_global_payment_rule() {
        let rules = rules(true, true);
        let booking = booking(BookingStatus::Scheduled, "windows");
        let existing = [job(
            Automation::Payment,
            JobStatus::Scheduled,
            "2026-06-09T14:00:00Z",
        )];
        let disabled = customer_override(OverrideState::Disabled, None);
        let mut input = input(&booking, Some(&rules), &existing);
        input.payment_override = Some(&disabled);
        assert_eq!(
            plan(&input),
            [cancel(
                Automation::Payment,
                "disabled by customer override set 2026-11-02T10:00:00.000Z by tok_ab12"
            )]
        );
    }

    #[test]
    fn turning_the_account_rule_off_cancels_scheduled_jobs() {
        let rules = rules(false, false);
        let booking = booking(BookingStatus::Completed, "windows");
        let existing = [
            job(
                Automation::Payment,
                JobStatus::Scheduled,
                "2026-06-09T14:00:00Z",
            ),
            job(
                Automation::Feedback,
                JobStatus::Scheduled,
                "2026-06-10T17:30:00Z",
            ),
        ];
        assert_eq!(
            plan(&input(&booking, Some(&rules), &existing)),
            [
                cancel(
                    Automation::Payment,
                    "automation disabled by the account rule"
                ),
                cancel(
                    Automation::Feedback,
                    "automation disabled by the account rule"
                ),
            ]
        );
        assert_eq!(
            plan(&input(&booking, None, &existing)),
            [
                cancel(Automation::Payment, "no automation rules configured"),
                cancel(Automation::Feedback, "no automation rules configured"),
            ]
        );
    }

    #[test]
    fn a_cancelled_job_wanted_again_is_revived_by_a_move() {
        let rules = rules(true, true);
        let booking = booking(BookingStatus::Scheduled, "windows");
        let existing = [job(
            Automation::Payment,
            JobStatus::Cancelled,
            "2026-06-09T14:00:00Z",
        )];
        assert_eq!(
            plan(&input(&booking, Some(&rules), &existing)),
            [JobChange::Move {
                automation: Automation::Payment,
                phase: Phase::Charge,
                due_at: ts("2026-06-09T14:00:00Z"),
                late: false,
                source: Source::Account,
            }]
        );
    }

    #[test]
    fn jobs_the_tick_owns_are_never_touched_or_duplicated() {
        let rules = rules(true, true);
        for status in [
            JobStatus::Running,
            JobStatus::Succeeded,
            JobStatus::Failed,
            JobStatus::Skipped,
            JobStatus::Unknown,
            JobStatus::Retrying,
        ] {
            let existing = [
                job(Automation::Payment, status, "2026-06-01T00:00:00Z"),
                job(Automation::Feedback, status, "2026-06-01T00:00:00Z"),
            ];
            for booking_status in [
                BookingStatus::Scheduled,
                BookingStatus::Completed,
                BookingStatus::Cancelled,
            ] {
                let booking = booking(booking_status, "windows");
                assert_eq!(
                    plan(&input(&booking, Some(&rules), &existing)),
                    [],
                    "{status:?}"
                );
            }
        }
    }

    #[test]
    fn after_complete_payment_waits_for_completion() {
        let mut rules = rules(true, true);
        rules.payment.timing = timing(Trigger::AfterComplete, 0, None);
        let open = booking(BookingStatus::Scheduled, "windows");
        assert_eq!(plan(&input(&open, Some(&rules), &[])), []);
        let done = booking(BookingStatus::Completed, "windows");
        let changes = plan(&input(&done, Some(&rules), &[]));
        assert_eq!(
            changes,
            [
                create(
                    Automation::Payment,
                    "2026-06-10T16:30:00Z",
                    false,
                    Source::Account
                ),
                create(
                    Automation::Feedback,
                    "2026-06-10T17:30:00Z",
                    false,
                    Source::Account
                ),
            ]
        );
    }

    #[test]
    fn a_completed_booking_keeps_its_before_start_payment_job() {
        let rules = rules(true, true);
        let booking = booking(BookingStatus::Completed, "windows");
        let existing = [job(
            Automation::Payment,
            JobStatus::Scheduled,
            "2026-06-09T14:00:00Z",
        )];
        let changes = plan(&input(&booking, Some(&rules), &existing));
        assert!(
            changes
                .iter()
                .all(|c| !matches!(c, JobChange::Cancel { .. } | JobChange::Move { .. }))
        );
    }

    /// What the component does with each change, on an in-memory jobs table.
    fn apply(existing: &mut Vec<ExistingJob>, changes: &[JobChange]) {
        for change in changes {
            match change {
                JobChange::Create {
                    automation,
                    phase,
                    due_at,
                    ..
                } => {
                    assert!(
                        !existing
                            .iter()
                            .any(|j| j.automation == *automation && j.phase == *phase),
                        "unique (booking, automation, phase) violated"
                    );
                    existing.push(ExistingJob {
                        automation: *automation,
                        phase: *phase,
                        status: JobStatus::Scheduled,
                        due_at: *due_at,
                    });
                }
                JobChange::Move {
                    automation,
                    phase,
                    due_at,
                    ..
                } => {
                    let job = existing
                        .iter_mut()
                        .find(|j| j.automation == *automation && j.phase == *phase)
                        .expect("moved job exists");
                    assert!(matches!(
                        job.status,
                        JobStatus::Scheduled | JobStatus::Cancelled
                    ));
                    job.status = JobStatus::Scheduled;
                    job.due_at = *due_at;
                }
                JobChange::Cancel {
                    automation, phase, ..
                } => {
                    let job = existing
                        .iter_mut()
                        .find(|j| j.automation == *automation && j.phase == *phase)
                        .expect("cancelled job exists");
                    assert_eq!(job.status, JobStatus::Scheduled);
                    job.status = JobStatus::Cancelled;
                }
            }
        }
    }

    fn arb_status() -> impl Strategy<Value = JobStatus> {
        prop_oneof![
            Just(JobStatus::Scheduled),
            Just(JobStatus::Running),
            Just(JobStatus::Succeeded),
            Just(JobStatus::Failed),
            Just(JobStatus::Skipped),
            Just(JobStatus::Cancelled),
            Just(JobStatus::Unknown),
            Just(JobStatus::Retrying),
        ]
    }

    fn arb_booking_status() -> impl Strategy<Value = BookingStatus> {
        prop_oneof![
            Just(BookingStatus::Scheduled),
            Just(BookingStatus::Completed),
            Just(BookingStatus::Cancelled),
        ]
    }

    fn at(millis: i64) -> Timestamp {
        Timestamp::from_unix_millis(millis).expect("in range")
    }

    /// Around `now()` (June 2026), give or take 90 days.
    fn arb_instant() -> impl Strategy<Value = i64> {
        let centre = now().as_datetime().timestamp_millis();
        (centre - 90 * 86_400_000)..(centre + 90 * 86_400_000)
    }

    fn arb_booking() -> impl Strategy<Value = BookingState> {
        (
            arb_booking_status(),
            arb_instant(),
            1i64..7 * 24 * 60,
            0i64..3 * 24 * 60,
            arb_service_type(),
        )
            .prop_map(|(status, start, length, completion, service_type)| {
                let start = at(start);
                let end = Timestamp::from_datetime(
                    start.as_datetime() + chrono::TimeDelta::minutes(length),
                );
                let completed_at = Timestamp::from_datetime(
                    end.as_datetime() + chrono::TimeDelta::minutes(completion),
                );
                BookingState {
                    status,
                    times: BookingTimes {
                        start,
                        end,
                        completed_at: (status == BookingStatus::Completed).then_some(completed_at),
                    },
                    service_type,
                }
            })
    }

    fn arb_existing() -> impl Strategy<Value = Vec<ExistingJob>> {
        let one = |automation: Automation| {
            proptest::option::of((arb_status(), arb_instant())).prop_map(move |job| {
                job.map(|(status, due)| ExistingJob {
                    automation,
                    phase: Phase::of(automation),
                    status,
                    due_at: at(due),
                })
            })
        };
        (one(Automation::Payment), one(Automation::Feedback))
            .prop_map(|(p, f)| p.into_iter().chain(f).collect())
    }

    fn arb_zone() -> impl Strategy<Value = Zone> {
        prop_oneof![
            Just(TORONTO.clone()),
            Just(zone("Europe/London")),
            Just(zone("Australia/Lord_Howe")),
        ]
    }

    /// Booking, rules, overrides, existing jobs, zone and now.
    #[allow(clippy::type_complexity)]
    fn arb_world() -> impl Strategy<
        Value = (
            BookingState,
            Option<AccountRules>,
            Option<CustomerOverride>,
            Option<CustomerOverride>,
            Vec<ExistingJob>,
            Zone,
            Timestamp,
        ),
    > {
        (
            arb_booking(),
            proptest::option::of(arb_rules()),
            proptest::option::of(arb_override(Automation::Payment)),
            proptest::option::of(arb_override(Automation::Feedback)),
            arb_existing(),
            arb_zone(),
            arb_instant().prop_map(at),
        )
    }

    proptest! {
        #[test]
        fn planning_twice_is_the_same_as_planning_once(
            (booking, rules, payment, feedback, existing, tz, now) in arb_world()
        ) {
            let mut jobs = existing;
            let input = |jobs: &[ExistingJob]| plan(&PlanInput {
                booking: &booking,
                rules: rules.as_ref(),
                payment_override: payment.as_ref(),
                feedback_override: feedback.as_ref(),
                tz: &tz,
                existing: jobs,
                now,
            });
            let first = input(&jobs);
            apply(&mut jobs, &first);
            let second = input(&jobs);
            prop_assert_eq!(second, Vec::<JobChange>::new(), "first: {:?}", first);
        }

        #[test]
        fn a_disabled_automation_never_gets_a_job(
            (booking, rules, payment, feedback, existing, tz, now) in arb_world()
        ) {
            let input = PlanInput {
                booking: &booking,
                rules: rules.as_ref(),
                payment_override: payment.as_ref(),
                feedback_override: feedback.as_ref(),
                tz: &tz,
                existing: &existing,
                now,
            };
            for change in plan(&input) {
                let (automation, due_at, late) = match change {
                    JobChange::Create { automation, due_at, late, .. }
                    | JobChange::Move { automation, due_at, late, .. } => (automation, due_at, late),
                    JobChange::Cancel { .. } => continue,
                };
                let over = match automation {
                    Automation::Payment => payment.as_ref(),
                    Automation::Feedback => feedback.as_ref(),
                };
                let decision = resolve(automation, rules.as_ref(), over, Some(&booking.service_type));
                prop_assert!(decision.enabled);
                prop_assert!(booking.status != BookingStatus::Cancelled);
                prop_assert!(due_at >= now);
                prop_assert_eq!(late, due_at == now && late);
                if automation == Automation::Feedback {
                    prop_assert_eq!(booking.status, BookingStatus::Completed);
                }
            }
        }

        #[test]
        fn changes_come_in_automation_order_and_only_one_per_automation(
            (booking, rules, payment, feedback, existing, tz, now) in arb_world()
        ) {
            let input = PlanInput {
                booking: &booking,
                rules: rules.as_ref(),
                payment_override: payment.as_ref(),
                feedback_override: feedback.as_ref(),
                tz: &tz,
                existing: &existing,
                now,
            };
            let automations: Vec<Automation> = plan(&input)
                .into_iter()
                .map(|change| match change {
                    JobChange::Create { automation, .. }
                    | JobChange::Move { automation, .. }
                    | JobChange::Cancel { automation, .. } => automation,
                })
                .collect();
            let mut sorted = automations.clone();
            sorted.sort();
            sorted.dedup();
            prop_assert_eq!(automations, sorted);
        }
    }
}
