//! `POST` and `GET /api/v1/customers/{id}/payment-method-requests`: "Request payment method".
//!
//! A request is a setup-mode Checkout Session on the business's connected account for the
//! customer's Stripe customer, created first when there is none. Every POST to Stripe carries an
//! idempotency key derived from our ids, and a request whose answer was lost is sent once more
//! with the same key, so one API call makes one Stripe customer and one session. The request is
//! stored only once Stripe made the session: a 502 leaves nothing behind but, at most, the
//! customer's link to the Stripe customer Stripe did create.
//!
//! With `"send": true` the link also goes to the customer, on the first channel of the account
//! that reaches them (e-mail, SMS, then the signed webhook), checked before anything is made:
//! without one the answer is 409 with the reason. The message is one per request, sent through
//! the same send machine as rating requests; a try that must wait (a provider's 429 or 5xx) is
//! tried again when the same call is retried with the same `Idempotency-Key`: such an answer is
//! not settled, so it is not stored for replay (`mio_platform::idempotency`).
//!
//! Under an `Idempotency-Key` the route runs as [`Atomicity::Repeatable`]: it calls Stripe between
//! its writes, so they commit one by one, and its request id (hence the Stripe keys) derives
//! from the key's use. A run that died half-way is taken over by a retry that finds what it made.
//!
//! [`Atomicity::Repeatable`]: mio_platform::idempotency::Atomicity::Repeatable

use crate::storage::payment_method_requests::{self as requests, StoredRequest};
use crate::storage::{self, Sql};
use mio_platform::idempotency::Answer;
use mio_platform::messages::{self, ProviderConfig, SendContext};
use mio_platform::settings::load_settings;
use mio_platform::stripe_http::Stripe;
use mio_platform::{ApiError, response, system};
use mio_shared::attempt::Reply;
use mio_shared::card_request::{
    self, CHECKOUT_SESSIONS_PATH, CUSTOMERS_PATH, RequestBody, Session, status,
};
use mio_shared::message::{self, Channel, Purpose, Recipient};
use mio_shared::notify::{ChannelSettings, Contact, link_destination};
use mio_shared::{Account, Customer, CustomerId, ListQuery, Page, Timestamp, json};
use serde_json::json as value;
use spin_sdk::http::Response;

const NOT_FOUND: ApiError = ApiError::NotFound("No customer with this id in your account.");
const STRIPE_DOWN: &str = "Stripe is unreachable; no payment-method request was made.";
const SUCCESS_URL_VARIABLE: &str = "payment_method_success_url";
const CANCEL_URL_VARIABLE: &str = "payment_method_cancel_url";
/// A link's message that waits to be tried again (`messages.status`).
const PENDING_DELIVERY: &str = "pending";

/// Creates a request (or answers the one an earlier run of the same `Idempotency-Key` use made:
/// `seed` is that use's [`KeyUse::seed`]).
///
/// [`KeyUse::seed`]: mio_shared::idempotency::KeyUse::seed
pub fn create(
    db: &impl Sql,
    account: &Account,
    id: &CustomerId,
    body: &[u8],
    seed: Option<&str>,
    now: Timestamp,
) -> Result<Answer, ApiError> {
    let body: RequestBody = json::decode(body, &[])?;
    body.validate().map_err(ApiError::Validation)?;
    let account_id = account.id.as_str();
    let customer = storage::customers::find(db, account_id, id)?.ok_or(NOT_FOUND)?;
    let settings = load_settings(db, account_id)?
        .ok_or_else(|| anyhow::anyhow!("the signed-in account has no row"))?;
    let stripe_account = super::payment_methods::connected_account(&settings)?;
    let sending = match body.send {
        Some(true) => Some(destination(db, account_id, &customer)?),
        _ => None,
    };
    let (success_url, cancel_url) = pages(body.return_url.as_deref())?;
    let request_id = card_request::request_id(account_id, seed, &system::random_bytes()?);
    if let Some(existing) = requests::find(db, account_id, id.as_str(), &request_id)? {
        return finish(db, account, &customer, existing, sending.as_ref(), now);
    }
    let stripe = Stripe::from_variables()?;
    let stripe_customer = match customer.stripe_customer_id.clone() {
        Some(linked) => linked,
        None => {
            let form = card_request::customer_form(
                id.as_str(),
                account_id,
                &customer.name,
                customer.email.as_deref(),
                customer.phone.as_deref(),
            );
            let key = card_request::customer_key(id.as_str());
            let (status, body) = post_twice(&stripe, CUSTOMERS_PATH, &stripe_account, &key, &form)?;
            let created = card_request::created_customer(status, &body).map_err(bad_gateway)?;
            requests::link_stripe_customer(db, account_id, id.as_str(), &created, now)?;
            // A concurrent link wins; use whatever is stored now.
            storage::customers::find(db, account_id, id)?
                .and_then(|c| c.stripe_customer_id)
                .ok_or(NOT_FOUND)?
        }
    };
    let form = Session {
        request_id: &request_id,
        customer_id: id.as_str(),
        account_id,
        stripe_customer: &stripe_customer,
        success_url: &success_url,
        cancel_url: &cancel_url,
    }
    .form_body();
    let key = card_request::session_key(&request_id);
    let (status, body) = post_twice(
        &stripe,
        CHECKOUT_SESSIONS_PATH,
        &stripe_account,
        &key,
        &form,
    )?;
    let session = card_request::created_session(status, &body).map_err(bad_gateway)?;
    requests::insert(db, account_id, id.as_str(), &request_id, &session, now)?;
    let stored = requests::find(db, account_id, id.as_str(), &request_id)?
        .ok_or_else(|| anyhow::anyhow!("a stored request vanished"))?;
    finish(db, account, &customer, stored, sending.as_ref(), now)
}

