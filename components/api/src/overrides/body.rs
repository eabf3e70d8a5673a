//! `PUT /api/v1/customers/{id}/automations/{automation}` bodies, parsed at the edge into the
//! core's types: an [`OverrideUpdate`] is valid by construction.

use mio_platform::rules_body::TimingBody;
use mio_shared::rules::{Automation, OverrideState, Timing, Trigger};
use mio_shared::{FieldError, json};
use serde::Deserialize;

/// The body as received. Fields are optional here so that every missing or invalid one is
/// reported at once, not only the first.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideBody {
    /// `inherit` | `enabled` | `disabled`.
    pub state: Option<String>,
    /// The customer's timing (the same shape as the account rules'); absent or `null` means
    /// none.
    pub timing: Option<TimingBody>,
}

/// A valid override: the new state of one automation for one customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverrideUpdate {
    /// Inherit, enabled or disabled.
    pub state: OverrideState,
    /// The customer's timing, if any.
    pub timing: Option<Timing>,
}

/// Fields the API shows in an entry but a client cannot set.
const READ_ONLY_FIELDS: &[&str] = &[
    "automation",
    "override",
    "effective",
    "updated_at",
    "updated_by",
    "next_run_at",
];

/// Decodes and validates a body for `automation`, collecting every field error.
pub fn parse(bytes: &[u8], automation: Automation) -> Result<OverrideUpdate, json::BodyError> {
    let body: OverrideBody = json::decode(bytes, READ_ONLY_FIELDS)?;
    let mut errors = Vec::new();
    let state = match body.state.as_deref() {
        None => {
            errors.push(FieldError::new("state", "is required"));
            None
        }
        Some(text) => OverrideState::parse(text).or_else(|| {
            errors.push(FieldError::new(
                "state",
                "must be one of `inherit`, `enabled`, `disabled`",
            ));
            None
        }),
    };
    let timing = body.timing.map(|timing| {
        let parsed = timing.parse("timing");
        if let Err(timing_errors) = &parsed {
            errors.extend(timing_errors.iter().cloned());
        }
        parsed
            .ok()
            .filter(|timing| follows_completion(timing, automation, &mut errors))
    });
    match (state, timing) {
        (Some(state), None) if errors.is_empty() => Ok(OverrideUpdate {
            state,
            timing: None,
        }),
        (Some(state), Some(Some(timing))) if errors.is_empty() => Ok(OverrideUpdate {
            state,
            timing: Some(timing),
        }),
        _ => Err(json::BodyError::Invalid(errors)),
    }
}

/// Feedback is requested after the business completes the booking, so its timing can only be
/// measured from completion.
fn follows_completion(
    timing: &Timing,
    automation: Automation,
    errors: &mut Vec<FieldError>,
) -> bool {
    match (automation, timing.trigger) {
        (Automation::Payment, _) | (Automation::Feedback, Trigger::AfterComplete) => true,
        (Automation::Feedback, Trigger::BeforeStart | Trigger::AfterEnd) => {
            errors.push(FieldError::new(
                "timing.trigger",
                "must be `after_complete`: feedback is requested after the booking is completed",
            ));
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(result: Result<OverrideUpdate, json::BodyError>) -> Vec<String> {
        match result {
            Err(json::BodyError::Invalid(errors)) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    #[test]
    fn a_state_alone_is_an_override_without_timing() {
        let update = parse(br#"{"state": "disabled"}"#, Automation::Payment).expect("valid");
        assert_eq!(
            update,
            OverrideUpdate {
                state: OverrideState::Disabled,
                timing: None
            }
        );
        let update = parse(
            br#"{"state": "inherit", "timing": null}"#,
            Automation::Payment,
        )
        .expect("valid");
        assert_eq!(update.timing, None);
    }

    #[test]
    fn a_timing_is_parsed_into_the_core_type() {
        let update = parse(
            br#"{"state": "enabled", "timing": {"trigger": "before_start", "offset_minutes": 1440, "local_time": "09:00"}}"#,
            Automation::Payment,
        )
        .expect("valid");
        let timing = update.timing.expect("timing");
        assert_eq!(timing.trigger, Trigger::BeforeStart);
        assert_eq!(timing.offset.minutes(), 1440);
        assert_eq!(
            timing.local_time.map(|t| t.to_string()),
            Some("09:00".into())
        );
    }

    #[test]
    fn every_invalid_field_is_reported_at_once() {
        let result = parse(
            br#"{"state": "off", "timing": {"trigger": "whenever", "offset_minutes": -5, "local_time": "25:00"}}"#,
            Automation::Payment,
        );
        assert_eq!(
            fields(result),
            [
                "state",
                "timing.trigger",
                "timing.offset_minutes",
                "timing.local_time"
            ]
        );
    }

    #[test]
    fn missing_state_and_timing_fields_are_required() {
        assert_eq!(fields(parse(b"{}", Automation::Payment)), ["state"]);
        assert_eq!(
            fields(parse(
                br#"{"state": "enabled", "timing": {}}"#,
                Automation::Payment
            )),
            ["timing.trigger", "timing.offset_minutes"]
        );
    }

    #[test]
    fn feedback_timing_must_follow_completion() {
        let body =
            br#"{"state": "enabled", "timing": {"trigger": "after_end", "offset_minutes": 60}}"#;
        assert_eq!(
            fields(parse(body, Automation::Feedback)),
            ["timing.trigger"]
        );
        assert!(parse(body, Automation::Payment).is_ok());
        let ok = br#"{"state": "enabled", "timing": {"trigger": "after_complete", "offset_minutes": 60}}"#;
        assert!(parse(ok, Automation::Feedback).is_ok());
    }

    #[test]
    fn unknown_and_read_only_fields_are_refused() {
        assert_eq!(
            parse(br#"{"state": "enabled", "colour": 1}"#, Automation::Payment),
            Err(json::BodyError::Invalid(vec![FieldError::new(
                "colour",
                "is not a known field"
            )]))
        );
        assert_eq!(
            parse(
                br#"{"state": "enabled", "effective": {}}"#,
                Automation::Payment
            ),
            Err(json::BodyError::Invalid(vec![FieldError::new(
                "effective",
                "is read-only and cannot be set"
            )]))
        );
        assert_eq!(
            fields(parse(
                br#"{"state": "enabled", "timing": {"trigger": "after_end", "offset_minutes": 1, "at": "x"}}"#,
                Automation::Payment
            )),
            ["timing.at"]
        );
    }

    #[test]
    fn a_body_that_is_not_an_object_is_malformed() {
        assert!(matches!(
            parse(b"[]", Automation::Payment),
            Err(json::BodyError::Malformed(_))
        ));
        assert!(matches!(
            parse(br#"{"state": "enabled""#, Automation::Payment),
            Err(json::BodyError::Malformed(_))
        ));
    }
}
