//! Versioned schema migrations, applied automatically on first use.
//!
//! Several instances may migrate at once and, on libSQL/Turso, statements are not grouped in
//! a transaction. So every statement must be safe to run twice or concurrently
//! (`CREATE … IF NOT EXISTS`, `INSERT OR IGNORE`); a version is recorded only after all of
//! its statements succeeded; and a failing statement is forgiven if another instance has
//! meanwhile recorded the version. A future `ALTER TABLE … ADD COLUMN` is not idempotent:
//! guard it (check `pragma_table_info` first) before adding it here.

use crate::db::{Record, Sql};
use anyhow::Context;
use mio_shared::Timestamp;
use spin_sdk::sqlite::Value;

/// One schema version: statements run in order, each one statement.
pub struct Migration {
    /// Strictly increasing; never renumber or edit an applied migration, add a new one.
    pub version: i64,
    /// Idempotent statements.
    pub statements: &'static [&'static str],
}

const CREATE_SCHEMA_MIGRATIONS: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    applied_at TEXT NOT NULL
)";

const SELECT_APPLIED_VERSIONS: &str = "SELECT version FROM schema_migrations ORDER BY version";

const RECORD_VERSION: &str =
    "INSERT OR IGNORE INTO schema_migrations (version, applied_at) VALUES (?1, ?2)";

const CREATE_ACCOUNTS: &str = "CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    timezone TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
)";

// No FOREIGN KEY clauses: whether SQLite enforces them depends on the host's connection
// settings (bundled rusqlite: on; Spin, libSQL: off), and behaviour must not. Ownership is
// enforced by every statement filtering on `account_id` instead.
// `seq` orders lists and cursors; AUTOINCREMENT keeps it from reusing a deleted row's number,
// so a cursor never skips a customer created after it was issued.
const CREATE_CUSTOMERS: &str = "CREATE TABLE IF NOT EXISTS customers (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL,
    name TEXT NOT NULL,
    name_folded TEXT NOT NULL,
    email TEXT,
    email_folded TEXT,
    phone TEXT,
    phone_digits TEXT,
    service_address TEXT,
    billing_address TEXT,
    notes TEXT,
    notify_email INTEGER NOT NULL CHECK (notify_email IN (0, 1)),
    notify_sms INTEGER NOT NULL CHECK (notify_sms IN (0, 1)),
    stripe_customer_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
)";

const CREATE_CUSTOMERS_BY_ACCOUNT: &str =
    "CREATE INDEX IF NOT EXISTS customers_by_account ON customers (account_id, seq)";

// Version 2: the automation rules (issue #3). Instants that are compared or ordered
// (`start_at`, `due_at`, ...) are INTEGER Unix milliseconds; `created_at` / `updated_at` stay
// RFC 3339 text like version 1.

// One row per configured account; `rules_json` is NULL until the rules are first set (the
// serde form of `mio_shared::rules::AccountRules`).
const CREATE_ACCOUNT_SETTINGS: &str = "CREATE TABLE IF NOT EXISTS account_settings (
    account_id TEXT PRIMARY KEY NOT NULL,
    rules_json TEXT,
    rules_updated_at TEXT,
    miopay_enabled INTEGER NOT NULL DEFAULT 0,
    stripe_account_id TEXT,
    updated_at TEXT NOT NULL
)";

// `customer_id` is kept after the customer is deleted (the booking is cancelled then), so the
// activity of a deleted customer still names its bookings.
const CREATE_BOOKINGS: &str = "CREATE TABLE IF NOT EXISTS bookings (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    series_id TEXT,
    service_type TEXT NOT NULL,
    start_at INTEGER NOT NULL,
    end_at INTEGER NOT NULL,
    amount_cents INTEGER NOT NULL,
    paid_cents INTEGER NOT NULL DEFAULT 0,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    completed_at INTEGER,
    cancelled_at INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
)";

const CREATE_BOOKINGS_BY_START: &str =
    "CREATE INDEX IF NOT EXISTS bookings_by_start ON bookings (account_id, start_at, seq)";

const CREATE_BOOKINGS_BY_CUSTOMER: &str = "CREATE INDEX IF NOT EXISTS bookings_by_customer \
     ON bookings (account_id, customer_id, start_at)";

