//! Account rules and timings as JSON: the request bodies of the rule and override routes, and
//! the stored `rules_json` / `timing_json` (the serde form of the core's types), parsed into
//! the core's types with every field error collected.
//!
//! The core's rule types are `Serialize` only; this is the one place their JSON form is read
//! back, shared by every component so the accepted shape cannot drift between them.

use crate::FieldError;
use crate::rules::{
    AccountRules, DEFAULT_FEEDBACK_STALE_MINUTES, FeedbackRule, LocalTime, MAX_OFFSET_MINUTES,
    Offset, PaymentRule, ServiceType, Timing, Trigger,
};
use serde::Deserialize;
use std::collections::BTreeMap;

/// `{"trigger", "offset_minutes", "local_time"?}` as received or stored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimingBody {
    /// `before_start` | `after_end` | `after_complete`.
    pub trigger: Option<String>,
    /// Whole minutes, 0–86400.
    pub offset_minutes: Option<i64>,
    /// `HH:MM` in the account's time zone, or absent / `null`.
    pub local_time: Option<String>,
}

/// `payment` of `PUT /api/v1/settings/automations`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentRuleBody {
    /// Required.
    pub enabled: Option<bool>,
    /// Required.
    pub trigger: Option<String>,
    /// Required.
    pub offset_minutes: Option<i64>,
    /// Optional `HH:MM`.
    pub local_time: Option<String>,
    /// Optional timing per service type.
    pub service_types: Option<BTreeMap<String, TimingBody>>,
}

/// `feedback` of `PUT /api/v1/settings/automations`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackRuleBody {
    /// Required.
    pub enabled: Option<bool>,
    /// Required.
    pub delay_minutes: Option<i64>,
    /// Optional; default 7 days.
    pub stale_after_minutes: Option<i64>,
}

/// `PUT /api/v1/settings/automations` body, and the stored `rules_json`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesBody {
    /// Required.
    pub payment: Option<PaymentRuleBody>,
    /// Required.
    pub feedback: Option<FeedbackRuleBody>,
}

/// Fields the settings answer shows but a client may not set.
pub const READ_ONLY_RULES_FIELDS: &[&str] = &["configured", "timezone"];

const REQUIRED: &str = "is required";

