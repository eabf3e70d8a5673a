//! The card on file and what Stripe changes later: reading Stripe's card, refund, dispute,
//! customer and account events, and the activity entries they leave.
//!
//! Pure: the webhook parses an event's object here and gets back what changed, as a value; it
//! looks up what an event leaves out (a SetupIntent's card) and stores the result. Not here:
//! payment attempts ([`crate::attempt`]), HTTP, SQL, the clock.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::customer::PaymentMethodSummary;

/// What a card-side event means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardEvent {
    /// A card was saved through a setup-mode Checkout Session or a SetupIntent: it becomes the
    /// customer's primary card. Both events of one setup name the same SetupIntent.
    Saved {
        /// `seti_…`: the same for `checkout.session.completed` and `setup_intent.succeeded`.
        setup_intent: String,
        /// `pm_…`, when the event carries it (the SetupIntent does; the session does not).
        payment_method: Option<String>,
        /// The Stripe customer the card was saved for.
        stripe_customer: Option<String>,
        /// Ours, from the metadata: `cus_…`.
        customer: Option<String>,
        /// Ours, from the metadata: the request (`pmr_…`) that sent the link.
        request: Option<String>,
    },
    /// A card was detached from its customer.
    Detached {
        /// `pm_…`.
        payment_method: String,
    },
    /// A card's details changed (the customer, or the card network's updater).
    Updated(PaymentMethodSummary),
    /// A charge was refunded, in part or whole: `amount_refunded` is the total so far.
    Refunded {
        /// `pi_…` the charge belongs to.
        payment_intent: String,
        /// Total refunded so far, minor units.
        amount_refunded: i64,
        /// Lower-case ISO 4217.
        currency: String,
    },
    /// The customer disputed a charge with their bank.
    Disputed {
        /// `dp_…`.
        dispute: String,
        /// `pi_…`.
        payment_intent: String,
        /// Disputed amount.
        amount: i64,
        /// Lower-case ISO 4217.
        currency: String,
        /// The bank's reason.
        reason: String,
    },
    /// The connected account can (or can no longer) accept charges.
    Charges {
        /// Stripe's `charges_enabled`.
        enabled: bool,
        /// Stripe's `requirements.disabled_reason`, when disabled.
        reason: Option<String>,
    },
    /// The business disconnected the platform from its Stripe account.
    Deauthorized,
    /// A Stripe customer was deleted: its link and card are gone.
    CustomerDeleted {
        /// `cus_…` on Stripe.
        stripe_customer: String,
    },
}

/// The event types this module reads.
pub const CARD_EVENTS: &[&str] = &[
    "checkout.session.completed",
    "setup_intent.succeeded",
    "payment_method.detached",
    "payment_method.updated",
    "payment_method.automatically_updated",
    "charge.refunded",
    "charge.dispute.created",
    "account.updated",
    "account.application.deauthorized",
    "customer.deleted",
];

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    metadata: std::collections::BTreeMap<String, String>,
}

