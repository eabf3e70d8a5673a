//! The `accounts` table.

use crate::db::{Record, Sql, text};
use anyhow::{Context, anyhow};
use mio_shared::{Account, AccountId, NewAccount, TimeZone, Timestamp, TokenHash};

const INSERT_ACCOUNT: &str = "INSERT INTO accounts (id, name, timezone, token_hash, created_at)
VALUES (?1, ?2, ?3, ?4, ?5)
RETURNING id, name, timezone";

const SELECT_ACCOUNT_BY_TOKEN_HASH: &str =
    "SELECT id, name, timezone FROM accounts WHERE token_hash = ?1";

/// Stores a new account whose API token hashes to `token_hash`.
pub fn insert(
    db: &impl Sql,
    id: &AccountId,
    account: &NewAccount,
    token_hash: &TokenHash,
    now: Timestamp,
) -> anyhow::Result<Account> {
    let result = db
        .execute(
            INSERT_ACCOUNT,
            &[
                text(id.as_str()),
                text(account.name.as_str()),
                text(account.timezone.name()),
                text(token_hash.as_str()),
                text(&now.to_string()),
            ],
        )
        .context("inserting an account")?;
    Record::all(&result)
        .next()
        .ok_or_else(|| anyhow!("INSERT … RETURNING gave no row"))
        .and_then(|row| account_from(&row))
}

/// The account whose API token hashes to `token_hash`, if any.
pub fn find_by_token(db: &impl Sql, token_hash: &TokenHash) -> anyhow::Result<Option<Account>> {
    let result = db
        .execute(SELECT_ACCOUNT_BY_TOKEN_HASH, &[text(token_hash.as_str())])
        .context("looking up an account by token")?;
    Record::all(&result)
        .next()
        .map(|row| account_from(&row))
        .transpose()
}

// One row always: the schema version, and the account's columns (NULL when no account has
// the token). Fails while `schema_migrations` does not exist yet.
const SELECT_ACCOUNT_WITH_SCHEMA: &str = "SELECT {schema}, a.id, a.name, a.timezone \
     FROM (SELECT 1) AS one LEFT JOIN accounts a ON a.token_hash = ?1";

/// [`find_by_token`] and whether the schema is current, in one statement; an error when the
/// schema cannot be read (a new database).
pub fn find_by_token_with_schema(
    db: &impl Sql,
    token_hash: &TokenHash,
) -> anyhow::Result<(Option<Account>, bool)> {
    let sql =
        SELECT_ACCOUNT_WITH_SCHEMA.replace("{schema}", crate::migrations::SCHEMA_VERSION_COLUMN);
    let result = db.execute(&sql, &[text(token_hash.as_str())])?;
    let current = crate::migrations::current(Some(&result));
    let account = match Record::all(&result).next() {
        Some(row) if row.optional_text("id")?.is_some() => Some(account_from(&row)?),
        _ => None,
    };
    Ok((account, current))
}

fn account_from(row: &Record<'_>) -> anyhow::Result<Account> {
    Ok(Account {
        id: AccountId::parse(&row.text("id")?)?,
        name: row.text("name")?,
        timezone: TimeZone::parse(&row.text("timezone")?)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrations::migrate;
    use crate::test_db::TestDb;
    use mio_shared::{AccountBody, ApiToken};

    fn now() -> Timestamp {
        Timestamp::parse("2026-03-01T09:30:00Z").expect("valid")
    }

    fn new_account() -> NewAccount {
        NewAccount::try_from(AccountBody {
            name: Some("Sparkle".to_owned()),
            timezone: Some("America/Toronto".to_owned()),
        })
        .expect("valid")
    }

    #[test]
    fn an_account_is_found_by_the_hash_of_its_token_only() {
        let db = TestDb::new();
        migrate(&db, now()).expect("migrated");
        let token = ApiToken::from_random(&[1; 32]);
        let id = AccountId::from_random(&[2; 16]);
        let stored = insert(&db, &id, &new_account(), &token.hash(), now()).expect("inserted");
        assert_eq!(stored.id, id);
        assert_eq!(stored.timezone.name(), "America/Toronto");

        assert_eq!(
            find_by_token(&db, &token.hash()).expect("query"),
            Some(stored)
        );
        let other = ApiToken::from_random(&[3; 32]);
        assert_eq!(find_by_token(&db, &other.hash()).expect("query"), None);
    }

    #[test]
    fn the_token_itself_is_never_stored() {
        let db = TestDb::new();
        migrate(&db, now()).expect("migrated");
        let token = ApiToken::from_random(&[4; 32]);
        let id = AccountId::from_random(&[5; 16]);
        insert(&db, &id, &new_account(), &token.hash(), now()).expect("inserted");
        let result = db.execute("SELECT * FROM accounts", &[]).expect("query");
        let dump = format!("{:?}", result.rows);
        assert!(!dump.contains(token.expose_secret()));
        assert!(dump.contains(token.hash().as_str()));
    }
}
