//! Writing `customer_overrides` and its history `override_changes`. Reading overrides for
//! planning is `mio_platform::overrides`; this module owns the writes.
//!
//! A change is an optimistic compare-and-set: read the row, then write the new value in one
//! statement that only applies while the row still holds what was read (and while the customer
//! still exists). If another request changed it in between, nothing is written and the caller
//! reads again. The history row is inserted right after a successful write, naming exactly the
//! value that was replaced.

use crate::overrides::body::OverrideUpdate;
use anyhow::{Context, anyhow};
use mio_platform::db::{Record, Sql, optional_text, rfc3339, text};
use mio_platform::rules_body::{timing_from_json, timing_to_json};
use mio_shared::rules::{Automation, CustomerOverride, OverrideState, Timing};
use mio_shared::{Cursor, ListQuery, Timestamp};
use spin_sdk::sqlite::Value;

use crate::overrides::view::Change;

const SELECT_OVERRIDE: &str = "SELECT state, timing_json, updated_at, updated_by \
     FROM customer_overrides WHERE account_id = ?1 AND customer_id = ?2 AND automation = ?3";

// `?8`–`?10` are the values read before (all NULL when there was no row): the update applies
// only if the row still holds them, and the insert only if the customer exists. `RETURNING`
// yields a row exactly when something was written. (An upsert's SELECT needs its WHERE for
// SQLite to parse ON CONFLICT; the customer check is that WHERE.)
const COMPARE_AND_SET_OVERRIDE: &str = "INSERT INTO customer_overrides \
     (account_id, customer_id, automation, state, timing_json, updated_at, updated_by) \
     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 \
     WHERE EXISTS (SELECT 1 FROM customers WHERE account_id = ?1 AND id = ?2) \
     ON CONFLICT (customer_id, automation) DO UPDATE SET \
     state = excluded.state, timing_json = excluded.timing_json, \
     updated_at = excluded.updated_at, updated_by = excluded.updated_by \
     WHERE customer_overrides.account_id = ?1 \
     AND customer_overrides.state = ?8 \
     AND customer_overrides.timing_json IS ?9 \
     AND customer_overrides.updated_at = ?10 \
     RETURNING state";

// Newest first; `?4` is the sequence number to continue below (NULL: from the newest).
const LIST_CHANGES: &str = "SELECT seq, old_state, new_state, old_timing_json, new_timing_json, \
     changed_at, changed_by FROM override_changes \
     WHERE account_id = ?1 AND customer_id = ?2 AND automation = ?3 \
     AND (?4 IS NULL OR seq < ?4) \
     ORDER BY seq DESC LIMIT ?5";

/// An override row exactly as stored: compared as stored, so the compare-and-set cannot be
/// fooled by two spellings of the same value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOverride {
    state: String,
    timing_json: Option<String>,
    updated_at: String,
    updated_by: String,
}

impl StoredOverride {
    /// The override in the core's terms.
    pub fn parse(&self) -> anyhow::Result<CustomerOverride> {
        Ok(CustomerOverride {
            state: parse_state(&self.state)?,
            timing: parse_timing(self.timing_json.as_deref())?,
            updated_at: Timestamp::parse(&self.updated_at)
                .with_context(|| format!("stored updated_at {:?}", self.updated_at))?,
            updated_by: self.updated_by.clone(),
        })
    }
}

/// What the compare-and-set did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// The new value is stored.
    Changed,
    /// Nothing: the row no longer holds what was read, or the customer is gone. Read again.
    Stale,
}

/// The stored override of `automation` for the customer, if any.
pub fn find(
    db: &impl Sql,
    account_id: &str,
    customer_id: &str,
    automation: Automation,
) -> anyhow::Result<Option<StoredOverride>> {
    let result = db
        .execute(
            SELECT_OVERRIDE,
            &[
                text(account_id),
                text(customer_id),
                text(automation.as_str()),
            ],
        )
        .context("reading an override")?;
    Record::all(&result)
        .next()
        .map(|row| {
            Ok(StoredOverride {
                state: row.text("state")?,
                timing_json: row.optional_text("timing_json")?,
                updated_at: row.text("updated_at")?,
                updated_by: row.text("updated_by")?,
            })
        })
        .transpose()
}

