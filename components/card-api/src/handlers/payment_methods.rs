//! `PUT /api/v1/customers/{id}/payment-method`: look the card up on the business's connected
//! Stripe account and make it the customer's primary card.

use crate::storage::{self, Sql};
use mio_platform::settings::load_settings;
use mio_platform::system::secret_variable;
use mio_platform::{ApiError, response};
use mio_shared::stripe::{self, CardLookup, PaymentMethodId};
use mio_shared::{Account, CustomerId, FieldError, Timestamp, json};
use serde::Deserialize;
use spin_sdk::http::{Method, Request, Response};

const NOT_FOUND: ApiError = ApiError::NotFound("No customer with this id in your account.");
const FIELD: &str = "payment_method_id";
const STRIPE_DOWN: &str = "Stripe is unreachable; nothing was changed.";

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PaymentMethodBody {
    payment_method_id: Option<String>,
}

/// Checks the body, the customer and MioPay, asks Stripe (the only outbound call), then stores
/// the card in one statement and answers the customer.
pub async fn put(
    db: &impl Sql,
    account: &Account,
    id: &CustomerId,
    body: &[u8],
    now: Timestamp,
) -> Result<Response, ApiError> {
    let body: PaymentMethodBody = json::decode(body, &[])?;
    let pm_id = match body
        .payment_method_id
        .as_deref()
        .map(PaymentMethodId::parse)
    {
        None => return Err(invalid("is required")),
        Some(Err(message)) => return Err(invalid(message)),
        Some(Ok(pm_id)) => pm_id,
    };
    let account_id = account.id.as_str();
    let customer = storage::customers::find(db, account_id, id)?.ok_or(NOT_FOUND)?;
    let settings = load_settings(db, account_id)?
        .ok_or_else(|| anyhow::anyhow!("the signed-in account has no row"))?;
    let stripe_account = connected_account(&settings)?;
    let Some(stripe_customer) = customer.stripe_customer_id else {
        return Err(ApiError::Conflict(
            "This customer has no Stripe customer id: set stripe_customer_id \
             (PATCH /api/v1/customers/{id}) before adding a card."
                .into(),
        ));
    };
    let (status, answer) = lookup(&stripe_account, &pm_id).await?;
    let card = match stripe::card_from_lookup(status, &answer, &stripe_customer) {
        CardLookup::Card(card) => card,
        CardLookup::NotFound => {
            return Err(invalid(
                "no such payment method on the connected Stripe account",
            ));
        }
        CardLookup::OtherCustomer => {
            return Err(invalid(
                "belongs to another customer (or to none) on Stripe",
            ));
        }
        CardLookup::NotACard => return Err(invalid("is not a card")),
        CardLookup::Unavailable { reason } | CardLookup::Rejected { reason } => {
            return Err(ApiError::BadGateway {
                detail: STRIPE_DOWN,
                cause: reason,
            });
        }
    };
    if !storage::cards::store(db, account_id, id, &stripe_customer, &card, now)? {
        // Deleted, or linked to another Stripe customer, while Stripe was being asked.
        return Err(NOT_FOUND);
    }
    let customer = storage::customers::find(db, account_id, id)?.ok_or(NOT_FOUND)?;
    Ok(response::json(200, &customer, &[])?)
}

/// The business's connected Stripe account, or 409 while MioPay is off.
pub fn connected_account(
    settings: &mio_platform::settings::AccountSettings,
) -> Result<String, ApiError> {
    match (&settings.stripe_account_id, settings.miopay_enabled) {
        (Some(acct), true) => Ok(acct.clone()),
        _ => Err(ApiError::Conflict(
            "MioPay is off for this account: connect a Stripe account first \
             (PUT /api/v1/settings/miopay)."
                .into(),
        )),
    }
}

fn invalid(message: &str) -> ApiError {
    ApiError::Validation(vec![FieldError::new(FIELD, message)])
}

/// `GET {stripe_api_base}/v1/payment_methods/{pm}` on the connected account: status and body.
async fn lookup(stripe_account: &str, pm_id: &PaymentMethodId) -> Result<(u16, String), ApiError> {
    let key = secret_variable("stripe_secret_key")
        .ok_or_else(|| anyhow::anyhow!("the stripe_secret_key variable is not set"))?;
    let base = spin_sdk::variables::get("stripe_api_base")
        .map_err(|e| anyhow::anyhow!("the stripe_api_base variable: {e}"))?;
    let url = format!(
        "{}{}",
        base.trim_end_matches('/'),
        stripe::payment_method_path(pm_id)
    );
    let request = Request::builder()
        .method(Method::Get)
        .uri(url)
        .header("authorization", format!("Bearer {key}"))
        .header("stripe-account", stripe_account)
        .header("stripe-version", stripe::API_VERSION)
        .build();
    let response: Response =
        spin_sdk::http::send(request)
            .await
            .map_err(|e| ApiError::BadGateway {
                detail: STRIPE_DOWN,
                cause: format!("GET payment method: {e}"),
            })?;
    let body = String::from_utf8_lossy(response.body()).into_owned();
    Ok((*response.status(), body))
}