const CREATE_BOOKINGS_BY_STATUS: &str =
    "CREATE INDEX IF NOT EXISTS bookings_by_status ON bookings (account_id, status, start_at)";

// Import matches customers by e-mail (case-insensitively, through the folded column).
const CREATE_CUSTOMERS_BY_EMAIL: &str =
    "CREATE INDEX IF NOT EXISTS customers_by_email ON customers (account_id, email_folded)";

// No `account_id` in the key: customer ids are globally unique, and every statement filters
// on `account_id` as well.
const CREATE_CUSTOMER_OVERRIDES: &str = "CREATE TABLE IF NOT EXISTS customer_overrides (
    account_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    automation TEXT NOT NULL,
    state TEXT NOT NULL,
    timing_json TEXT,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (customer_id, automation)
)";

// Append-only history of override changes (who changed what, when).
const CREATE_OVERRIDE_CHANGES: &str = "CREATE TABLE IF NOT EXISTS override_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    automation TEXT NOT NULL,
    old_state TEXT,
    new_state TEXT NOT NULL,
    old_timing_json TEXT,
    new_timing_json TEXT,
    changed_at TEXT NOT NULL,
    changed_by TEXT NOT NULL
)";

const CREATE_OVERRIDE_CHANGES_BY_CUSTOMER: &str = "CREATE INDEX IF NOT EXISTS \
     override_changes_by_customer ON override_changes (account_id, customer_id, seq)";

// One planned run of one automation for one booking; `UNIQUE (booking_id, automation,
// phase)` is what makes planning idempotent (`INSERT … ON CONFLICT DO NOTHING`).
const CREATE_AUTOMATION_JOBS: &str = "CREATE TABLE IF NOT EXISTS automation_jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    booking_id TEXT NOT NULL,
    automation TEXT NOT NULL,
    phase TEXT NOT NULL,
    status TEXT NOT NULL,
    due_at INTEGER NOT NULL,
    late INTEGER NOT NULL DEFAULT 0,
    rule_source TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    lease_owner TEXT,
    lease_until INTEGER,
    last_error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (booking_id, automation, phase)
)";

// The tick's query: due scheduled jobs, O(due jobs).
const CREATE_JOBS_BY_DUE: &str =
    "CREATE INDEX IF NOT EXISTS automation_jobs_by_due ON automation_jobs (status, due_at)";

const CREATE_JOBS_BY_ACCOUNT_STATUS: &str = "CREATE INDEX IF NOT EXISTS \
     automation_jobs_by_account_status ON automation_jobs (account_id, status)";

const CREATE_JOBS_BY_CUSTOMER: &str = "CREATE INDEX IF NOT EXISTS \
     automation_jobs_by_customer ON automation_jobs (account_id, customer_id)";

// Version 3: payments and activity. New tables rather than new columns, so every statement
// stays idempotent (`ALTER TABLE … ADD COLUMN` is not).

// A customer's primary card, as looked up on Stripe (one row per customer).
const CREATE_PAYMENT_METHODS: &str = "CREATE TABLE IF NOT EXISTS payment_methods (
    customer_id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL,
    payment_method_id TEXT NOT NULL,
    brand TEXT NOT NULL,
    last4 TEXT NOT NULL,
    exp_month INTEGER NOT NULL,
    exp_year INTEGER NOT NULL,
    updated_at TEXT NOT NULL
)";

// One row per attempt of a payment job: the ledger of what was sent to Stripe under which
// idempotency key, and what came back. `outcome` is NULL while the result is not known.
// A booking's paid amount is the sum of its succeeded attempts, so recording an outcome twice
// (a crashed tick re-running the same attempt) can never count a payment twice.
const CREATE_PAYMENT_ATTEMPTS: &str = "CREATE TABLE IF NOT EXISTS payment_attempts (
    job_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    account_id TEXT NOT NULL,
    booking_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    amount_cents INTEGER NOT NULL,
    currency TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    outcome TEXT,
    payment_intent_id TEXT,
    decline_code TEXT,
    message TEXT,
    settled_at INTEGER,
    PRIMARY KEY (job_id, attempt)
)";

const CREATE_PAYMENT_ATTEMPTS_BY_BOOKING: &str = "CREATE INDEX IF NOT EXISTS \
     payment_attempts_by_booking ON payment_attempts (booking_id, outcome)";

