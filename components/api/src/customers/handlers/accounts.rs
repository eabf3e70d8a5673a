//! `POST /api/v1/admin/accounts`: create a business and its API token.

use crate::customers::storage::{self, Sql};
use mio_platform::ApiError;
use mio_platform::response;
use mio_shared::{AccountBody, AccountId, ApiToken, CreatedAccount, NewAccount, Timestamp, json};
use spin_sdk::http::Response;

/// Creates the account; the answer shows the token this once, and only its hash is kept.
pub fn create(
    db: &impl Sql,
    body: &[u8],
    id: AccountId,
    token: ApiToken,
    now: Timestamp,
) -> Result<Response, ApiError> {
    let body: AccountBody = json::decode(body, &["id", "api_token"])?;
    let account = NewAccount::try_from(body).map_err(ApiError::Validation)?;
    let account = storage::accounts::insert(db, &id, &account, &token.hash(), now)?;
    let created = CreatedAccount {
        account,
        api_token: token,
    };
    Ok(response::json(
        201,
        &created,
        &[("cache-control", "no-store".to_owned())],
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio_platform::migrations::migrate;
    use mio_platform::test_db::TestDb;
    use serde_json::Value;

    fn now() -> Timestamp {
        Timestamp::parse("2026-03-01T09:30:00Z").expect("valid")
    }

    fn call(db: &TestDb, body: &[u8]) -> (u16, Value, Option<String>) {
        let token = ApiToken::from_random(&[7; 32]);
        let response = create(db, body, AccountId::from_random(&[8; 16]), token, now())
            .unwrap_or_else(ApiError::into_response);
        let cache = response
            .header("cache-control")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let json = serde_json::from_slice(response.body()).expect("json body");
        (*response.status(), json, cache)
    }

    #[test]
    fn creating_an_account_answers_201_with_the_token_once_and_stores_its_hash() {
        let db = TestDb::new();
        migrate(&db, now()).expect("migrated");
        let (status, body, cache) = call(
            &db,
            br#"{"name": "Sparkle", "timezone": "America/Toronto"}"#,
        );
        assert_eq!(status, 201);
        assert_eq!(cache.as_deref(), Some("no-store"));
        assert_eq!(body["account"]["name"], "Sparkle");
        assert_eq!(body["account"]["timezone"], "America/Toronto");
        assert!(
            body["account"]["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("acc_"))
        );
        let token = ApiToken::parse(body["api_token"].as_str().expect("token")).expect("a token");
        let found = storage::accounts::find_by_token(&db, &token.hash()).expect("query");
        assert_eq!(found.map(|a| a.name), Some("Sparkle".to_owned()));
    }

    #[test]
    fn an_unknown_time_zone_is_a_validation_error_and_nothing_is_written() {
        let db = TestDb::new();
        migrate(&db, now()).expect("migrated");
        let (status, body, _) = call(&db, br#"{"name": "Sparkle", "timezone": "Mars/Olympus"}"#);
        assert_eq!(status, 400);
        assert_eq!(body["errors"][0]["field"], "timezone");
        let rows = db
            .execute("SELECT id FROM accounts", &[])
            .expect("query")
            .rows;
        assert!(rows.is_empty());
    }
}
