//! The scheduled tick (`POST /api/v1/internal/tick` and the cron trigger) against the fake
//! Stripe: exactly-once charging under lost answers, concurrent ticks and outages, the
//! execution-time re-check, and the activity every run leaves.

use std::collections::HashMap;

use crate::support::{database, furnish, in_hours, now_millis, spawn_on_stripe, unix_now};
use mio_tests::fake_stripe::{FakeStripe, Outcome};
use mio_tests::{Options, TICK_TOKEN, TestApp};
use reqwest::Method;
use serde_json::{Value, json};

pub(crate) const STRIPE_ACCOUNT: &str = "acct_1SparkleBiz";
pub(crate) const STRIPE_CUSTOMER: &str = "cus_Ada123";
pub(crate) const CARD: &str = "pm_card_visa";
pub(crate) const PRICE: i64 = 12_500;

/// An account with MioPay on and "charge 24 hours before start", one customer with a card,
/// talking to its own fake Stripe.
pub(crate) struct Biz {
    pub(crate) app: TestApp,
    pub(crate) stripe: FakeStripe,
    pub(crate) token: String,
    pub(crate) account: String,
    pub(crate) customer: String,
}

pub(crate) async fn setup() -> Biz {
    setup_with(Options::default()).await
}

/// [`setup`] with `options` (limits, say); the Stripe variables and the webhook endpoint point
/// at the fake.
pub(crate) async fn setup_with(options: Options) -> Biz {
    let stripe = FakeStripe::start().await;
    let app = spawn_on_stripe(options, &stripe).await;
    let (account, token) = app.create_account("Sparkle Cleaning").await;
    let customer = furnish(&app, &stripe, &token, STRIPE_ACCOUNT, STRIPE_CUSTOMER, CARD).await;
    Biz {
        app,
        stripe,
        token,
        account,
        customer,
    }
}

/// An activity entry as the tests compare it: (status, summary, details).
pub(crate) type Entry = (String, String, Value);

