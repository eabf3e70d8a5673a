//! `/api/v1/customers` and `/api/v1/customers/{id}`.

use crate::customers::storage::{self, Sql};
use mio_platform::response;
use mio_platform::{ApiError, Owner};
use mio_shared::customer::READ_ONLY_CUSTOMER_FIELDS;
use mio_shared::{
    Account, CustomerBody, CustomerId, CustomerPatch, CustomerPatchBody, ListQuery, NewCustomer,
    Page, Timestamp, json,
};
use spin_sdk::http::Response;

const NOT_FOUND: ApiError = ApiError::NotFound("No customer with this id in your account.");

/// `POST /api/v1/customers` → 201 with the customer and its `Location`.
pub fn create(
    db: &impl Sql,
    owner: &Owner<'_>,
    body: &[u8],
    id: &CustomerId,
    now: Timestamp,
) -> Result<Response, ApiError> {
    let body: CustomerBody = json::decode(body, READ_ONLY_CUSTOMER_FIELDS)?;
    let customer = NewCustomer::try_from(body).map_err(ApiError::Validation)?;
    // Only a token that names no account inserts nothing (see `mio_platform::owner`).
    let customer = storage::customers::insert(db, owner, id, &customer, now)?
        .ok_or(ApiError::Unauthorized { presented: true })?;
    let location = format!("/api/v1/customers/{}", customer.id);
    Ok(response::json(201, &customer, &[("location", location)])?)
}

/// `GET /api/v1/customers?q=&limit=&cursor=` → one page, oldest first.
pub fn list(db: &impl Sql, owner: &Owner<'_>, query: &str) -> Result<Response, ApiError> {
    let query = ListQuery::parse(query).map_err(ApiError::Validation)?;
    let rows = storage::customers::list(db, owner, &query)?;
    Ok(response::json(
        200,
        &Page::from_rows(rows, query.limit),
        &[],
    )?)
}

/// `GET /api/v1/customers/{id}`.
pub fn get(db: &impl Sql, owner: &Owner<'_>, id: &CustomerId) -> Result<Response, ApiError> {
    let customer = mio_platform::customers::find_as(db, owner, id)?.ok_or(NOT_FOUND)?;
    Ok(response::json(200, &customer, &[])?)
}

/// `PATCH /api/v1/customers/{id}`: absent fields are kept, `null` clears, values replace.
pub fn update(
    db: &impl Sql,
    account: &Account,
    id: &CustomerId,
    body: &[u8],
    now: Timestamp,
) -> Result<Response, ApiError> {
    let body: CustomerPatchBody = json::decode(body, READ_ONLY_CUSTOMER_FIELDS)?;
    let patch = CustomerPatch::try_from(body).map_err(ApiError::Validation)?;
    let customer = if patch.is_empty() {
        // Nothing to change: answer the current state without touching `updated_at`.
        storage::customers::find(db, account.id.as_str(), id)?
    } else {
        storage::customers::update(db, account.id.as_str(), id, &patch, now)?
    };
    Ok(response::json(200, &customer.ok_or(NOT_FOUND)?, &[])?)
}

