//! The request pipeline: route, authenticate, read the body, call the handler, map errors.
//!
//! The order is customer-api's: an unknown route, method or customer id is answered before
//! credentials are checked, and credentials before the body is read, so strangers cannot make
//! us buffer it.
//!
//! `POST …/payment-method-requests` runs under the request's `Idempotency-Key` ([`Keyed`], read
//! before the body): a retry of the same request replays the first answer. It calls Stripe
//! between its writes, so they commit one by one ([`Atomicity::Repeatable`]) under ids derived
//! from the key's use.

use crate::handlers;
use crate::router::{self, Route};
use mio_platform::idempotency::{Atomicity, Keyed};
use mio_platform::{ApiError, Caller, Incoming, SpinDb, auth, system};
use mio_shared::Timestamp;
use mio_shared::idempotency::KeyUse;
use spin_sdk::http::{IncomingRequest, Response};

/// Answers one request; every failure becomes a problem response.
pub async fn handle(request: IncomingRequest) -> Response {
    serve(Incoming::new(request))
        .await
        .unwrap_or_else(ApiError::into_response)
}

async fn serve(request: Incoming) -> Result<Response, ApiError> {
    let route = router::resolve(&request.method, &request.path)?;
    let now = system::now()?;
    let (db, Caller { account, .. }) = signed_in(&request, now)?;
    let account_id = account.id.as_str();
    match route {
        Route::PutPaymentMethod(id) => {
            let body = request.json_body().await?;
            handlers::payment_methods::put(&db, &account, &id, &body, now).await
        }
        Route::RequestPaymentMethod(id) => {
            let keyed = Keyed::of(&request)?;
            let body = request.json_body().await?;
            keyed.run(
                &db,
                account_id,
                &body,
                Atomicity::Repeatable,
                now,
                |key_use| {
                    let seed = key_use.map(KeyUse::seed);
                    handlers::payment_method_requests::create(
                        &db,
                        &account,
                        &id,
                        &body,
                        seed.as_deref(),
                        now,
                    )
                },
            )
        }
        Route::ListPaymentMethodRequests(id) => {
            handlers::payment_method_requests::list(&db, &account, &id, &request.query, now)
        }
    }
}

/// Opens (and if needed migrates) the database and identifies the calling account.
fn signed_in(request: &Incoming, now: Timestamp) -> Result<(SpinDb, Caller), ApiError> {
    let token = auth::presented_token(request)?;
    auth::signed_in(&token, now)
}