// Every run of every automation, newest first per account / customer / booking.
// `dedupe_key` makes writing the same entry twice (a retried tick step) harmless.
const CREATE_ACTIVITY: &str = "CREATE TABLE IF NOT EXISTS activity (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL,
    customer_id TEXT,
    booking_id TEXT,
    job_id TEXT,
    automation TEXT NOT NULL,
    status TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    summary TEXT NOT NULL,
    details_json TEXT NOT NULL,
    dedupe_key TEXT UNIQUE
)";

const CREATE_ACTIVITY_BY_ACCOUNT: &str =
    "CREATE INDEX IF NOT EXISTS activity_by_account ON activity (account_id, seq)";

const CREATE_ACTIVITY_BY_CUSTOMER: &str =
    "CREATE INDEX IF NOT EXISTS activity_by_customer ON activity (account_id, customer_id, seq)";

const CREATE_ACTIVITY_BY_BOOKING: &str =
    "CREATE INDEX IF NOT EXISTS activity_by_booking ON activity (account_id, booking_id, seq)";

// The tick's second query: retrying / unknown jobs whose next attempt is due.
const CREATE_JOBS_BY_NEXT_ATTEMPT: &str = "CREATE INDEX IF NOT EXISTS \
     automation_jobs_by_next_attempt ON automation_jobs (status, next_attempt_at)";

// The tick's third query: running jobs whose lease expired (a crashed tick).
const CREATE_JOBS_BY_LEASE: &str = "CREATE INDEX IF NOT EXISTS \
     automation_jobs_by_lease ON automation_jobs (status, lease_until)";

// Version 4: an override's history is written by the database itself, in the same statement
// as the override: no crash between "override changed" and "history recorded" can lose an
// entry. (One statement each: a trigger body is part of its CREATE TRIGGER statement.)
const CREATE_OVERRIDE_INSERT_HISTORY: &str = "CREATE TRIGGER IF NOT EXISTS \
     customer_overrides_history_on_insert AFTER INSERT ON customer_overrides \
     BEGIN \
     INSERT INTO override_changes (account_id, customer_id, automation, old_state, new_state, \
     old_timing_json, new_timing_json, changed_at, changed_by) \
     VALUES (NEW.account_id, NEW.customer_id, NEW.automation, NULL, NEW.state, NULL, \
     NEW.timing_json, NEW.updated_at, NEW.updated_by); \
     END";

const CREATE_OVERRIDE_UPDATE_HISTORY: &str = "CREATE TRIGGER IF NOT EXISTS \
     customer_overrides_history_on_update AFTER UPDATE ON customer_overrides \
     BEGIN \
     INSERT INTO override_changes (account_id, customer_id, automation, old_state, new_state, \
     old_timing_json, new_timing_json, changed_at, changed_by) \
     VALUES (NEW.account_id, NEW.customer_id, NEW.automation, OLD.state, NEW.state, \
     OLD.timing_json, NEW.timing_json, NEW.updated_at, NEW.updated_by); \
     END";