fn path(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

fn required<T>(errors: &mut Vec<FieldError>, field: String, value: Option<T>) -> Option<T> {
    if value.is_none() {
        errors.push(FieldError::new(field, REQUIRED));
    }
    value
}

fn trigger(errors: &mut Vec<FieldError>, field: String, value: Option<String>) -> Option<Trigger> {
    let text = required(errors, field.clone(), value)?;
    let parsed = Trigger::parse(&text);
    if parsed.is_none() {
        errors.push(FieldError::new(
            field,
            "must be one of before_start, after_end, after_complete",
        ));
    }
    parsed
}

fn offset(errors: &mut Vec<FieldError>, field: String, value: Option<i64>) -> Option<Offset> {
    let minutes = required(errors, field.clone(), value)?;
    optional_offset(errors, field, minutes)
}

fn optional_offset(errors: &mut Vec<FieldError>, field: String, minutes: i64) -> Option<Offset> {
    let parsed = Offset::from_minutes(minutes);
    if parsed.is_none() {
        errors.push(FieldError::new(
            field,
            format!("must be a whole number of minutes from 0 to {MAX_OFFSET_MINUTES}"),
        ));
    }
    parsed
}

fn local_time(
    errors: &mut Vec<FieldError>,
    field: String,
    value: Option<String>,
) -> Result<Option<LocalTime>, ()> {
    match value {
        None => Ok(None),
        Some(text) => match LocalTime::parse(&text) {
            Some(time) => Ok(Some(time)),
            None => {
                errors.push(FieldError::new(
                    field,
                    "must be a time of day as HH:MM (00:00 to 23:59)",
                ));
                Err(())
            }
        },
    }
}

fn timing_fields(
    errors: &mut Vec<FieldError>,
    prefix: &str,
    trigger_text: Option<String>,
    offset_minutes: Option<i64>,
    local: Option<String>,
) -> Option<Timing> {
    let trigger = trigger(errors, path(prefix, "trigger"), trigger_text);
    let offset = offset(errors, path(prefix, "offset_minutes"), offset_minutes);
    let local_time = local_time(errors, path(prefix, "local_time"), local);
    Some(Timing {
        trigger: trigger?,
        offset: offset?,
        local_time: local_time.ok()?,
    })
}

impl TimingBody {
    /// The timing, or every field error, with field names under `prefix` (`""` for a top-level
    /// body, `"timing"`, `"payment.service_types.deep_clean"`, ...).
    pub fn parse(self, prefix: &str) -> Result<Timing, Vec<FieldError>> {
        let mut errors = Vec::new();
        let timing = self.parse_into(prefix, &mut errors);
        match timing {
            Some(timing) if errors.is_empty() => Ok(timing),
            _ => Err(errors),
        }
    }

    fn parse_into(self, prefix: &str, errors: &mut Vec<FieldError>) -> Option<Timing> {
        timing_fields(
            errors,
            prefix,
            self.trigger,
            self.offset_minutes,
            self.local_time,
        )
    }
}

impl RulesBody {
    /// The account's rules, or every field error (`payment.trigger`, `feedback.delay_minutes`,
    /// `payment.service_types.<type>.offset_minutes`, ...).
    pub fn parse(self) -> Result<AccountRules, Vec<FieldError>> {
        let mut errors = Vec::new();
        let payment = required(&mut errors, "payment".to_owned(), self.payment)
            .and_then(|body| parse_payment(body, &mut errors));
        let feedback = required(&mut errors, "feedback".to_owned(), self.feedback)
            .and_then(|body| parse_feedback(body, &mut errors));
        match (payment, feedback) {
            (Some(payment), Some(feedback)) if errors.is_empty() => {
                Ok(AccountRules { payment, feedback })
            }
            _ => Err(errors),
        }
    }
}

fn parse_payment(body: PaymentRuleBody, errors: &mut Vec<FieldError>) -> Option<PaymentRule> {
    let enabled = required(errors, "payment.enabled".to_owned(), body.enabled);
    let timing = timing_fields(
        errors,
        "payment",
        body.trigger,
        body.offset_minutes,
        body.local_time,
    );
    let mut service_types = BTreeMap::new();
    let mut complete = true;
    for (name, timing_body) in body.service_types.unwrap_or_default() {
        let prefix = format!("payment.service_types.{name}");
        let Some(service_type) = ServiceType::parse(&name) else {
            errors.push(FieldError::new(
                prefix,
                "a service type name must be 1 to 100 characters",
            ));
            complete = false;
            continue;
        };
        match timing_body.parse_into(&prefix, errors) {
            Some(timing) => {
                if service_types.insert(service_type, timing).is_some() {
                    errors.push(FieldError::new(
                        prefix,
                        "names the same service type as another entry (names are trimmed)",
                    ));
                    complete = false;
                }
            }
            None => complete = false,
        }
    }
    Some(PaymentRule {
        enabled: enabled?,
        timing: timing?,
        service_types: complete.then_some(service_types)?,
    })
}

fn parse_feedback(body: FeedbackRuleBody, errors: &mut Vec<FieldError>) -> Option<FeedbackRule> {
    let enabled = required(errors, "feedback.enabled".to_owned(), body.enabled);
    let delay = offset(
        errors,
        "feedback.delay_minutes".to_owned(),
        body.delay_minutes,
    );
    let stale_after = match body.stale_after_minutes {
        None => Offset::from_minutes(i64::from(DEFAULT_FEEDBACK_STALE_MINUTES)),
        Some(minutes) => {
            optional_offset(errors, "feedback.stale_after_minutes".to_owned(), minutes)
        }
    };
    if let (Some(delay), Some(stale)) = (delay, stale_after)
        && stale < delay
    {
        errors.push(FieldError::new(
            "feedback.stale_after_minutes",
            "must be at least delay_minutes, or every request would be skipped as stale",
        ));
        return None;
    }
    Some(FeedbackRule {
        enabled: enabled?,
        delay: delay?,
        stale_after: stale_after?,
    })
}

/// The stored form of the rules (`account_settings.rules_json`).
pub fn rules_to_json(rules: &AccountRules) -> anyhow::Result<String> {
    Ok(serde_json::to_string(rules)?)
}

/// Reads back what [`rules_to_json`] stored.
pub fn rules_from_json(json: &str) -> anyhow::Result<AccountRules> {
    let body: RulesBody = serde_json::from_str(json)?;
    body.parse()
        .map_err(|errors| anyhow::anyhow!("stored rules are invalid: {errors:?}"))
}

/// The stored form of a timing (`customer_overrides.timing_json`).
pub fn timing_to_json(timing: &Timing) -> anyhow::Result<String> {
    Ok(serde_json::to_string(timing)?)
}

/// Reads back what [`timing_to_json`] stored.
pub fn timing_from_json(json: &str) -> anyhow::Result<Timing> {
    let body: TimingBody = serde_json::from_str(json)?;
    body.parse("")
        .map_err(|errors| anyhow::anyhow!("stored timing is invalid: {errors:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: &str) -> Result<AccountRules, Vec<FieldError>> {
        serde_json::from_str::<RulesBody>(json)
            .expect("decodes")
            .parse()
    }

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    const VALID: &str = r#"{
        "payment": {"enabled": true, "trigger": "before_start", "offset_minutes": 1440,
                    "local_time": "09:00",
                    "service_types": {"deep_clean": {"trigger": "after_end", "offset_minutes": 60}}},
        "feedback": {"enabled": true, "delay_minutes": 120}
    }"#;

    #[test]
    fn valid_rules_parse_with_the_default_staleness() {
        let parsed = rules(VALID).expect("valid");
        assert!(parsed.payment.enabled);
        assert_eq!(parsed.payment.timing.trigger, Trigger::BeforeStart);
        assert_eq!(parsed.payment.timing.offset.minutes(), 1440);
        assert_eq!(
            parsed.payment.timing.local_time.map(|t| t.to_string()),
            Some("09:00".to_owned())
        );
        assert_eq!(parsed.payment.service_types.len(), 1);
        assert_eq!(
            parsed.feedback.stale_after.minutes(),
            DEFAULT_FEEDBACK_STALE_MINUTES
        );
    }

    #[test]
    fn stored_rules_read_back_equal() {
        let parsed = rules(VALID).expect("valid");
        let json = rules_to_json(&parsed).expect("serialises");
        assert_eq!(rules_from_json(&json).expect("reads back"), parsed);
    }

    #[test]
    fn every_field_error_is_reported_at_once() {
        let errors = rules(
            r#"{"payment": {"trigger": "soon", "offset_minutes": -5, "local_time": "25:00",
                 "service_types": {"  ": {"trigger": "after_end", "offset_minutes": 1},
                                   "x": {"offset_minutes": 99999999}}},
                "feedback": {"enabled": true}}"#,
        )
        .expect_err("invalid");
        assert_eq!(
            fields(&errors),
            [
                "payment.enabled",
                "payment.trigger",
                "payment.offset_minutes",
                "payment.local_time",
                "payment.service_types.  ",
                "payment.service_types.x.trigger",
                "payment.service_types.x.offset_minutes",
                "feedback.delay_minutes",
            ]
        );
    }

    #[test]
    fn both_automations_are_required() {
        let errors = rules("{}").expect_err("invalid");
        assert_eq!(fields(&errors), ["payment", "feedback"]);
    }

    #[test]
    fn feedback_that_would_always_be_stale_is_refused() {
        let errors = rules(
            r#"{"payment": {"enabled": false, "trigger": "after_end", "offset_minutes": 0},
                "feedback": {"enabled": true, "delay_minutes": 600, "stale_after_minutes": 60}}"#,
        )
        .expect_err("invalid");
        assert_eq!(fields(&errors), ["feedback.stale_after_minutes"]);
    }

    #[test]
    fn a_stored_timing_reads_back_equal() {
        let timing = TimingBody {
            trigger: Some("after_complete".to_owned()),
            offset_minutes: Some(30),
            local_time: None,
        }
        .parse("timing")
        .expect("valid");
        let json = timing_to_json(&timing).expect("serialises");
        assert_eq!(timing_from_json(&json).expect("reads back"), timing);
    }
}
