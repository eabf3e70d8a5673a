//! The tick's atomic claim of due jobs, payment and feedback alike.
//!
//! One `UPDATE … RETURNING` claims a batch. The candidates come from four indexed range scans
//! (`(status, due_at)`, `(status, next_attempt_at)` twice, `(status, lease_until)`): every job
//! that is due, whose retry is due, or whose lease expired. They are dealt out **fairly across
//! accounts**: each account's jobs are numbered oldest first (`ROW_NUMBER() OVER (PARTITION BY
//! account_id …)`), and a batch takes every account's first job, then every account's second,
//! and so on, so one business's backlog of thousands never holds back another's ten. The cost
//! is linear in the due backlog (not in all jobs or bookings), once per batch.
//!
//! The outer `WHERE` repeats the due condition, so when two ticks race for the same rows, the
//! second one's update finds them `running` with a fresh lease and takes nothing: no
//! check-then-act, safe across replicas.

use crate::db::{Record, Sql, instant, rfc3339, text};
use anyhow::Context;
use mio_shared::Timestamp;
use mio_shared::rules::Automation;
use spin_sdk::sqlite::Value;

/// The candidates of a claim, fairly dealt across accounts: ?1 = now (ms), ?2 = batch size.
/// Public so a test can run `EXPLAIN QUERY PLAN` on it against the real schema.
pub const CLAIM_CANDIDATES: &str = "\
     SELECT id FROM (SELECT id, at, \
         ROW_NUMBER() OVER (PARTITION BY account_id ORDER BY at, id) AS turn FROM ( \
         SELECT id, account_id, due_at AS at FROM automation_jobs \
             WHERE status = 'scheduled' AND due_at <= ?1 \
         UNION ALL SELECT id, account_id, next_attempt_at FROM automation_jobs \
             WHERE status = 'retrying' AND next_attempt_at <= ?1 \
         UNION ALL SELECT id, account_id, next_attempt_at FROM automation_jobs \
             WHERE status = 'unknown' AND next_attempt_at <= ?1 \
         UNION ALL SELECT id, account_id, lease_until FROM automation_jobs \
             WHERE status = 'running' AND lease_until < ?1)) \
     ORDER BY turn, at LIMIT ?2";

// ?1 now (ms), ?2 batch, ?3 lease owner, ?4 lease until (ms), ?5 now (RFC 3339). A new attempt
// starts only from `scheduled`, or from `retrying` when the current attempt is settled (a job
// waits as `retrying` with its attempt open when Stripe turned the request away unexecuted, and
// then sends that same attempt again); an `unknown` job or an expired lease re-runs the same
// attempt (same idempotency key). So no new attempt ever starts while one is open.
const CLAIM: &str = "UPDATE automation_jobs SET status = 'running', lease_owner = ?3, \
     lease_until = ?4, \
     attempts = CASE WHEN status = 'scheduled' OR (status = 'retrying' AND NOT EXISTS ( \
         SELECT 1 FROM payment_attempts p WHERE p.job_id = automation_jobs.id \
         AND p.attempt = automation_jobs.attempts AND p.outcome IS NULL)) \
         THEN attempts + 1 ELSE attempts END, \
     updated_at = ?5 \
     WHERE id IN ({candidates}) AND ( \
         (status = 'scheduled' AND due_at <= ?1) \
         OR (status IN ('retrying', 'unknown') AND next_attempt_at <= ?1) \
         OR (status = 'running' AND lease_until < ?1)) \
     RETURNING id, account_id, customer_id, booking_id, automation, attempts, late, rule_source, \
     due_at";

// ?1 owner, ?2 now (RFC 3339), then the ids. An expired lease makes the jobs claimable at once,
// without a new attempt (their attempt number was taken when they were claimed).
const RELEASE: &str = "UPDATE automation_jobs SET lease_until = 0, updated_at = ?2 \
     WHERE lease_owner = ?1 AND status = 'running' AND id IN ({ids})";

/// A job this tick now holds the lease of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedJob {
    /// `job_…`.
    pub id: String,
    /// Its account.
    pub account_id: String,
    /// Its customer.
    pub customer_id: String,
    /// Its booking.
    pub booking_id: String,
    /// Payment or feedback.
    pub automation: Automation,
    /// The attempt this run makes (1-based).
    pub attempt: u32,
    /// Whether it was planned late (inside the rule's window).
    pub late: bool,
    /// When it was due.
    pub due_at: Timestamp,
}

