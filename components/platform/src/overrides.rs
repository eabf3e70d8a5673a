//! Reading the `customer_overrides` table (the override-toggle component writes it).

use crate::db::{Record, Sql, text};
use crate::rules_body::timing_from_json;
use anyhow::{Context, anyhow};
use mio_shared::rules::{Automation, CustomerOverride, OverrideState};

/// A customer's overrides, one per automation at most.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Payment Automation override.
    pub payment: Option<CustomerOverride>,
    /// Service Feedback Automation override.
    pub feedback: Option<CustomerOverride>,
}

impl Overrides {
    /// The override of `automation`, if any.
    pub fn get(&self, automation: Automation) -> Option<&CustomerOverride> {
        match automation {
            Automation::Payment => self.payment.as_ref(),
            Automation::Feedback => self.feedback.as_ref(),
        }
    }
}

const SELECT_OVERRIDES: &str = "SELECT automation, state, timing_json, updated_at, updated_by \
     FROM customer_overrides WHERE account_id = ?1 AND customer_id = ?2";

/// The overrides customer `customer_id` of account `account_id` has.
pub fn load_overrides(
    db: &impl Sql,
    account_id: &str,
    customer_id: &str,
) -> anyhow::Result<Overrides> {
    let result = db
        .execute(SELECT_OVERRIDES, &[text(account_id), text(customer_id)])
        .context("reading customer overrides")?;
    let mut overrides = Overrides::default();
    for row in Record::all(&result) {
        overrides.add(&row)?;
    }
    Ok(overrides)
}

impl Overrides {
    /// Adds the override in `row` (columns `automation`, `state`, `timing_json`,
    /// `updated_at`, `updated_by`).
    pub fn add(&mut self, row: &Record<'_>) -> anyhow::Result<()> {
        let automation = row.text("automation")?;
        let automation = Automation::parse(&automation)
            .ok_or_else(|| anyhow!("stored override for unknown automation {automation:?}"))?;
        let stored = override_from(row)?;
        match automation {
            Automation::Payment => self.payment = Some(stored),
            Automation::Feedback => self.feedback = Some(stored),
        }
        Ok(())
    }
}

fn override_from(row: &Record<'_>) -> anyhow::Result<CustomerOverride> {
    let state = row.text("state")?;
    Ok(CustomerOverride {
        state: OverrideState::parse(&state)
            .ok_or_else(|| anyhow!("stored override state {state:?}"))?,
        timing: row
            .optional_text("timing_json")?
            .map(|json| timing_from_json(&json))
            .transpose()?,
        updated_at: row.timestamp("updated_at")?,
        updated_by: row.text("updated_by")?,
    })
}
