//! Reading received ratings (`feedback_requests` with a rating; the `feedback` component stores
//! them), newest first, always scoped by account.

use anyhow::Context;
use mio_platform::db::{Record, Sql, optional_instant, optional_text, text};
use mio_shared::feedback_answer::{Distribution, FeedbackQuery, Rating, Received};
use serde::Serialize;
use spin_sdk::sqlite::Value;

/// One received rating, as `GET /api/v1/feedback` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedbackEntry {
    /// The rated booking.
    pub booking_id: String,
    /// Its customer (kept after the customer is deleted).
    pub customer_id: String,
    /// The rating, comment and time.
    #[serde(flatten)]
    pub received: Received,
}

// One statement for the page and the summary of the whole filter (which the page alone cannot
// give). Newest first by `received_at`, ties by the booking's `seq`; the cursor is the last
// row's booking `seq`, whose rating time is looked up, so a page resumes right after it. The
// summary row always exists; the page's columns are NULL when the page is empty.
// ?1 account, ?2 customer, ?3 from, ?4 to, ?5 min rating, ?6 cursor, ?7 rows to fetch.
const LIST_FEEDBACK: &str = "WITH matching AS ( \
       SELECT f.booking_id, f.customer_id, f.rating, f.comment, f.received_at, b.seq \
       FROM feedback_requests f \
       JOIN bookings b ON b.account_id = f.account_id AND b.id = f.booking_id \
       WHERE f.account_id = ?1 AND f.received_at IS NOT NULL \
         AND (?2 IS NULL OR f.customer_id = ?2) \
         AND (?3 IS NULL OR f.received_at >= ?3) \
         AND (?4 IS NULL OR f.received_at < ?4) \
         AND (?5 IS NULL OR f.rating >= ?5)), \
     summary AS ( \
       SELECT COUNT(*) FILTER (WHERE rating = 1) AS rated_1, \
              COUNT(*) FILTER (WHERE rating = 2) AS rated_2, \
              COUNT(*) FILTER (WHERE rating = 3) AS rated_3, \
              COUNT(*) FILTER (WHERE rating = 4) AS rated_4, \
              COUNT(*) FILTER (WHERE rating = 5) AS rated_5 \
       FROM matching), \
     page AS ( \
       SELECT * FROM matching \
       WHERE ?6 IS NULL OR (received_at, seq) < ( \
         SELECT f.received_at, b.seq FROM bookings b \
         JOIN feedback_requests f ON f.account_id = b.account_id AND f.booking_id = b.id \
         WHERE b.account_id = ?1 AND b.seq = ?6) \
       ORDER BY received_at DESC, seq DESC LIMIT ?7) \
     SELECT s.rated_1, s.rated_2, s.rated_3, s.rated_4, s.rated_5, \
            p.booking_id, p.customer_id, p.rating, p.comment, p.received_at, p.seq \
     FROM summary AS s LEFT JOIN page AS p ON 1 \
     ORDER BY p.received_at DESC, p.seq DESC";

