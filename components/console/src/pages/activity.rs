//! The Automations Activity view: every run, newest first, Success / Failed / Skipped /
//! Retrying, filtered by status, automation, customer and dates, each with its details.

use super::{customer_and_days, day_bounds, failure, money, next_link, param, query, when};
use crate::api::{Answer, text};
use crate::app::Ctx;
use crate::html::{self, FieldErrors, Section, e};
use mio_api::customers::handlers::{activity, customers};
use mio_shared::CustomerId;
use serde_json::Value;
use spin_sdk::http::Response;
use std::collections::BTreeMap;

const STATUSES: [(&str, &str); 5] = [
    ("", "All"),
    ("success", "Success"),
    ("failed", "Failed"),
    ("skipped", "Skipped"),
    ("retrying", "Retrying"),
];

const AUTOMATIONS: [(&str, &str); 3] = [
    ("", "All"),
    ("payment", "Payment"),
    ("feedback", "Service feedback"),
];

/// A status as the view names it.
pub fn status_word(status: &str) -> &'static str {
    STATUSES
        .iter()
        .find(|(value, _)| *value == status && !value.is_empty())
        .map_or("Unknown", |(_, word)| word)
}

/// `/app/activity?status=&automation=&customer_id=&from=&to=&cursor=`.
pub fn page(ctx: &Ctx, raw_query: &str) -> anyhow::Result<Response> {
    let status = param(raw_query, "status");
    let automation = param(raw_query, "automation");
    let customer_id = param(raw_query, "customer_id");
    let from = param(raw_query, "from");
    let to = param(raw_query, "to");
    let cursor = param(raw_query, "cursor");
    let (from_at, to_at) = day_bounds(ctx, &from, &to);
    let answer = Answer::of(activity::list(
        &ctx.db,
        &ctx.owner(),
        &query(&[
            ("status", &status),
            ("automation", &automation),
            ("customer_id", &customer_id),
            ("from", &from_at),
            ("to", &to_at),
            ("cursor", &cursor),
            ("limit", "25"),
        ]),
    ));
    if answer.status == 404 {
        return Ok(failure(&answer));
    }
    let errors = answer.field_errors();
    let field_errors = FieldErrors(&errors);
    let problem = if answer.ok() {
        String::new()
    } else {
        html::alert(
            &answer.detail(),
            &field_errors.others(&["status", "automation", "customer_id", "from", "to"]),
        )
    };
    let entries: Vec<&Value> = answer.body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let names = customer_names(ctx, &entries);
    let rows: String = entries
        .iter()
        .map(|entry| row(ctx, entry, &names))
        .collect();
    let table = if rows.is_empty() {
        if answer.ok() {
            "<p>No automation has run yet that matches these filters.</p>".to_owned()
        } else {
            String::new()
        }
    } else {
        format!(
            "<div class=\"table\"><table><caption class=\"skip\">Automation runs, newest first</caption><thead><tr><th scope=\"col\">When</th><th scope=\"col\">Automation</th>\
             <th scope=\"col\">Customer</th><th scope=\"col\">Status</th><th scope=\"col\">What happened</th></tr></thead>\
             <tbody>{rows}</tbody></table></div>"
        )
    };
    let main = format!(
        "<h1>Automations Activity</h1>\
         <form method=\"get\" action=\"/app/activity\" class=\"filters\" aria-label=\"Filters\">\
         <div>{}</div><div>{}</div>{}\
         <button type=\"submit\">Filter</button></form>{problem}{table}{}",
        html::select(
            "status",
            "Status",
            "status",
            &STATUSES,
            &status,
            &field_errors
        ),
        html::select(
            "automation",
            "Automation",
            "automation",
            &AUTOMATIONS,
            &automation,
            &field_errors
        ),
        customer_and_days(&customer_id, &from, &to, &field_errors),
        next_link(
            "/app/activity",
            &[
                ("status", &status),
                ("automation", &automation),
                ("customer_id", &customer_id),
                ("from", &from),
                ("to", &to),
            ],
            &answer
        ),
    );
    Ok(html::page(
        if answer.ok() { 200 } else { answer.status },
        "Automations Activity",
        Some(&ctx.frame(Section::Activity)),
        &main,
    ))
}