/// Stores `update` if the override still is `old` (as read by [`find`]).
#[allow(clippy::too_many_arguments)]
pub fn compare_and_set(
    db: &impl Sql,
    account_id: &str,
    customer_id: &str,
    automation: Automation,
    old: Option<&StoredOverride>,
    update: &OverrideUpdate,
    by: &str,
    now: Timestamp,
) -> anyhow::Result<Written> {
    let timing_json = update.timing.as_ref().map(timing_to_json).transpose()?;
    let result = db
        .execute(
            COMPARE_AND_SET_OVERRIDE,
            &[
                text(account_id),
                text(customer_id),
                text(automation.as_str()),
                text(update.state.as_str()),
                optional_text(timing_json.as_deref()),
                rfc3339(now),
                text(by),
                optional_text(old.map(|o| o.state.as_str())),
                optional_text(old.and_then(|o| o.timing_json.as_deref())),
                optional_text(old.map(|o| o.updated_at.as_str())),
            ],
        )
        .context("writing an override")?;
    Ok(if result.rows.is_empty() {
        Written::Stale
    } else {
        Written::Changed
    })
}

/// One page of the override's history, newest first, with sequence numbers for the cursor.
pub fn history(
    db: &impl Sql,
    account_id: &str,
    customer_id: &str,
    automation: Automation,
    query: &ListQuery,
) -> anyhow::Result<Vec<(i64, Change)>> {
    let before = query.cursor.map(Cursor::after_seq);
    let result = db
        .execute(
            LIST_CHANGES,
            &[
                text(account_id),
                text(customer_id),
                text(automation.as_str()),
                before.map_or(Value::Null, Value::Integer),
                Value::Integer(query.limit.fetch()),
            ],
        )
        .context("reading override history")?;
    Record::all(&result)
        .map(|row| {
            Ok((
                row.integer("seq")?,
                Change {
                    // No earlier row means the customer inherited.
                    old_state: row
                        .optional_text("old_state")?
                        .map_or(Ok(OverrideState::Inherit), |s| parse_state(&s))?,
                    new_state: parse_state(&row.text("new_state")?)?,
                    old_timing: parse_timing(row.optional_text("old_timing_json")?.as_deref())?,
                    new_timing: parse_timing(row.optional_text("new_timing_json")?.as_deref())?,
                    changed_at: row.timestamp("changed_at")?,
                    changed_by: row.text("changed_by")?,
                },
            ))
        })
        .collect()
}

fn parse_state(text: &str) -> anyhow::Result<OverrideState> {
    OverrideState::parse(text).ok_or_else(|| anyhow!("stored override state {text:?}"))
}

