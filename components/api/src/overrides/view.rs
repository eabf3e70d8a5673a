//! The JSON shapes this component answers with, built from the core's decisions. No rule is
//! decided here: [`entry`] asks [`resolve`] and only arranges its answer for the API.

use mio_shared::Timestamp;
use mio_shared::card::{Warning, payment_warnings};
use mio_shared::rules::{
    AccountRules, Automation, CustomerOverride, LocalTime, Offset, OverrideState, Source, Timing,
    Trigger, resolve,
};
use serde::Serialize;

/// Where a client sets the account rules when there are none yet.
pub const SET_RULES_URL: &str = "/api/v1/settings/automations";

/// `GET /api/v1/customers/{id}/automations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AutomationsView {
    /// Whether the account has set its rules.
    pub rules_configured: bool,
    /// Where to set them.
    pub set_rules_url: &'static str,
    /// One entry per automation, in [`Automation::ALL`] order.
    pub automations: Vec<Entry>,
}

/// One automation for one customer: the override and what it results in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Which automation.
    pub automation: Automation,
    /// The customer's choice (`inherit` when never set).
    #[serde(rename = "override")]
    pub state: OverrideState,
    /// The customer's own timing, if any.
    pub timing: Option<Timing>,
    /// The effective setting.
    pub effective: Effective,
    /// When the override last changed; `None` if never.
    pub updated_at: Option<Timestamp>,
    /// Who changed it (token label).
    pub updated_by: Option<String>,
    /// The earliest scheduled run for this customer.
    pub next_run_at: Option<Timestamp>,
    /// Why the automation, though on, cannot succeed now, each with the route that fixes it.
    pub warnings: Vec<Warning>,
}

/// What payment automation needs besides the rules: the customer's card and MioPay.
#[derive(Debug, Clone, Copy)]
pub struct PaymentMeans<'a> {
    /// `cus_…`.
    pub customer_id: &'a str,
    /// The primary card's expiry (month, year); `None` without a card.
    pub card: Option<(u8, u16)>,
    /// Why MioPay cannot charge, if it cannot.
    pub miopay_not_ready: Option<&'a str>,
}

/// The effective setting for the customer, with its provenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Effective {
    /// Whether the automation runs.
    pub enabled: bool,
    /// Where `enabled` came from: `account`, `customer` or `not_configured`.
    pub source: &'static str,
    /// Where the timing came from.
    pub timing_source: &'static str,
    /// One sentence for people.
    pub explanation: String,
    /// The timing that applies, flattened; `None` when there is none.
    pub trigger: Option<Trigger>,
    /// Minutes from the trigger.
    pub offset_minutes: Option<Offset>,
    /// Local time of day, if any.
    pub local_time: Option<LocalTime>,
}

/// The entry of `automation` for a customer with `stored` override (if any) and `next_run_at`.
///
/// Resolved without a booking: service-type timing is decided per booking, so this view shows
/// the account timing (or the customer's) and says which in `timing_source`.
pub fn entry(
    automation: Automation,
    rules: Option<&AccountRules>,
    stored: Option<&CustomerOverride>,
    next_run_at: Option<Timestamp>,
    means: &PaymentMeans<'_>,
) -> Entry {
    let decision = resolve(automation, rules, stored, None);
    let warnings = if automation == Automation::Payment && decision.enabled {
        payment_warnings(
            means.customer_id,
            means.card,
            next_run_at,
            means.miopay_not_ready,
        )
    } else {
        Vec::new()
    };
    Entry {
        automation,
        state: stored.map_or(OverrideState::Inherit, |o| o.state),
        timing: stored.and_then(|o| o.timing),
        effective: Effective {
            enabled: decision.enabled,
            source: enabled_source(&decision.source),
            timing_source: timing_source(&decision.timing_source),
            explanation: decision.explanation,
            trigger: decision.timing.map(|t| t.trigger),
            offset_minutes: decision.timing.map(|t| t.offset),
            local_time: decision.timing.and_then(|t| t.local_time),
        },
        updated_at: stored.map(|o| o.updated_at),
        updated_by: stored.map(|o| o.updated_by.clone()),
        next_run_at,
        warnings,
    }
}

/// The API name of where `enabled` came from. A service type never decides on/off; should the
/// core ever say so, it is still the account's rule.
fn enabled_source(source: &Source) -> &'static str {
    match source {
        Source::Account | Source::ServiceType { .. } => "account",
        Source::Customer { .. } => "customer",
        Source::NotConfigured => "not_configured",
    }
}

/// The API name of where the timing came from.
fn timing_source(source: &Source) -> &'static str {
    match source {
        Source::Account => "account",
        Source::ServiceType { .. } => "service_type",
        Source::Customer { .. } => "customer",
        Source::NotConfigured => "not_configured",
    }
}

