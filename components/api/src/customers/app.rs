//! The request pipeline: route, authenticate, read the body, call the handler, map errors.
//!
//! The order is deliberate: an unknown route or method is answered before credentials are
//! checked, and credentials before the body is read, so strangers cannot make us buffer it.
//! The exception is the hot routes ([`serve_hot`]): their one statement checks the token
//! itself, so a hot creating POST reads its body first, and only a declared body of at most
//! [`HOT_BODY_BYTES`].
//!
//! The creating POSTs run under the request's `Idempotency-Key` ([`Keyed`], read before the
//! body): a retry of the same request replays the first answer. Their writes commit with their
//! answer in one transaction (this component calls no other service; the card routes, which
//! call Stripe between their writes, are the `card-api` component's).

use crate::customers::handlers;
use crate::customers::router::{self, Route};
use mio_platform::idempotency::{Atomicity, Keyed};
use mio_platform::owner::under_token;
use mio_platform::system as platform;
use mio_platform::{ApiError, Caller, Incoming, Media, Owner, SpinDb, auth, db};
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
    let route = router::resolve(&request.method, &request.path)?;
    let now = platform::now()?;
    match route {
        Route::CreateAccount => {
            auth::require_admin(&request)?;
            let body = request.json_body().await?;
            let db = db::open(now)?;
            let id = AccountId::from_random(&platform::random_bytes()?);
            let token = ApiToken::from_random(&platform::random_bytes()?);
            handlers::accounts::create(&db, &body, id, token, now)
        }
        route => {
            let token = auth::presented_token(&request)?;
            match hot(route, &request) {
                Ok(hot) => serve_hot(request, hot, &token, now).await,
                Err(route) => {
                    let (db, Caller { account, .. }) = auth::signed_in(&token, now)?;
                    serve_account(&db, &account, request, route, now).await
                }
            }
        }
    }
}

/// The routes a business hits most, answered under the presented token ([`serve_hot`]).
enum Hot {
    ListCustomers,
    GetCustomer(CustomerId),
    ListActivity,
    CreateCustomer,
    CreateBooking,
}

/// The largest declared body a hot creating route reads before the token is checked.
const HOT_BODY_BYTES: usize = 64 * 1024;

/// `route` as a hot route, or back as it was (every other route, including any added later,
/// takes the usual token check first). A creating POST is hot without an
/// `Idempotency-Key` (a keyed run needs its transaction) and with a declared body of at most
/// [`HOT_BODY_BYTES`]: its body is read before the token is checked, so that is all a stranger
/// can make us buffer.
fn hot(route: Route, request: &Incoming) -> Result<Hot, Route> {
    let small_unkeyed_body = request.idempotency_key.is_empty()
        && request
            .declared_length()
            .is_some_and(|length| length <= HOT_BODY_BYTES);
    match route {
        Route::ListCustomers => Ok(Hot::ListCustomers),
        Route::GetCustomer(id) => Ok(Hot::GetCustomer(id)),
        Route::ListActivity => Ok(Hot::ListActivity),
        Route::CreateCustomer if small_unkeyed_body => Ok(Hot::CreateCustomer),
        Route::CreateBooking if small_unkeyed_body => Ok(Hot::CreateBooking),
        route => Err(route),
    }
}

/// A hot route: the account lookup is folded into the route's own statement, so a request that
/// finds what it asks for costs opening the database and one statement. Anything else (an
/// unknown token, an old schema, nothing found, a refused body) is answered after the usual
/// token check (`mio_platform::owner::under_token`).
async fn serve_hot(
    request: Incoming,
    hot: Hot,
    token: &ApiToken,
    now: Timestamp,
) -> Result<Response, ApiError> {
    let query = request.query.clone();
    let body = match hot {
        Hot::CreateCustomer | Hot::CreateBooking => Some(request.json_body().await),
        _ => None,
    };
    let db = db::connect()?;
    let body = match body {
        Some(Ok(body)) => body,
        Some(Err(refused)) => {
            auth::sign_in_on(&db, token, now)?;
            return Err(refused);
        }
        None => Vec::new(),
    };
    let new_id = CustomerId::from_random(&platform::random_bytes()?);
    under_token(&db, token, now, |owner| match &hot {
        Hot::ListCustomers => handlers::customers::list(&db, owner, &query),
        Hot::GetCustomer(id) => handlers::customers::get(&db, owner, id),
        Hot::ListActivity => handlers::activity::list(&db, owner, &query),
        Hot::CreateCustomer => handlers::customers::create(&db, owner, &body, &new_id, now),
        Hot::CreateBooking => handlers::bookings::create(&db, owner, &body, now),
    })
}

