//! `/api/v1/settings/automations` (the account's automation rules) and
//! `/api/v1/settings/miopay`.

use crate::customers::storage::Sql;
use mio_platform::jobs::{ReplanScope, replan_bookings};
use mio_platform::rules_body::{READ_ONLY_RULES_FIELDS, RulesBody};
use mio_platform::settings::{
    AccountSettings, MiopayStored, load_settings, store_miopay, store_rules,
};
use mio_platform::{ApiError, response};
use mio_shared::rules::{
    AccountRules, DEFAULT_FEEDBACK_STALE_MINUTES, FeedbackRule, Offset, PaymentRule, Timing,
    Trigger,
};
use mio_shared::{Account, FieldError, Patch, Timestamp, json};
use serde::{Deserialize, Serialize};
use spin_sdk::http::Response;
use std::collections::BTreeMap;

/// The rules as the API shows them.
#[derive(Debug, Serialize)]
struct RulesView<'a> {
    /// False until the business first sets the rules; then `payment` and `feedback` are the
    /// defaults the UI proposes, and nothing runs.
    configured: bool,
    /// The account's IANA time zone (local times are in it).
    timezone: &'a str,
    payment: &'a PaymentRule,
    feedback: &'a FeedbackRule,
}

/// The rules proposed before any are set: charge the day before the visit, ask for feedback
/// two hours after completion. Shown with `configured: false`; never applied until PUT.
fn proposed_rules() -> anyhow::Result<AccountRules> {
    let minutes = |m: u32| {
        Offset::from_minutes(i64::from(m)).ok_or_else(|| anyhow::anyhow!("offset {m} invalid"))
    };
    Ok(AccountRules {
        payment: PaymentRule {
            enabled: true,
            timing: Timing {
                trigger: Trigger::BeforeStart,
                offset: minutes(24 * 60)?,
                local_time: None,
            },
            service_types: BTreeMap::new(),
        },
        feedback: FeedbackRule {
            enabled: true,
            delay: minutes(2 * 60)?,
            stale_after: minutes(DEFAULT_FEEDBACK_STALE_MINUTES)?,
        },
    })
}

fn settings_of(db: &impl Sql, account: &Account) -> Result<AccountSettings, ApiError> {
    Ok(load_settings(db, account.id.as_str())?
        .ok_or_else(|| anyhow::anyhow!("the signed-in account has no row"))?)
}

fn rules_response(settings: &AccountSettings) -> Result<Response, ApiError> {
    let proposed;
    let (configured, rules) = match &settings.rules {
        Some(rules) => (true, rules),
        None => {
            proposed = proposed_rules()?;
            (false, &proposed)
        }
    };
    let view = RulesView {
        configured,
        timezone: settings.timezone.name(),
        payment: &rules.payment,
        feedback: &rules.feedback,
    };
    Ok(response::json(200, &view, &[])?)
}

/// `GET /api/v1/settings/automations`.
pub fn get_rules(db: &impl Sql, account: &Account) -> Result<Response, ApiError> {
    rules_response(&settings_of(db, account)?)
}

/// `PUT /api/v1/settings/automations`: validates everything (all field errors at once), stores
/// the rules, then re-plans the account's upcoming bookings and pending runs in bulk
/// (`mio_platform::jobs::replan_bookings`: pages of bookings read in three queries, planned by
/// the core in memory, written with at most three multi-row statements per page).
pub fn put_rules(
    db: &impl Sql,
    account: &Account,
    body: &[u8],
    now: Timestamp,
) -> Result<Response, ApiError> {
    let rules = parse_rules(body)?;
    let account_id = account.id.as_str();
    store_rules(db, account_id, &rules, now)?;
    let settings = settings_of(db, account)?;
    replan_bookings(db, account_id, &settings, ReplanScope::Account, now)?;
    rules_response(&settings)
}

fn parse_rules(body: &[u8]) -> Result<mio_shared::rules::AccountRules, ApiError> {
    let body: RulesBody = json::decode(body, READ_ONLY_RULES_FIELDS)?;
    body.parse().map_err(ApiError::Validation)
}