// Version 5: exactly-once charging with Stripe's webhooks (issue #7).
// The exact request each attempt sent: every resend is this copy, byte for byte, and lookups use
// its Stripe account. `tries` counts sends and lookups that ended without a known outcome;
// `maybe_executed` is set once any of them may have reached Stripe's execution; `in_flight` is
// set while a send has left without its answer stored (a run that died mid-request), and reads
// as "may have executed" too. A row is written
// before the attempt's `payment_attempts` row, and may be rewritten only while that row does not
// exist (the request was not sent yet).
const CREATE_PAYMENT_REQUESTS: &str = "CREATE TABLE IF NOT EXISTS payment_requests (
    job_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    account_id TEXT NOT NULL,
    stripe_account TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    form_body TEXT NOT NULL,
    tries INTEGER NOT NULL DEFAULT 0,
    maybe_executed INTEGER NOT NULL DEFAULT 0 CHECK (maybe_executed IN (0, 1)),
    in_flight INTEGER NOT NULL DEFAULT 1 CHECK (in_flight IN (0, 1)),
    PRIMARY KEY (job_id, attempt)
)";
// Stripe events already applied, by `event.id`: the truth of webhook de-duplication (the
// key-value store is only a fast path in front of it).
const CREATE_STRIPE_EVENTS: &str = "CREATE TABLE IF NOT EXISTS stripe_events (
    event_id TEXT PRIMARY KEY NOT NULL,
    event_type TEXT NOT NULL,
    stripe_account TEXT,
    account_id TEXT,
    received_at INTEGER NOT NULL
)";
// Whether an account's connected Stripe account accepts our requests, as last seen; it speaks
// only for that `stripe_account` (a new one starts out ready). `kind`: `access` (Stripe refused
// a request: runs wait and retry) or `charges` (Stripe says the account cannot charge, or the
// business disconnected it: runs fail with the reason and send nothing).
const CREATE_MIOPAY_STATUS: &str = "CREATE TABLE IF NOT EXISTS miopay_status (
    account_id TEXT PRIMARY KEY NOT NULL,
    stripe_account TEXT NOT NULL,
    ready INTEGER NOT NULL CHECK (ready IN (0, 1)),
    reason TEXT,
    kind TEXT NOT NULL DEFAULT 'access' CHECK (kind IN ('access', 'charges')),
    updated_at TEXT NOT NULL
)";
// Refunds of our payments, by PaymentIntent: the total refunded so far. A booking's paid amount
// is its succeeded attempts less these.
const CREATE_PAYMENT_REFUNDS: &str = "CREATE TABLE IF NOT EXISTS payment_refunds (
    payment_intent_id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL,
    booking_id TEXT NOT NULL,
    amount_refunded INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
)";
// "Request payment method" links: a setup-mode Checkout Session on the connected account.
const CREATE_PAYMENT_METHOD_REQUESTS: &str = "CREATE TABLE IF NOT EXISTS payment_method_requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    url TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'completed', 'expired')),
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    completed_at INTEGER
)";
const CREATE_PAYMENT_ATTEMPTS_BY_INTENT: &str = "CREATE INDEX IF NOT EXISTS \
     payment_attempts_by_intent ON payment_attempts (account_id, payment_intent_id)";
const CREATE_PAYMENT_METHODS_BY_CARD: &str = "CREATE INDEX IF NOT EXISTS \
     payment_methods_by_card ON payment_methods (account_id, payment_method_id)";
const CREATE_CUSTOMERS_BY_STRIPE_CUSTOMER: &str = "CREATE INDEX IF NOT EXISTS \
     customers_by_stripe_customer ON customers (account_id, stripe_customer_id)";
// Webhooks find the Mio account of a connected account.
const CREATE_SETTINGS_BY_STRIPE_ACCOUNT: &str = "CREATE INDEX IF NOT EXISTS \
     account_settings_by_stripe_account ON account_settings (stripe_account_id)";

// Version 6: messages to customers (issue #9).
// Which notification channels an account uses. `email` and `sms` are on when their column is 1;
// the signed webhook when `webhook_url` is set (its `whsec_` secret is needed to sign, so it is
// stored; answers only ever show it masked).
const CREATE_NOTIFICATION_SETTINGS: &str = "CREATE TABLE IF NOT EXISTS notification_settings (
    account_id TEXT PRIMARY KEY NOT NULL,
    email INTEGER NOT NULL DEFAULT 0 CHECK (email IN (0, 1)),
    email_reply_to TEXT,
    sms INTEGER NOT NULL DEFAULT 0 CHECK (sms IN (0, 1)),
    webhook_url TEXT,
    webhook_secret TEXT,
    updated_at TEXT NOT NULL
)";
// One message to one customer on one channel, for one subject (a feedback job `job_…`, or a
// payment-method request `pmr_…`): at most one row per subject and channel, so a message is
// never planned twice. `request_json` is the request as first built (its link left as a
// placeholder, so no token is stored), and every resend is that copy. `in_flight` is set
// before a send leaves and cleared when its answer is stored; `maybe_delivered` once any try
// may have reached the provider. `id` is the idempotency key (email) and `webhook-id`.
const CREATE_MESSAGES: &str = "CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('email', 'sms', 'webhook')),
    request_json TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    tries INTEGER NOT NULL DEFAULT 0,
    in_flight INTEGER NOT NULL DEFAULT 0 CHECK (in_flight IN (0, 1)),
    maybe_delivered INTEGER NOT NULL DEFAULT 0 CHECK (maybe_delivered IN (0, 1)),
    next_try_at INTEGER,
    provider_message_id TEXT,
    error TEXT,
    sent_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (subject_id, channel)
)";
// The rating link of a completed booking: one per booking. Only the SHA-256 of the link's token
// is stored. `rating` is written once (the update is guarded by `rating IS NULL`).
const CREATE_FEEDBACK_REQUESTS: &str = "CREATE TABLE IF NOT EXISTS feedback_requests (
    token_hash TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    booking_id TEXT NOT NULL UNIQUE,
    job_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    rating INTEGER CHECK (rating BETWEEN 1 AND 5),
    comment TEXT,
    received_at INTEGER
)";
const CREATE_FEEDBACK_BY_RECEIVED: &str = "CREATE INDEX IF NOT EXISTS \
     feedback_requests_by_received ON feedback_requests (account_id, received_at)";
