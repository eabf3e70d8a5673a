//! `GET` and `PUT /api/v1/settings/notifications`: which channels the account's messages go out
//! on. The webhook secret is write-only: answers show it masked. The rules (what a valid body
//! is, whether a webhook URL falls inside the operator's allow-list) are the core's
//! (`mio_shared::notify`).

use crate::customers::storage::Sql;
use mio_platform::messages::{self, ProviderConfig, webhook_allowed_origin};
use mio_platform::{ApiError, response};
use mio_shared::notify::{self, PutError};
use mio_shared::{Account, Timestamp};
use spin_sdk::http::Response;

/// `GET /api/v1/settings/notifications`.
pub fn get(db: &impl Sql, account: &Account) -> Result<Response, ApiError> {
    let settings = messages::load_settings(db, account.id.as_str())?;
    Ok(response::json(200, &settings.to_json(), &[])?)
}

/// `PUT /api/v1/settings/notifications`: replaces the channels; a channel left out or `null` is
/// off. A webhook URL outside `webhook_allowed_origin` is refused here (422), not at send time.
pub fn put(
    db: &impl Sql,
    account: &Account,
    body: &[u8],
    now: Timestamp,
) -> Result<Response, ApiError> {
    let account_id = account.id.as_str();
    let current = messages::load_settings(db, account_id)?;
    let available = ProviderConfig::from_variables().available();
    let settings = match notify::parse_put(body, &current, available, &webhook_allowed_origin()) {
        Ok(settings) => settings,
        Err(PutError::Body(error)) => return Err(error.into()),
        Err(PutError::Fields(errors)) => return Err(ApiError::Validation(errors)),
        Err(PutError::NotAllowed(error)) => {
            return Err(ApiError::DestinationNotAllowed(vec![error]));
        }
        Err(PutError::AllowList(message)) => {
            return Err(ApiError::Internal(anyhow::anyhow!(message)));
        }
    };
    messages::store_settings(db, account_id, &settings, now)?;
    Ok(response::json(200, &settings.to_json(), &[])?)
}
