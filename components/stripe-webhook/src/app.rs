//! One delivery: read the raw body (at most 1 MiB), verify the signature on those bytes, read
//! the event, skip it if it was applied before, find the Mio account of its connected account,
//! let the core settle the attempt it names, remember the event.
//!
//! Answers: 200 `{"received": true}` for every verified event (duplicates, ignored types and
//! unknown accounts included); 400 problem+json with nothing changed for a bad signature, an
//! oversized body or a body that is not an event; 500 when storage fails (Stripe then retries,
//! and the event is not marked as applied).

use crate::storage;
use anyhow::{Context, anyhow};
use futures::StreamExt;
use mio_platform::payments::{self, Actor};
use mio_platform::{SpinDb, db, response, system};
use mio_shared::attempt::{Event, Machine};
use mio_shared::stripe::Intent;
use mio_shared::webhook::{self, MAX_BODY_BYTES, Meaning};
use mio_shared::{Problem, ProblemType, Timestamp};
use serde_json::json;
use spin_sdk::http::{IncomingRequest, Method, Response};

const WEBHOOK_PATH: &str = "/webhooks/stripe";
const SECRET_VARIABLE: &str = "stripe_webhook_secret";

/// Answers one delivery.
pub async fn handle(request: IncomingRequest) -> Response {
    match serve(request).await {
        Ok(response) => response,
        Err(Refusal::Problem(kind, detail)) => {
            // RFC 9110 §15.5.6: a 405 names the methods the route allows.
            let allow = [("allow", "POST".to_owned())];
            let headers: &[(&str, String)] = if kind == ProblemType::MethodNotAllowed {
                &allow
            } else {
                &[]
            };
            response::problem(kind.status(), &Problem::new(kind, detail), headers)
        }
        Err(Refusal::Internal(error)) => {
            eprintln!("stripe-webhook: {error:#}");
            response::problem(
                500,
                &Problem::new(
                    ProblemType::Internal,
                    "The event could not be applied; Stripe will deliver it again.",
                ),
                &[],
            )
        }
    }
}

enum Refusal {
    Problem(ProblemType, String),
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for Refusal {
    fn from(error: anyhow::Error) -> Self {
        Refusal::Internal(error)
    }
}

fn invalid(detail: impl Into<String>) -> Refusal {
    Refusal::Problem(ProblemType::InvalidWebhook, detail.into())
}

async fn serve(request: IncomingRequest) -> Result<Response, Refusal> {
    let path = request.path_with_query().unwrap_or_default();
    if path.split('?').next() != Some(WEBHOOK_PATH) {
        return Err(Refusal::Problem(
            ProblemType::NotFound,
            "There is no such route in this API.".into(),
        ));
    }
    if request.method() != Method::Post {
        return Err(Refusal::Problem(
            ProblemType::MethodNotAllowed,
            "Only POST is allowed here.".into(),
        ));
    }
    let signatures: Vec<String> = request
        .headers()
        .get("stripe-signature")
        .into_iter()
        .map(|value| String::from_utf8_lossy(&value).into_owned())
        .collect();
    let secret = system::secret_variable(SECRET_VARIABLE)
        .ok_or_else(|| anyhow!("the stripe_webhook_secret variable is not set"))?;
    let body = read_body(request).await?;
    let header = match signatures.as_slice() {
        [] => None,
        [one] => Some(one.as_str()),
        _ => return Err(invalid("more than one Stripe-Signature header")),
    };
    let now = system::now()?;
    webhook::verify(header, &body, &secret, now).map_err(|e| invalid(e.to_string()))?;
    let (event, meaning) = webhook::parse(&body).map_err(|e| invalid(e.to_string()))?;
    if storage::seen_fast(&event.id) {
        return received();
    }
    let db = db::open(now)?;
    if storage::seen(&db, &event.id)? {
        storage::remember_fast(&event.id);
        return received();
    }
    let account = match event.account.as_deref() {
        Some(stripe_account) => storage::accounts_of(&db, stripe_account)?,
        None => Vec::new(),
    };
    match (&meaning, event.account.as_deref()) {
        (Meaning::Payment(intent), Some(stripe_account)) if !account.is_empty() => {
            apply_payment(&db, &account, stripe_account, intent, now)?;
        }
        (Meaning::Card(card), Some(stripe_account)) if !account.is_empty() => {
            crate::cards::apply(&db, &account, stripe_account, &event.id, card, now)?;
        }
        (Meaning::Payment(_) | Meaning::Card(_), _) => eprintln!(
            "stripe-webhook: event {} is for no account of ours; ignored",
            event.id
        ),
        (Meaning::Other, _) => {}
    }
    storage::remember(
        &db,
        &event.id,
        &event.kind,
        event.account.as_deref(),
        account.first().map(String::as_str),
        now,
    )?;
    storage::remember_fast(&event.id);
    received()
}

fn received() -> Result<Response, Refusal> {
    Ok(response::json(200, &json!({"received": true}), &[])?)
}

/// Reads the raw body, refusing it past [`MAX_BODY_BYTES`] without holding more in memory.
async fn read_body(request: IncomingRequest) -> Result<Vec<u8>, Refusal> {
    let mut body = Vec::new();
    let mut stream = request.into_body_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| anyhow!("reading the request body: {e:?}"))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(invalid(format!(
                "the body is over {MAX_BODY_BYTES} bytes; Stripe events are far smaller"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Settles the attempt `intent` was made for, if it belongs to one of `accounts` (the Mio
/// accounts whose MioPay uses `stripe_account`). The intent's metadata only names the job; the
/// job must belong to one of those accounts, so an event can never touch another account.
fn apply_payment(
    db: &SpinDb,
    accounts: &[String],
    stripe_account: &str,
    intent: &Intent,
    now: Timestamp,
) -> anyhow::Result<()> {
    let Some((job_id, number)) = intent.attempt_ref() else {
        eprintln!(
            "stripe-webhook: {} carries no attempt of ours; ignored",
            intent.id
        );
        return Ok(());
    };
    for account in accounts {
        let Some(job) = payments::load_job(db, account, job_id)? else {
            continue;
        };
        let attempt = payments::load_attempt(db, &job, number)?;
        let mut machine = Machine::new(attempt);
        let effects = machine.handle(
            Event::Webhook {
                intent,
                stripe_account,
            },
            now,
        );
        for effect in &effects {
            payments::perform(db, &job, number, effect, Actor::Webhook, now)
                .with_context(|| format!("applying {} to {job_id}", intent.id))?;
        }
        return Ok(());
    }
    eprintln!(
        "stripe-webhook: {job_id} is not a job of this Stripe account's Mio account; ignored"
    );
    Ok(())
}
