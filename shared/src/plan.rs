//! Job planning: from the current state of one booking (its times and status, the account's
//! rules, the customer's overrides) and the jobs it already has, the job changes to make.
//!
//! Planning is state-based, so every kind of change (booking created, rescheduled, completed,
//! cancelled, deleted; rules changed; override changed) is handled the same way, and planning
//! twice is the same as planning once. At most one job exists per (booking, automation, phase).

use chrono_tz::Tz;
use serde::Serialize;

use crate::booking::BookingStatus;
use crate::rules::{AccountRules, Automation, CustomerOverride, ServiceType, Source};
use crate::time::Timestamp;
use crate::timing::BookingTimes;

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
    pub tz: Tz,
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
    /// Move a `scheduled` job.
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
pub fn plan(input: &PlanInput<'_>) -> Vec<JobChange> {
    let _ = input;
    todo!("helper A implements")
}
