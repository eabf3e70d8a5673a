//! Who is calling: the admin (bootstrap token) or an account (API token, looked up by hash).

use crate::error::ApiError;
use crate::platform;
use crate::request::Incoming;
use crate::storage::{self, Sql};
use mio_shared::token::{bearer_credential, secret_matches};
use mio_shared::{Account, ApiToken};

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
    let presented = credential(request)?;
    match platform::admin_token() {
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

/// The account that owns `token`.
pub fn authenticate(db: &impl Sql, token: &ApiToken) -> Result<Account, ApiError> {
    storage::accounts::find_by_token(db, &token.hash())?
        .ok_or(ApiError::Unauthorized { presented: true })
}