// A rating lands in the activity view in the same statement that stores it: no crash between
// the two can lose the entry. The id has the application's form (`act_` and 26 characters that
// decode as 16 bytes): 100 random bits in hex digits, then a zero.
const CREATE_FEEDBACK_RATING_ACTIVITY: &str = "CREATE TRIGGER IF NOT EXISTS \
     feedback_requests_rating_activity AFTER UPDATE OF rating ON feedback_requests \
     WHEN OLD.rating IS NULL AND NEW.rating IS NOT NULL \
     BEGIN \
     INSERT INTO activity (id, account_id, customer_id, booking_id, job_id, automation, status, \
     occurred_at, summary, details_json, dedupe_key) \
     VALUES ('act_' || substr(lower(hex(randomblob(13))), 1, 25) || '0', NEW.account_id, NEW.customer_id, \
     NEW.booking_id, NEW.job_id, 'feedback', 'success', NEW.received_at, \
     'Rated ' || NEW.rating || ' of 5', \
     json_object('rating', NEW.rating, 'comment', NEW.comment), \
     'rating:' || NEW.booking_id); \
     END";

// Version 7: write-ahead logging. Neither Spin nor SQLite turns it on, so a Spin SQLite file
// starts in rollback-journal mode, where every write creates, syncs and deletes a journal file
// and blocks every reader: several times slower per statement, and replicas on one file wait on
// each other. The mode is stored in the file, so setting it once serves every later connection.
// Best effort: a database that has no journal modes (libSQL served remotely) keeps its own.
// https://www.sqlite.org/wal.html
const JOURNAL_MODE_WAL: &str = "PRAGMA journal_mode = WAL";

// Version 8: `Idempotency-Key` on the creating POSTs (issue #12; the rules are the core's
// `mio_shared::idempotency`). One row per account and key: the request it is bound to
// (`fingerprint`), its first use (the 24 hours count from there), the run holding it (`owner`,
// random per claim, and `started_at`), and once answered the answer itself. A route's writes and
// its answer commit in one transaction (`crate::idempotency`), so nothing is created without
// its answer being stored. Instants are Unix milliseconds.
const CREATE_IDEMPOTENCY_KEYS: &str = "CREATE TABLE IF NOT EXISTS idempotency_keys (
    account_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('in_progress', 'done', 'released')),
    owner TEXT NOT NULL,
    first_used_at INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    response_status INTEGER,
    response_headers_json TEXT,
    response_body BLOB,
    PRIMARY KEY (account_id, idempotency_key)
)";
// The purge of expired keys reads the oldest first uses.
const CREATE_IDEMPOTENCY_KEYS_BY_FIRST_USE: &str = "CREATE INDEX IF NOT EXISTS \
     idempotency_keys_by_first_use ON idempotency_keys (first_used_at)";

/// Statements whose failure does not stop a migration (the database keeps its own way).
const BEST_EFFORT: &[&str] = &[JOURNAL_MODE_WAL];