/// Reads `object` of an event of type `kind`; `Ok(None)` for an event that changes nothing for
/// us (a Checkout Session in another mode, say), `Err` for an object that is not what its type
/// promises.
pub fn read(kind: &str, object: &Value) -> Result<Option<CardEvent>, String> {
    let text = |field: &str| object[field].as_str().map(str::to_owned);
    let required = |field: &str| text(field).ok_or_else(|| format!("{kind} without {field}"));
    let ours = |key: &str| {
        serde_json::from_value::<Metadata>(object.clone())
            .ok()
            .and_then(|m| m.metadata.get(key).cloned())
    };
    Ok(Some(match kind {
        "checkout.session.completed" => {
            if object["mode"] != "setup" {
                return Ok(None);
            }
            CardEvent::Saved {
                setup_intent: required("setup_intent")?,
                payment_method: None,
                stripe_customer: text("customer"),
                customer: ours(METADATA_CUSTOMER),
                request: ours(METADATA_REQUEST),
            }
        }
        "setup_intent.succeeded" => CardEvent::Saved {
            setup_intent: required("id")?,
            payment_method: text("payment_method"),
            stripe_customer: text("customer"),
            customer: ours(METADATA_CUSTOMER),
            request: ours(METADATA_REQUEST),
        },
        "payment_method.detached" => CardEvent::Detached {
            payment_method: required("id")?,
        },
        "payment_method.updated" | "payment_method.automatically_updated" => {
            match card_summary(object) {
                Some(card) => CardEvent::Updated(card),
                None => return Ok(None),
            }
        }
        "charge.refunded" => CardEvent::Refunded {
            payment_intent: required("payment_intent")?,
            amount_refunded: object["amount_refunded"]
                .as_i64()
                .ok_or("charge.refunded without amount_refunded")?,
            currency: required("currency")?,
        },
        "charge.dispute.created" => CardEvent::Disputed {
            dispute: required("id")?,
            payment_intent: required("payment_intent")?,
            amount: object["amount"].as_i64().unwrap_or_default(),
            currency: text("currency").unwrap_or_default(),
            reason: text("reason").unwrap_or_else(|| "unspecified".into()),
        },
        "account.updated" => CardEvent::Charges {
            enabled: object["charges_enabled"]
                .as_bool()
                .ok_or("account.updated without charges_enabled")?,
            reason: object["requirements"]["disabled_reason"]
                .as_str()
                .map(str::to_owned),
        },
        "account.application.deauthorized" => CardEvent::Deauthorized,
        "customer.deleted" => CardEvent::CustomerDeleted {
            stripe_customer: required("id")?,
        },
        _ => return Ok(None),
    }))
}

/// Metadata key naming our customer on the Checkout Session and SetupIntent we create.
pub const METADATA_CUSTOMER: &str = "mio_customer_id";
/// Metadata key naming our payment-method request.
pub const METADATA_REQUEST: &str = "mio_request_id";

/// The card of a PaymentMethod object, when it is a card with readable details.
pub fn card_summary(object: &Value) -> Option<PaymentMethodSummary> {
    let card = &object["card"];
    if object["type"] != "card" {
        return None;
    }
    let exp_month = u8::try_from(card["exp_month"].as_u64()?).ok()?;
    if !(1..=12).contains(&exp_month) {
        return None;
    }
    Some(PaymentMethodSummary {
        id: object["id"].as_str()?.to_owned(),
        brand: card["brand"].as_str()?.to_owned(),
        last4: card["last4"].as_str()?.to_owned(),
        exp_month,
        exp_year: u16::try_from(card["exp_year"].as_u64()?).ok()?,
    })
}

/// Why MioPay cannot charge after `account.updated` says charges are disabled.
pub fn charges_disabled_reason(reason: Option<&str>) -> String {
    match reason {
        Some(reason) => format!("Stripe has disabled charges on the account ({reason})"),
        None => "Stripe has disabled charges on the account".to_owned(),
    }
}

/// Why MioPay cannot charge after the business disconnected the platform.
pub const DEAUTHORIZED: &str = "the business disconnected its Stripe account from the platform";

/// Something that will make payment automation fail for a customer, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    /// `no_primary_card`, `card_expires_before_next_charge` or `miopay_not_ready`.
    pub code: &'static str,
    /// One sentence for people.
    pub message: String,
    /// The API route that fixes it.
    pub action: String,
}

/// Why payment automation, on for a customer, cannot succeed: no primary card (`card` is its
/// expiry month and year), a card that expires before `next_charge`, or MioPay not ready.
pub fn payment_warnings(
    customer_id: &str,
    card: Option<(u8, u16)>,
    next_charge: Option<crate::time::Timestamp>,
    miopay_not_ready: Option<&str>,
) -> Vec<Warning> {
    let request = format!("POST /api/v1/customers/{customer_id}/payment-method-requests");
    let mut warnings = Vec::new();
    match card {
        None => warnings.push(Warning {
            code: "no_primary_card",
            message: "No primary card: automated payments will fail. Request a payment method \
                      from the customer."
                .into(),
            action: request,
        }),
        Some((month, year)) if next_charge.is_some_and(|at| expired_at(month, year, at)) => {
            warnings.push(Warning {
                code: "card_expires_before_next_charge",
                message: format!(
                    "The primary card expires ({month:02}/{year}) before the next planned \
                     charge. Request a new payment method from the customer."
                ),
                action: request,
            });
        }
        Some(_) => {}
    }
    if let Some(reason) = miopay_not_ready {
        warnings.push(Warning {
            code: "miopay_not_ready",
            message: format!("MioPay cannot charge: {reason}."),
            action: "PUT /api/v1/settings/miopay".into(),
        });
    }
    warnings
}