/// Claims up to `batch` due jobs for `owner` until `lease_until`.
pub fn claim(
    db: &impl Sql,
    owner: &str,
    batch: u32,
    lease_until: Timestamp,
    now: Timestamp,
) -> anyhow::Result<Vec<ClaimedJob>> {
    let sql = CLAIM.replace("{candidates}", CLAIM_CANDIDATES);
    let result = db
        .execute(
            &sql,
            &[
                instant(now),
                Value::Integer(i64::from(batch)),
                text(owner),
                instant(lease_until),
                rfc3339(now),
            ],
        )
        .context("claiming due jobs")?;
    Record::all(&result)
        .map(|row| {
            Ok(ClaimedJob {
                id: row.text("id")?,
                account_id: row.text("account_id")?,
                customer_id: row.text("customer_id")?,
                booking_id: row.text("booking_id")?,
                automation: {
                    let name = row.text("automation")?;
                    Automation::parse(&name)
                        .ok_or_else(|| anyhow::anyhow!("stored automation {name:?}"))?
                },
                attempt: u32::try_from(row.integer("attempts")?).context("attempts")?,
                late: row.boolean("late")?,
                due_at: row.instant("due_at")?,
            })
        })
        .collect()
}

/// Whether the schema has been brought up to date on this connection (see [`claim_checked`]).
#[derive(Debug, Default)]
pub struct SchemaChecked(bool);

/// [`claim`] on a connection that was opened without a schema check: the schema is brought up
/// to date before any claimed job is run. A claim that fails (a table or column not there
/// yet) is made again after migrating; one that finds nothing due leaves the schema alone, so
/// a tick with nothing to do costs the claim alone.
pub fn claim_checked(
    db: &impl Sql,
    checked: &mut SchemaChecked,
    owner: &str,
    batch: u32,
    lease_until: Timestamp,
    now: Timestamp,
) -> anyhow::Result<Vec<ClaimedJob>> {
    if checked.0 {
        return claim(db, owner, batch, lease_until, now);
    }
    let jobs = match claim(db, owner, batch, lease_until, now) {
        Ok(jobs) => jobs,
        Err(error) => {
            crate::migrations::ensure(db, now)
                .with_context(|| format!("migrating after a failed claim ({error:#})"))?;
            checked.0 = true;
            return claim(db, owner, batch, lease_until, now);
        }
    };
    if !jobs.is_empty() {
        crate::migrations::ensure(db, now).context("migrating before running claimed jobs")?;
        checked.0 = true;
    }
    Ok(jobs)
}

