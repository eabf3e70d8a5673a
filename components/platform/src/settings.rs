//! The `account_settings` table: automation rules and MioPay, with the account's time zone.

use crate::db::{Record, Sql, boolean, optional_text, rfc3339, text};
use crate::overrides::Overrides;
use crate::owner::Owner;
use crate::rules_body::{rules_from_json, rules_to_json};
use anyhow::Context;
use mio_shared::rules::AccountRules;
use mio_shared::{TimeZone, Timestamp};

/// What the components need to know about an account to plan and run automations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSettings {
    /// The account's time zone (from `accounts`).
    pub timezone: TimeZone,
    /// The automation rules; `None` until the business sets them.
    pub rules: Option<AccountRules>,
    /// When the rules were last set.
    pub rules_updated_at: Option<Timestamp>,
    /// Whether MioPay (Stripe) is enabled.
    pub miopay_enabled: bool,
    /// The Stripe Connect account (`acct_…`), if one was given.
    pub stripe_account_id: Option<String>,
    /// Why Stripe refused the platform's access to that account, when it last did (`None`: no
    /// refusal since the last success).
    pub stripe_refusal: Option<String>,
    /// Whether that refusal means the account cannot charge at all (Stripe disabled charges,
    /// or the business disconnected it), so runs fail instead of waiting.
    pub charges_blocked: bool,
}

// An account without a settings row reads as "nothing configured, MioPay off".
// The settings columns, from `accounts a` joined as in `SETTINGS_FROM`, as `settings_from` reads
// them.
macro_rules! settings_columns {
    () => {
        "a.id AS account_id, a.timezone, s.rules_json, s.rules_updated_at, \
         COALESCE(s.miopay_enabled, 0) AS miopay_enabled, s.stripe_account_id, \
         CASE WHEN m.ready = 0 THEN COALESCE(m.reason, 'Stripe refused access') END AS refusal, \
         COALESCE(m.ready = 0 AND m.kind = 'charges', 0) AS charges_blocked"
    };
}
macro_rules! settings_from {
    () => {
        " FROM accounts a LEFT JOIN account_settings s ON s.account_id = a.id \
         LEFT JOIN miopay_status m ON m.account_id = a.id AND m.stripe_account = s.stripe_account_id"
    };
}

const SELECT_SETTINGS: &str = concat!(
    "SELECT ",
    settings_columns!(),
    settings_from!(),
    " WHERE a.id = ?1"
);

// The settings with customer `?2`'s overrides: one row per override, or one row with NULL
// override columns when the customer has none.
const SELECT_SETTINGS_AND_OVERRIDES: &str = concat!(
    "SELECT ",
    settings_columns!(),
    ", o.automation, o.state, o.timing_json, o.updated_at, o.updated_by",
    settings_from!(),
    " LEFT JOIN customer_overrides o ON o.account_id = a.id AND o.customer_id = ?2 \
     WHERE a.id = {account}"
);

const UPSERT_RULES: &str = "INSERT INTO account_settings \
     (account_id, rules_json, rules_updated_at, updated_at) VALUES (?1, ?2, ?3, ?3) \
     ON CONFLICT (account_id) DO UPDATE SET rules_json = excluded.rules_json, \
     rules_updated_at = excluded.rules_updated_at, updated_at = excluded.updated_at";

// ?5 = 1 replaces the stored Stripe account id with ?3; 0 keeps it. A Stripe account already
// connected to another Mio account is not taken: the statement then writes nothing and returns
// no row. One statement, so two accounts claiming the same Stripe account at once cannot both
// win.
const UPSERT_MIOPAY: &str = "INSERT INTO account_settings \
     (account_id, miopay_enabled, stripe_account_id, updated_at) SELECT ?1, ?2, ?3, ?4 \
     WHERE NOT (?5 AND ?3 IS NOT NULL AND EXISTS (SELECT 1 FROM account_settings \
                WHERE stripe_account_id = ?3 AND account_id <> ?1)) \
     ON CONFLICT (account_id) DO UPDATE SET miopay_enabled = excluded.miopay_enabled, \
     stripe_account_id = CASE WHEN ?5 THEN excluded.stripe_account_id \
                              ELSE account_settings.stripe_account_id END, \
     updated_at = excluded.updated_at RETURNING account_id";

