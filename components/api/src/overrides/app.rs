//! The request pipeline: route, authenticate, read the body, call the handler, map errors.
//!
//! The order is customer-api's: an unknown route, customer id or automation is answered before
//! credentials are checked, and credentials before the body is read, so strangers cannot make
//! us buffer it.

use crate::overrides::handlers;
use crate::overrides::router::{self, Route};
use mio_platform::{ApiError, Caller, Incoming, SpinDb, auth, system};
use mio_shared::Timestamp;
use spin_sdk::http::{IncomingRequest, Response};

/// Answers one request; every failure becomes a problem response.
pub async fn handle(request: IncomingRequest) -> Response {
    match serve(Incoming::new(request)).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn serve(request: Incoming) -> Result<Response, ApiError> {
    let route = router::resolve(&request.method, &request.path)?;
    match route {
        Route::OpenApi => Ok(handlers::openapi::get()),
        Route::View(id) => {
            let (db, caller, _) = signed_in(&request)?;
            handlers::overrides::view(&db, &caller, &id)
        }
        Route::Set(id, automation) => {
            let (db, caller, now) = signed_in(&request)?;
            let body = request.json_body().await?;
            handlers::overrides::set(&db, &caller, &id, automation, &body, now)
        }
        Route::History(id, automation) => {
            let (db, caller, _) = signed_in(&request)?;
            handlers::overrides::history(&db, &caller, &id, automation, &request.query)
        }
    }
}

/// Reads the clock, opens (and if needed migrates) the database and identifies the caller.
fn signed_in(request: &Incoming) -> Result<(SpinDb, Caller, Timestamp), ApiError> {
    let token = auth::presented_token(request)?;
    let now = system::now()?;
    let (db, caller) = auth::signed_in(&token, now)?;
    Ok((db, caller, now))
}
