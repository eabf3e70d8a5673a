//! The request pipeline: route, authenticate, read the body, call the handler, map errors.
//!
//! The order is deliberate: an unknown route or method is answered before credentials are
//! checked, and credentials before the body is read, so strangers cannot make us buffer it.

use crate::error::ApiError;
use crate::request::Incoming;
use crate::router::{self, Route, RouteError};
use crate::storage::{self, SpinDb};
use crate::{auth, handlers, platform};
use mio_shared::{Account, AccountId, ApiToken, CustomerId, Timestamp};
use spin_sdk::http::{IncomingRequest, Response};

/// Answers one request; every failure becomes a problem response.
pub async fn handle(request: IncomingRequest) -> Response {
    match serve(Incoming::new(request)).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn serve(request: Incoming) -> Result<Response, ApiError> {
    let route = router::resolve(&request.method, &request.path).map_err(|error| match error {
        RouteError::NotFound(detail) => ApiError::NotFound(detail),
        RouteError::MethodNotAllowed(allow) => ApiError::MethodNotAllowed(allow),
    })?;
    let now = platform::now()?;
    match route {
        Route::CreateAccount => {
            auth::require_admin(&request)?;
            let body = request.json_body().await?;
            let db = storage::open(now)?;
            let id = AccountId::from_random(&platform::random_bytes()?);
            let token = ApiToken::from_random(&platform::random_bytes()?);
            handlers::accounts::create(&db, &body, id, token, now)
        }
        Route::ListCustomers => {
            let (db, account) = signed_in(&request, now)?;
            handlers::customers::list(&db, &account, &request.query)
        }
        Route::CreateCustomer => {
            let (db, account) = signed_in(&request, now)?;
            let body = request.json_body().await?;
            let id = CustomerId::from_random(&platform::random_bytes()?);
            handlers::customers::create(&db, &account, &body, id, now)
        }
        Route::GetCustomer(id) => {
            let (db, account) = signed_in(&request, now)?;
            handlers::customers::get(&db, &account, &id)
        }
        Route::UpdateCustomer(id) => {
            let (db, account) = signed_in(&request, now)?;
            let body = request.json_body().await?;
            handlers::customers::update(&db, &account, &id, &body, now)
        }
        Route::DeleteCustomer(id) => {
            let (db, account) = signed_in(&request, now)?;
            handlers::customers::delete(&db, &account, &id)
        }
    }
}

/// Opens (and if needed migrates) the database and identifies the calling account.
fn signed_in(request: &Incoming, now: Timestamp) -> Result<(SpinDb, Account), ApiError> {
    let token = auth::presented_token(request)?;
    let db = storage::open(now)?;
    let account = auth::authenticate(&db, &token)?;
    Ok((db, account))
}
