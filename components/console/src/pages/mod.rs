//! One module per screen family. Each calls the API's handlers (`mio_api`) for what it shows and
//! changes, and renders their answers.

pub mod activity;
pub mod automations;
pub mod bookings;
pub mod customers;
pub mod settings;

use crate::api::{Answer, text};
use crate::app::{Ctx, message_page, not_found};
use crate::html::e;
use mio_shared::Timestamp;
use mio_shared::charge::format_money;
use mio_shared::console::{local_date_time, local_day_start};
use serde_json::Value;
use spin_sdk::http::Response;

/// An answer that is not a success, as a page: 404 as the console's "not found" (another
/// account's id looks like no id at all), anything else with the API's own words.
fn failure(answer: &Answer) -> Response {
    if answer.status == 404 {
        not_found()
    } else {
        message_page(answer.status, "Could not do that", &answer.detail())
    }
}

/// A refused form's problem when it names no field (the form shows field errors beside their
/// fields): the API's own words, above the form.
fn unfielded(answer: &Answer) -> String {
    if answer.ok() || !answer.field_errors().is_empty() {
        String::new()
    } else {
        crate::html::alert(&answer.detail(), &[])
    }
}

/// An RFC 3339 instant from the API, in the account's zone (`—` for none).
fn when(ctx: &Ctx, value: &Value) -> String {
    match value.as_str().and_then(|at| Timestamp::parse(at).ok()) {
        Some(at) => format!(
            "<time datetime=\"{}\">{}</time>",
            e(text(value)),
            e(&local_date_time(&ctx.account().timezone, at))
        ),
        None => "—".to_owned(),
    }
}

/// An amount in minor units with its currency, as people read it.
fn money(amount: &Value, currency: &Value) -> String {
    match (amount.as_i64(), currency.as_str()) {
        (Some(amount), Some(currency)) => e(&format_money(amount, currency)),
        _ => "—".to_owned(),
    }
}

/// A JSON string for HTML, or `—`.
fn shown(value: &Value) -> String {
    match value.as_str() {
        Some(text) if !text.is_empty() => e(text),
        _ => "—".to_owned(),
    }
}

/// A filter's `from` and `to` dates (the account's local days) as the instants the API takes:
/// the start of `from`, and the end of `to` (the start of the day after), so both days are
/// included. A date that does not read goes to the API as typed, so its error names the field.
fn day_bounds(ctx: &Ctx, from: &str, to: &str) -> (String, String) {
    let zone = &ctx.account().timezone;
    let instant = |date: &str, next_day: bool| match local_day_start(zone, date, next_day) {
        Some(at) => at.to_string(),
        None => date.to_owned(),
    };
    (instant(from, false), instant(to, true))
}

/// The filter fields the activity and bookings lists share: a customer id and a span of days.
fn customer_and_days(
    customer_id: &str,
    from: &str,
    to: &str,
    errors: &crate::html::FieldErrors<'_>,
) -> String {
    use crate::html::input;
    format!(
        "<div>{}</div><div>{}</div><div>{}</div>",
        input(
            "customer_id",
            "Customer ID",
            "customer_id",
            "text",
            customer_id,
            errors
        ),
        input("from", "From", "from", "date", from, errors),
        input("to", "To", "to", "date", to, errors),
    )
}

/// A creating form, run as the API route `POST api_path` it stands for under the form's
/// idempotency key: the form sent twice (a double click, a reload) creates once, and the
/// second answer is the first one's.
fn create_once(
    ctx: &Ctx,
    form: &crate::app::Form,
    api_path: &str,
    body: &[u8],
    create: impl FnOnce() -> Result<Response, mio_platform::ApiError>,
) -> Answer {
    use mio_platform::idempotency::{Atomicity, Keyed};
    Answer::of(
        Keyed::of_form(form.text("idempotency_key"), "POST", api_path).and_then(|keyed| {
            keyed.run(
                &ctx.db,
                ctx.account().id.as_str(),
                body,
                Atomicity::Transaction,
                ctx.now,
                |_| create(),
            )
        }),
    )
}

/// A query string of the non-empty `pairs`.
fn query(pairs: &[(&str, &str)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        if !value.is_empty() {
            out.append_pair(key, value);
        }
    }
    out.finish()
}

/// The value of parameter `name` in a query string ("" when absent).
fn param(query: &str, name: &str) -> String {
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.trim().to_owned())
        .unwrap_or_default()
}

/// The "Next page" link for a list answer, keeping `kept` parameters.
fn next_link(path: &str, kept: &[(&str, &str)], answer: &Answer) -> String {
    match answer.body["next_cursor"].as_str() {
        Some(cursor) => {
            let mut pairs = kept.to_vec();
            pairs.push(("cursor", cursor));
            format!(
                "<p><a href=\"{path}?{}\" rel=\"next\">Next page</a></p>",
                e(&query(&pairs))
            )
        }
        None => String::new(),
    }
}