/// Whether a card expiring in `month`/`year` (valid through the month's last day) has expired
/// at `at`.
pub fn expired_at(month: u8, year: u16, at: crate::time::Timestamp) -> bool {
    let (next_year, next_month) = if month >= 12 {
        (i32::from(year) + 1, 1)
    } else {
        (i32::from(year), u32::from(month) + 1)
    };
    chrono::NaiveDate::from_ymd_opt(next_year, next_month, 1)
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .is_none_or(|first| at.as_datetime().naive_utc() >= first)
}

/// An activity entry a card-side event leaves (automation `payment`).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// `success` for a card added, `failed` for a card gone or a dispute, `retrying` for a refund
    /// that puts a balance back.
    pub status: &'static str,
    /// One sentence.
    pub summary: String,
    /// What happened, structured.
    pub details: Value,
    /// Unique per fact: writing it twice stores it once.
    pub dedupe_key: String,
}

/// "Card added" for a customer.
pub fn card_added(card: &PaymentMethodSummary, setup_intent: &str) -> Entry {
    Entry {
        status: "success",
        summary: format!(
            "Card added: {} ending {} (expires {:02}/{}) is now the primary card.",
            card.brand, card.last4, card.exp_month, card.exp_year
        ),
        details: json!({
            "event": "card_added", "payment_method_id": card.id, "brand": card.brand,
            "last4": card.last4, "exp_month": card.exp_month, "exp_year": card.exp_year,
            "setup_intent_id": setup_intent,
        }),
        dedupe_key: format!("card-added:{setup_intent}"),
    }
}

/// The primary card was removed on Stripe.
pub fn card_removed(payment_method: &str, event_id: &str) -> Entry {
    Entry {
        status: "failed",
        summary: "The primary card was removed on Stripe; automated payments fail until a new \
                  card is added (request a payment method from the customer)."
            .to_owned(),
        details: json!({"event": "card_removed", "payment_method_id": payment_method}),
        dedupe_key: format!("card-removed:{event_id}"),
    }
}

/// A refund put (part of) a booking's price back on its balance.
pub fn refunded(payment_intent: &str, amount_refunded: i64, currency: &str) -> Entry {
    Entry {
        status: "retrying",
        summary: format!(
            "Refunded {} of the payment on Stripe; that amount is due again on the booking.",
            crate::charge::format_money(amount_refunded, currency)
        ),
        details: json!({
            "event": "refund", "payment_intent_id": payment_intent,
            "amount_refunded_cents": amount_refunded, "currency": currency,
        }),
        dedupe_key: format!("refund:{payment_intent}:{amount_refunded}"),
    }
}

