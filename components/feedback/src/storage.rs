//! The SQL of a rating link: one read (the link with its business and visit, and the schema
//! version, in one statement) and one write (the rating, guarded, in one statement).
//!
//! Rows of `feedback_requests` are created by the tick when it sends the request; this
//! component only reads them and stores the rating. Its activity entry is written by the
//! table's trigger (schema v6) in the same statement as the rating, so neither can exist
//! without the other.

use anyhow::{Context, anyhow};
use mio_platform::db::{Record, Sql, instant, optional_text, text};
use mio_platform::migrations;
use mio_shared::feedback_answer::{Answer, Rating, Received};
use mio_shared::{TimeZone, Timestamp};
use spin_sdk::sqlite::{QueryResult, Value};

/// One row always: the schema version, and the link's columns (NULL when no link has the
/// hash). The business and the visit come with it, scoped by the link's account.
const SELECT_LINK: &str = "SELECT {schema}, f.expires_at, f.rating, f.comment, f.received_at, \
     a.name AS business, a.timezone, b.service_type, b.start_at \
     FROM (SELECT 1) AS one \
     LEFT JOIN feedback_requests f ON f.token_hash = ?1 \
     LEFT JOIN accounts a ON a.id = f.account_id \
     LEFT JOIN bookings b ON b.account_id = f.account_id AND b.id = f.booking_id";

/// Stores a rating once, only on a link that is still open at `?4`: a second submit, a
/// concurrent one or an expired link changes nothing and returns no row.
const STORE_RATING: &str = "UPDATE feedback_requests \
     SET rating = ?2, comment = ?3, received_at = ?4 \
     WHERE token_hash = ?1 AND rating IS NULL AND expires_at > ?4 \
     RETURNING rating, comment, received_at, \
     (SELECT name FROM accounts WHERE accounts.id = feedback_requests.account_id) AS business";

/// A rating link, as its page needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// When it stops working.
    pub expires_at: Timestamp,
    /// Its rating, once received.
    pub received: Option<Received>,
    /// The business's name.
    pub business: String,
    /// The business's time zone.
    pub timezone: TimeZone,
    /// The booking's service type.
    pub service: String,
    /// When the visit started.
    pub start_at: Timestamp,
}

/// A rating just stored, and the business it went to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// As the API shows it.
    pub received: Received,
    /// The business's name.
    pub business: String,
}

/// The link whose token hashes to `token_hash`, with its business and visit; `None` when no
/// link has it (or its account or booking is gone). Brings the schema up to date first when
/// it is not (a new database, a new version), which costs more statements only then.
pub fn find(db: &impl Sql, token_hash: &str, now: Timestamp) -> anyhow::Result<Option<Link>> {
    let sql = SELECT_LINK.replace("{schema}", migrations::SCHEMA_VERSION_COLUMN);
    let params = [text(token_hash)];
    let result = match db.execute(&sql, &params) {
        Ok(result) if migrations::current(Some(&result)) => result,
        _ => {
            migrations::migrate(db, now)?;
            db.execute(&sql, &params).context("reading a rating link")?
        }
    };
    let Some(row) = Record::all(&result).next() else {
        return Err(anyhow!("the link lookup returned no row"));
    };
    let (Some(expires_at), Some(business), Some(timezone), Some(service), Some(start_at)) = (
        row.optional_instant("expires_at")?,
        row.optional_text("business")?,
        row.optional_text("timezone")?,
        row.optional_text("service_type")?,
        row.optional_instant("start_at")?,
    ) else {
        return Ok(None);
    };
    Ok(Some(Link {
        expires_at,
        received: received_from(&row)?,
        business,
        timezone: TimeZone::parse(&timezone)
            .with_context(|| format!("stored time zone {timezone:?}"))?,
        service,
        start_at,
    }))
}

/// Stores `answer` on the link whose token hashes to `token_hash` if it is open at `now`, in
/// one statement; `None` when nothing was stored (no such link, expired, already rated).
pub fn store(
    db: &impl Sql,
    token_hash: &str,
    answer: &Answer,
    now: Timestamp,
) -> anyhow::Result<Option<Stored>> {
    let params = [
        text(token_hash),
        Value::Integer(i64::from(answer.rating.get())),
        optional_text(answer.comment.as_deref()),
        instant(now),
    ];
    let result = match db.execute(STORE_RATING, &params) {
        Ok(result) => result,
        // A database this code has not migrated yet (no table): migrate, then try once more.
        Err(first) => {
            migrations::migrate(db, now).with_context(|| format!("after {first:#}"))?;
            db.execute(STORE_RATING, &params)
                .context("storing a rating")?
        }
    };
    stored_from(&result)
}

fn stored_from(result: &QueryResult) -> anyhow::Result<Option<Stored>> {
    let Some(row) = Record::all(result).next() else {
        return Ok(None);
    };
    let received = received_from(&row)?.ok_or_else(|| anyhow!("the stored rating reads NULL"))?;
    Ok(Some(Stored {
        received,
        business: row.text("business")?,
    }))
}