/// The account's channels and where the link would go, or 409 with why it cannot be sent.
fn destination(
    db: &impl Sql,
    account_id: &str,
    customer: &Customer,
) -> Result<(ChannelSettings, Channel, String), ApiError> {
    let channels = messages::load_settings(db, account_id)?;
    let contact = Contact {
        email: customer.email.as_deref(),
        phone: customer.phone.as_deref(),
        notifications: customer.notifications,
    };
    match link_destination(&channels, &contact) {
        Ok((channel, to)) => Ok((channels, channel, to)),
        Err(reason) => Err(ApiError::Conflict(format!(
            "The link cannot be sent: {reason}. Nothing was created; create the request \
             without `send` to share its url yourself."
        ))),
    }
}

/// Sends the link when asked (once per request: a retried call drives the same message), then
/// answers with the request as stored; unsettled while its message waits to be tried again.
fn finish(
    db: &impl Sql,
    account: &Account,
    customer: &Customer,
    request: StoredRequest,
    sending: Option<&(ChannelSettings, Channel, String)>,
    now: Timestamp,
) -> Result<Answer, ApiError> {
    let Some((channels, channel, to)) = sending else {
        return answer(201, &request, now).map(Answer::from);
    };
    let account_id = account.id.as_str();
    let customer_id = customer.id.as_str();
    let recipient = Recipient {
        customer_id: customer_id.to_owned(),
        name: customer.name.clone(),
        email: customer.email.clone(),
        phone: customer.phone.clone(),
    };
    let reply_to = channels.email.as_ref().and_then(|e| e.reply_to.as_deref());
    let built = message::build(
        *channel,
        to,
        &Purpose::PaymentMethod,
        &account.name,
        &recipient,
        reply_to,
        now,
    );
    messages::plan(db, account_id, customer_id, &request.id, &built, now)?;
    let config = ProviderConfig::from_variables();
    let context = SendContext {
        account_id,
        link: &request.url,
        config: &config,
        webhook_secret: channels.webhook.as_ref().map(|w| w.secret.as_str()),
    };
    for stored in messages::load(db, account_id, &request.id)? {
        messages::drive(db, stored, &context)?;
    }
    let stored = requests::find(db, account_id, customer_id, &request.id)?
        .ok_or_else(|| anyhow::anyhow!("a stored request vanished"))?;
    let waiting = stored
        .delivery
        .as_ref()
        .is_some_and(|d| d.status == PENDING_DELIVERY);
    Ok(Answer {
        response: answer(201, &stored, now)?,
        settled: !waiting,
    })
}

/// The customer's requests, newest first (`limit`, `cursor`), with their status now.
pub fn list(
    db: &impl Sql,
    account: &Account,
    id: &CustomerId,
    query: &str,
    now: Timestamp,
) -> Result<Response, ApiError> {
    let query = ListQuery::parse(query).map_err(ApiError::Validation)?;
    let account_id = account.id.as_str();
    storage::customers::find(db, account_id, id)?.ok_or(NOT_FOUND)?;
    let rows = requests::list(db, account_id, id.as_str(), &query)?
        .into_iter()
        .map(|(seq, request)| (seq, view(&request, now)))
        .collect();
    Ok(response::json(
        200,
        &Page::from_rows(rows, query.limit),
        &[],
    )?)
}

fn view(request: &StoredRequest, now: Timestamp) -> serde_json::Value {
    value!({
        "id": request.id,
        "url": request.url,
        "expires_at": request.expires_at,
        "status": status(&request.status, request.expires_at, now),
        "created_at": request.created_at,
        "sent_at": request.delivery.as_ref().and_then(|d| d.sent_at),
        "channel": request.delivery.as_ref().map(|d| d.channel.as_str()),
        "provider_message_id": request.delivery.as_ref().and_then(|d| d.provider_message_id.as_deref()),
        "delivery": request.delivery.as_ref().map(|d| value!({
            "status": d.status,
            "error": d.error,
        })),
    })
}

fn answer(code: u16, request: &StoredRequest, now: Timestamp) -> Result<Response, ApiError> {
    Ok(response::json(code, &view(request, now), &[])?)
}

/// The success and cancel pages (the core decides from the body and the variables).
fn pages(return_url: Option<&str>) -> Result<(String, String), ApiError> {
    let variable = |name: &str| spin_sdk::variables::get(name).ok();
    card_request::pages(
        return_url,
        variable(SUCCESS_URL_VARIABLE).as_deref(),
        variable(CANCEL_URL_VARIABLE).as_deref(),
    )
    .map_err(|error| ApiError::Validation(vec![error]))
}

/// POSTs once, and once more with the same key when no answer (or a 5xx) came back: Stripe
/// replays or finishes the first, so nothing is made twice.
fn post_twice(
    stripe: &Stripe,
    path: &str,
    account: &str,
    key: &str,
    form: &str,
) -> Result<(u16, String), ApiError> {
    let mut last = String::new();
    for _ in 0..2 {
        match stripe.post(path, account, key, form) {
            Reply::Answered { status, body } if card_request::answer_is_final(Some(status)) => {
                return Ok((status, body));
            }
            Reply::Answered { status, .. } => last = format!("{path} answered HTTP {status}"),
            Reply::NoAnswer { reason } => last = format!("{path}: {reason}"),
        }
    }
    Err(bad_gateway(last))
}

fn bad_gateway(cause: String) -> ApiError {
    ApiError::BadGateway {
        detail: STRIPE_DOWN,
        cause,
    }
}
