//! The customer's automation jobs: when each automation runs next, and re-planning the
//! customer's bookings after an override change.

use anyhow::{Context, anyhow};
use mio_platform::db::{Record, Sql, text};
use mio_platform::jobs::{ReplanScope, replan_bookings};
use mio_platform::overrides::{Overrides, load_overrides};
use mio_platform::settings::{AccountSettings, load_settings};
use mio_shared::Timestamp;
use mio_shared::rules::Automation;
use std::collections::BTreeMap;

const SELECT_NEXT_RUNS: &str = "SELECT automation, MIN(due_at) AS next_run_at \
     FROM automation_jobs \
     WHERE account_id = ?1 AND customer_id = ?2 AND status = 'scheduled' \
     GROUP BY automation";

/// How often [`replan_customer`] plans again when the rules or overrides changed under it.
const MAX_REPLAN_ROUNDS: usize = 3;

/// The earliest scheduled run of each automation for the customer.
pub fn next_runs(
    db: &impl Sql,
    account_id: &str,
    customer_id: &str,
) -> anyhow::Result<BTreeMap<Automation, Timestamp>> {
    let result = db
        .execute(SELECT_NEXT_RUNS, &[text(account_id), text(customer_id)])
        .context("reading the customer's next runs")?;
    Record::all(&result)
        .map(|row| {
            let name = row.text("automation")?;
            let automation =
                Automation::parse(&name).ok_or_else(|| anyhow!("stored automation {name:?}"))?;
            Ok((automation, row.instant("next_run_at")?))
        })
        .collect()
}

/// Re-plans the customer's bookings (those a rule change can affect, see
/// `mio_platform::jobs::replan_bookings`: the platform's bulk planner, the same one a change of
/// the account rules runs) and returns the settings it planned with.
///
/// Safe to repeat and to race: planning is state-based and every job write re-checks the
/// job's state. One race remains that those writes cannot see: a request that read the
/// override before another request changed it could apply its stale plan after the other
/// request's fresh one. So after planning, the inputs are read again, and planning repeats
/// while they moved: whoever plans last also checks last, and sees the newest value.
pub fn replan_customer(
    db: &impl Sql,
    account_id: &str,
    customer_id: &str,
    now: Timestamp,
) -> anyhow::Result<AccountSettings> {
    let mut inputs = planning_inputs(db, account_id, customer_id)?;
    for _ in 0..MAX_REPLAN_ROUNDS {
        replan_bookings(
            db,
            account_id,
            &inputs.0,
            ReplanScope::Customer(customer_id),
            now,
        )?;
        let after = planning_inputs(db, account_id, customer_id)?;
        if after == inputs {
            break;
        }
        inputs = after;
    }
    Ok(inputs.0)
}