/// `DELETE /api/v1/customers/{id}` → 204.
///
/// The customer's open bookings and pending jobs are cancelled first, each step an idempotent
/// single statement, and the customer row is deleted last: a crash part-way leaves the
/// customer in place, so retrying the DELETE finishes the work. The cancellation runs once
/// more after the delete, for a booking created concurrently in between (bookings keep their
/// `customer_id`). Bookings, jobs and activity history are kept.
pub fn delete(
    db: &impl Sql,
    account: &Account,
    id: &CustomerId,
    now: Timestamp,
) -> Result<Response, ApiError> {
    let account_id = account.id.as_str();
    storage::bookings::cancel_everything_of_customer(db, account_id, id, now)?;
    if !storage::customers::delete(db, account_id, id)? {
        return Err(NOT_FOUND);
    }
    storage::bookings::cancel_everything_of_customer(db, account_id, id, now)?;
    Ok(response::no_content())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio_platform::migrations::migrate;
    use mio_platform::test_db::TestDb;
    use mio_shared::{AccountId, TimeZone};
    use serde_json::{Value, json};

    fn now() -> Timestamp {
        Timestamp::parse("2026-03-01T09:30:00Z").expect("valid")
    }

    fn account(n: u8) -> Account {
        Account {
            id: AccountId::from_random(&[n; 16]),
            name: format!("Business {n}"),
            timezone: TimeZone::parse("America/Toronto").expect("valid"),
        }
    }

    fn setup() -> (TestDb, Account) {
        let db = TestDb::new();
        migrate(&db, now()).expect("migrated");
        (db, account(1))
    }

    fn owner(account: &Account) -> Owner<'_> {
        Owner::account(account.id.as_str())
    }

    fn answer(result: Result<Response, ApiError>) -> (u16, Value) {
        let response = result.unwrap_or_else(ApiError::into_response);
        let body = if response.body().is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(response.body()).expect("json body")
        };
        (*response.status(), body)
    }

    fn create_one(db: &TestDb, account: &Account, n: u8, body: Value) -> (u16, Value) {
        let bytes = serde_json::to_vec(&body).expect("json");
        answer(create(
            db,
            &owner(account),
            &bytes,
            &CustomerId::from_random(&[n; 16]),
            now(),
        ))
    }

    fn id_of(customer: &Value) -> CustomerId {
        CustomerId::parse(customer["id"].as_str().expect("id")).expect("customer id")
    }

    fn count(db: &TestDb) -> usize {
        db.execute("SELECT id FROM customers", &[])
            .expect("query")
            .rows
            .len()
    }

    #[test]
    fn creating_a_customer_answers_201_with_the_full_customer() {
        let (db, account) = setup();
        let (status, body) = create_one(
            &db,
            &account,
            1,
            json!({"name": " Ada ", "email": "ada@example.com"}),
        );
        assert_eq!(status, 201);
        assert_eq!(
            body,
            json!({
                "id": id_of(&body).as_str(),
                "name": "Ada",
                "email": "ada@example.com",
                "phone": null,
                "service_address": null,
                "billing_address": null,
                "notes": null,
                "notifications": {"email": true, "sms": true},
                "stripe_customer_id": null,
                "primary_payment_method": null,
                "created_at": "2026-03-01T09:30:00.000Z",
                "updated_at": "2026-03-01T09:30:00.000Z",
            })
        );
        assert!(id_of(&body).as_str().starts_with("cus_"));
    }

    #[test]
    fn an_invalid_customer_is_refused_with_every_field_error_and_nothing_written() {
        let (db, account) = setup();
        let (status, body) = create_one(&db, &account, 1, json!({"email": "nope", "phone": "12"}));
        assert_eq!(status, 400);
        assert_eq!(body["type"], "/problems/validation");
        let fields: Vec<&str> = body["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert_eq!(fields, ["name", "email", "phone"]);
        assert_eq!(count(&db), 0);
    }

    #[test]
    fn malformed_json_and_unknown_fields_are_refused_and_nothing_written() {
        let (db, account) = setup();
        let id = CustomerId::from_random(&[1; 16]);
        let (status, body) = answer(create(
            &db,
            &owner(&account),
            br#"{"name": "Ada""#,
            &id,
            now(),
        ));
        assert_eq!(
            (status, body["type"].as_str()),
            (400, Some("/problems/malformed-json"))
        );
        let (status, body) = answer(create(
            &db,
            &owner(&account),
            br#"{"name": "Ada", "vip": true}"#,
            &id,
            now(),
        ));
        assert_eq!(
            (status, body["type"].as_str()),
            (400, Some("/problems/validation"))
        );
        assert_eq!(body["errors"][0]["field"], "vip");
        let (status, body) = answer(create(
            &db,
            &owner(&account),
            br#"{"name": ["Ada"]}"#,
            &id,
            now(),
        ));
        assert_eq!(
            (status, body["errors"][0]["field"].as_str()),
            (400, Some("name"))
        );
        assert_eq!(count(&db), 0);
    }

    #[test]
    fn another_accounts_customer_answers_404_to_every_method() {
        let (db, mine) = setup();
        let theirs = account(2);
        let (_, customer) = create_one(&db, &theirs, 1, json!({"name": "Theirs"}));
        let id = id_of(&customer);
        assert_eq!(answer(get(&db, &owner(&mine), &id)).0, 404);
        assert_eq!(
            answer(update(&db, &mine, &id, br#"{"name": "Mine"}"#, now())).0,
            404
        );
        assert_eq!(answer(update(&db, &mine, &id, b"{}", now())).0, 404);
        assert_eq!(answer(delete(&db, &mine, &id, now())).0, 404);
        let (status, list_body) = answer(list(&db, &owner(&mine), ""));
        assert_eq!(
            (status, list_body),
            (200, json!({"data": [], "next_cursor": null}))
        );
        assert_eq!(answer(get(&db, &owner(&theirs), &id)).1["name"], "Theirs");
    }

    #[test]
    fn patch_keeps_absent_fields_clears_nulls_and_refuses_clearing_the_name() {
        let (db, account) = setup();
        let (_, created) = create_one(
            &db,
            &account,
            1,
            json!({"name": "Ada", "email": "ada@example.com", "notes": "dog"}),
        );
        let id = id_of(&created);
        let later = Timestamp::parse("2026-03-02T10:00:00Z").expect("valid");

        let (status, body) = answer(update(
            &db,
            &account,
            &id,
            br#"{"email": null, "phone": "416 555 0199"}"#,
            later,
        ));
        assert_eq!(status, 200);
        assert_eq!(body["email"], Value::Null);
        assert_eq!(body["phone"], "416 555 0199");
        assert_eq!(body["notes"], "dog");
        assert_eq!(body["updated_at"], "2026-03-02T10:00:00.000Z");
        assert_eq!(body["created_at"], created["created_at"]);

        let (status, problem) = answer(update(
            &db,
            &account,
            &id,
            br#"{"name": null, "notes": null}"#,
            later,
        ));
        assert_eq!(status, 400);
        assert_eq!(problem["errors"][0]["field"], "name");
        assert_eq!(
            answer(get(&db, &owner(&account), &id)).1["notes"],
            "dog",
            "nothing written"
        );
    }

    #[test]
    fn an_empty_patch_answers_the_customer_unchanged() {
        let (db, account) = setup();
        let (_, created) = create_one(&db, &account, 1, json!({"name": "Ada"}));
        let later = Timestamp::parse("2026-03-02T10:00:00Z").expect("valid");
        let (status, body) = answer(update(&db, &account, &id_of(&created), b"{}", later));
        assert_eq!((status, &body), (200, &created));
    }

    #[test]
    fn a_deleted_customer_answers_204_then_404() {
        let (db, account) = setup();
        let (_, created) = create_one(&db, &account, 1, json!({"name": "Ada"}));
        let id = id_of(&created);
        assert_eq!(
            answer(delete(&db, &account, &id, now())),
            (204, Value::Null)
        );
        assert_eq!(answer(get(&db, &owner(&account), &id)).0, 404);
        assert_eq!(answer(delete(&db, &account, &id, now())).0, 404);
    }

    #[test]
    fn listing_pages_with_an_opaque_cursor_and_filters_with_q() {
        let (db, account) = setup();
        for (n, name) in [(1, "Ada"), (2, "Grace"), (3, "Adele")] {
            create_one(&db, &account, n, json!({"name": name}));
        }
        let (status, first) = answer(list(&db, &owner(&account), "limit=2"));
        assert_eq!(status, 200);
        let names = |page: &Value| -> Vec<String> {
            page["data"]
                .as_array()
                .expect("data")
                .iter()
                .map(|c| c["name"].as_str().expect("name").to_owned())
                .collect()
        };
        assert_eq!(names(&first), ["Ada", "Grace"]);
        let cursor = first["next_cursor"].as_str().expect("more");
        let (_, second) = answer(list(
            &db,
            &owner(&account),
            &format!("limit=2&cursor={cursor}"),
        ));
        assert_eq!(names(&second), ["Adele"]);
        assert_eq!(second["next_cursor"], Value::Null);

        let (_, filtered) = answer(list(&db, &owner(&account), "q=AD"));
        assert_eq!(names(&filtered), ["Ada", "Adele"]);
    }

    #[test]
    fn a_bad_limit_or_cursor_answers_400_naming_the_parameter() {
        let (db, account) = setup();
        for (query, field) in [
            ("limit=0", "limit"),
            ("limit=201", "limit"),
            ("limit=ten", "limit"),
            ("cursor=abc", "cursor"),
        ] {
            let (status, body) = answer(list(&db, &owner(&account), query));
            assert_eq!(status, 400, "{query}");
            assert_eq!(body["errors"][0]["field"], field, "{query}");
        }
    }
}