fn parse_timing(json: Option<&str>) -> anyhow::Result<Option<Timing>> {
    json.map(timing_from_json).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio_platform::migrations::migrate;
    use mio_platform::test_db::TestDb;
    use mio_shared::rules::{Offset, Trigger};

    const ACCOUNT: &str = "acc_1";
    const CUSTOMER: &str = "cus_1";

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).expect("valid")
    }

    fn setup() -> TestDb {
        let db = TestDb::new();
        migrate(&db, at("2026-03-01T09:00:00Z")).expect("migrated");
        db.execute(
            "INSERT INTO customers (id, account_id, name, name_folded, notify_email, notify_sms, \
             created_at, updated_at) VALUES (?1, ?2, 'Ada', 'ada', 1, 1, 'x', 'x')",
            &[text(CUSTOMER), text(ACCOUNT)],
        )
        .expect("customer");
        db
    }

    fn update(state: OverrideState, timing: Option<Timing>) -> OverrideUpdate {
        OverrideUpdate { state, timing }
    }

    fn after_end(minutes: i64) -> Option<Timing> {
        Some(Timing {
            trigger: Trigger::AfterEnd,
            offset: Offset::from_minutes(minutes).expect("in range"),
            local_time: None,
        })
    }

    fn set(
        db: &TestDb,
        customer: &str,
        old: Option<&StoredOverride>,
        new: &OverrideUpdate,
        now: &str,
    ) -> Written {
        compare_and_set(
            db,
            ACCOUNT,
            customer,
            Automation::Payment,
            old,
            new,
            "tok_aaaaaaaaaaaa",
            at(now),
        )
        .expect("statement runs")
    }

    fn current(db: &TestDb) -> Option<StoredOverride> {
        find(db, ACCOUNT, CUSTOMER, Automation::Payment).expect("query")
    }

    #[test]
    fn a_first_override_is_inserted_and_reads_back_in_core_terms() {
        let db = setup();
        let new = update(OverrideState::Disabled, after_end(30));
        assert_eq!(
            set(&db, CUSTOMER, None, &new, "2026-03-02T10:00:00Z"),
            Written::Changed
        );
        let stored = current(&db).expect("stored").parse().expect("parses");
        assert_eq!(stored.state, OverrideState::Disabled);
        assert_eq!(stored.timing, after_end(30));
        assert_eq!(stored.updated_at, at("2026-03-02T10:00:00Z"));
        assert_eq!(stored.updated_by, "tok_aaaaaaaaaaaa");
    }

    #[test]
    fn a_write_based_on_a_stale_read_changes_nothing() {
        let db = setup();
        let first = update(OverrideState::Disabled, None);
        set(&db, CUSTOMER, None, &first, "2026-03-02T10:00:00Z");
        let read = current(&db);
        // Another request changes it after our read ...
        let theirs = update(OverrideState::Enabled, after_end(5));
        assert_eq!(
            set(
                &db,
                CUSTOMER,
                read.as_ref(),
                &theirs,
                "2026-03-02T10:00:01Z"
            ),
            Written::Changed
        );
        // ... so ours, based on the old read, is refused, as is an insert when a row exists.
        let ours = update(OverrideState::Inherit, None);
        assert_eq!(
            set(&db, CUSTOMER, read.as_ref(), &ours, "2026-03-02T10:00:02Z"),
            Written::Stale
        );
        assert_eq!(
            set(&db, CUSTOMER, None, &ours, "2026-03-02T10:00:02Z"),
            Written::Stale
        );
        let stored = current(&db).expect("stored").parse().expect("parses");
        assert_eq!(stored.state, OverrideState::Enabled);
        // Re-reading and retrying works.
        let fresh = current(&db);
        assert_eq!(
            set(&db, CUSTOMER, fresh.as_ref(), &ours, "2026-03-02T10:00:03Z"),
            Written::Changed
        );
    }

    #[test]
    fn no_override_is_written_for_a_missing_or_foreign_customer() {
        let db = setup();
        let new = update(OverrideState::Disabled, None);
        assert_eq!(
            set(&db, "cus_other", None, &new, "2026-03-02T10:00:00Z"),
            Written::Stale
        );
        let written = compare_and_set(
            &db,
            "acc_2",
            CUSTOMER,
            Automation::Payment,
            None,
            &new,
            "tok_bbbbbbbbbbbb",
            at("2026-03-02T10:00:00Z"),
        )
        .expect("statement runs");
        assert_eq!(written, Written::Stale);
        let rows = db
            .execute("SELECT * FROM customer_overrides", &[])
            .expect("query");
        assert!(rows.rows.is_empty());
    }

    #[test]
    fn history_lists_changes_newest_first_with_old_and_new_values() {
        let db = setup();
        let steps = [
            update(OverrideState::Disabled, None),
            update(OverrideState::Enabled, after_end(60)),
            update(OverrideState::Inherit, None),
        ];
        for (n, step) in steps.iter().enumerate() {
            let old = current(&db);
            let now = format!("2026-03-02T10:00:0{n}Z");
            // The database records the history in the same statement as the override.
            assert_eq!(
                set(&db, CUSTOMER, old.as_ref(), step, &now),
                Written::Changed
            );
        }
        let query = ListQuery::parse("limit=2").expect("valid");
        let page = history(&db, ACCOUNT, CUSTOMER, Automation::Payment, &query).expect("query");
        assert_eq!(page.len(), 3, "one more than the limit tells there is more");
        let changes: Vec<(OverrideState, OverrideState)> = page
            .iter()
            .map(|(_, c)| (c.old_state, c.new_state))
            .collect();
        assert_eq!(
            changes,
            [
                (OverrideState::Enabled, OverrideState::Inherit),
                (OverrideState::Disabled, OverrideState::Enabled),
                (OverrideState::Inherit, OverrideState::Disabled),
            ]
        );
        assert_eq!(page[0].1.old_timing, after_end(60));
        assert_eq!(page[1].1.new_timing, after_end(60));
        assert_eq!(page[0].1.changed_at, at("2026-03-02T10:00:02Z"));

        let next = ListQuery {
            cursor: Some(Cursor::after(page[1].0)),
            ..query.clone()
        };
        let rest = history(&db, ACCOUNT, CUSTOMER, Automation::Payment, &next).expect("query");
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].1.new_state, OverrideState::Disabled);
        let theirs = history(&db, "acc_2", CUSTOMER, Automation::Payment, &query).expect("query");
        assert!(theirs.is_empty());
    }
}