/// What planning the customer's bookings depends on besides the bookings themselves.
fn planning_inputs(
    db: &impl Sql,
    account_id: &str,
    customer_id: &str,
) -> anyhow::Result<(AccountSettings, Overrides)> {
    let settings =
        load_settings(db, account_id)?.ok_or_else(|| anyhow!("account {account_id} has no row"))?;
    Ok((settings, load_overrides(db, account_id, customer_id)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overrides::body::OverrideUpdate;
    use crate::overrides::storage::overrides::{compare_and_set, find};
    use mio_platform::db::{instant, rfc3339};
    use mio_platform::migrations::migrate;
    use mio_platform::rules_body::RulesBody;
    use mio_platform::settings::store_rules;
    use mio_platform::test_db::TestDb;
    use mio_shared::rules::OverrideState;

    const ACCOUNT: &str = "acc_1";
    const CUSTOMER: &str = "cus_1";

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).expect("valid")
    }

    fn now() -> Timestamp {
        at("2026-03-01T09:00:00Z")
    }

    /// An account paying one day before the start, a customer, and `bookings` bookings of it
    /// (the n-th starting on day n + 10 of March).
    fn setup(bookings: usize) -> TestDb {
        let db = TestDb::new();
        migrate(&db, now()).expect("migrated");
        db.execute(
            "INSERT INTO accounts (id, name, timezone, token_hash, created_at) \
             VALUES (?1, 'Acme', 'America/Toronto', 'h', 'x')",
            &[text(ACCOUNT)],
        )
        .expect("account");
        db.execute(
            "INSERT INTO customers (id, account_id, name, name_folded, notify_email, notify_sms, \
             created_at, updated_at) VALUES (?1, ?2, 'Ada', 'ada', 1, 1, 'x', 'x')",
            &[text(CUSTOMER), text(ACCOUNT)],
        )
        .expect("customer");
        let rules: RulesBody = serde_json::from_str(
            r#"{"payment": {"enabled": true, "trigger": "before_start", "offset_minutes": 1440},
                "feedback": {"enabled": false, "delay_minutes": 60}}"#,
        )
        .expect("json");
        store_rules(&db, ACCOUNT, &rules.parse().expect("valid"), now()).expect("rules");
        for n in 0..bookings {
            let start = at("2026-03-10T15:00:00Z").as_datetime() + chrono_days(n);
            db.execute(
                "INSERT INTO bookings (id, account_id, customer_id, service_type, start_at, \
                 end_at, amount_cents, currency, status, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, 'clean', ?4, ?5, 1000, 'usd', 'scheduled', ?6, ?6)",
                &[
                    text(&format!("bkg_{n}")),
                    text(ACCOUNT),
                    text(CUSTOMER),
                    instant(start.into()),
                    instant((start + chrono_hours(2)).into()),
                    rfc3339(now()),
                ],
            )
            .expect("booking");
        }
        db
    }

    /// Plans the customer's bookings once, returning how many it planned.
    fn replan(db: &TestDb, account_id: &str, customer_id: &str) -> usize {
        let settings = load_settings(db, ACCOUNT).expect("query").expect("account");
        replan_bookings(
            db,
            account_id,
            &settings,
            ReplanScope::Customer(customer_id),
            now(),
        )
        .expect("planned")
        .bookings
    }

    fn chrono_days(n: usize) -> chrono::TimeDelta {
        chrono::TimeDelta::days(i64::try_from(n).expect("small"))
    }

    fn chrono_hours(n: i64) -> chrono::TimeDelta {
        chrono::TimeDelta::hours(n)
    }

    fn statuses(db: &TestDb) -> Vec<String> {
        let result = db
            .execute(
                "SELECT status FROM automation_jobs WHERE automation = 'payment' ORDER BY due_at",
                &[],
            )
            .expect("query");
        Record::all(&result)
            .map(|row| row.text("status").expect("text"))
            .collect()
    }

    fn set_override(db: &TestDb, state: OverrideState) {
        let old = find(db, ACCOUNT, CUSTOMER, Automation::Payment).expect("query");
        let update = OverrideUpdate {
            state,
            timing: None,
        };
        compare_and_set(
            db,
            ACCOUNT,
            CUSTOMER,
            Automation::Payment,
            old.as_ref(),
            &update,
            "tok_aaaaaaaaaaaa",
            now(),
        )
        .expect("written");
    }

    #[test]
    fn replanning_follows_the_override_both_ways() {
        let count = 5;
        let db = setup(count);
        assert_eq!(replan(&db, ACCOUNT, CUSTOMER), count);
        assert_eq!(statuses(&db), vec!["scheduled"; count]);
        let next = next_runs(&db, ACCOUNT, CUSTOMER).expect("query");
        assert_eq!(
            next.get(&Automation::Payment),
            Some(&at("2026-03-09T15:00:00Z")),
            "one day before the first booking"
        );
        assert_eq!(next.get(&Automation::Feedback), None);

        set_override(&db, OverrideState::Disabled);
        replan_customer(&db, ACCOUNT, CUSTOMER, now()).expect("planned");
        assert_eq!(statuses(&db), vec!["cancelled"; count]);
        assert!(next_runs(&db, ACCOUNT, CUSTOMER).expect("query").is_empty());

        set_override(&db, OverrideState::Inherit);
        replan_customer(&db, ACCOUNT, CUSTOMER, now()).expect("planned");
        assert_eq!(statuses(&db), vec!["scheduled"; count]);
    }

    #[test]
    fn another_customers_and_cancelled_bookings_are_left_alone() {
        let db = setup(2);
        db.execute(
            "UPDATE bookings SET status = 'cancelled' WHERE id = 'bkg_1'",
            &[],
        )
        .expect("cancelled");
        assert_eq!(replan(&db, ACCOUNT, "cus_2"), 0);
        assert_eq!(replan(&db, "acc_2", CUSTOMER), 0);
        assert!(statuses(&db).is_empty());
        assert_eq!(replan(&db, ACCOUNT, CUSTOMER), 1);
        assert_eq!(statuses(&db), ["scheduled"]);
    }

    /// A database where another request disables the customer's payment override right after
    /// this one writes its first job.
    struct RacingDb {
        inner: TestDb,
        raced: std::cell::Cell<bool>,
    }

    impl Sql for RacingDb {
        fn execute(
            &self,
            statement: &str,
            params: &[spin_sdk::sqlite::Value],
        ) -> anyhow::Result<spin_sdk::sqlite::QueryResult> {
            let result = self.inner.execute(statement, params)?;
            if statement.starts_with("INSERT INTO automation_jobs") && !self.raced.replace(true) {
                set_override(&self.inner, OverrideState::Disabled);
            }
            Ok(result)
        }
    }

    #[test]
    fn an_override_changed_while_planning_is_planned_again() {
        let db = RacingDb {
            inner: setup(3),
            raced: std::cell::Cell::new(false),
        };
        let settings = replan_customer(&db, ACCOUNT, CUSTOMER, now()).expect("planned");
        assert!(db.raced.get(), "the race happened");
        assert!(settings.rules.is_some());
        assert_eq!(
            statuses(&db.inner),
            ["cancelled", "cancelled", "cancelled"],
            "the plan made with the old override did not survive"
        );
    }
}
