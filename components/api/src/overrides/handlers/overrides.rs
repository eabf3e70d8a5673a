//! `/api/v1/customers/{id}/automations[/{automation}[/history]]`.

use crate::overrides::body::{self, OverrideUpdate};
use crate::overrides::storage::overrides::{StoredOverride, Written};
use crate::overrides::storage::{self, jobs};
use crate::overrides::view::{self, AutomationsView, Entry, PaymentMeans, SET_RULES_URL};
use anyhow::anyhow;
use mio_platform::cards::primary_card_expiry;
use mio_platform::db::Sql;
use mio_platform::overrides::load_overrides;
use mio_platform::settings::{AccountSettings, load_settings};
use mio_platform::{ApiError, Caller, response};
use mio_shared::rules::{Automation, OverrideState};
use mio_shared::{CustomerId, ListQuery, Page, Timestamp};
use spin_sdk::http::Response;

const NOT_FOUND: ApiError = ApiError::NotFound("No customer with this id in your account.");

/// How often a change is retried when other requests keep changing the same override between
/// our read and our write.
const MAX_ATTEMPTS: usize = 3;

/// `GET /api/v1/customers/{id}/automations`.
pub fn view(db: &impl Sql, caller: &Caller, id: &CustomerId) -> Result<Response, ApiError> {
    let account_id = caller.account.id.as_str();
    let storage::Snapshot {
        overrides,
        next_runs,
        card,
    } = storage::snapshot(db, account_id, id.as_str())?.ok_or(NOT_FOUND)?;
    let settings = settings(db, account_id)?;
    let means = means(id, card, &settings);
    let automations = Automation::ALL
        .into_iter()
        .map(|automation| {
            view::entry(
                automation,
                settings.rules.as_ref(),
                overrides.get(automation),
                next_runs.get(&automation).copied(),
                &means,
            )
        })
        .collect();
    let body = AutomationsView {
        rules_configured: settings.rules.is_some(),
        set_rules_url: SET_RULES_URL,
        automations,
    };
    Ok(response::json(200, &body, &[])?)
}

/// `PUT /api/v1/customers/{id}/automations/{automation}` → 200 with the entry.
///
/// Validates before touching anything; records the change (who, when, old → new) right after
/// writing it; then re-plans the customer's open bookings so that scheduled runs follow the
/// new setting at once (turning an automation off cancels them, on plans them).
pub fn set(
    db: &impl Sql,
    caller: &Caller,
    id: &CustomerId,
    automation: Automation,
    body: &[u8],
    now: Timestamp,
) -> Result<Response, ApiError> {
    let update = body::parse(body, automation)?;
    let account_id = caller.account.id.as_str();
    if !storage::customer_exists(db, account_id, id.as_str())? {
        return Err(NOT_FOUND);
    }
    write(db, caller, id, automation, &update, now)?;
    // Also after a no-op write: a retry of a request that failed after writing finishes here.
    let settings = jobs::replan_customer(db, account_id, id.as_str(), now)?;
    let entry = entry(db, account_id, id, automation, &settings)?;
    Ok(response::json(200, &entry, &[])?)
}

/// Stores `update` unless it is what is stored already, and records the change.
fn write(
    db: &impl Sql,
    caller: &Caller,
    id: &CustomerId,
    automation: Automation,
    update: &OverrideUpdate,
    now: Timestamp,
) -> Result<(), ApiError> {
    let account_id = caller.account.id.as_str();
    let by = caller.token_label.as_str();
    for _ in 0..MAX_ATTEMPTS {
        let old = storage::overrides::find(db, account_id, id.as_str(), automation)?;
        if is_unchanged(old.as_ref(), update)? {
            return Ok(());
        }
        let written = storage::overrides::compare_and_set(
            db,
            account_id,
            id.as_str(),
            automation,
            old.as_ref(),
            update,
            by,
            now,
        )?;
        match written {
            // The history row is written by the same statement (a database trigger).
            Written::Changed => return Ok(()),
            // Someone changed the override since we read it, or deleted the customer.
            Written::Stale => {
                if !storage::customer_exists(db, account_id, id.as_str())? {
                    return Err(NOT_FOUND);
                }
            }
        }
    }
    Err(ApiError::Conflict(
        "This override is being changed by other requests right now; try again.".to_owned(),
    ))
}

/// Whether storing `update` would change nothing (no override at all reads as `inherit`
/// without timing).
fn is_unchanged(old: Option<&StoredOverride>, update: &OverrideUpdate) -> anyhow::Result<bool> {
    Ok(match old {
        None => update.state == OverrideState::Inherit && update.timing.is_none(),
        Some(stored) => {
            let stored = stored.parse()?;
            stored.state == update.state && stored.timing == update.timing
        }
    })
}

/// `GET /api/v1/customers/{id}/automations/{automation}/history?limit=&cursor=`.
pub fn history(
    db: &impl Sql,
    caller: &Caller,
    id: &CustomerId,
    automation: Automation,
    query: &str,
) -> Result<Response, ApiError> {
    let query = ListQuery::parse(query).map_err(ApiError::Validation)?;
    let account_id = caller.account.id.as_str();
    if !storage::customer_exists(db, account_id, id.as_str())? {
        return Err(NOT_FOUND);
    }
    let rows = storage::overrides::history(db, account_id, id.as_str(), automation, &query)?;
    Ok(response::json(
        200,
        &Page::from_rows(rows, query.limit),
        &[],
    )?)
}

fn settings(db: &impl Sql, account_id: &str) -> Result<AccountSettings, ApiError> {
    // The caller was just authenticated, so the account exists.
    Ok(load_settings(db, account_id)?.ok_or_else(|| anyhow!("account {account_id} has no row"))?)
}

fn entry(
    db: &impl Sql,
    account_id: &str,
    id: &CustomerId,
    automation: Automation,
    settings: &AccountSettings,
) -> Result<Entry, ApiError> {
    let overrides = load_overrides(db, account_id, id.as_str())?;
    let next_runs = jobs::next_runs(db, account_id, id.as_str())?;
    let card = primary_card_expiry(db, account_id, id.as_str())?;
    Ok(view::entry(
        automation,
        settings.rules.as_ref(),
        overrides.get(automation),
        next_runs.get(&automation).copied(),
        &means(id, card, settings),
    ))
}

/// The customer's card and MioPay, for the payment warnings.
fn means<'a>(
    id: &'a CustomerId,
    card: Option<(u8, u16)>,
    settings: &'a AccountSettings,
) -> PaymentMeans<'a> {
    PaymentMeans {
        customer_id: id.as_str(),
        card,
        miopay_not_ready: mio_shared::charge::miopay_not_ready(
            settings.miopay_enabled,
            settings.stripe_account_id.as_deref(),
            settings.stripe_refusal.as_deref(),
        ),
    }
}