/// One recorded change of an override.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The state before (`inherit` when there was no override).
    pub old_state: OverrideState,
    /// The state after.
    pub new_state: OverrideState,
    /// The customer timing before.
    pub old_timing: Option<Timing>,
    /// The customer timing after.
    pub new_timing: Option<Timing>,
    /// When.
    pub changed_at: Timestamp,
    /// Who (token label).
    pub changed_by: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio_shared::rules::{FeedbackRule, PaymentRule};
    use std::collections::BTreeMap;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).expect("valid")
    }

    fn timing(trigger: Trigger, minutes: i64) -> Timing {
        Timing {
            trigger,
            offset: Offset::from_minutes(minutes).expect("in range"),
            local_time: None,
        }
    }

    fn rules(payment: bool) -> AccountRules {
        AccountRules {
            payment: PaymentRule {
                enabled: payment,
                timing: timing(Trigger::BeforeStart, 1440),
                service_types: BTreeMap::new(),
            },
            feedback: FeedbackRule {
                enabled: true,
                delay: Offset::from_minutes(60).expect("in range"),
                stale_after: Offset::from_minutes(10080).expect("in range"),
            },
        }
    }

    fn overridden(state: OverrideState, label: &str) -> CustomerOverride {
        CustomerOverride {
            state,
            timing: Some(timing(Trigger::AfterEnd, 30)),
            updated_at: at("2026-11-02T10:00:00Z"),
            updated_by: label.to_owned(),
        }
    }

    const READY: PaymentMeans<'static> = PaymentMeans {
        customer_id: "cus_1",
        card: Some((12, 2099)),
        miopay_not_ready: None,
    };

    #[test]
    fn an_entry_without_override_inherits_the_account_rule_and_says_so() {
        let entry = entry(Automation::Payment, Some(&rules(true)), None, None, &READY);
        let json = serde_json::to_value(&entry).expect("serialisable");
        assert_eq!(json["automation"], "payment");
        assert_eq!(json["override"], "inherit");
        assert_eq!(json["timing"], serde_json::Value::Null);
        assert_eq!(json["updated_at"], serde_json::Value::Null);
        assert_eq!(json["updated_by"], serde_json::Value::Null);
        assert_eq!(json["next_run_at"], serde_json::Value::Null);
        assert_eq!(json["effective"]["enabled"], true);
        assert_eq!(json["effective"]["source"], "account");
        assert_eq!(json["effective"]["timing_source"], "account");
        assert_eq!(json["effective"]["trigger"], "before_start");
        assert_eq!(json["effective"]["offset_minutes"], 1440);
        assert_eq!(json["effective"]["local_time"], serde_json::Value::Null);
        assert!(json["effective"]["explanation"].is_string());
    }

    #[test]
    fn a_customer_override_shows_its_state_timing_author_and_provenance() {
        let stored = overridden(OverrideState::Enabled, "tok_0123456789ab");
        let next = at("2026-11-05T09:00:00Z");
        let entry = entry(
            Automation::Payment,
            Some(&rules(false)),
            Some(&stored),
            Some(next),
            &READY,
        );
        let json = serde_json::to_value(&entry).expect("serialisable");
        assert_eq!(json["override"], "enabled");
        assert_eq!(
            json["timing"],
            serde_json::json!({"trigger": "after_end", "offset_minutes": 30, "local_time": null})
        );
        assert_eq!(json["updated_at"], "2026-11-02T10:00:00.000Z");
        assert_eq!(json["updated_by"], "tok_0123456789ab");
        assert_eq!(json["next_run_at"], "2026-11-05T09:00:00.000Z");
        assert_eq!(json["effective"]["enabled"], true);
        assert_eq!(json["effective"]["source"], "customer");
        assert_eq!(json["effective"]["timing_source"], "customer");
        assert_eq!(json["effective"]["trigger"], "after_end");
        assert_eq!(json["effective"]["offset_minutes"], 30);
    }

    #[test]
    fn a_disabled_override_is_off_whatever_the_account_says() {
        let stored = overridden(OverrideState::Disabled, "tok_0123456789ab");
        let entry = entry(
            Automation::Payment,
            Some(&rules(true)),
            Some(&stored),
            None,
            &READY,
        );
        assert!(!entry.effective.enabled);
        assert_eq!(entry.effective.source, "customer");
        assert_eq!(entry.state, OverrideState::Disabled);
        assert!(
            entry.effective.explanation.contains("tok_0123456789ab"),
            "{}",
            entry.effective.explanation
        );
    }

    #[test]
    fn payment_on_without_a_card_warns_with_the_request_route_and_off_does_not() {
        let no_card = PaymentMeans {
            card: None,
            ..READY
        };
        let on = entry(
            Automation::Payment,
            Some(&rules(true)),
            None,
            None,
            &no_card,
        );
        assert_eq!(on.warnings.len(), 1);
        assert_eq!(on.warnings[0].code, "no_primary_card");
        assert!(on.warnings[0].action.contains("/payment-method-requests"));
        let stored = overridden(OverrideState::Disabled, "tok_0123456789ab");
        let off = entry(
            Automation::Payment,
            Some(&rules(true)),
            Some(&stored),
            None,
            &no_card,
        );
        assert!(off.warnings.is_empty());
    }

    #[test]
    fn without_rules_the_entry_is_not_configured_and_has_no_timing() {
        let entry = entry(Automation::Feedback, None, None, None, &READY);
        assert!(!entry.effective.enabled);
        assert_eq!(entry.effective.source, "not_configured");
        assert_eq!(entry.effective.trigger, None);
    }

    #[test]
    fn provenance_names_are_exhaustive_and_distinct() {
        let service_type = Source::ServiceType {
            service_type: mio_shared::rules::ServiceType::parse("deep clean").expect("valid"),
        };
        assert_eq!(timing_source(&service_type), "service_type");
        assert_eq!(enabled_source(&service_type), "account");
        assert_eq!(enabled_source(&Source::NotConfigured), "not_configured");
    }
}