/// Up to `query.limit.fetch()` received ratings after the cursor, newest first, with their
/// booking's sequence numbers; and how many ratings of each kind the whole filter matches.
pub fn list(
    db: &impl Sql,
    account_id: &str,
    query: &FeedbackQuery,
) -> anyhow::Result<(Vec<(i64, FeedbackEntry)>, Distribution)> {
    let result = db
        .execute(
            LIST_FEEDBACK,
            &[
                text(account_id),
                optional_text(query.customer_id.as_ref().map(|c| c.as_str())),
                optional_instant(query.from),
                optional_instant(query.to),
                query
                    .min_rating
                    .map_or(Value::Null, |r| Value::Integer(i64::from(r.get()))),
                query
                    .cursor
                    .map_or(Value::Null, |c| Value::Integer(c.after_seq())),
                Value::Integer(query.limit.fetch()),
            ],
        )
        .context("listing feedback")?;
    let mut distribution = Distribution::default();
    let mut entries = Vec::new();
    for (index, row) in Record::all(&result).enumerate() {
        if index == 0 {
            for (slot, rating) in distribution.0.iter_mut().zip(Rating::ALL) {
                let count = row.integer(&format!("rated_{}", rating.get()))?;
                *slot = u64::try_from(count).context("a negative count")?;
            }
        }
        let Some(booking_id) = row.optional_text("booking_id")? else {
            continue;
        };
        let stars = row.integer("rating")?;
        entries.push((
            row.integer("seq")?,
            FeedbackEntry {
                booking_id,
                customer_id: row.text("customer_id")?,
                received: Received {
                    rating: Rating::from_number(stars)
                        .with_context(|| format!("stored rating {stars}"))?,
                    comment: row.optional_text("comment")?,
                    received_at: row.instant("received_at")?,
                },
            },
        ));
    }
    Ok((entries, distribution))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio_platform::migrations;
    use mio_platform::test_db::TestDb;
    use mio_shared::{Cursor, Timestamp};

    const HOUR: i64 = 3_600_000;
    const START: i64 = 1_772_548_200_000;

    /// A seeded link: booking, account, customer, and its (stars, received at) once rated.
    type Seed<'a> = (String, &'a str, &'a str, Option<(i64, i64)>);

    /// Account `acc_1` with ratings (customer, stars, received hour) on bookings 1.., one
    /// link still unanswered, and one rating of another account.
    fn db(ratings: &[(&str, i64, i64)]) -> TestDb {
        let db = TestDb::new();
        migrations::migrate(&db, Timestamp::from_unix_millis(START).expect("valid"))
            .expect("migrated");
        let mut rows: Vec<Seed<'_>> = ratings
            .iter()
            .enumerate()
            .map(|(n, (customer, stars, hour))| {
                (
                    format!("bkg_{n}"),
                    "acc_1",
                    *customer,
                    Some((*stars, START + hour * HOUR)),
                )
            })
            .collect();
        rows.push(("bkg_open".into(), "acc_1", "cus_a", None));
        rows.push(("bkg_other".into(), "acc_2", "cus_z", Some((1, START))));
        for (booking, account, customer, rating) in rows {
            db.execute(
                "INSERT INTO bookings (id, account_id, customer_id, service_type, start_at, \
                 end_at, amount_cents, currency, status, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, 'clean', 0, 1, 100, 'cad', 'completed', 'x', 'x')",
                &[text(&booking), text(account), text(customer)],
            )
            .expect("booking");
            db.execute(
                "INSERT INTO feedback_requests (token_hash, account_id, customer_id, booking_id, \
                 job_id, expires_at, created_at, rating, comment, received_at) \
                 VALUES (?1, ?2, ?3, ?1, 'job', ?4, 0, ?5, ?6, ?7)",
                &[
                    text(&booking),
                    text(account),
                    text(customer),
                    Value::Integer(START + 1000 * HOUR),
                    rating.map_or(Value::Null, |(stars, _)| Value::Integer(stars)),
                    rating.map_or(Value::Null, |(stars, _)| text(&format!("{stars} stars"))),
                    rating.map_or(Value::Null, |(_, at)| Value::Integer(at)),
                ],
            )
            .expect("rating");
        }
        db
    }

    fn query(text: &str) -> FeedbackQuery {
        FeedbackQuery::parse(text).expect("valid query")
    }

    fn bookings(entries: &[(i64, FeedbackEntry)]) -> Vec<&str> {
        entries.iter().map(|(_, e)| e.booking_id.as_str()).collect()
    }

    #[test]
    fn ratings_list_newest_first_with_the_summary_of_the_whole_filter() {
        let db = db(&[
            ("cus_a", 5, 1),
            ("cus_b", 3, 3),
            ("cus_a", 4, 2),
            ("cus_b", 4, 3),
        ]);
        let (entries, distribution) = list(&db, "acc_1", &query("limit=2")).expect("listed");
        // Two at hour 3: the later booking first.
        assert_eq!(bookings(&entries), ["bkg_3", "bkg_1", "bkg_2"]);
        assert_eq!(distribution, Distribution([0, 0, 1, 2, 1]));
        assert_eq!(entries[0].1.received.comment.as_deref(), Some("4 stars"));

        let cursor = Cursor::after(entries[1].0).encode();
        let (next, distribution) =
            list(&db, "acc_1", &query(&format!("limit=2&cursor={cursor}"))).expect("listed");
        assert_eq!(bookings(&next), ["bkg_2", "bkg_0"]);
        assert_eq!(
            distribution,
            Distribution([0, 0, 1, 2, 1]),
            "the same summary"
        );

        let cursor = Cursor::after(next[1].0).encode();
        let (last, _) =
            list(&db, "acc_1", &query(&format!("limit=2&cursor={cursor}"))).expect("listed");
        assert!(last.is_empty());
    }

    #[test]
    fn filters_narrow_the_page_and_the_summary_alike() {
        let ada = mio_shared::CustomerId::from_random(&[1; 16]).to_string();
        let bob = mio_shared::CustomerId::from_random(&[2; 16]).to_string();
        let db = db(&[(&ada, 5, 1), (&bob, 2, 3), (&ada, 4, 2), (&bob, 1, 4)]);
        let from = Timestamp::from_unix_millis(START + 2 * HOUR).expect("valid");
        let (entries, distribution) =
            list(&db, "acc_1", &query(&format!("from={from}&min_rating=2"))).expect("listed");
        assert_eq!(bookings(&entries), ["bkg_1", "bkg_2"]);
        assert_eq!(distribution, Distribution([0, 1, 0, 1, 0]));

        let to = Timestamp::from_unix_millis(START + 3 * HOUR).expect("valid");
        let (entries, distribution) =
            list(&db, "acc_1", &query(&format!("customer_id={ada}&to={to}"))).expect("listed");
        assert_eq!(bookings(&entries), ["bkg_2", "bkg_0"]);
        assert_eq!(distribution, Distribution([0, 0, 0, 1, 1]));
        assert!(entries.iter().all(|(_, e)| e.customer_id == ada));
    }

    #[test]
    fn another_accounts_ratings_and_unanswered_links_never_show() {
        let db = db(&[]);
        let (entries, distribution) = list(&db, "acc_1", &query("")).expect("listed");
        assert!(entries.is_empty());
        assert_eq!(distribution, Distribution::default());
        let (entries, _) = list(&db, "acc_2", &query("")).expect("listed");
        assert_eq!(bookings(&entries), ["bkg_other"]);
    }
}