// Setting the Stripe account (re)connects it: what Stripe said about the old connection is
// forgotten until Stripe says something about the new one.
const FORGET_READINESS: &str = "DELETE FROM miopay_status WHERE account_id = ?1";

/// The settings of account `account_id`; `None` when there is no such account.
pub fn load_settings(db: &impl Sql, account_id: &str) -> anyhow::Result<Option<AccountSettings>> {
    let result = db
        .execute(SELECT_SETTINGS, &[text(account_id)])
        .context("reading account settings")?;
    Record::all(&result)
        .next()
        .map(|row| settings_from(&row))
        .transpose()
}

/// What planning a customer's new booking reads, in one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanningInputs {
    /// The owner's account id.
    pub account_id: String,
    /// The account's settings.
    pub settings: AccountSettings,
    /// The customer's overrides (none for a customer that does not exist).
    pub overrides: Overrides,
}

/// The owner's settings and customer `customer_id`'s overrides in one statement; `None` when
/// the owner names no account (see [`Owner`]).
pub fn load_planning_inputs(
    db: &impl Sql,
    owner: &Owner<'_>,
    customer_id: &str,
) -> anyhow::Result<Option<PlanningInputs>> {
    let result = owner
        .execute(db, SELECT_SETTINGS_AND_OVERRIDES, &[text(customer_id)])
        .context("reading account settings and customer overrides")?;
    let mut inputs: Option<PlanningInputs> = None;
    for row in Record::all(&result) {
        let inputs = match &mut inputs {
            Some(inputs) => inputs,
            None => inputs.insert(PlanningInputs {
                account_id: row.text("account_id")?,
                settings: settings_from(&row)?,
                overrides: Overrides::default(),
            }),
        };
        if row.optional_text("automation")?.is_some() {
            inputs.overrides.add(&row)?;
        }
    }
    Ok(inputs)
}

fn settings_from(row: &Record<'_>) -> anyhow::Result<AccountSettings> {
    Ok(AccountSettings {
        timezone: TimeZone::parse(&row.text("timezone")?)?,
        rules: row
            .optional_text("rules_json")?
            .map(|json| rules_from_json(&json))
            .transpose()?,
        rules_updated_at: row
            .optional_text("rules_updated_at")?
            .map(|t| Timestamp::parse(&t))
            .transpose()?,
        miopay_enabled: row.boolean("miopay_enabled")?,
        stripe_account_id: row.optional_text("stripe_account_id")?,
        stripe_refusal: row.optional_text("refusal")?,
        charges_blocked: row.boolean("charges_blocked")?,
    })
}

/// Stores the account's rules (one statement, creating the settings row if needed).
pub fn store_rules(
    db: &impl Sql,
    account_id: &str,
    rules: &AccountRules,
    now: Timestamp,
) -> anyhow::Result<()> {
    db.execute(
        UPSERT_RULES,
        &[text(account_id), text(&rules_to_json(rules)?), rfc3339(now)],
    )
    .context("storing the automation rules")?;
    Ok(())
}

/// What [`store_miopay`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MiopayStored {
    /// The state is stored.
    Stored,
    /// Nothing is stored: the Stripe account is connected to another Mio account. Whoever
    /// names a connected account may charge through it, so one Stripe account serves one
    /// business.
    AccountTaken,
}

/// Stores the account's MioPay state (one statement, creating the settings row if needed).
/// `stripe_account_id`: `None` keeps the stored id, `Some(id)` replaces it (`Some(None)`
/// clears it).
pub fn store_miopay(
    db: &impl Sql,
    account_id: &str,
    enabled: bool,
    stripe_account_id: Option<Option<&str>>,
    now: Timestamp,
) -> anyhow::Result<MiopayStored> {
    let stored = db
        .execute(
            UPSERT_MIOPAY,
            &[
                text(account_id),
                boolean(enabled),
                optional_text(stripe_account_id.flatten()),
                rfc3339(now),
                boolean(stripe_account_id.is_some()),
            ],
        )
        .context("storing the MioPay settings")?;
    if stored.rows.is_empty() {
        return Ok(MiopayStored::AccountTaken);
    }
    if stripe_account_id.is_some() {
        db.execute(FORGET_READINESS, &[text(account_id)])
            .context("forgetting the old connection's readiness")?;
    }
    Ok(MiopayStored::Stored)
}