/// Every migration, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        statements: &[
            CREATE_ACCOUNTS,
            CREATE_CUSTOMERS,
            CREATE_CUSTOMERS_BY_ACCOUNT,
        ],
    },
    Migration {
        version: 2,
        statements: &[
            CREATE_ACCOUNT_SETTINGS,
            CREATE_CUSTOMERS_BY_EMAIL,
            CREATE_BOOKINGS,
            CREATE_BOOKINGS_BY_START,
            CREATE_BOOKINGS_BY_CUSTOMER,
            CREATE_BOOKINGS_BY_STATUS,
            CREATE_CUSTOMER_OVERRIDES,
            CREATE_OVERRIDE_CHANGES,
            CREATE_OVERRIDE_CHANGES_BY_CUSTOMER,
            CREATE_AUTOMATION_JOBS,
            CREATE_JOBS_BY_DUE,
            CREATE_JOBS_BY_ACCOUNT_STATUS,
            CREATE_JOBS_BY_CUSTOMER,
        ],
    },
    Migration {
        version: 3,
        statements: &[
            CREATE_PAYMENT_METHODS,
            CREATE_PAYMENT_ATTEMPTS,
            CREATE_PAYMENT_ATTEMPTS_BY_BOOKING,
            CREATE_ACTIVITY,
            CREATE_ACTIVITY_BY_ACCOUNT,
            CREATE_ACTIVITY_BY_CUSTOMER,
            CREATE_ACTIVITY_BY_BOOKING,
            CREATE_JOBS_BY_NEXT_ATTEMPT,
            CREATE_JOBS_BY_LEASE,
        ],
    },
    Migration {
        version: 4,
        statements: &[
            CREATE_OVERRIDE_INSERT_HISTORY,
            CREATE_OVERRIDE_UPDATE_HISTORY,
        ],
    },
    Migration {
        version: 5,
        statements: &[
            CREATE_PAYMENT_REQUESTS,
            CREATE_STRIPE_EVENTS,
            CREATE_MIOPAY_STATUS,
            CREATE_SETTINGS_BY_STRIPE_ACCOUNT,
            CREATE_PAYMENT_REFUNDS,
            CREATE_PAYMENT_METHOD_REQUESTS,
            CREATE_PAYMENT_ATTEMPTS_BY_INTENT,
            CREATE_PAYMENT_METHODS_BY_CARD,
            CREATE_CUSTOMERS_BY_STRIPE_CUSTOMER,
        ],
    },
    Migration {
        version: 6,
        statements: &[
            CREATE_NOTIFICATION_SETTINGS,
            CREATE_MESSAGES,
            CREATE_FEEDBACK_REQUESTS,
            CREATE_FEEDBACK_BY_RECEIVED,
            CREATE_FEEDBACK_RATING_ACTIVITY,
        ],
    },
    Migration {
        version: 7,
        statements: &[JOURNAL_MODE_WAL],
    },
    Migration {
        version: 8,
        statements: &[
            CREATE_IDEMPOTENCY_KEYS,
            CREATE_IDEMPOTENCY_KEYS_BY_FIRST_USE,
        ],
    },
];

/// Applies every migration not yet recorded.
/// The newest schema version.
pub fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// The statement that reads the schema version in a request's first statement (with `?1` free
/// for the caller's own parameter): every request checks the schema in the same round trip as
/// its first real read, instead of two statements of its own.
pub const SCHEMA_VERSION_COLUMN: &str =
    "(SELECT MAX(version) FROM schema_migrations) AS schema_version";

const SELECT_SCHEMA_VERSION: &str = "SELECT MAX(version) AS schema_version FROM schema_migrations";

/// Brings the schema up to date in one statement when it already is (the common case), and
/// through [`migrate`] otherwise.
pub fn ensure(db: &impl Sql, now: Timestamp) -> anyhow::Result<()> {
    if current(db.execute(SELECT_SCHEMA_VERSION, &[]).ok().as_ref()) {
        return Ok(());
    }
    migrate(db, now)
}

/// Whether a result holding a `schema_version` column shows the newest schema (a missing
/// table, a failed query or an older version does not).
pub fn current(result: Option<&spin_sdk::sqlite::QueryResult>) -> bool {
    result
        .and_then(|r| {
            Record::all(r)
                .next()
                .map(|row| row.optional_integer("schema_version"))
        })
        .and_then(Result::ok)
        .flatten()
        .is_some_and(|version| version >= latest())
}

/// Applies every migration not yet recorded.
pub fn migrate(db: &impl Sql, now: Timestamp) -> anyhow::Result<()> {
    db.execute(CREATE_SCHEMA_MIGRATIONS, &[])
        .context("creating schema_migrations")?;
    let applied = applied_versions(db)?;
    for migration in MIGRATIONS {
        if !applied.contains(&migration.version) {
            apply(db, migration, now)?;
        }
    }
    Ok(())
}