impl Biz {
    /// `method path` with the business's token and `body`: status and answer.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.app.call(method, path, Some(&self.token), body).await
    }

    pub(crate) async fn ok(&self, method: Method, path: &str, body: Value) -> Value {
        let (status, answer) = self.call(method.clone(), path, Some(body)).await;
        assert_eq!(status, 200, "{method} {path}: {answer}");
        answer
    }

    /// `GET path` with the business's token; the answer (a 200 is asserted).
    pub(crate) async fn get(&self, path: &str) -> Value {
        let (status, answer) = self.call(Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {answer}");
        answer
    }

    /// A booking starting in `hours` (so its charge is due now when that is under 24).
    pub(crate) async fn booking(&self, hours: i64) -> String {
        self.booking_of(&self.customer, hours).await
    }

    /// A booking of `customer` starting in `hours`.
    pub(crate) async fn booking_of(&self, customer: &str, hours: i64) -> String {
        crate::support::book(&self.app, &self.token, customer, hours, PRICE).await
    }

    /// A tick over HTTP; its summary, checked against the served OpenAPI document.
    pub(crate) async fn tick(&self) -> Value {
        let summary = crate::support::tick(&self.app).await;
        let doc = crate::support::openapi(&self.app).await;
        mio_tests::assert_documented(&doc, &Method::POST, "/api/v1/internal/tick", 200, &summary);
        summary
    }

    /// The app's SQLite file, for what HTTP cannot set up or show.
    pub(crate) fn db(&self) -> rusqlite::Connection {
        database(&self.app)
    }

    pub(crate) fn sql(&self, statement: &str, params: &[&str]) {
        self.db()
            .execute(statement, rusqlite::params_from_iter(params))
            .expect("statement");
    }

    /// The payment job of `booking` as `GET /api/v1/bookings/{id}/automations` shows it:
    /// status, attempts, next_attempt_at (Unix ms).
    pub(crate) async fn job(&self, booking: &str) -> (String, i64, Option<i64>) {
        let run = crate::bookings::run_of(&self.app, &self.token, booking, "payment").await;
        (
            run["status"].as_str().expect("status").to_owned(),
            run["attempts"].as_i64().expect("attempts"),
            (!run["next_attempt_at"].is_null())
                .then(|| crate::bookings::instant(&run["next_attempt_at"]).timestamp_millis()),
        )
    }

    /// Makes a retrying or unknown job due now (instead of waiting for its backoff).
    pub(crate) fn make_retry_due(&self, booking: &str) {
        self.sql(
            "UPDATE automation_jobs SET next_attempt_at = 0 \
             WHERE booking_id = ?1 AND status IN ('retrying', 'unknown')",
            &[booking],
        );
    }

    /// Activity entries of `booking`, oldest first.
    pub(crate) async fn activity(&self, booking: &str) -> Vec<Entry> {
        self.activity_where(&format!("booking_id={booking}")).await
    }

    /// Activity entries of `customer`, oldest first.
    pub(crate) async fn customer_activity(&self, customer: &str) -> Vec<Entry> {
        self.activity_where(&format!("customer_id={customer}"))
            .await
    }

    /// Every entry `GET /api/v1/activity?{filter}` lists, page after page, oldest first.
    async fn activity_where(&self, filter: &str) -> Vec<Entry> {
        let mut entries = Vec::new();
        let mut path = format!("/api/v1/activity?{filter}&limit=200");
        loop {
            let page = self.get(&path).await;
            for entry in page["data"].as_array().expect("entries") {
                entries.push((
                    entry["status"].as_str().expect("status").to_owned(),
                    entry["summary"].as_str().expect("summary").to_owned(),
                    entry["details"].clone(),
                ));
            }
            match page["next_cursor"].as_str() {
                Some(cursor) => {
                    path = format!("/api/v1/activity?{filter}&limit=200&cursor={cursor}")
                }
                None => break,
            }
        }
        entries.reverse();
        entries
    }

    /// A second business with MioPay on connected account `stripe_account`; its API token.
    pub(crate) async fn other_business(&self, stripe_account: &str) -> String {
        let (_, token) = self.app.create_account("Other Cleaning").await;
        let (status, answer) = self
            .app
            .call(
                Method::PUT,
                "/api/v1/settings/miopay",
                Some(&token),
                Some(json!({"enabled": true, "stripe_account_id": stripe_account})),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        token
    }

    pub(crate) async fn balance(&self, booking: &str) -> i64 {
        self.get(&format!("/api/v1/bookings/{booking}")).await["balance_due_cents"]
            .as_i64()
            .expect("balance")
    }

    pub(crate) fn charge_keys(&self) -> Vec<Option<String>> {
        self.stripe
            .requests_to("POST", "/v1/payment_intents")
            .into_iter()
            .map(|r| r.idempotency_key)
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_payment_is_charged_exactly_once_and_shows_in_activity() {
    let biz = setup().await;
    let booking = biz.booking(2).await;

    let summary = biz.tick().await;
    assert_eq!(summary["claimed"], 1, "{summary}");
    assert_eq!(summary["succeeded"], 1, "{summary}");
    let again = biz.tick().await;
    assert_eq!(again["claimed"], 0, "{again}");

    let charges = biz.stripe.succeeded_charges();
    assert_eq!(charges.len(), 1);
    let charge = &charges[0];
    assert_eq!(charge.amount, PRICE);
    assert_eq!(charge.currency, "cad");
    assert_eq!(charge.account.as_deref(), Some(STRIPE_ACCOUNT));
    assert_eq!(charge.customer.as_deref(), Some(STRIPE_CUSTOMER));
    assert_eq!(charge.payment_method.as_deref(), Some(CARD));
    assert_eq!(charge.metadata.get("mio_booking_id"), Some(&booking));
    assert!(
        charge
            .idempotency_key
            .as_deref()
            .is_some_and(|k| k.ends_with("-attempt-1")),
        "{:?}",
        charge.idempotency_key
    );
    assert_eq!(biz.job(&booking).await.0, "succeeded");
    assert_eq!(biz.balance(&booking).await, 0);
    let activity = biz.activity(&booking).await;
    assert_eq!(activity.len(), 1, "{activity:?}");
    let (status, summary, details) = &activity[0];
    assert_eq!(status, "success");
    assert!(summary.contains("125.00 CAD"), "{summary}");
    assert_eq!(details["amount_cents"], PRICE);
    assert_eq!(details["currency"], "cad");
    assert_eq!(details["payment_intent_id"], charge.id.as_str());
    assert_eq!(details["attempt"], 1);
    assert_eq!(details["late"], true);
    assert!(
        details["rule"]
            .as_str()
            .is_some_and(|r| r.contains("account rule"))
    );

    let listed = biz
        .get(&format!("/api/v1/activity?booking_id={booking}"))
        .await;
    let entries = listed["data"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "{listed}");
    assert_eq!(entries[0]["status"], "success");
    assert_eq!(entries[0]["automation"], "payment");
    assert_eq!(entries[0]["customer_id"], biz.customer.as_str());
    assert_eq!(
        entries[0]["details"]["payment_intent_id"],
        charge.id.as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_charge_whose_answer_is_lost_is_recovered_with_the_same_key_and_no_second_charge() {
    for lost in [Outcome::ChargeThenDropConnection, Outcome::ChargeThenHang] {
        let biz = setup().await;
        let booking = biz.booking(2).await;
        biz.stripe.push_outcome(lost.clone());

        let first = biz.tick().await;
        assert_eq!(first["unknown"], 1, "{lost:?}: {first}");
        assert_eq!(biz.job(&booking).await.0, "unknown");
        assert_eq!(
            biz.balance(&booking).await,
            PRICE,
            "not known to be paid yet"
        );

        biz.make_retry_due(&booking);
        let second = biz.tick().await;
        assert_eq!(second["succeeded"], 1, "{lost:?}: {second}");

        assert_eq!(biz.stripe.succeeded_charges().len(), 1, "{lost:?}");
        let keys = biz.charge_keys();
        assert_eq!(keys.len(), 2, "{lost:?}: {keys:?}");
        assert_eq!(keys[0], keys[1], "{lost:?}: the retry reuses the key");
        assert_eq!(biz.balance(&booking).await, 0);
        let statuses: Vec<String> = biz
            .activity(&booking)
            .await
            .into_iter()
            .map(|a| a.0)
            .collect();
        assert_eq!(statuses, ["retrying", "success"], "{lost:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_ticks_at_once_charge_each_job_once() {
    let biz = setup().await;
    let mut bookings = Vec::new();
    for hours in 1..=3 {
        bookings.push(biz.booking(hours).await);
    }
    let now_s = u64::try_from(unix_now()).expect("positive");
    let http = (0..6).map(|_| biz.tick());
    let cron = (0..2).map(|_| biz.app.app().fire_cron("scheduled-tick", now_s));
    let (summaries, crons) = tokio::join!(
        futures::future::join_all(http),
        futures::future::join_all(cron)
    );
    for result in crons {
        assert_eq!(result.expect("cron ran"), Ok(()));
    }
    let claimed: i64 = summaries
        .iter()
        .map(|s| s["claimed"].as_i64().expect("count"))
        .sum();
    assert!(claimed <= 3, "a job was claimed twice: {summaries:?}");

    let charges = biz.stripe.succeeded_charges();
    assert_eq!(charges.len(), 3, "{charges:?}");
    let mut charged: Vec<String> = charges
        .iter()
        .map(|c| c.metadata["mio_booking_id"].clone())
        .collect();
    charged.sort();
    bookings.sort();
    assert_eq!(charged, bookings);
    for booking in &bookings {
        assert_eq!(biz.job(booking).await.0, "succeeded");
        assert_eq!(biz.activity(booking).await.len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_failing_for_many_ticks_then_back_charges_once_and_shows_the_retries() {
    let biz = setup().await;
    let booking = biz.booking(2).await;
    biz.stripe.push_outcomes([
        Outcome::ServerErrorBeforeExecution,
        Outcome::RateLimit,
        Outcome::ServerErrorBeforeExecution,
        Outcome::RateLimit,
    ]);
    let mut ticks = 0;
    while biz.job(&booking).await.0 != "succeeded" {
        ticks += 1;
        assert!(ticks <= 12, "still not charged after {ticks} ticks");
        let summary = biz.tick().await;
        assert_eq!(summary["claimed"], 1, "{summary}");
        assert!(
            summary["unknown"] == 1 || summary["succeeded"] == 1,
            "{summary}"
        );
        biz.make_retry_due(&booking);
    }
    assert_eq!(biz.stripe.pending_outcomes(), 0, "every failure was met");
    assert_eq!(biz.stripe.succeeded_charges().len(), 1);
    let keys = biz.charge_keys();
    assert!(
        keys[0].is_some() && keys.iter().all(|k| k == &keys[0]),
        "one attempt, one key: {keys:?}"
    );
    assert!(
        !biz.stripe
            .requests_to("GET", "/v1/payment_intents/search")
            .is_empty(),
        "looked up between resends"
    );
    assert_eq!(biz.balance(&booking).await, 0);
    let statuses: Vec<String> = biz
        .activity(&booking)
        .await
        .into_iter()
        .map(|a| a.0)
        .collect();
    assert!(
        statuses.iter().filter(|s| *s == "retrying").count() >= 4,
        "{statuses:?}"
    );
    assert_eq!(statuses.last().map(String::as_str), Some("success"));
    assert_eq!(biz.tick().await["claimed"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_whose_webhook_never_comes_is_never_charged_again_and_ends_in_check_stripe() {
    for outcome in [Outcome::ChargeThenServerError, Outcome::ServerError] {
        let biz = setup().await;
        let booking = biz.booking(2).await;
        // The answer is a saved 500 (replayed for the key), no webhook is delivered, and search
        // lags behind for longer than the test runs.
        biz.stripe.push_outcome(outcome.clone());
        biz.stripe
            .set_search_delay(std::time::Duration::from_secs(3600));
        for _ in 0..6 {
            let summary = biz.tick().await;
            assert_eq!(summary["unknown"], 1, "{outcome:?}: {summary}");
            biz.make_retry_due(&booking);
        }
        let (status, attempts, _) = biz.job(&booking).await;
        assert_eq!(status, "unknown", "{outcome:?}");
        assert_eq!(attempts, 1, "{outcome:?}: no new attempt without proof");
        let keys = biz.charge_keys();
        assert!(
            keys.first().is_some_and(Option::is_some) && keys.iter().all(|k| k == &keys[0]),
            "{outcome:?}: every send reused the one key: {keys:?}"
        );
        // The first send charged (or not) and every resend replayed its saved 500.
        let charged = usize::from(matches!(outcome, Outcome::ChargeThenServerError));
        assert_eq!(
            biz.stripe.succeeded_charges().len(),
            charged,
            "{outcome:?}: never a second charge"
        );
        assert!(
            !biz.stripe
                .requests_to("GET", "/v1/payment_intents/search")
                .is_empty(),
            "{outcome:?}: looked up by the attempt's metadata"
        );

        // The window (72 hours) passes without proof.
        let long_ago = now_millis() - 73 * 3600 * 1000;
        biz.sql(
            "UPDATE payment_attempts SET started_at = ?1 WHERE booking_id = ?2",
            &[&long_ago.to_string(), &booking],
        );
        let posts_before = biz.charge_keys().len();
        let summary = biz.tick().await;
        assert_eq!(summary["failed"], 1, "{outcome:?}: {summary}");
        assert_eq!(biz.job(&booking).await.0, "failed", "{outcome:?}");
        assert_eq!(
            biz.charge_keys().len(),
            posts_before,
            "{outcome:?}: nothing sent after the window"
        );
        let activity = biz.activity(&booking).await;
        let (status, summary, details) = activity.last().expect("an entry");
        assert_eq!(status, "failed");
        assert!(
            summary.contains("outcome unknown: check Stripe before charging again"),
            "{summary}"
        );
        let key = details["idempotency_key"].as_str().expect("the key");
        assert!(key.ends_with("-attempt-1"), "{key}");
        let message = details["message"].as_str().expect("a message");
        assert!(
            message.contains("job_") && message.contains(key),
            "{message}"
        );
        assert_eq!(
            biz.tick().await["claimed"],
            0,
            "{outcome:?}: it stays failed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soft_decline_retries_on_schedule_with_a_new_key() {
    let biz = setup().await;
    let booking = biz.booking(2).await;
    biz.stripe
        .push_outcome(Outcome::decline("insufficient_funds"));
    let before = now_millis();
    let summary = biz.tick().await;
    assert_eq!(summary["retrying"], 1, "{summary}");
    let (status, attempts, next) = biz.job(&booking).await;
    assert_eq!((status.as_str(), attempts), ("retrying", 1));
    let next = next.expect("next attempt set");
    let day = 24 * 60 * 60 * 1000;
    assert!(next >= before + day && next <= now_millis() + day, "{next}");
    assert_eq!(biz.tick().await["claimed"], 0, "not before its time");

    biz.make_retry_due(&booking);
    assert_eq!(biz.tick().await["succeeded"], 1);
    let keys = biz.charge_keys();
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0], keys[1], "a new attempt gets a new key");
    assert_eq!(biz.stripe.succeeded_charges().len(), 1);
    let activity = biz.activity(&booking).await;
    assert_eq!(activity[0].0, "retrying");
    assert_eq!(activity[0].2["decline_code"], "insufficient_funds");
    assert_eq!(activity[1].0, "success");
    assert_eq!(activity[1].2["attempt"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hard_decline_fails_with_its_code_and_is_not_retried() {
    let biz = setup().await;
    let booking = biz.booking(2).await;
    biz.stripe.push_outcome(Outcome::decline("stolen_card"));
    assert_eq!(biz.tick().await["failed"], 1);
    assert_eq!(biz.job(&booking).await.0, "failed");
    let activity = biz.activity(&booking).await;
    assert_eq!(activity.len(), 1);
    assert_eq!(activity[0].0, "failed");
    assert_eq!(activity[0].2["decline_code"], "stolen_card");
    biz.make_retry_due(&booking);
    assert_eq!(biz.tick().await["claimed"], 0);
    assert_eq!(biz.charge_keys().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_needing_authentication_fails_and_says_the_customer_must_authenticate() {
    let biz = setup().await;
    let booking = biz.booking(2).await;
    biz.stripe.push_outcome(Outcome::RequireAuthentication);
    assert_eq!(biz.tick().await["failed"], 1);
    let activity = biz.activity(&booking).await;
    assert!(activity[0].1.contains("must authenticate"), "{activity:?}");
    assert_eq!(biz.job(&booking).await.0, "failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_card_or_miopay_off_fails_with_the_reason_and_never_calls_stripe() {
    let biz = setup().await;
    biz.sql("DELETE FROM payment_methods", &[]);
    let no_card = biz.booking(2).await;
    assert_eq!(biz.tick().await["failed"], 1);
    assert_eq!(
        biz.activity(&no_card).await[0].2["message"],
        "no primary card"
    );

    biz.ok(
        Method::PUT,
        "/api/v1/settings/miopay",
        json!({"enabled": false, "stripe_account_id": STRIPE_ACCOUNT}),
    )
    .await;
    let no_miopay = biz.booking(3).await;
    assert_eq!(biz.tick().await["failed"], 1);
    assert_eq!(
        biz.activity(&no_miopay).await[0].2["message"],
        "MioPay is not enabled for this account"
    );
    assert!(biz.charge_keys().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_switched_off_after_planning_skips_the_charge_with_its_provenance() {
    let biz = setup().await;
    let booking = biz.booking(2).await;
    // As if the override landed after the claim: the toggle itself would cancel a still
    // scheduled job, so write the override without touching the job.
    biz.sql(
        "INSERT INTO customer_overrides (account_id, customer_id, automation, state, \
         updated_at, updated_by) VALUES (?1, ?2, 'payment', 'disabled', \
         '2026-11-02T10:00:00Z', 'tok_test')",
        &[&biz.account, &biz.customer],
    );
    assert_eq!(biz.tick().await["skipped"], 1);
    assert_eq!(biz.job(&booking).await.0, "skipped");
    let activity = biz.activity(&booking).await;
    assert_eq!(activity[0].0, "skipped");
    assert!(activity[0].1.contains("customer override"), "{activity:?}");
    assert!(biz.charge_keys().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_or_already_paid_booking_is_not_charged() {
    let biz = setup().await;
    let cancelled = biz.booking(2).await;
    let paid = biz.booking(3).await;
    // Changed after planning, behind the planner's back: the tick must re-check.
    biz.sql(
        "UPDATE bookings SET status = 'cancelled' WHERE id = ?1",
        &[&cancelled],
    );
    biz.sql(
        "UPDATE bookings SET paid_cents = amount_cents WHERE id = ?1",
        &[&paid],
    );
    let summary = biz.tick().await;
    assert_eq!(summary["skipped"], 2, "{summary}");
    assert_eq!(
        biz.activity(&cancelled).await[0].2["message"],
        "booking cancelled"
    );
    assert_eq!(biz.activity(&paid).await[0].2["message"], "already paid");
    assert!(biz.charge_keys().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rescheduled_booking_is_charged_at_its_new_time_not_before() {
    let biz = setup().await;
    let booking = biz.booking(2).await;
    biz.ok(
        Method::PATCH,
        &format!("/api/v1/bookings/{booking}"),
        json!({"start_at": in_hours(24 * 7), "end_at": in_hours(24 * 7 + 2)}),
    )
    .await;
    assert_eq!(biz.tick().await["claimed"], 0);
    assert!(biz.charge_keys().is_empty());
    let (status, _, _) = biz.job(&booking).await;
    assert_eq!(status, "scheduled");
    // Six days later, the new due time comes.
    biz.sql(
        "UPDATE automation_jobs SET due_at = due_at - 6 * 86400000 - 3600000 \
         WHERE booking_id = ?1",
        &[&booking],
    );
    assert_eq!(biz.tick().await["succeeded"], 1);
    assert_eq!(biz.stripe.succeeded_charges().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cron_trigger_charges_a_due_job() {
    let biz = setup().await;
    let booking = biz.booking(2).await;
    let now_s = u64::try_from(unix_now()).expect("positive");
    assert_eq!(
        biz.app
            .app()
            .fire_cron("scheduled-tick", now_s)
            .await
            .expect("cron ran"),
        Ok(())
    );
    assert_eq!(biz.job(&booking).await.0, "succeeded");
    assert_eq!(biz.stripe.succeeded_charges().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tick_route_wants_the_tick_token_and_post() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .call(Method::POST, "/api/v1/internal/tick", None, None)
        .await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = app
        .call(Method::POST, "/api/v1/internal/tick", Some("wrong"), None)
        .await;
    assert_eq!(status, 401);
    let (status, _) = app
        .call(Method::GET, "/api/v1/internal/tick", Some(TICK_TOKEN), None)
        .await;
    assert_eq!(status, 405);
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/internal/tick",
            Some(TICK_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let keys: HashMap<&str, &Value> = body
        .as_object()
        .expect("object")
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    for key in ["claimed", "succeeded", "failed", "skipped", "retrying"] {
        assert_eq!(keys.get(key).and_then(|v| v.as_i64()), Some(0), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_claim_uses_the_job_indexes_and_never_scans_jobs_or_bookings() {
    let app = TestApp::spawn().await;
    // Any request migrates the schema.
    app.create_account("Plan").await;
    let db = database(&app);
    let mut statement = db
        .prepare(&format!(
            "EXPLAIN QUERY PLAN {}",
            mio_platform::claims::CLAIM_CANDIDATES
        ))
        .expect("the claim's candidates compile against the real schema");
    let plan: Vec<String> = statement
        .query_map((0i64, 25i64), |row| row.get::<_, String>(3))
        .expect("plan")
        .collect::<Result<_, _>>()
        .expect("plan rows");
    let text = plan.join("\n");
    for index in [
        "automation_jobs_by_due",
        "automation_jobs_by_next_attempt",
        "automation_jobs_by_lease",
    ] {
        assert!(text.contains(index), "{index} unused:\n{text}");
    }
    for line in &plan {
        assert!(
            !(line.starts_with("SCAN")
                && (line.contains("automation_jobs") || line.contains("bookings"))),
            "full scan in the claim:\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cron_firing_yields_to_a_fresh_lease_but_the_tick_route_still_claims() {
    let biz = setup().await;
    let booking = biz.booking(2).await;
    // Another tick's fresh lease in the key-value store (the host keeps it in SQLite).
    let until = now_millis() + 50_000;
    let store = mio_host::key_value::open(biz.app.state_dir()).expect("key-value store");
    store
        .get()
        .expect("connection")
        .conn()
        .execute(
            "INSERT INTO spin_key_value (store, key, value) VALUES ('default', 'tick:lease', ?1)",
            [format!("tick-other {until}").into_bytes()],
        )
        .expect("lease written");
    let now_s = u64::try_from(unix_now()).expect("positive");
    let fired = biz.app.app().fire_cron("scheduled-tick", now_s).await;
    assert_eq!(fired.expect("cron ran"), Ok(()));
    assert_eq!(
        biz.job(&booking).await.0,
        "scheduled",
        "the cron firing stood back"
    );

    assert_eq!(biz.tick().await["succeeded"], 1);
    assert_eq!(biz.stripe.succeeded_charges().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_stops_on_unreadable_data_shows_in_activity_and_charges_nothing() {
    let biz = setup().await;
    let booking = biz.booking(2).await;
    // Stored data the run cannot read (as a bad manual edit or a half-applied change would leave).
    biz.sql(
        "UPDATE account_settings SET rules_json = '{not json' WHERE account_id = ?1",
        &[&biz.account],
    );

    let summary = biz.tick().await;
    assert_eq!(summary["claimed"], 1, "{summary}");
    assert_eq!(summary["errors"], 1, "{summary}");
    assert!(
        biz.stripe.charges().is_empty(),
        "nothing was sent to Stripe"
    );
    assert_eq!(
        biz.job(&booking).await.0,
        "running",
        "kept leased, to run again"
    );

    let activity = biz.activity(&booking).await;
    assert_eq!(activity.len(), 1, "{activity:?}");
    let (status, summary, details) = &activity[0];
    assert_eq!(status, "retrying");
    assert!(summary.contains("will run again"), "{summary}");
    assert_eq!(details["attempt"], 1);
    assert!(
        !details.to_string().to_lowercase().contains("sql"),
        "internal errors stay in the log: {details}"
    );

    // It does not loop for ever: once its lease expires it runs again, and the third stop
    // fails the job for a person to look at.
    for stop in 2..=3 {
        biz.sql(
            "UPDATE automation_jobs SET lease_until = 0 WHERE booking_id = ?1",
            &[&booking],
        );
        let summary = biz.tick().await;
        assert_eq!(summary["errors"], 1, "stop {stop}: {summary}");
    }
    assert_eq!(biz.job(&booking).await.0, "failed");
    let activity = biz.activity(&booking).await;
    let statuses: Vec<&str> = activity.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(statuses, ["retrying", "retrying", "failed"], "{activity:?}");
    assert!(
        activity[2].1.contains("stopped 3 times"),
        "{}",
        activity[2].1
    );
    assert!(biz.stripe.charges().is_empty(), "nothing was ever sent");
    biz.sql(
        "UPDATE automation_jobs SET lease_until = 0 WHERE booking_id = ?1",
        &[&booking],
    );
    assert_eq!(
        biz.tick().await["claimed"],
        0,
        "a failed job is not claimed"
    );
}
