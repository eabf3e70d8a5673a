//! Automation rules: the account's rules, per-customer overrides, and [`resolve`], which answers
//! "is this automation on for this customer and booking, with which timing, and why?".

use std::collections::BTreeMap;

use serde::Serialize;

use crate::time::Timestamp;

/// The automations the product runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Automation {
    /// Charge the customer's primary card for a booking.
    Payment,
    /// Ask the customer for a rating after the job.
    Feedback,
}

impl Automation {
    /// Every automation, in display order.
    pub const ALL: [Automation; 2] = [Automation::Payment, Automation::Feedback];

    /// The wire name (`payment`, `feedback`).
    pub fn as_str(self) -> &'static str {
        match self {
            Automation::Payment => "payment",
            Automation::Feedback => "feedback",
        }
    }

    /// Parses the wire name.
    pub fn parse(text: &str) -> Option<Automation> {
        Automation::ALL.into_iter().find(|a| a.as_str() == text)
    }
}

/// What a run's time is measured from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// `offset` before the booking starts.
    BeforeStart,
    /// `offset` after the booking ends.
    AfterEnd,
    /// `offset` after the business marks the booking complete (no run until it does).
    AfterComplete,
}

impl Trigger {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::BeforeStart => "before_start",
            Trigger::AfterEnd => "after_end",
            Trigger::AfterComplete => "after_complete",
        }
    }

    /// Parses the wire name.
    pub fn parse(text: &str) -> Option<Trigger> {
        [Trigger::BeforeStart, Trigger::AfterEnd, Trigger::AfterComplete]
            .into_iter()
            .find(|t| t.as_str() == text)
    }
}

/// The longest offset accepted: 60 days.
pub const MAX_OFFSET_MINUTES: u32 = 60 * 24 * 60;

/// A whole number of minutes, `0..=MAX_OFFSET_MINUTES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Offset(u32);

impl Offset {
    /// Accepts `0..=MAX_OFFSET_MINUTES`.
    pub fn from_minutes(minutes: i64) -> Option<Offset> {
        u32::try_from(minutes)
            .ok()
            .filter(|m| *m <= MAX_OFFSET_MINUTES)
            .map(Offset)
    }

    /// The offset in minutes.
    pub fn minutes(self) -> u32 {
        self.0
    }
}

/// A local time of day, `HH:MM` on a 24-hour clock, in the account's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalTime {
    hour: u8,
    minute: u8,
}

impl LocalTime {
    /// Parses `HH:MM` (00:00 to 23:59).
    pub fn parse(text: &str) -> Option<LocalTime> {
        let (h, m) = text.split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let hour: u8 = h.parse().ok()?;
        let minute: u8 = m.parse().ok()?;
        (hour < 24 && minute < 60).then_some(LocalTime { hour, minute })
    }

    /// Hour of the day, 0–23.
    pub fn hour(self) -> u8 {
        self.hour
    }

    /// Minute of the hour, 0–59.
    pub fn minute(self) -> u8 {
        self.minute
    }
}

impl std::fmt::Display for LocalTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

impl Serialize for LocalTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// When a run happens relative to its booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Timing {
    /// What the offset is measured from.
    pub trigger: Trigger,
    /// How far from it.
    #[serde(rename = "offset_minutes")]
    pub offset: Offset,
    /// Optional: move the run to this local time of day (account time zone) on the day the
    /// offset lands on.
    pub local_time: Option<LocalTime>,
}

/// A service type as the business names it (`deep_clean`, `Window washing`): trimmed, 1–100
/// characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ServiceType(String);

impl ServiceType {
    /// Trims; accepts 1–100 characters.
    pub fn parse(text: &str) -> Option<ServiceType> {
        let t = text.trim();
        (!t.is_empty() && t.chars().count() <= 100).then(|| ServiceType(t.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Account-level Payment Automation rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentRule {
    /// On for every customer unless overridden.
    pub enabled: bool,
    /// The account's timing.
    #[serde(flatten)]
    pub timing: Timing,
    /// Timing per service type, refining the account timing.
    pub service_types: BTreeMap<ServiceType, Timing>,
}

/// The default staleness limit of feedback requests: 7 days.
pub const DEFAULT_FEEDBACK_STALE_MINUTES: u32 = 7 * 24 * 60;

/// Account-level Service Feedback Automation rule. Feedback always follows completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FeedbackRule {
    /// On for every customer unless overridden.
    pub enabled: bool,
    /// How long after completion the request goes out.
    #[serde(rename = "delay_minutes")]
    pub delay: Offset,
    /// Requests that would go out later than this after completion are skipped, not sent late.
    #[serde(rename = "stale_after_minutes")]
    pub stale_after: Offset,
}

/// The account's rules, once the business has set them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountRules {
    /// Payment Automation.
    pub payment: PaymentRule,
    /// Service Feedback Automation.
    pub feedback: FeedbackRule,
}

/// A customer's choice for one automation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OverrideState {
    /// Follow the account rule.
    #[default]
    Inherit,
    /// On for this customer whatever the account rule says.
    Enabled,
    /// Off for this customer whatever the account rule says.
    Disabled,
}

impl OverrideState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            OverrideState::Inherit => "inherit",
            OverrideState::Enabled => "enabled",
            OverrideState::Disabled => "disabled",
        }
    }

    /// Parses the wire name.
    pub fn parse(text: &str) -> Option<OverrideState> {
        [
            OverrideState::Inherit,
            OverrideState::Enabled,
            OverrideState::Disabled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A stored per-customer override of one automation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerOverride {
    /// Inherit, enabled or disabled.
    pub state: OverrideState,
    /// Optional customer timing, refining the account and service-type timing.
    pub timing: Option<Timing>,
    /// When it was last changed.
    pub updated_at: Timestamp,
    /// Who changed it (the API token's public label, never the token).
    pub updated_by: String,
}

/// Where a decision (on/off, or timing) came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Source {
    /// The account rule.
    Account,
    /// The account's timing for this service type.
    ServiceType {
        /// The service type.
        service_type: ServiceType,
    },
    /// The customer's override.
    Customer {
        /// When the override was set.
        updated_at: Timestamp,
        /// Who set it.
        updated_by: String,
    },
    /// The account has no rules yet.
    NotConfigured,
}

/// The effective setting of one automation for one customer and booking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Whether the automation runs.
    pub enabled: bool,
    /// Where `enabled` came from.
    pub source: Source,
    /// The timing that applies (`None` when rules are not configured). For feedback this is
    /// `after_complete` with the rule's delay (or the customer's timing).
    pub timing: Option<Timing>,
    /// Where `timing` came from.
    pub timing_source: Source,
    /// One sentence for people: "disabled by customer override set 2026-11-02T… by tok_…".
    pub explanation: String,
}

/// Decides `automation` for a customer (with their override, if any) and a booking of
/// `service_type`. Pure: all inputs are values.
pub fn resolve(
    automation: Automation,
    rules: Option<&AccountRules>,
    customer_override: Option<&CustomerOverride>,
    service_type: Option<&ServiceType>,
) -> Decision {
    let _ = (automation, rules, customer_override, service_type);
    todo!("helper A implements")
}