fn apply(db: &impl Sql, migration: &Migration, now: Timestamp) -> anyhow::Result<()> {
    for (index, statement) in migration.statements.iter().enumerate() {
        if let Err(error) = db.execute(statement, &[]) {
            if BEST_EFFORT.contains(statement) {
                eprintln!(
                    "migration {}: {statement:?} not applied: {error:#}",
                    migration.version
                );
                continue;
            }
            // Another instance may have raced us through this version; then all is well.
            if applied_versions(db)?.contains(&migration.version) {
                return Ok(());
            }
            return Err(error)
                .with_context(|| format!("migration {} statement {index}", migration.version));
        }
    }
    db.execute(
        RECORD_VERSION,
        &[
            Value::Integer(migration.version),
            crate::db::text(&now.to_string()),
        ],
    )
    .with_context(|| format!("recording migration {}", migration.version))?;
    Ok(())
}

fn applied_versions(db: &impl Sql) -> anyhow::Result<Vec<i64>> {
    let result = db
        .execute(SELECT_APPLIED_VERSIONS, &[])
        .context("reading schema_migrations")?;
    Record::all(&result)
        .map(|row| row.integer("version"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_db::TestDb;

    fn now() -> Timestamp {
        Timestamp::parse("2026-03-01T09:30:00Z").expect("valid")
    }

    #[test]
    fn migrations_are_numbered_in_strictly_increasing_order() {
        assert!(MIGRATIONS.windows(2).all(|w| w[0].version < w[1].version));
    }

    #[test]
    fn a_fresh_database_gets_every_version_recorded() {
        let db = TestDb::new();
        migrate(&db, now()).expect("migrates");
        let expected: Vec<i64> = MIGRATIONS.iter().map(|m| m.version).collect();
        assert_eq!(applied_versions(&db).expect("readable"), expected);
    }

    #[test]
    fn migrating_twice_changes_nothing() {
        let db = TestDb::new();
        migrate(&db, now()).expect("first run");
        migrate(&db, now()).expect("second run");
        assert_eq!(
            applied_versions(&db).expect("readable").len(),
            MIGRATIONS.len()
        );
    }

    #[test]
    fn every_statement_is_safe_to_run_again_after_an_interrupted_migration() {
        // As if an instance died after running the statements but before recording the version.
        let db = TestDb::new();
        db.execute(CREATE_SCHEMA_MIGRATIONS, &[]).expect("created");
        for migration in MIGRATIONS {
            for statement in migration.statements {
                db.execute(statement, &[]).expect("first run");
            }
        }
        migrate(&db, now()).expect("re-runs cleanly");
        assert_eq!(
            applied_versions(&db).expect("readable").len(),
            MIGRATIONS.len()
        );
    }

    #[test]
    fn two_instances_sharing_a_database_both_succeed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("shared.db");
        let first = TestDb::open(&path);
        let second = TestDb::open(&path);
        migrate(&first, now()).expect("first instance");
        migrate(&second, now()).expect("second instance");
        assert_eq!(
            applied_versions(&second).expect("readable").len(),
            MIGRATIONS.len()
        );
    }

    #[test]
    fn a_version_1_database_upgrades_keeping_its_rows() {
        let db = TestDb::new();
        db.execute(CREATE_SCHEMA_MIGRATIONS, &[]).expect("created");
        apply(&db, &MIGRATIONS[0], now()).expect("version 1");
        db.execute(
            "INSERT INTO customers (id, account_id, name, name_folded, notify_email, \
             notify_sms, created_at, updated_at) \
             VALUES ('cus_1', 'acc_1', 'Ada', 'ada', 1, 1, 'x', 'x')",
            &[],
        )
        .expect("a version 1 row");
        migrate(&db, now()).expect("upgrades");
        let names = db
            .execute("SELECT name FROM customers", &[])
            .expect("query")
            .rows;
        assert_eq!(names.len(), 1);
        let jobs = db
            .execute("SELECT count(*) AS n FROM automation_jobs", &[])
            .expect("version 2 table exists");
        assert_eq!(jobs.rows.len(), 1);
    }
}
