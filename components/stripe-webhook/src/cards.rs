//! Card-side events: a card saved through Checkout becomes the primary card (looked up on
//! Stripe for its brand, last4 and expiry), detached or updated cards, deleted Stripe customers,
//! refunds, disputes and whether the connected account can charge. Every write is scoped to the
//! Mio accounts whose MioPay uses the event's connected account; ids in an object's metadata
//! only ever narrow that down.

use anyhow::Context;
use mio_platform::cards;
use mio_platform::db::{Record, Sql, instant, optional_text, text};
use mio_platform::payments::recompute_paid;
use mio_platform::stripe_http::Stripe;
use mio_platform::{SpinDb, system};
use mio_shared::attempt::Reply;
use mio_shared::card::{self, CardEvent, Entry};
use mio_shared::stripe::{CardLookup, card_from_lookup};
use mio_shared::{ActivityId, CustomerId, Timestamp};

const SELECT_CUSTOMER_LINK: &str =
    "SELECT stripe_customer_id FROM customers WHERE account_id = ?1 AND id = ?2";

const COMPLETE_REQUEST: &str = "UPDATE payment_method_requests SET status = 'completed', \
     completed_at = ?3 WHERE account_id = ?1 AND id = ?2 AND status <> 'completed'";

const INSERT_ENTRY: &str = "INSERT INTO activity (id, account_id, customer_id, booking_id, \
     job_id, automation, status, occurred_at, summary, details_json, dedupe_key) \
     VALUES (?1, ?2, ?3, ?4, ?5, 'payment', ?6, ?7, ?8, ?9, ?10) ON CONFLICT DO NOTHING";

/// Applies `event` (id `event_id`, from connected account `stripe_account`) to `accounts`.
pub fn apply(
    db: &SpinDb,
    accounts: &[String],
    stripe_account: &str,
    event_id: &str,
    event: &CardEvent,
    now: Timestamp,
) -> anyhow::Result<()> {
    for account in accounts {
        match event {
            CardEvent::Saved {
                setup_intent,
                payment_method,
                stripe_customer,
                customer,
                request,
            } => {
                let (Some(customer), Some(stripe_customer)) = (customer, stripe_customer) else {
                    eprintln!("stripe-webhook: {setup_intent} names no customer of ours; ignored");
                    continue;
                };
                save_card(
                    db,
                    account,
                    stripe_account,
                    Saved {
                        setup_intent,
                        payment_method: payment_method.as_deref(),
                        stripe_customer,
                        customer,
                        request: request.as_deref(),
                    },
                    now,
                )?;
            }
            CardEvent::Detached { payment_method } => {
                for customer in cards::remove(db, account, payment_method)? {
                    entry(
                        db,
                        account,
                        Some(&customer),
                        None,
                        &card::card_removed(payment_method, event_id),
                        now,
                    )?;
                }
            }
            CardEvent::Updated(summary) => cards::update(db, account, summary, now)?,
            CardEvent::CustomerDeleted { stripe_customer } => {
                cards::unlink_stripe_customer(db, account, stripe_customer, now)?;
            }
            CardEvent::Refunded {
                payment_intent,
                amount_refunded,
                currency,
            } => {
                let Some((job, booking, customer)) =
                    cards::paid_attempt(db, account, payment_intent)?
                else {
                    continue;
                };
                cards::record_refund(db, account, &booking, payment_intent, *amount_refunded, now)?;
                recompute_paid(db, account, &booking, now)?;
                let entry_of = card::refunded(payment_intent, *amount_refunded, currency);
                entry(
                    db,
                    account,
                    Some(&customer),
                    Some((&booking, &job)),
                    &entry_of,
                    now,
                )?;
            }
            CardEvent::Disputed {
                dispute,
                payment_intent,
                amount,
                currency,
                reason,
            } => {
                let Some((job, booking, customer)) =
                    cards::paid_attempt(db, account, payment_intent)?
                else {
                    continue;
                };
                let entry_of = card::disputed(dispute, payment_intent, *amount, currency, reason);
                entry(
                    db,
                    account,
                    Some(&customer),
                    Some((&booking, &job)),
                    &entry_of,
                    now,
                )?;
            }
            CardEvent::Charges { enabled, reason } => {
                let why = (!enabled).then(|| card::charges_disabled_reason(reason.as_deref()));
                cards::record_readiness(
                    db,
                    account,
                    stripe_account,
                    *enabled,
                    why.as_deref(),
                    "charges",
                    now,
                )?;
            }
            CardEvent::Deauthorized => cards::record_readiness(
                db,
                account,
                stripe_account,
                false,
                Some(card::DEAUTHORIZED),
                "charges",
                now,
            )?,
        }
    }
    Ok(())
}