/// A customer disputed a payment.
pub fn disputed(
    dispute: &str,
    payment_intent: &str,
    amount: i64,
    currency: &str,
    reason: &str,
) -> Entry {
    Entry {
        status: "failed",
        summary: format!(
            "The customer disputed {} with their bank ({reason}); respond in Stripe.",
            crate::charge::format_money(amount, currency)
        ),
        details: json!({
            "event": "dispute", "dispute_id": dispute, "payment_intent_id": payment_intent,
            "amount_cents": amount, "currency": currency, "reason": reason,
        }),
        dedupe_key: format!("dispute:{dispute}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setup_session_and_its_setup_intent_name_the_same_setup() {
        let session = json!({"id": "cs_1", "object": "checkout.session", "mode": "setup",
            "setup_intent": "seti_1", "customer": "cus_S",
            "metadata": {"mio_customer_id": "cus_M", "mio_request_id": "pmr_1"}});
        let intent = json!({"id": "seti_1", "object": "setup_intent", "status": "succeeded",
            "payment_method": "pm_1", "customer": "cus_S",
            "metadata": {"mio_customer_id": "cus_M", "mio_request_id": "pmr_1"}});
        let a = read("checkout.session.completed", &session).expect("readable");
        let b = read("setup_intent.succeeded", &intent).expect("readable");
        match (a, b) {
            (
                Some(CardEvent::Saved {
                    setup_intent: x,
                    customer: cx,
                    ..
                }),
                Some(CardEvent::Saved {
                    setup_intent: y,
                    payment_method,
                    customer: cy,
                    ..
                }),
            ) => {
                assert_eq!(x, y);
                assert_eq!(cx, cy);
                assert_eq!(payment_method.as_deref(), Some("pm_1"));
            }
            other => panic!("two saves expected, got {other:?}"),
        }
        let payment = json!({"id": "cs_2", "mode": "payment", "setup_intent": null});
        assert_eq!(read("checkout.session.completed", &payment), Ok(None));
    }

    #[test]
    fn refunds_disputes_and_accounts_read_their_fields() {
        let charge = json!({"id": "ch_1", "payment_intent": "pi_1", "amount_refunded": 2500,
            "currency": "cad"});
        assert_eq!(
            read("charge.refunded", &charge),
            Ok(Some(CardEvent::Refunded {
                payment_intent: "pi_1".into(),
                amount_refunded: 2500,
                currency: "cad".into()
            }))
        );
        let account = json!({"id": "acct_1", "charges_enabled": false,
            "requirements": {"disabled_reason": "requirements.past_due"}});
        assert_eq!(
            read("account.updated", &account),
            Ok(Some(CardEvent::Charges {
                enabled: false,
                reason: Some("requirements.past_due".into())
            }))
        );
        assert!(read("charge.refunded", &json!({"id": "ch_1"})).is_err());
        assert_eq!(read("invoice.paid", &json!({})), Ok(None));
    }

    #[test]
    fn an_updated_card_reads_its_new_details_and_a_non_card_is_ignored() {
        let pm = json!({"id": "pm_1", "type": "card", "card": {"brand": "visa", "last4": "1111",
            "exp_month": 3, "exp_year": 2031}});
        match read("payment_method.automatically_updated", &pm) {
            Ok(Some(CardEvent::Updated(card))) => {
                assert_eq!(
                    (card.last4.as_str(), card.exp_month, card.exp_year),
                    ("1111", 3, 2031)
                );
            }
            other => panic!("an update expected, got {other:?}"),
        }
        let sepa = json!({"id": "pm_2", "type": "sepa_debit"});
        assert_eq!(read("payment_method.updated", &sepa), Ok(None));
    }

    #[test]
    fn warnings_name_a_missing_or_expiring_card_and_an_account_that_cannot_charge() {
        let at = |text: &str| crate::time::Timestamp::parse(text).expect("valid");
        let codes = |w: Vec<Warning>| w.into_iter().map(|w| w.code).collect::<Vec<_>>();
        assert_eq!(
            codes(payment_warnings("cus_1", None, None, None)),
            ["no_primary_card"]
        );
        let next = Some(at("2030-01-01T00:00:00Z"));
        assert_eq!(
            codes(payment_warnings("cus_1", Some((12, 2029)), next, None)),
            ["card_expires_before_next_charge"]
        );
        assert!(payment_warnings("cus_1", Some((1, 2030)), next, None).is_empty());
        assert_eq!(
            codes(payment_warnings(
                "cus_1",
                Some((1, 2030)),
                next,
                Some("off")
            )),
            ["miopay_not_ready"]
        );
        assert!(!expired_at(12, 2029, at("2029-12-31T23:59:59Z")));
        assert!(expired_at(12, 2029, at("2030-01-01T00:00:00Z")));
    }

    #[test]
    fn each_fact_has_one_entry_whichever_event_reports_it() {
        let card = PaymentMethodSummary {
            id: "pm_1".into(),
            brand: "visa".into(),
            last4: "4242".into(),
            exp_month: 12,
            exp_year: 2030,
        };
        assert_eq!(
            card_added(&card, "seti_1").dedupe_key,
            card_added(&card, "seti_1").dedupe_key
        );
        assert_ne!(
            refunded("pi_1", 100, "cad").dedupe_key,
            refunded("pi_1", 200, "cad").dedupe_key
        );
        assert!(refunded("pi_1", 2500, "cad").summary.contains("25.00 CAD"));
    }
}
