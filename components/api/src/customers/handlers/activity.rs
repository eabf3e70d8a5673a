//! `GET /api/v1/activity` and `GET /api/v1/customers/{id}/activity`: the Automations Activity
//! view, newest first.

use crate::customers::storage::{self, Sql};
use mio_platform::{ApiError, Owner, response};
use mio_shared::{Account, ActivityQuery, CustomerId, FieldError, Page};
use spin_sdk::http::Response;

/// `GET /api/v1/activity?…`: the account's runs, filtered. A deleted customer's runs stay
/// here (by `customer_id`).
pub fn list(db: &impl Sql, owner: &Owner<'_>, query: &str) -> Result<Response, ApiError> {
    let query = ActivityQuery::parse(query).map_err(ApiError::Validation)?;
    page(db, owner, None, &query)
}

/// `GET /api/v1/customers/{id}/activity?…`: one existing customer's runs.
pub fn of_customer(
    db: &impl Sql,
    account: &Account,
    id: &CustomerId,
    query: &str,
) -> Result<Response, ApiError> {
    let query = ActivityQuery::parse(query).map_err(ApiError::Validation)?;
    if query.customer_id.as_ref().is_some_and(|given| given != id) {
        return Err(ApiError::Validation(vec![FieldError::new(
            "customer_id",
            "must be the customer of the path (or absent)",
        )]));
    }
    if storage::customers::find(db, account.id.as_str(), id)?.is_none() {
        return Err(ApiError::NotFound(
            "No customer with this id in your account.",
        ));
    }
    page(db, &Owner::account(account.id.as_str()), Some(id), &query)
}

fn page(
    db: &impl Sql,
    owner: &Owner<'_>,
    customer: Option<&CustomerId>,
    query: &ActivityQuery,
) -> Result<Response, ApiError> {
    let rows = storage::activity::list(db, owner, customer, query)?;
    Ok(response::json(
        200,
        &Page::from_rows(rows, query.limit),
        &[],
    )?)
}