/// What [`put_rules`] would answer to `body` when it refuses it (its validation, and nothing
/// stored); `204` when it would accept it. The console checks a form this way when part of
/// it could not be read, so every other error shows at once.
pub fn check_rules(body: &[u8]) -> Result<Response, ApiError> {
    parse_rules(body).map(|_| response::no_content())
}

/// `PUT /api/v1/settings/miopay` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MiopayBody {
    enabled: Option<bool>,
    /// Absent keeps the stored id; `null` clears it (only while disabled).
    #[serde(default)]
    stripe_account_id: Patch<String>,
}

/// MioPay as the API shows it.
#[derive(Debug, Serialize)]
struct MiopayView<'a> {
    enabled: bool,
    stripe_account_id: Option<&'a str>,
    /// Whether automated charges can go through now.
    ready: bool,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

/// Whether `text` looks like a Stripe Connect account id: `acct_` and 1–255 letters or digits.
fn is_stripe_account_id(text: &str) -> bool {
    text.strip_prefix("acct_").is_some_and(|rest| {
        !rest.is_empty() && rest.len() <= 255 && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

fn miopay_response(settings: &AccountSettings) -> Result<Response, ApiError> {
    let reason = mio_shared::charge::miopay_not_ready(
        settings.miopay_enabled,
        settings.stripe_account_id.as_deref(),
        settings.stripe_refusal.as_deref(),
    );
    let view = MiopayView {
        enabled: settings.miopay_enabled,
        stripe_account_id: settings.stripe_account_id.as_deref(),
        ready: reason.is_none(),
        reason,
    };
    Ok(response::json(200, &view, &[])?)
}

/// `GET /api/v1/settings/miopay`.
pub fn get_miopay(db: &impl Sql, account: &Account) -> Result<Response, ApiError> {
    miopay_response(&settings_of(db, account)?)
}

/// `PUT /api/v1/settings/miopay` `{"enabled", "stripe_account_id"}`: enabling needs a valid
/// `acct_…` id in the same request.
pub fn put_miopay(
    db: &impl Sql,
    account: &Account,
    body: &[u8],
    now: Timestamp,
) -> Result<Response, ApiError> {
    let body: MiopayBody = json::decode(body, &[])?;
    let mut errors = Vec::new();
    if body.enabled.is_none() {
        errors.push(FieldError::new("enabled", "is required"));
    }
    const ACCT: &str = "must be a Stripe account id, acct_ followed by letters and digits";
    match (&body.stripe_account_id, body.enabled) {
        (Patch::Set(id), _) if !is_stripe_account_id(id) => {
            errors.push(FieldError::new("stripe_account_id", ACCT));
        }
        (Patch::Keep | Patch::Clear, Some(true)) => errors.push(FieldError::new(
            "stripe_account_id",
            "is required to enable MioPay",
        )),
        _ => {}
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let stripe_account_id = match &body.stripe_account_id {
        Patch::Keep => None,
        Patch::Clear => Some(None),
        Patch::Set(id) => Some(Some(id.as_str())),
    };
    let stored = store_miopay(
        db,
        account.id.as_str(),
        body.enabled.unwrap_or(false),
        stripe_account_id,
        now,
    )?;
    if stored == MiopayStored::AccountTaken {
        return Err(ApiError::Conflict(
            "This Stripe account is connected to another Mio account; nothing was changed."
                .to_owned(),
        ));
    }
    miopay_response(&settings_of(db, account)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripe_account_ids_need_the_acct_prefix_and_alphanumerics() {
        assert!(is_stripe_account_id("acct_1PqRsT2uVwXyZ"));
        for bad in ["", "acct_", "acct_ab-c", "cus_123", "acct_ 1", "ACCT_123"] {
            assert!(!is_stripe_account_id(bad), "{bad}");
        }
    }

    #[test]
    fn the_proposed_rules_are_valid_core_values() {
        let rules = proposed_rules().expect("valid");
        assert_eq!(rules.payment.timing.offset.minutes(), 1440);
        assert!(rules.feedback.delay <= rules.feedback.stale_after);
    }
}