/// Hands back jobs `owner` claimed but will not run (its time is up), so the next tick takes
/// them at once instead of after the lease.
pub fn release(db: &impl Sql, owner: &str, ids: &[&str], now: Timestamp) -> anyhow::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let sql = RELEASE.replace("{ids}", &crate::jobs::list_placeholders(ids.len(), 3));
    let mut params = vec![text(owner), rfc3339(now)];
    params.extend(ids.iter().map(|id| text(id)));
    db.execute(&sql, &params).context("releasing unrun jobs")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrations::migrate;
    use crate::test_db::TestDb;

    fn ts(text: &str) -> Timestamp {
        Timestamp::parse(text).expect("valid")
    }

    fn job(db: &TestDb, id: &str, automation: &str, status: &str, due: Timestamp) {
        db.execute(
            "INSERT INTO automation_jobs (id, account_id, customer_id, booking_id, automation, \
             phase, status, due_at, next_attempt_at, lease_until, created_at, updated_at) \
             VALUES (?1, 'acc', 'cus', ?1, ?2, 'x', ?3, ?4, ?4, ?4, 'x', 'x')",
            &[text(id), text(automation), text(status), instant(due)],
        )
        .expect("job inserted");
    }

    fn setup() -> TestDb {
        let db = TestDb::new();
        migrate(&db, ts("2026-03-01T00:00:00Z")).expect("migrated");
        db
    }

    fn schema_version(db: &TestDb) -> Option<i64> {
        let result = db
            .execute("SELECT MAX(version) AS v FROM schema_migrations", &[])
            .ok()?;
        Record::all(&result).next()?.optional_integer("v").ok()?
    }

    #[test]
    fn a_checked_claim_on_a_new_database_migrates_then_claims() {
        let db = TestDb::new();
        let now = ts("2026-03-01T09:00:00Z");
        let mut checked = SchemaChecked::default();
        let jobs = claim_checked(&db, &mut checked, "a", 25, now.plus_minutes(2), now);
        assert!(jobs.expect("claims").is_empty());
        assert_eq!(schema_version(&db), Some(crate::migrations::latest()));
        assert!(checked.0);
    }

    #[test]
    fn a_checked_claim_that_finds_work_brings_the_schema_up_to_date_first() {
        let db = setup();
        db.roll_back_latest_migration();
        let now = ts("2026-03-01T09:00:00Z");
        job(&db, "due", "payment", "scheduled", now.plus_minutes(-1));
        let mut checked = SchemaChecked::default();
        let jobs =
            claim_checked(&db, &mut checked, "a", 25, now.plus_minutes(2), now).expect("claims");
        assert_eq!(jobs.len(), 1);
        assert_eq!(schema_version(&db), Some(crate::migrations::latest()));
        assert!(checked.0);
    }

    #[test]
    fn a_checked_claim_that_finds_nothing_leaves_the_schema_alone() {
        let db = setup();
        db.roll_back_latest_migration();
        let now = ts("2026-03-01T09:00:00Z");
        let mut checked = SchemaChecked::default();
        let jobs = claim_checked(&db, &mut checked, "a", 25, now.plus_minutes(2), now);
        assert!(jobs.expect("claims").is_empty());
        assert_eq!(schema_version(&db), Some(crate::migrations::latest() - 1));
        assert!(!checked.0);
    }

    #[test]
    fn only_due_jobs_are_claimed_and_only_once() {
        let db = setup();
        let now = ts("2026-03-01T09:00:00Z");
        job(&db, "due", "payment", "scheduled", now.plus_minutes(-1));
        job(&db, "later", "payment", "scheduled", now.plus_minutes(1));
        job(
            &db,
            "feedback",
            "feedback",
            "scheduled",
            now.plus_minutes(-1),
        );
        job(&db, "done", "payment", "succeeded", now.plus_minutes(-1));
        job(&db, "retry", "payment", "retrying", now.plus_minutes(-1));
        job(&db, "unknown", "payment", "unknown", now.plus_minutes(-1));
        job(&db, "crashed", "payment", "running", now.plus_minutes(-1));
        let lease = now.plus_minutes(2);
        let mut first: Vec<(String, u32)> = claim(&db, "a", 25, lease, now)
            .expect("claims")
            .into_iter()
            .map(|j| (j.id, j.attempt))
            .collect();
        first.sort();
        assert_eq!(
            first,
            vec![
                ("crashed".into(), 0),
                ("due".into(), 1),
                ("feedback".into(), 1),
                ("retry".into(), 1),
                ("unknown".into(), 0)
            ]
        );
        assert!(claim(&db, "b", 25, lease, now).expect("claims").is_empty());
    }

    #[test]
    fn a_released_job_is_claimed_again_at_once_without_a_new_attempt() {
        let db = setup();
        let now = ts("2026-03-01T09:00:00Z");
        job(&db, "due", "payment", "scheduled", now.plus_minutes(-1));
        let lease = now.plus_minutes(2);
        let first = claim(&db, "a", 25, lease, now).expect("claims");
        release(&db, "b", &["due"], now).expect("a stranger releases nothing");
        assert!(claim(&db, "c", 25, lease, now).expect("claims").is_empty());
        release(&db, "a", &["due"], now).expect("released");
        let again = claim(&db, "c", 25, lease, now).expect("claims");
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempt, first[0].attempt);
    }

    fn job_of(db: &TestDb, id: &str, account: &str, due: Timestamp) {
        db.execute(
            "INSERT INTO automation_jobs (id, account_id, customer_id, booking_id, automation, \
             phase, status, due_at, next_attempt_at, lease_until, created_at, updated_at) \
             VALUES (?1, ?2, 'cus', ?1, 'payment', 'x', 'scheduled', ?3, ?3, ?3, 'x', 'x')",
            &[text(id), text(account), instant(due)],
        )
        .expect("job inserted");
    }

    #[test]
    fn a_batch_is_dealt_fairly_across_accounts_oldest_first_within_each() {
        let db = setup();
        let now = ts("2026-03-01T09:00:00Z");
        // Account A's backlog is older and much larger than B's.
        for n in 0..50 {
            job_of(
                &db,
                &format!("a{n:02}"),
                "acc_a",
                now.plus_minutes(-1000 + n),
            );
        }
        for n in 0..3 {
            job_of(&db, &format!("b{n}"), "acc_b", now.plus_minutes(-10 + n));
        }
        let lease = now.plus_minutes(2);
        let mut first: Vec<String> = claim(&db, "t", 6, lease, now)
            .expect("claims")
            .into_iter()
            .map(|j| j.id)
            .collect();
        first.sort();
        assert_eq!(first, ["a00", "a01", "a02", "b0", "b1", "b2"]);
        let next: Vec<String> = claim(&db, "t", 2, lease, now)
            .expect("claims")
            .into_iter()
            .map(|j| j.id)
            .collect();
        assert_eq!(next.len(), 2);
        assert!(next.iter().all(|id| id.starts_with('a')), "{next:?}");
    }

    #[test]
    fn a_batch_is_bounded() {
        let db = setup();
        let now = ts("2026-03-01T09:00:00Z");
        for n in 0..10 {
            job(
                &db,
                &format!("j{n}"),
                "payment",
                "scheduled",
                now.plus_minutes(-n),
            );
        }
        let lease = now.plus_minutes(2);
        assert_eq!(claim(&db, "a", 3, lease, now).expect("claims").len(), 3);
        assert_eq!(claim(&db, "a", 30, lease, now).expect("claims").len(), 7);
    }
}
