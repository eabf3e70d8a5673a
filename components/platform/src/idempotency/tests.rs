//! [`run`] against real SQLite: what is stored, replayed, refused, rolled back and purged.

use super::*;
use crate::migrations::migrate;
use crate::response;
use crate::test_db::TestDb;
use serde_json::json;
use std::cell::Cell;

const ACCOUNT: &str = "acc_1";
const CREATE_THINGS: &str = "CREATE TABLE things (name TEXT NOT NULL)";
const INSERT_THING: &str = "INSERT INTO things (name) VALUES (?1)";
const MINUTE: i64 = 60_000;

fn at(millis: i64) -> Timestamp {
    Timestamp::from_unix_millis(1_780_000_000_000 + millis).expect("in range")
}

fn setup() -> TestDb {
    let db = TestDb::new();
    migrate(&db, at(0)).expect("migrated");
    db.execute(CREATE_THINGS, &[]).expect("scratch table");
    db
}

fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::parse(k).expect("valid key")
}

fn print(body: &str) -> Fingerprint {
    Fingerprint::of("POST", "/api/v1/things", body.as_bytes())
}

fn things(db: &TestDb) -> usize {
    db.execute("SELECT name FROM things", &[])
        .expect("query")
        .rows
        .len()
}

/// A route that creates one thing and answers 201 with it (and a `Location`).
fn create<'a>(
    db: &'a TestDb,
    calls: &'a Cell<u32>,
) -> impl FnOnce(Option<&KeyUse>) -> Result<Response, ApiError> + 'a {
    move |_| {
        calls.set(calls.get() + 1);
        let name = format!("thing-{}", calls.get());
        db.execute(INSERT_THING, &[text(&name)])?;
        Ok(response::json(
            201,
            &json!({"name": name}),
            &[("location", format!("/things/{name}"))],
        )?)
    }
}

fn run_create(db: &TestDb, calls: &Cell<u32>, k: &str, body: &str, now: Timestamp) -> Response {
    run(
        db,
        ACCOUNT,
        Some(&key(k)),
        &print(body),
        Atomicity::Transaction,
        now,
        create(db, calls),
    )
    .unwrap_or_else(ApiError::into_response)
}

fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response.header(name).and_then(|v| v.as_str())
}

#[test]
fn the_same_request_replays_the_first_answer_and_runs_nothing() {
    let db = setup();
    let calls = Cell::new(0);
    let first = run_create(&db, &calls, "k1", "{}", at(0));
    let again = run_create(&db, &calls, "k1", "{}", at(MINUTE));
    assert_eq!((*first.status(), *again.status()), (201, 201));
    assert_eq!(first.body(), again.body());
    assert_eq!(header(&again, "location"), Some("/things/thing-1"));
    assert_eq!(header(&again, "content-type"), Some("application/json"));
    assert_eq!(header(&again, "idempotent-replayed"), Some("true"));
    assert_eq!(header(&first, "idempotent-replayed"), None);
    assert_eq!((calls.get(), things(&db)), (1, 1));
}

#[test]
fn another_body_with_the_key_is_refused_and_runs_nothing() {
    let db = setup();
    let calls = Cell::new(0);
    run_create(&db, &calls, "k1", "{}", at(0));
    let other = run_create(&db, &calls, "k1", "{\"x\":1}", at(1));
    assert_eq!(*other.status(), 422);
    assert_eq!(
        header(&other, "content-type"),
        Some("application/problem+json")
    );
    assert_eq!((calls.get(), things(&db)), (1, 1));
}

#[test]
fn keys_belong_to_their_account() {
    let db = setup();
    let calls = Cell::new(0);
    run_create(&db, &calls, "k1", "{}", at(0));
    let other = run(
        &db,
        "acc_2",
        Some(&key("k1")),
        &print("{\"x\":1}"),
        Atomicity::Transaction,
        at(1),
        create(&db, &calls),
    )
    .unwrap_or_else(ApiError::into_response);
    assert_eq!(*other.status(), 201);
    assert_eq!(things(&db), 2);
}

#[test]
fn without_a_key_every_request_runs() {
    let db = setup();
    let calls = Cell::new(0);
    for _ in 0..2 {
        let response = run(
            &db,
            ACCOUNT,
            None,
            &print("{}"),
            Atomicity::Transaction,
            at(0),
            create(&db, &calls),
        )
        .expect("runs");
        assert_eq!(*response.status(), 201);
    }
    assert_eq!(things(&db), 2);
    let rows = db
        .execute("SELECT owner FROM idempotency_keys", &[])
        .expect("query");
    assert!(rows.rows.is_empty());
}

#[test]
fn a_key_claimed_by_a_live_run_is_in_use_and_a_dead_run_is_taken_over() {
    let db = setup();
    let calls = Cell::new(0);
    db.execute(
        "INSERT INTO idempotency_keys (account_id, idempotency_key, fingerprint, state, owner, \
         first_used_at, started_at) VALUES (?1, 'k1', ?2, 'in_progress', 'someone', ?3, ?3)",
        &[text(ACCOUNT), text(print("{}").as_str()), instant(at(0))],
    )
    .expect("a claimed key");
    let busy = run_create(&db, &calls, "k1", "{}", at(MINUTE - 1));
    assert_eq!(*busy.status(), 409);
    assert!(String::from_utf8_lossy(busy.body()).contains("/problems/idempotency-key-in-use"));
    assert_eq!((calls.get(), things(&db)), (0, 0));
    let taken = run_create(&db, &calls, "k1", "{}", at(MINUTE));
    assert_eq!(*taken.status(), 201);
    assert_eq!((calls.get(), things(&db)), (1, 1));
}