struct Saved<'a> {
    setup_intent: &'a str,
    payment_method: Option<&'a str>,
    stripe_customer: &'a str,
    customer: &'a str,
    request: Option<&'a str>,
}

/// Makes the saved card the customer's primary card, when the customer is the account's and
/// linked to the Stripe customer the card was saved for.
fn save_card(
    db: &SpinDb,
    account: &str,
    stripe_account: &str,
    saved: Saved<'_>,
    now: Timestamp,
) -> anyhow::Result<()> {
    let Ok(customer) = CustomerId::parse(saved.customer) else {
        return Ok(());
    };
    let linked = db
        .execute(
            SELECT_CUSTOMER_LINK,
            &[text(account), text(customer.as_str())],
        )
        .context("reading the customer's Stripe link")?;
    let Some(row) = Record::all(&linked).next() else {
        return Ok(());
    };
    if row.optional_text("stripe_customer_id")?.as_deref() != Some(saved.stripe_customer) {
        eprintln!(
            "stripe-webhook: {} is not linked to {}; ignored",
            saved.customer, saved.stripe_customer
        );
        return Ok(());
    }
    let stripe = Stripe::from_variables()?;
    let payment_method = match saved.payment_method {
        Some(pm) => pm.to_owned(),
        None => {
            let path = format!("/v1/setup_intents/{}", saved.setup_intent);
            let body = answered(stripe.get(&path, stripe_account))?;
            serde_json::from_str::<serde_json::Value>(&body)?["payment_method"]
                .as_str()
                .map(str::to_owned)
                .context("the SetupIntent has no payment method")?
        }
    };
    let Ok(pm_id) = mio_shared::stripe::PaymentMethodId::parse(&payment_method) else {
        anyhow::bail!("Stripe named an unusable payment method {payment_method:?}");
    };
    let reply = stripe.get(
        &mio_shared::stripe::payment_method_path(&pm_id),
        stripe_account,
    );
    let card = match reply {
        Reply::Answered { status, body } => card_from_lookup(status, &body, saved.stripe_customer),
        Reply::NoAnswer { reason } => CardLookup::Unavailable { reason },
    };
    let card = match card {
        CardLookup::Card(card) => card,
        CardLookup::Unavailable { reason } | CardLookup::Rejected { reason } => {
            // Not applied: Stripe delivers the event again.
            anyhow::bail!("looking the saved card up: {reason}");
        }
        other => {
            eprintln!("stripe-webhook: saved card {payment_method} is not usable ({other:?})");
            return Ok(());
        }
    };
    if !cards::store(db, account, &customer, saved.stripe_customer, &card, now)? {
        return Ok(());
    }
    if let Some(request) = saved.request {
        db.execute(
            COMPLETE_REQUEST,
            &[text(account), text(request), instant(now)],
        )
        .context("completing the payment-method request")?;
    }
    entry(
        db,
        account,
        Some(customer.as_str()),
        None,
        &card::card_added(&card, saved.setup_intent),
        now,
    )
}

fn answered(reply: Reply) -> anyhow::Result<String> {
    match reply {
        Reply::Answered { status, body } if (200..300).contains(&status) => Ok(body),
        Reply::Answered { status, .. } => anyhow::bail!("Stripe answered HTTP {status}"),
        Reply::NoAnswer { reason } => anyhow::bail!("no answer from Stripe: {reason}"),
    }
}

/// Writes one activity entry (once per dedupe key).
fn entry(
    db: &impl Sql,
    account: &str,
    customer: Option<&str>,
    booking_and_job: Option<(&str, &str)>,
    entry: &Entry,
    now: Timestamp,
) -> anyhow::Result<()> {
    let id = ActivityId::from_random(&system::random_bytes()?);
    db.execute(
        INSERT_ENTRY,
        &[
            text(id.as_str()),
            text(account),
            optional_text(customer),
            optional_text(booking_and_job.map(|(b, _)| b)),
            optional_text(booking_and_job.map(|(_, j)| j)),
            text(entry.status),
            instant(now),
            text(&entry.summary),
            text(&serde_json::to_string(&entry.details)?),
            text(&format!("{account}:{}", entry.dedupe_key)),
        ],
    )
    .context("writing an activity entry")?;
    Ok(())
}