/// The routes of a signed-in account.
async fn serve_account(
    db: &SpinDb,
    account: &Account,
    request: Incoming,
    route: Route,
    now: Timestamp,
) -> Result<Response, ApiError> {
    let account_id = account.id.as_str();
    let owner = Owner::account(account_id);
    match route {
        Route::CreateAccount => Err(ApiError::NotFound("There is no such route in this API.")),
        Route::ListCustomers => handlers::customers::list(db, &owner, &request.query),
        Route::CreateCustomer => {
            let keyed = Keyed::of(&request)?;
            let body = request.json_body().await?;
            keyed.run(db, account_id, &body, Atomicity::Transaction, now, |_| {
                let id = CustomerId::from_random(&platform::random_bytes()?);
                handlers::customers::create(db, &owner, &body, &id, now)
            })
        }
        Route::GetCustomer(id) => handlers::customers::get(db, &owner, &id),
        Route::UpdateCustomer(id) => {
            let body = request.json_body().await?;
            handlers::customers::update(db, account, &id, &body, now)
        }
        Route::DeleteCustomer(id) => handlers::customers::delete(db, account, &id, now),
        Route::ImportCustomers => {
            let keyed = Keyed::of(&request)?;
            let (media, body) = request
                .body(
                    &[Media::Csv, Media::Json],
                    handlers::import::MAX_IMPORT_BYTES,
                )
                .await?;
            keyed.run(db, account_id, &body, Atomicity::Transaction, now, |_| {
                handlers::import::import(db, account, media, &body, now)
            })
        }
        Route::ListBookings => handlers::bookings::list(db, account, &request.query),
        Route::CreateBooking => {
            let keyed = Keyed::of(&request)?;
            let body = request.json_body().await?;
            keyed.run(db, account_id, &body, Atomicity::Transaction, now, |_| {
                handlers::bookings::create(db, &owner, &body, now)
            })
        }
        Route::GetBooking(id) => handlers::bookings::get(db, account, &id),
        Route::UpdateBooking(id) => {
            let body = request.json_body().await?;
            handlers::bookings::update(db, account, &id, &body, now)
        }
        // No body: the key binds to the method and path.
        Route::CompleteBooking(id) => {
            Keyed::of(&request)?.run(db, account_id, &[], Atomicity::Transaction, now, |_| {
                handlers::bookings::complete(db, account, &id, now)
            })
        }
        Route::CancelBooking(id) => {
            Keyed::of(&request)?.run(db, account_id, &[], Atomicity::Transaction, now, |_| {
                handlers::bookings::cancel(db, account, &id, now)
            })
        }
        Route::BookingAutomations(id) => handlers::bookings::automations(db, account, &id),
        Route::GetAutomationSettings => handlers::settings::get_rules(db, account),
        Route::PutAutomationSettings => {
            let body = request.json_body().await?;
            handlers::settings::put_rules(db, account, &body, now)
        }
        Route::GetMiopay => handlers::settings::get_miopay(db, account),
        Route::PutMiopay => {
            let body = request.json_body().await?;
            handlers::settings::put_miopay(db, account, &body, now)
        }
        Route::GetNotifications => handlers::notifications::get(db, account),
        Route::PutNotifications => {
            let body = request.json_body().await?;
            handlers::notifications::put(db, account, &body, now)
        }
        Route::CustomerActivity(id) => {
            handlers::activity::of_customer(db, account, &id, &request.query)
        }
        Route::ListActivity => handlers::activity::list(db, &owner, &request.query),
        Route::ListFeedback => handlers::feedback::list(db, account, &request.query),
    }
}