#[test]
fn a_server_error_rolls_back_the_run_and_releases_the_key() {
    let db = setup();
    let failing = |_: Option<&KeyUse>| -> Result<Response, ApiError> {
        db.execute(INSERT_THING, &[text("half-made")])?;
        Err(ApiError::Internal(anyhow!("the disk is full")))
    };
    let answer = run(
        &db,
        ACCOUNT,
        Some(&key("k1")),
        &print("{}"),
        Atomicity::Transaction,
        at(0),
        failing,
    )
    .unwrap_or_else(ApiError::into_response);
    assert_eq!(*answer.status(), 500);
    assert_eq!(things(&db), 0, "nothing of the failed run is kept");
    let calls = Cell::new(0);
    let retried = run_create(&db, &calls, "k1", "{}", at(1));
    assert_eq!(*retried.status(), 201);
    assert_eq!(header(&retried, "idempotent-replayed"), None);
    assert_eq!(things(&db), 1);
    // Still bound to its request.
    let other = run_create(&db, &calls, "k1", "{\"x\":1}", at(2));
    assert_eq!(*other.status(), 422);
}

#[test]
fn a_validation_answer_is_stored_and_replayed() {
    let db = setup();
    let calls = Cell::new(0);
    let refuse = |_: Option<&KeyUse>| -> Result<Response, ApiError> {
        calls.set(calls.get() + 1);
        Err(ApiError::Validation(vec![mio_shared::FieldError::new(
            "name",
            "is required",
        )]))
    };
    let first = run(
        &db,
        ACCOUNT,
        Some(&key("k1")),
        &print("{}"),
        Atomicity::Transaction,
        at(0),
        refuse,
    )
    .unwrap_or_else(ApiError::into_response);
    let again = run_create(&db, &calls, "k1", "{}", at(1));
    assert_eq!((*first.status(), *again.status()), (400, 400));
    assert_eq!(first.body(), again.body());
    assert_eq!(
        header(&again, "content-type"),
        Some("application/problem+json")
    );
    assert_eq!((calls.get(), things(&db)), (1, 0));
}

#[test]
fn a_run_that_lost_its_key_commits_nothing() {
    let db = setup();
    let stalled = |_: Option<&KeyUse>| -> Result<Response, ApiError> {
        db.execute(INSERT_THING, &[text("late")])?;
        // Meanwhile (as if this run had stalled) a retry took the key over.
        db.execute("UPDATE idempotency_keys SET owner = 'retry'", &[])?;
        Ok(response::json(201, &json!({}), &[])?)
    };
    let answer = run(
        &db,
        ACCOUNT,
        Some(&key("k1")),
        &print("{}"),
        Atomicity::Transaction,
        at(0),
        stalled,
    )
    .unwrap_or_else(ApiError::into_response);
    assert_eq!(*answer.status(), 409);
    assert_eq!(things(&db), 0);
}

#[test]
fn an_unsettled_answer_releases_the_key_and_a_retry_runs_with_the_same_key_use() {
    let db = setup();
    let seeds = std::cell::RefCell::new(Vec::new());
    let route = |settled: bool| {
        let seeds = &seeds;
        move |key_use: Option<&KeyUse>| -> Result<Answer, ApiError> {
            seeds.borrow_mut().push(key_use.expect("a key").seed());
            Ok(Answer {
                response: response::json(201, &json!({"settled": settled}), &[])?,
                settled,
            })
        }
    };
    for (settled, now) in [(false, at(0)), (true, at(MINUTE)), (true, at(2 * MINUTE))] {
        let answer = run(
            &db,
            ACCOUNT,
            Some(&key("k1")),
            &print("{}"),
            Atomicity::Repeatable,
            now,
            route(settled),
        )
        .expect("answers");
        assert_eq!(*answer.status(), 201);
    }
    let seeds = seeds.borrow();
    assert_eq!(seeds.len(), 2, "the settled answer was replayed: {seeds:?}");
    assert_eq!(seeds[0], seeds[1], "a retry derives the same ids");
}

#[test]
fn an_expired_key_is_a_new_use_and_expired_rows_are_purged() {
    let db = setup();
    let calls = Cell::new(0);
    run_create(&db, &calls, "old", "{}", at(0));
    let day = 24 * 60 * MINUTE;
    let again = run_create(&db, &calls, "old", "{\"other\":1}", at(day));
    assert_eq!(*again.status(), 201, "after 24 hours the key is free");
    assert_eq!(things(&db), 2);
    // A third key, claimed after the first two expired, purges them (not live runs).
    db.execute(
        "INSERT INTO idempotency_keys (account_id, idempotency_key, fingerprint, state, owner, \
         first_used_at, started_at) VALUES (?1, 'live', 'x', 'in_progress', 'someone', ?2, ?3)",
        &[text(ACCOUNT), instant(at(0)), instant(at(3 * day - 1))],
    )
    .expect("an old key with a live run");
    run_create(&db, &calls, "new", "{}", at(3 * day));
    let left: Vec<String> = Record::all(
        &db.execute(
            "SELECT idempotency_key FROM idempotency_keys ORDER BY idempotency_key",
            &[],
        )
        .expect("query"),
    )
    .map(|r| r.text("idempotency_key").expect("text"))
    .collect();
    assert_eq!(left, ["live", "new"]);
}
