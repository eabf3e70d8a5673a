//! `GET /api/v1/activity` and `GET /api/v1/customers/{id}/activity`: the runs the tick
//! recorded, newest first, filtered, paged and scoped by account. The rows are written into the
//! app's real SQLite file the way the tick writes them.

use crate::support::openapi;
use mio_tests::{TestApp, assert_documented};
use reqwest::Method;
use serde_json::{Value, json};

const LIST: &str = "/api/v1/activity";
const OF_CUSTOMER: &str = "/api/v1/customers/{id}/activity";
/// 2026-03-01T12:00:00Z.
const NOON: i64 = 1_772_366_400_000;
const HOUR: i64 = 3_600_000;

struct Row<'a> {
    id: &'a str,
    account: &'a str,
    customer: &'a str,
    booking: &'a str,
    automation: &'a str,
    status: &'a str,
    hours_after_noon: i64,
}

/// Inserts rows as the tick would (after the app has migrated the schema).
fn insert(app: &TestApp, rows: &[Row<'_>]) {
    let pool = mio_host::sqlite::open(app.state_dir()).expect("the app's database");
    let mut sql = String::new();
    for row in rows {
        let details = json!({"amount_cents": 12500, "currency": "cad",
            "payment_intent_id": format!("pi_{}", row.id), "decline_code": null, "attempt": 1});
        sql.push_str(&format!(
            "INSERT INTO activity (id, account_id, customer_id, booking_id, job_id, automation, \
             status, occurred_at, summary, details_json, dedupe_key) VALUES ('{id}', '{account}', \
             '{customer}', '{booking}', 'job_{id}', '{automation}', '{status}', {at}, \
             'Charged $125.00', '{details}', 'dedupe_{id}');",
            id = row.id,
            account = row.account,
            customer = row.customer,
            booking = row.booking,
            automation = row.automation,
            status = row.status,
            at = NOON + row.hours_after_noon * HOUR,
        ));
    }
    mio_host::sqlite::run_batch(&pool, &sql).expect("rows inserted");
}

async fn customer(app: &TestApp, token: &str, name: &str) -> String {
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/customers",
            Some(token),
            Some(json!({"name": name})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().expect("id").to_owned()
}

async fn get(app: &TestApp, doc: &Value, token: &str, path: &str, template: &str) -> (u16, Value) {
    let (status, body) = app.call(Method::GET, path, Some(token), None).await;
    assert_documented(doc, &Method::GET, template, status, &body);
    (status, body)
}

fn ids(page: &Value) -> Vec<&str> {
    page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|entry| entry["id"].as_str().expect("id"))
        .collect()
}

const BOOKING_A: &str = "bkg_00000000000000000000000000";
const BOOKING_B: &str = "bkg_11111111111111111111111110";

/// Two accounts; the first has customers `ada` and `bob`. Returns (app, doc, token, other
/// token, ada, bob) with activity rows inserted for both accounts.
async fn world() -> (TestApp, Value, String, String, String, String) {
    let app = TestApp::spawn().await;
    let doc = openapi(&app).await;
    let (account, token) = app.create_account("Sparkle").await;
    let (other_account, other_token) = app.create_account("Rival").await;
    let ada = customer(&app, &token, "Ada").await;
    let bob = customer(&app, &token, "Bob").await;
    let stranger = customer(&app, &other_token, "Stranger").await;
    let row = |id, account, customer, booking, automation, status, hours_after_noon| Row {
        id,
        account,
        customer,
        booking,
        automation,
        status,
        hours_after_noon,
    };
    insert(
        &app,
        &[
            row("act_1", &account, &ada, BOOKING_A, "payment", "failed", 0),
            row("act_2", &account, &bob, BOOKING_B, "payment", "success", 1),
            row(
                "act_x",
                &other_account,
                &stranger,
                BOOKING_A,
                "payment",
                "success",
                2,
            ),
            row("act_3", &account, &ada, BOOKING_A, "payment", "success", 3),
            row("act_4", &account, &ada, BOOKING_A, "feedback", "skipped", 4),
        ],
    );
    (app, doc, token, other_token, ada, bob)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_lists_newest_first_with_every_field_and_pages_with_a_cursor() {
    let (app, doc, token, _, ada, _) = world().await;
    let (status, all) = get(&app, &doc, &token, LIST, LIST).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(ids(&all), ["act_4", "act_3", "act_2", "act_1"]);
    assert_eq!(
        all["data"][1],
        json!({
            "id": "act_3", "automation": "payment", "customer_id": ada, "booking_id": BOOKING_A,
            "status": "success", "occurred_at": "2026-03-01T15:00:00.000Z",
            "summary": "Charged $125.00",
            "details": {"amount_cents": 12500, "currency": "cad", "payment_intent_id": "pi_act_3",
                        "decline_code": null, "attempt": 1}
        })
    );

    let (_, first) = get(&app, &doc, &token, &format!("{LIST}?limit=3"), LIST).await;
    assert_eq!(ids(&first), ["act_4", "act_3", "act_2"]);
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let (_, second) = get(
        &app,
        &doc,
        &token,
        &format!("{LIST}?limit=3&cursor={cursor}"),
        LIST,
    )
    .await;
    assert_eq!(ids(&second), ["act_1"]);
    assert_eq!(second["next_cursor"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_filters_by_customer_booking_automation_status_and_time() {
    let (app, doc, token, _, ada, bob) = world().await;
    for (query, expected) in [
        (
            format!("customer_id={ada}"),
            vec!["act_4", "act_3", "act_1"],
        ),
        (format!("customer_id={bob}"), vec!["act_2"]),
        (format!("booking_id={BOOKING_B}"), vec!["act_2"]),
        ("automation=feedback".to_owned(), vec!["act_4"]),
        ("status=success".to_owned(), vec!["act_3", "act_2"]),
        (
            "from=2026-03-01T13:00:00Z&to=2026-03-01T15:00:00Z".to_owned(),
            vec!["act_2"],
        ),
        (
            format!("customer_id={ada}&automation=payment&status=failed"),
            vec!["act_1"],
        ),
    ] {
        let (status, page) = get(&app, &doc, &token, &format!("{LIST}?{query}"), LIST).await;
        assert_eq!(status, 200, "{query}: {page}");
        assert_eq!(ids(&page), expected, "{query}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_activity_filter_answers_400_naming_it() {
    let (app, doc, token, _, _, _) = world().await;
    for (query, field) in [
        ("customer_id=ada", "customer_id"),
        ("booking_id=nope", "booking_id"),
        ("automation=sms", "automation"),
        ("status=done", "status"),
        ("from=yesterday", "from"),
        ("to=2026-13-01", "to"),
        ("from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z", "to"),
        ("limit=0", "limit"),
        ("cursor=abc", "cursor"),
    ] {
        let (status, problem) = get(&app, &doc, &token, &format!("{LIST}?{query}"), LIST).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(problem["errors"][0]["field"], field, "{query}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_accounts_activity_never_appears() {
    let (app, doc, token, other_token, ada, _) = world().await;
    let (_, mine) = get(
        &app,
        &doc,
        &token,
        &format!("{LIST}?booking_id={BOOKING_A}"),
        LIST,
    )
    .await;
    assert_eq!(ids(&mine), ["act_4", "act_3", "act_1"]);
    let (_, theirs) = get(&app, &doc, &other_token, LIST, LIST).await;
    assert_eq!(ids(&theirs), ["act_x"]);
    let (_, theirs) = get(
        &app,
        &doc,
        &other_token,
        &format!("{LIST}?customer_id={ada}"),
        LIST,
    )
    .await;
    assert_eq!(ids(&theirs), Vec::<&str>::new());
    let (status, _) = get(
        &app,
        &doc,
        &other_token,
        &format!("/api/v1/customers/{ada}/activity"),
        OF_CUSTOMER,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customers_activity_lists_only_theirs_and_outlives_the_customer_in_the_account_list() {
    let (app, doc, token, _, ada, _) = world().await;
    let path = format!("/api/v1/customers/{ada}/activity");
    let (status, page) = get(&app, &doc, &token, &path, OF_CUSTOMER).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(ids(&page), ["act_4", "act_3", "act_1"]);
    let (_, page) = get(
        &app,
        &doc,
        &token,
        &format!("{path}?status=skipped"),
        OF_CUSTOMER,
    )
    .await;
    assert_eq!(ids(&page), ["act_4"]);
    let (status, _) = get(&app, &doc, &token, &format!("{path}?limit=x"), OF_CUSTOMER).await;
    assert_eq!(status, 400);

    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/customers/{ada}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = get(&app, &doc, &token, &path, OF_CUSTOMER).await;
    assert_eq!(status, 404);
    let (_, kept) = get(
        &app,
        &doc,
        &token,
        &format!("{LIST}?customer_id={ada}"),
        LIST,
    )
    .await;
    assert_eq!(ids(&kept), ["act_4", "act_3", "act_1"]);
}