/// The names of the customers the entries name (a deleted customer has none).
fn customer_names(ctx: &Ctx, entries: &[&Value]) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for entry in entries {
        let id = text(&entry["customer_id"]);
        if id.is_empty() || names.contains_key(id) {
            continue;
        }
        if let Ok(parsed) = CustomerId::parse(id) {
            let answer = Answer::of(customers::get(&ctx.db, &ctx.owner(), &parsed));
            if answer.ok() {
                names.insert(id.to_owned(), text(&answer.body["name"]).to_owned());
            }
        }
    }
    names
}

fn row(ctx: &Ctx, entry: &Value, names: &BTreeMap<String, String>) -> String {
    let status = text(&entry["status"]);
    let customer_id = text(&entry["customer_id"]);
    let customer = match names.get(customer_id) {
        Some(name) => format!(
            "<a href=\"/app/customers/{}\">{}</a>",
            e(customer_id),
            e(name)
        ),
        None if customer_id.is_empty() => "—".to_owned(),
        None => format!("{} (deleted)", e(customer_id)),
    };
    format!(
        "<tr><td>{}</td><td>{}</td><td>{customer}</td><td><span class=\"badge {}\">{}</span></td>\
         <td><p>{}</p><details><summary>Details</summary>{}</details></td></tr>",
        when(ctx, &entry["occurred_at"]),
        super::automations::title(text(&entry["automation"])),
        e(status),
        status_word(status),
        e(text(&entry["summary"])),
        details(ctx, entry),
    )
}

/// The entry's details: the known ones in words, any other as stored, so nothing is hidden.
fn details(ctx: &Ctx, entry: &Value) -> String {
    let details = &entry["details"];
    let mut facts = String::new();
    let mut fact = |label: &str, value: String| {
        facts.push_str(&format!("<dt>{label}</dt><dd>{value}</dd>"));
    };
    if details["amount_cents"].is_i64() {
        fact(
            "Amount",
            money(&details["amount_cents"], &details["currency"]),
        );
    }
    if let Some(card) = card(&details["card"]) {
        fact("Card", card);
    }
    if let Some(reason) = details["decline_code"].as_str() {
        fact("Decline reason", e(reason));
    }
    if let Some(message) = details["message"].as_str() {
        fact("Message", e(message));
    }
    if let Some(intent) = details["payment_intent_id"].as_str() {
        fact("PaymentIntent", format!("<code>{}</code>", e(intent)));
    }
    if let Some(attempt) = details["attempt"].as_i64() {
        fact("Attempt", attempt.to_string());
    }
    if let Some(rating) = details["rating"].as_i64() {
        fact("Rating", format!("{rating} of 5"));
    }
    if details["next_attempt_at"].is_string() {
        fact("Next attempt", when(ctx, &details["next_attempt_at"]));
    }
    if let Some(rule) = details["rule"].as_str() {
        fact("Rule", e(rule));
    }
    if details["late"].as_bool() == Some(true) {
        fact(
            "Late",
            "Planned after its time had passed: ran at the next tick".to_owned(),
        );
    }
    let booking = text(&entry["booking_id"]);
    if !booking.is_empty() {
        fact(
            "Booking",
            format!(
                "<a href=\"/app/bookings/{}\">{}</a>",
                e(booking),
                e(booking)
            ),
        );
    }
    const SHOWN: [&str; 13] = [
        "amount_cents",
        "currency",
        "card",
        "decline_code",
        "message",
        "payment_intent_id",
        "attempt",
        "rating",
        "next_attempt_at",
        "rule",
        "late",
        "rule_source",
        "idempotency_key",
    ];
    if let Some(object) = details.as_object() {
        for (key, value) in object {
            if SHOWN.contains(&key.as_str()) || value.is_null() {
                continue;
            }
            let value = match value {
                Value::String(text) => e(text),
                other => format!("<code>{}</code>", e(&other.to_string())),
            };
            fact(&e(&key.replace('_', " ")), value);
        }
    }
    if let Some(key) = details["idempotency_key"].as_str() {
        fact("Idempotency key", format!("<code>{}</code>", e(key)));
    }
    format!("<dl class=\"facts\">{facts}</dl>")
}

fn card(card: &Value) -> Option<String> {
    card.is_object()
        .then(|| super::customers::card_summary(card))
}
