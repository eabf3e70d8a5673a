//! Who is calling: the admin (bootstrap token) or an account (API token, looked up by hash).

use crate::accounts;
use crate::db::{self, SpinDb, Sql};
use crate::error::ApiError;
use crate::migrations;
use crate::request::Incoming;
use crate::system;
use mio_shared::token::{bearer_credential, secret_matches};
use mio_shared::{Account, ApiToken, Timestamp, TokenHash};

/// An authenticated account request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The account the token belongs to.
    pub account: Account,
    /// The token's public label (see [`token_label`]), recorded as "who changed it".
    pub token_label: String,
}

/// The public label of an API token: `tok_` and the first 12 hex digits of its SHA-256 hash.
/// Safe to store and show: it identifies the token without revealing it.
pub fn token_label(hash: &TokenHash) -> String {
    let hex = hash.as_str();
    format!("tok_{}", &hex[..hex.len().min(12)])
}

/// The bearer credential, if exactly one well-formed `Authorization: Bearer` header was sent.
fn credential(request: &Incoming) -> Result<&str, ApiError> {
    match request.authorization.as_slice() {
        [] => Err(ApiError::Unauthorized { presented: false }),
        [header] => bearer_credential(header).ok_or(ApiError::Unauthorized { presented: true }),
        _ => Err(ApiError::Unauthorized { presented: true }),
    }
}

/// Admits the request only if it carries the `admin_token` variable as bearer token.
pub fn require_admin(request: &Incoming) -> Result<(), ApiError> {
    require_secret(request, system::admin_token())
}

/// Admits the request only if it carries `configured` (a secret variable's value) as bearer
/// token; `None` (variable unset) admits nobody.
pub fn require_secret(request: &Incoming, configured: Option<String>) -> Result<(), ApiError> {
    let presented = credential(request)?;
    match configured {
        Some(configured) if secret_matches(presented, &configured) => Ok(()),
        _ => Err(ApiError::Unauthorized { presented: true }),
    }
}

/// The account API token the request presents; refused before any database work when absent
/// or when the text cannot be a token.
pub fn presented_token(request: &Incoming) -> Result<ApiToken, ApiError> {
    let presented = credential(request)?;
    ApiToken::parse(presented).ok_or(ApiError::Unauthorized { presented: true })
}

/// Opens the database and identifies the account that owns `token` ([`sign_in_on`]).
pub fn signed_in(token: &ApiToken, now: Timestamp) -> Result<(SpinDb, Caller), ApiError> {
    let db = db::connect()?;
    let caller = sign_in_on(&db, token, now)?;
    Ok((db, caller))
}

/// Identifies the account that owns `token` on an open connection: one statement reads the
/// account and the schema version together; only an out-of-date schema costs more (migrate,
/// then read the account again).
pub fn sign_in_on(db: &impl Sql, token: &ApiToken, now: Timestamp) -> Result<Caller, ApiError> {
    sign_in_by_hash(db, &token.hash(), now)
}

/// [`sign_in_on`] for the token hashed as `hash` (the console's session keeps the hash, never
/// the token).
pub fn sign_in_by_hash(
    db: &impl Sql,
    hash: &TokenHash,
    now: Timestamp,
) -> Result<Caller, ApiError> {
    let first = accounts::find_by_token_with_schema(db, hash);
    let account = match first {
        Ok((account, true)) => account,
        _ => {
            migrations::migrate(db, now)?;
            accounts::find_by_token(db, hash)?
        }
    };
    let account = account.ok_or(ApiError::Unauthorized { presented: true })?;
    Ok(Caller {
        account,
        token_label: token_label(hash),
    })
}

/// The account that owns `token`, with the token's label.
pub fn authenticate(db: &impl Sql, token: &ApiToken) -> Result<Caller, ApiError> {
    let hash = token.hash();
    let account =
        accounts::find_by_token(db, &hash)?.ok_or(ApiError::Unauthorized { presented: true })?;
    Ok(Caller {
        account,
        token_label: token_label(&hash),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_label_is_tok_and_twelve_hex_digits_of_the_hash() {
        let token = ApiToken::from_random(&[1; 32]);
        let label = token_label(&token.hash());
        assert_eq!(label.len(), 4 + 12);
        assert_eq!(label, format!("tok_{}", &token.hash().as_str()[..12]));
    }
}
