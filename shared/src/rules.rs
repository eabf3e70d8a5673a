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
        [
            Trigger::BeforeStart,
            Trigger::AfterEnd,
            Trigger::AfterComplete,
        ]
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
        // `u8::from_str` also takes a sign ("+1"): require the digits themselves.
        let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
        if !two_digits(h) || !two_digits(m) {
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
///
/// - On/off: the override when it is `enabled` or `disabled`, else the account rule.
/// - With no rules configured (`rules` is `None`) nothing runs, whatever the override says: an
///   override switches an automation on or off but cannot invent a rule or a timing, so the
///   decision is off, with source and timing source [`Source::NotConfigured`] and no timing.
/// - Payment timing: the customer's timing (an override that is not `disabled` and carries
///   one), else the account's timing for `service_type`, else the account timing.
/// - Feedback timing: the customer's timing on the same terms, else `after_complete` with the
///   rule's delay. Feedback only ever follows completion: callers refuse a customer feedback
///   timing with another trigger when they parse it, so a stored one is `after_complete`.
/// - The timing is given even when the automation is off, so the view can show what would apply.
pub fn resolve(
    automation: Automation,
    rules: Option<&AccountRules>,
    customer_override: Option<&CustomerOverride>,
    service_type: Option<&ServiceType>,
) -> Decision {
    let Some(rules) = rules else {
        return Decision {
            enabled: false,
            source: Source::NotConfigured,
            timing: None,
            timing_source: Source::NotConfigured,
            explanation: "no automation rules configured for this account".to_owned(),
        };
    };
    let rule_enabled = match automation {
        Automation::Payment => rules.payment.enabled,
        Automation::Feedback => rules.feedback.enabled,
    };
    let (enabled, source) = match customer_override {
        Some(o) if o.state != OverrideState::Inherit => {
            (o.state == OverrideState::Enabled, o.source())
        }
        _ => (rule_enabled, Source::Account),
    };
    let customer_timing = customer_override
        .filter(|o| o.state != OverrideState::Disabled)
        .and_then(|o| o.timing.map(|timing| (timing, o.source())));
    let (timing, timing_source) = match (customer_timing, automation) {
        (Some(customer), _) => customer,
        (None, Automation::Payment) => service_type
            .and_then(|name| {
                rules.payment.service_types.get(name).map(|timing| {
                    let source = Source::ServiceType {
                        service_type: name.clone(),
                    };
                    (*timing, source)
                })
            })
            .unwrap_or((rules.payment.timing, Source::Account)),
        (None, Automation::Feedback) => (
            Timing {
                trigger: Trigger::AfterComplete,
                offset: rules.feedback.delay,
                local_time: None,
            },
            Source::Account,
        ),
    };
    let explanation = explain(enabled, &source, &timing_source);
    Decision {
        enabled,
        source,
        timing: Some(timing),
        timing_source,
        explanation,
    }
}

impl CustomerOverride {
    /// This override as the source of a decision.
    pub fn source(&self) -> Source {
        Source::Customer {
            updated_at: self.updated_at,
            updated_by: self.updated_by.clone(),
        }
    }
}

/// "enabled by the account rule, with the timing for service type deep_clean".
fn explain(enabled: bool, source: &Source, timing_source: &Source) -> String {
    let state = if enabled { "enabled" } else { "disabled" };
    let by = describe(source);
    let mut sentence = format!("{state} by {by}");
    if timing_source != source && *timing_source != Source::Account {
        sentence.push_str(", with the timing of ");
        sentence.push_str(&describe(timing_source));
    }
    sentence
}

/// A source in words, after "by" or "of".
fn describe(source: &Source) -> String {
    match source {
        Source::Account => "the account rule".to_owned(),
        Source::ServiceType { service_type } => {
            format!(
                "the account rule for service type {}",
                service_type.as_str()
            )
        }
        Source::Customer {
            updated_at,
            updated_by,
        } => format!("customer override set {updated_at} by {updated_by}"),
        Source::NotConfigured => "no automation rules (none configured)".to_owned(),
    }
}

/// Values and proptest strategies shared by the core's tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn ts(text: &str) -> Timestamp {
        Timestamp::parse(text).expect("valid timestamp")
    }

    pub(crate) fn minutes(m: u32) -> Offset {
        Offset::from_minutes(i64::from(m)).expect("valid offset")
    }

    pub(crate) fn timing(trigger: Trigger, offset: u32, local_time: Option<&str>) -> Timing {
        Timing {
            trigger,
            offset: minutes(offset),
            local_time: local_time.map(|t| LocalTime::parse(t).expect("valid local time")),
        }
    }

    pub(crate) fn service(name: &str) -> ServiceType {
        ServiceType::parse(name).expect("valid service type")
    }

    /// Payment 1 day before start, deep_clean 2 hours after the end; feedback 60 minutes
    /// after completion.
    pub(crate) fn rules(payment: bool, feedback: bool) -> AccountRules {
        AccountRules {
            payment: PaymentRule {
                enabled: payment,
                timing: timing(Trigger::BeforeStart, 24 * 60, None),
                service_types: BTreeMap::from([(
                    service("deep_clean"),
                    timing(Trigger::AfterEnd, 120, None),
                )]),
            },
            feedback: FeedbackRule {
                enabled: feedback,
                delay: minutes(60),
                stale_after: minutes(DEFAULT_FEEDBACK_STALE_MINUTES),
            },
        }
    }

    pub(crate) fn customer_override(
        state: OverrideState,
        timing: Option<Timing>,
    ) -> CustomerOverride {
        CustomerOverride {
            state,
            timing,
            updated_at: ts("2026-11-02T10:00:00Z"),
            updated_by: "tok_ab12".to_owned(),
        }
    }

    pub(crate) fn arb_trigger() -> impl Strategy<Value = Trigger> {
        prop_oneof![
            Just(Trigger::BeforeStart),
            Just(Trigger::AfterEnd),
            Just(Trigger::AfterComplete),
        ]
    }

    pub(crate) fn arb_local_time() -> impl Strategy<Value = Option<LocalTime>> {
        proptest::option::of(
            (0u8..24, 0u8..60).prop_map(|(hour, minute)| LocalTime { hour, minute }),
        )
    }

    pub(crate) fn arb_timing() -> impl Strategy<Value = Timing> {
        (arb_trigger(), 0..=MAX_OFFSET_MINUTES, arb_local_time()).prop_map(
            |(trigger, offset, local_time)| Timing {
                trigger,
                offset: Offset(offset),
                local_time,
            },
        )
    }

    pub(crate) fn arb_feedback_timing() -> impl Strategy<Value = Timing> {
        (0..=MAX_OFFSET_MINUTES, arb_local_time()).prop_map(|(offset, local_time)| Timing {
            trigger: Trigger::AfterComplete,
            offset: Offset(offset),
            local_time,
        })
    }

    pub(crate) fn arb_service_type() -> impl Strategy<Value = ServiceType> {
        prop_oneof![Just("deep_clean"), Just("windows"), Just("Lawn care")].prop_map(service)
    }

    pub(crate) fn arb_rules() -> impl Strategy<Value = AccountRules> {
        (
            any::<bool>(),
            arb_timing(),
            proptest::collection::btree_map(arb_service_type(), arb_timing(), 0..3),
            any::<bool>(),
            0..=MAX_OFFSET_MINUTES,
        )
            .prop_map(
                |(payment, timing, service_types, feedback, delay)| AccountRules {
                    payment: PaymentRule {
                        enabled: payment,
                        timing,
                        service_types,
                    },
                    feedback: FeedbackRule {
                        enabled: feedback,
                        delay: Offset(delay),
                        stale_after: Offset(DEFAULT_FEEDBACK_STALE_MINUTES),
                    },
                },
            )
    }

    pub(crate) fn arb_state() -> impl Strategy<Value = OverrideState> {
        prop_oneof![
            Just(OverrideState::Inherit),
            Just(OverrideState::Enabled),
            Just(OverrideState::Disabled),
        ]
    }

    /// An override as the component stores it: feedback timings are always `after_complete`.
    pub(crate) fn arb_override(automation: Automation) -> BoxedStrategy<CustomerOverride> {
        let timing = match automation {
            Automation::Payment => arb_timing().boxed(),
            Automation::Feedback => arb_feedback_timing().boxed(),
        };
        (
            arb_state(),
            proptest::option::of(timing),
            0i64..4_000_000_000_000,
        )
            .prop_map(|(state, timing, millis)| CustomerOverride {
                state,
                timing,
                updated_at: Timestamp::from_unix_millis(millis).expect("in range"),
                updated_by: "tok_ab12".to_owned(),
            })
            .boxed()
    }

    pub(crate) fn arb_automation() -> impl Strategy<Value = Automation> {
        prop_oneof![Just(Automation::Payment), Just(Automation::Feedback)]
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wire_names_parse_back() {
        for automation in Automation::ALL {
            assert_eq!(Automation::parse(automation.as_str()), Some(automation));
        }
        for trigger in [
            Trigger::BeforeStart,
            Trigger::AfterEnd,
            Trigger::AfterComplete,
        ] {
            assert_eq!(Trigger::parse(trigger.as_str()), Some(trigger));
        }
        assert_eq!(Trigger::parse("before"), None);
        assert_eq!(
            OverrideState::parse("disabled"),
            Some(OverrideState::Disabled)
        );
        assert_eq!(OverrideState::parse("off"), None);
    }

    #[test]
    fn local_times_parse_only_hh_mm_on_a_24_hour_clock() {
        assert_eq!(
            LocalTime::parse("09:05").map(|t| t.to_string()),
            Some("09:05".to_owned())
        );
        for bad in [
            "9:05", "24:00", "12:60", "12:5", "1200", "", "ab:cd", "+1:00",
        ] {
            assert_eq!(LocalTime::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn offsets_are_limited_to_sixty_days() {
        assert_eq!(Offset::from_minutes(0).map(Offset::minutes), Some(0));
        assert!(Offset::from_minutes(i64::from(MAX_OFFSET_MINUTES)).is_some());
        assert!(Offset::from_minutes(i64::from(MAX_OFFSET_MINUTES) + 1).is_none());
        assert!(Offset::from_minutes(-1).is_none());
    }

    #[test]
    fn without_rules_nothing_runs_even_with_an_enabled_override() {
        let enabled = customer_override(
            OverrideState::Enabled,
            Some(timing(Trigger::AfterEnd, 0, None)),
        );
        for automation in Automation::ALL {
            let decision = resolve(automation, None, Some(&enabled), None);
            assert!(!decision.enabled);
            assert_eq!(decision.source, Source::NotConfigured);
            assert_eq!(decision.timing, None);
            assert_eq!(decision.timing_source, Source::NotConfigured);
            assert_eq!(
                decision.explanation,
                "no automation rules configured for this account"
            );
        }
    }

    #[test]
    fn customer_override_disables_global_payment_rule() {
        let rules = rules(true, true);
        let disabled = customer_override(OverrideState::Disabled, None);
        let decision = resolve(Automation::Payment, Some(&rules), Some(&disabled), None);
        assert!(!decision.enabled);
        assert_eq!(decision.source, disabled.source());
        assert_eq!(
            decision.explanation,
            "disabled by customer override set 2026-11-02T10:00:00.000Z by tok_ab12"
        );
    }

    #[test]
    fn customer_override_enables_an_automation_the_account_turned_off() {
        let rules = rules(false, false);
        let enabled = customer_override(OverrideState::Enabled, None);
        let decision = resolve(Automation::Feedback, Some(&rules), Some(&enabled), None);
        assert!(decision.enabled);
        assert_eq!(decision.source, enabled.source());
        assert_eq!(decision.timing_source, Source::Account);
    }

    #[test]
    fn an_inherit_override_follows_the_account_rule() {
        let inherit = customer_override(OverrideState::Inherit, None);
        for on in [true, false] {
            let rules = rules(on, on);
            let decision = resolve(Automation::Payment, Some(&rules), Some(&inherit), None);
            assert_eq!(decision.enabled, on);
            assert_eq!(decision.source, Source::Account);
        }
        let decision = resolve(Automation::Payment, Some(&rules(true, true)), None, None);
        assert_eq!(decision.explanation, "enabled by the account rule");
        let decision = resolve(Automation::Payment, Some(&rules(false, true)), None, None);
        assert_eq!(decision.explanation, "disabled by the account rule");
    }

    #[test]
    fn payment_timing_comes_from_the_account_without_a_refinement() {
        let rules = rules(true, true);
        let decision = resolve(
            Automation::Payment,
            Some(&rules),
            None,
            Some(&service("windows")),
        );
        assert_eq!(decision.timing, Some(rules.payment.timing));
        assert_eq!(decision.timing_source, Source::Account);
    }

    #[test]
    fn a_service_type_timing_refines_the_account_timing() {
        let rules = rules(true, true);
        let deep_clean = service("deep_clean");
        let decision = resolve(Automation::Payment, Some(&rules), None, Some(&deep_clean));
        assert_eq!(decision.timing, Some(timing(Trigger::AfterEnd, 120, None)));
        assert_eq!(
            decision.timing_source,
            Source::ServiceType {
                service_type: deep_clean
            }
        );
        assert_eq!(
            decision.explanation,
            "enabled by the account rule, with the timing of the account rule for service type \
             deep_clean"
        );
    }

    #[test]
    fn a_customer_timing_beats_the_service_type_timing() {
        let rules = rules(true, true);
        let own = timing(Trigger::BeforeStart, 30, Some("08:00"));
        let inherit = customer_override(OverrideState::Inherit, Some(own));
        let decision = resolve(
            Automation::Payment,
            Some(&rules),
            Some(&inherit),
            Some(&service("deep_clean")),
        );
        assert_eq!(decision.timing, Some(own));
        assert_eq!(decision.source, Source::Account);
        assert_eq!(decision.timing_source, inherit.source());
    }

    #[test]
    fn a_disabled_override_keeps_its_timing_out_of_the_decision() {
        let rules = rules(true, true);
        let disabled = customer_override(
            OverrideState::Disabled,
            Some(timing(Trigger::BeforeStart, 30, None)),
        );
        let decision = resolve(
            Automation::Payment,
            Some(&rules),
            Some(&disabled),
            Some(&service("deep_clean")),
        );
        assert_eq!(decision.timing, Some(timing(Trigger::AfterEnd, 120, None)));
        assert!(matches!(decision.timing_source, Source::ServiceType { .. }));
    }

    #[test]
    fn feedback_follows_completion_by_the_rule_delay() {
        let rules = rules(true, true);
        let decision = resolve(
            Automation::Feedback,
            Some(&rules),
            None,
            Some(&service("deep_clean")),
        );
        assert_eq!(
            decision.timing,
            Some(timing(Trigger::AfterComplete, 60, None))
        );
        assert_eq!(decision.timing_source, Source::Account);
    }

    #[test]
    fn a_customer_feedback_timing_replaces_the_rule_delay() {
        let rules = rules(true, true);
        let own = timing(Trigger::AfterComplete, 24 * 60, Some("10:00"));
        let enabled = customer_override(OverrideState::Enabled, Some(own));
        let decision = resolve(Automation::Feedback, Some(&rules), Some(&enabled), None);
        assert_eq!(decision.timing, Some(own));
        assert_eq!(decision.timing_source, enabled.source());
        assert_eq!(
            decision.explanation,
            "enabled by customer override set 2026-11-02T10:00:00.000Z by tok_ab12"
        );
    }

    #[test]
    fn decisions_serialize_with_their_provenance() {
        let rules = rules(true, true);
        let disabled = customer_override(OverrideState::Disabled, None);
        let decision = resolve(Automation::Payment, Some(&rules), Some(&disabled), None);
        let json = serde_json::to_value(&decision).expect("serializes");
        assert_eq!(json["source"]["kind"], "customer");
        assert_eq!(json["source"]["updated_by"], "tok_ab12");
        assert_eq!(json["timing"]["trigger"], "before_start");
        assert_eq!(json["timing"]["offset_minutes"], 1440);
        assert_eq!(json["timing_source"]["kind"], "account");
    }

    proptest! {
        #[test]
        fn an_override_changes_only_its_own_customer(
            rules in arb_rules(),
            automation in arb_automation(),
            a_override in arb_override(Automation::Payment),
            service_type in proptest::option::of(arb_service_type()),
        ) {
            let a_override = CustomerOverride {
                timing: a_override.timing.filter(|_| automation == Automation::Payment),
                ..a_override
            };
            let st = service_type.as_ref();
            let inherit = customer_override(OverrideState::Inherit, None);
            let for_a = resolve(automation, Some(&rules), Some(&a_override), st);
            let for_b = resolve(automation, Some(&rules), None, st);
            prop_assert_eq!(&for_b, &resolve(automation, Some(&rules), Some(&inherit), st));
            prop_assert_eq!(for_b.enabled, match automation {
                Automation::Payment => rules.payment.enabled,
                Automation::Feedback => rules.feedback.enabled,
            });
            let expected = match a_override.state {
                OverrideState::Inherit => for_b.enabled,
                OverrideState::Enabled => true,
                OverrideState::Disabled => false,
            };
            prop_assert_eq!(for_a.enabled, expected);
        }

        #[test]
        fn feedback_timing_is_always_after_completion(
            rules in arb_rules(),
            over in proptest::option::of(arb_override(Automation::Feedback)),
            service_type in proptest::option::of(arb_service_type()),
        ) {
            let decision = resolve(Automation::Feedback, Some(&rules), over.as_ref(), service_type.as_ref());
            let timing = decision.timing.expect("configured rules give a timing");
            prop_assert_eq!(timing.trigger, Trigger::AfterComplete);
        }

        #[test]
        fn every_decision_explains_itself_in_one_sentence(
            rules in proptest::option::of(arb_rules()),
            automation in arb_automation(),
            over in proptest::option::of(arb_override(Automation::Payment)),
            service_type in proptest::option::of(arb_service_type()),
        ) {
            let decision = resolve(automation, rules.as_ref(), over.as_ref(), service_type.as_ref());
            let state = if decision.enabled { "enabled by " } else { "disabled by " };
            prop_assert!(
                decision.explanation.starts_with(state) || rules.is_none(),
                "{}", decision.explanation
            );
            prop_assert!(!decision.explanation.contains('\n'));
            prop_assert_eq!(decision.timing.is_none(), rules.is_none());
        }
    }
}