fn received_from(row: &Record<'_>) -> anyhow::Result<Option<Received>> {
    let (Some(rating), Some(received_at)) = (
        row.optional_integer("rating")?,
        row.optional_instant("received_at")?,
    ) else {
        return Ok(None);
    };
    Ok(Some(Received {
        rating: Rating::from_number(rating)
            .ok_or_else(|| anyhow!("stored rating {rating} is not 1 to 5"))?,
        comment: row.optional_text("comment")?,
        received_at,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio_platform::test_db::TestDb;
    use mio_shared::feedback::token_hash;

    const TOKEN: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).expect("valid")
    }

    /// A migrated database with one account, one completed booking and its open link (sent
    /// 2026-03-03, expiring 2026-04-02).
    fn db() -> TestDb {
        let db = TestDb::new();
        migrations::migrate(&db, at("2026-03-01T00:00:00Z")).expect("migrated");
        for statement in [
            "INSERT INTO accounts (id, name, timezone, token_hash, created_at) \
             VALUES ('acc_1', 'Sparkle Cleaning', 'America/Toronto', 'h', '2026-03-01')",
            "INSERT INTO bookings (id, account_id, customer_id, service_type, start_at, end_at, \
             amount_cents, currency, status, completed_at, created_at, updated_at) \
             VALUES ('bkg_1', 'acc_1', 'cus_1', 'Deep clean', 1772548200000, 1772555400000, \
             100, 'cad', 'completed', 1772555400000, '2026-03-01', '2026-03-03')",
        ] {
            db.execute(statement, &[]).expect("seeded");
        }
        db.execute(
            "INSERT INTO feedback_requests (token_hash, account_id, customer_id, booking_id, \
             job_id, expires_at, created_at) VALUES (?1, 'acc_1', 'cus_1', 'bkg_1', 'job_1', ?2, ?3)",
            &[
                text(&token_hash(TOKEN)),
                instant(at("2026-04-02T00:00:00Z")),
                instant(at("2026-03-03T00:00:00Z")),
            ],
        )
        .expect("link");
        db
    }

    fn answer(stars: i64, comment: Option<&str>) -> Answer {
        Answer {
            rating: Rating::from_number(stars).expect("1 to 5"),
            comment: comment.map(str::to_owned),
        }
    }

    fn activity(db: &TestDb) -> Vec<(String, String, String, i64)> {
        let result = db
            .execute(
                "SELECT automation, status, details_json, occurred_at FROM activity \
                 WHERE booking_id = 'bkg_1'",
                &[],
            )
            .expect("activity");
        Record::all(&result)
            .map(|row| {
                Ok((
                    row.text("automation")?,
                    row.text("status")?,
                    row.text("details_json")?,
                    row.integer("occurred_at")?,
                ))
            })
            .collect::<anyhow::Result<_>>()
            .expect("rows")
    }

    #[test]
    fn a_link_reads_with_its_business_and_visit_in_one_statement() {
        let db = db();
        let link = find(&db, &token_hash(TOKEN), at("2026-03-04T00:00:00Z"))
            .expect("read")
            .expect("found");
        assert_eq!(link.business, "Sparkle Cleaning");
        assert_eq!(link.service, "Deep clean");
        assert_eq!(link.timezone.name(), "America/Toronto");
        assert_eq!(link.start_at, at("2026-03-03T14:30:00Z"));
        assert_eq!(link.received, None);
        assert_eq!(
            find(&db, &token_hash("other"), at("2026-03-04T00:00:00Z")).expect("read"),
            None
        );
    }

    #[test]
    fn a_rating_is_stored_once_with_its_activity_entry() {
        let db = db();
        let now = at("2026-03-04T12:00:00Z");
        let stored = store(&db, &token_hash(TOKEN), &answer(4, Some("Great")), now)
            .expect("stored")
            .expect("open link");
        assert_eq!(stored.business, "Sparkle Cleaning");
        assert_eq!(stored.received.rating.get(), 4);
        assert_eq!(stored.received.comment.as_deref(), Some("Great"));
        assert_eq!(stored.received.received_at, now);
        assert_eq!(
            activity(&db),
            [(
                "feedback".to_owned(),
                "success".to_owned(),
                r#"{"rating":4,"comment":"Great"}"#.to_owned(),
                now.unix_millis()
            )]
        );

        let later = at("2026-03-05T12:00:00Z");
        let again = store(&db, &token_hash(TOKEN), &answer(1, None), later).expect("ran");
        assert_eq!(again, None, "a second rating changes nothing");
        let link = find(&db, &token_hash(TOKEN), later)
            .expect("read")
            .expect("found");
        assert_eq!(link.received, Some(stored.received));
        assert_eq!(activity(&db).len(), 1);
    }

    #[test]
    fn an_expired_or_unknown_link_stores_nothing() {
        let db = db();
        let expired = at("2026-04-02T00:00:00Z");
        assert_eq!(
            store(&db, &token_hash(TOKEN), &answer(5, None), expired).expect("ran"),
            None
        );
        assert_eq!(
            store(
                &db,
                &token_hash("nope"),
                &answer(5, None),
                at("2026-03-04T00:00:00Z")
            )
            .expect("ran"),
            None
        );
        assert!(activity(&db).is_empty());
    }

    #[test]
    fn a_new_database_is_migrated_by_the_first_read_or_write() {
        let now = at("2026-03-04T00:00:00Z");
        let db = TestDb::new();
        assert_eq!(find(&db, &token_hash(TOKEN), now).expect("migrates"), None);
        let db = TestDb::new();
        assert_eq!(
            store(&db, &token_hash(TOKEN), &answer(3, None), now).expect("migrates"),
            None
        );
    }
}
