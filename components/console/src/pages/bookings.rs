//! Bookings: the list with filters, a new booking (one-time or recurring), and a booking's
//! page with its planned and past automation runs; complete and cancel.

use super::{
    create_once, customer_and_days, day_bounds, failure, money, next_link, param, query, shown,
    unfielded, when,
};
use crate::api::{Answer, text};
use crate::app::{Ctx, Form};
use crate::html::{self, FieldErrors, Section, e};
use mio_api::customers::handlers::{activity, bookings, customers};
use mio_shared::BookingId;
use mio_shared::console::{parse_amount, parse_local_input, return_path};
use serde_json::{Value, json};
use spin_sdk::http::Response;

const STATUSES: [(&str, &str); 4] = [
    ("", "All"),
    ("scheduled", "Scheduled"),
    ("completed", "Completed"),
    ("cancelled", "Cancelled"),
];

fn status_word(status: &str) -> &str {
    STATUSES
        .iter()
        .find(|(value, _)| *value == status)
        .map_or(status, |(_, word)| word)
}

/// A table of bookings; scheduled ones get Complete and Cancel, which come back to
/// `return_to` (or the booking's page).
pub fn table(
    ctx: &Ctx,
    bookings: &[&Value],
    return_to: Option<&str>,
    with_customer: bool,
) -> String {
    if bookings.is_empty() {
        return "<p>None.</p>".to_owned();
    }
    let rows: String = bookings
        .iter()
        .map(|booking| {
            let id = text(&booking["id"]);
            let back = return_to.map_or_else(|| format!("/app/bookings/{id}"), str::to_owned);
            let actions = if text(&booking["status"]) == "scheduled" {
                format!(
                    "<div class=\"actions\">{}{}</div>",
                    html::button_form(&format!("/app/bookings/{id}/complete"), ctx.csrf(), &[("return_to", &back)], "Complete", ""),
                    html::button_form(&format!("/app/bookings/{id}/cancel"), ctx.csrf(), &[("return_to", &back)], "Cancel", "secondary"),
                )
            } else {
                String::new()
            };
            let customer = if with_customer {
                format!(
                    "<td><a href=\"/app/customers/{}\">{}</a></td>",
                    e(text(&booking["customer_id"])),
                    e(text(&booking["customer_id"]))
                )
            } else {
                String::new()
            };
            format!(
                "<tr><td><a href=\"/app/bookings/{}\">{}</a></td>{customer}<td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{actions}</td></tr>",
                e(id),
                when(ctx, &booking["start_at"]),
                e(text(&booking["service_type"])),
                money(&booking["amount_cents"], &booking["currency"]),
                status_word(text(&booking["status"])),
            )
        })
        .collect();
    let customer = if with_customer {
        "<th scope=\"col\">Customer</th>"
    } else {
        ""
    };
    format!(
        "<div class=\"table\"><table><thead><tr><th scope=\"col\">Starts</th>{customer}<th scope=\"col\">Service</th>\
         <th scope=\"col\">Amount</th><th scope=\"col\">Status</th><th scope=\"col\">Actions</th></tr></thead><tbody>{rows}</tbody></table></div>"
    )
}

/// `/app/bookings?customer_id=&status=&from=&to=&cursor=`.
pub fn list(ctx: &Ctx, raw_query: &str) -> anyhow::Result<Response> {
    let customer_id = param(raw_query, "customer_id");
    let status = param(raw_query, "status");
    let from = param(raw_query, "from");
    let to = param(raw_query, "to");
    let cursor = param(raw_query, "cursor");
    let (from_at, to_at) = day_bounds(ctx, &from, &to);
    let answer = Answer::of(bookings::list(
        &ctx.db,
        ctx.account(),
        &query(&[
            ("customer_id", &customer_id),
            ("status", &status),
            ("from", &from_at),
            ("to", &to_at),
            ("cursor", &cursor),
            ("limit", "25"),
        ]),
    ));
    let errors = answer.field_errors();
    let field_errors = FieldErrors(&errors);
    let problem = if answer.ok() {
        String::new()
    } else {
        html::alert(
            &answer.detail(),
            &field_errors.others(&["customer_id", "status", "from", "to"]),
        )
    };
    let rows: Vec<&Value> = answer.body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let main = format!(
        "<h1>Bookings</h1><div class=\"actions\"><a class=\"button\" href=\"/app/bookings/new\">New booking</a></div>\
         <form method=\"get\" action=\"/app/bookings\" class=\"filters\" aria-label=\"Filters\">\
         <div>{}</div>{}<button type=\"submit\">Filter</button></form>{problem}{}{}",
        html::select(
            "status",
            "Status",
            "status",
            &STATUSES,
            &status,
            &field_errors
        ),
        customer_and_days(&customer_id, &from, &to, &field_errors),
        if answer.ok() {
            table(ctx, &rows, Some("/app/bookings"), true)
        } else {
            String::new()
        },
        next_link(
            "/app/bookings",
            &[
                ("customer_id", &customer_id),
                ("status", &status),
                ("from", &from),
                ("to", &to)
            ],
            &answer
        ),
    );
    Ok(html::page(
        if answer.ok() { 200 } else { answer.status },
        "Bookings",
        Some(&ctx.frame(Section::Bookings)),
        &main,
    ))
}

const FREQUENCIES: [(&str, &str); 4] = [
    ("", "Does not repeat"),
    ("weekly", "Every week"),
    ("biweekly", "Every two weeks"),
    ("monthly", "Every month"),
];

/// The new-booking form, filled with `values` (field ids → what was typed).
fn booking_form(ctx: &Ctx, values: &Form, errors: &[(String, String)]) -> anyhow::Result<String> {
    let errors = FieldErrors(errors);
    let customers = Answer::of(customers::list(&ctx.db, &ctx.owner(), "limit=200"));
    let mut options: Vec<(String, String)> = vec![(String::new(), "Choose a customer".to_owned())];
    options.extend(
        customers.body["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|customer| {
                (
                    text(&customer["id"]).to_owned(),
                    text(&customer["name"]).to_owned(),
                )
            }),
    );
    let options: Vec<(&str, &str)> = options
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let currency = match values.text("currency") {
        "" => "usd",
        typed => typed,
    };
    let others = errors.others(&[
        "customer_id",
        "service_type",
        "start_at",
        "end_at",
        "amount_cents",
        "currency",
        "recurrence",
    ]);
    let problem = if errors.0.is_empty() {
        String::new()
    } else {
        html::alert(
            "The booking was not created: some fields need attention.",
            &others,
        )
    };
    Ok(format!(
        "{problem}<form class=\"card\" method=\"post\" action=\"/app/bookings\">{}{}{}{}\
         <div class=\"row\"><div>{}</div><div>{}</div></div><div class=\"row\"><div>{}</div><div>{}</div></div>\
         <p class=\"hint\">Times are in the account's time zone, {}.</p>\
         <fieldset><legend>Repeat</legend><div class=\"row\"><div>{}</div><div>{}</div></div>\
         <p class=\"hint\">A repeating booking makes one booking per visit.</p></fieldset>\
         <div class=\"actions\"><button type=\"submit\">Create booking</button></div></form>",
        html::csrf_input(ctx.csrf()),
        html::idempotency_input()?,
        html::select(
            "customer_id",
            "Customer",
            "customer_id",
            &options,
            values.text("customer_id"),
            &errors
        ),
        html::input(
            "service_type",
            "Service type",
            "service_type",
            "text",
            values.text("service_type"),
            &errors
        ),
        html::input(
            "start_at",
            "Start",
            "start_at",
            "datetime-local",
            values.text("start_at"),
            &errors
        ),
        html::input(
            "end_at",
            "End",
            "end_at",
            "datetime-local",
            values.text("end_at"),
            &errors
        ),
        html::input(
            "amount",
            "Amount",
            "amount_cents",
            "text",
            values.text("amount"),
            &errors
        ),
        html::input(
            "currency", "Currency", "currency", "text", currency, &errors
        ),
        e(ctx.account().timezone.name()),
        html::select(
            "frequency",
            "Repeats",
            "recurrence.frequency",
            &FREQUENCIES,
            values.text("frequency"),
            &errors
        ),
        html::input(
            "count",
            "Number of visits",
            "recurrence.count",
            "number",
            values.text("count"),
            &errors
        ),
    ))
}

/// `/app/bookings/new?customer_id=`.
pub fn new(ctx: &Ctx, raw_query: &str) -> anyhow::Result<Response> {
    let mut values = Form::default();
    values.set("customer_id", &param(raw_query, "customer_id"));
    let main = format!("<h1>New booking</h1>{}", booking_form(ctx, &values, &[])?);
    Ok(html::page(
        200,
        "New booking",
        Some(&ctx.frame(Section::Bookings)),
        &main,
    ))
}

/// `POST /app/bookings`: the API's create. Local times and the typed amount are read here;
/// what does not read goes to the API as typed, so its error names the field.
pub fn create(ctx: &Ctx, form: &Form) -> anyhow::Result<Response> {
    let zone = &ctx.account().timezone;
    let instant = |name: &str| match parse_local_input(zone, form.text(name)) {
        Some(at) => json!(at.to_string()),
        None => json!(form.text(name)),
    };
    let currency = form.text("currency").to_ascii_lowercase();
    let amount = match parse_amount(form.text("amount"), &currency) {
        Some(minor) => json!(minor),
        None => json!(form.text("amount")),
    };
    let mut body = json!({
        "customer_id": form.text("customer_id"),
        "service_type": form.text("service_type"),
        "start_at": instant("start_at"),
        "end_at": instant("end_at"),
        "amount_cents": amount,
        "currency": currency,
    });
    if !form.text("frequency").is_empty() {
        let count = match form.text("count").parse::<i64>() {
            Ok(count) => json!(count),
            Err(_) => json!(form.text("count")),
        };
        body["recurrence"] = json!({"frequency": form.text("frequency"), "count": count});
    }
    let bytes = serde_json::to_vec(&body)?;
    // A booking form sent twice books (and charges) once.
    let answer = create_once(ctx, form, "/api/v1/bookings", &bytes, || {
        bookings::create(&ctx.db, &ctx.owner(), &bytes, ctx.now)
    });
    if answer.ok() {
        let first = if answer.body["bookings"].is_array() {
            text(&answer.body["bookings"][0]["id"]).to_owned()
        } else {
            text(&answer.body["id"]).to_owned()
        };
        return Ok(html::redirect(&format!("/app/bookings/{first}")));
    }
    let main = format!(
        "<h1>New booking</h1>{}{}",
        unfielded(&answer),
        booking_form(ctx, form, &answer.field_errors())?
    );
    Ok(html::page(
        answer.status,
        "New booking",
        Some(&ctx.frame(Section::Bookings)),
        &main,
    ))
}

/// `/app/bookings/{id}`: the booking, its automation runs (planned and past) and its activity.
pub fn page(ctx: &Ctx, id: &BookingId) -> anyhow::Result<Response> {
    let answer = Answer::of(bookings::get(&ctx.db, ctx.account(), id));
    if !answer.ok() {
        return Ok(failure(&answer));
    }
    let booking = &answer.body;
    let customer_id = text(&booking["customer_id"]);
    let rating = if booking["rating"].is_object() {
        format!(
            "{} of 5 — {}",
            booking["rating"]["rating"].as_i64().unwrap_or_default(),
            shown(&booking["rating"]["comment"])
        )
    } else {
        "—".to_owned()
    };
    let facts = format!(
        "<dl class=\"facts\"><dt>Customer</dt><dd><a href=\"/app/customers/{}\">{}</a></dd><dt>Service</dt><dd>{}</dd>\
         <dt>Starts</dt><dd>{}</dd><dt>Ends</dt><dd>{}</dd><dt>Amount</dt><dd>{}</dd><dt>Balance due</dt><dd>{}</dd>\
         <dt>Status</dt><dd>{}</dd><dt>Completed</dt><dd>{}</dd><dt>Rating</dt><dd>{rating}</dd></dl>",
        e(customer_id),
        e(customer_id),
        e(text(&booking["service_type"])),
        when(ctx, &booking["start_at"]),
        when(ctx, &booking["end_at"]),
        money(&booking["amount_cents"], &booking["currency"]),
        money(&booking["balance_due_cents"], &booking["currency"]),
        status_word(text(&booking["status"])),
        when(ctx, &booking["completed_at"]),
    );
    let back = format!("/app/bookings/{id}");
    let actions = if text(&booking["status"]) == "scheduled" {
        format!(
            "<div class=\"actions\">{}{}</div>",
            html::button_form(
                &format!("/app/bookings/{id}/complete"),
                ctx.csrf(),
                &[("return_to", &back)],
                "Complete",
                ""
            ),
            html::button_form(
                &format!("/app/bookings/{id}/cancel"),
                ctx.csrf(),
                &[("return_to", &back)],
                "Cancel",
                "secondary"
            ),
        )
    } else {
        String::new()
    };
    let jobs = Answer::of(bookings::automations(&ctx.db, ctx.account(), id));
    let job_rows: String = jobs.body["data"]
        .as_array()
        .or_else(|| jobs.body.as_array())
        .into_iter()
        .flatten()
        .map(|job| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
                super::automations::title(text(&job["automation"])),
                when(ctx, &job["due_at"]),
                e(text(&job["status"])),
                job["attempts"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    let runs = if job_rows.is_empty() {
        "<p>No automation run is planned for this booking.</p>".to_owned()
    } else {
        format!(
            "<div class=\"table\"><table><thead><tr><th scope=\"col\">Automation</th><th scope=\"col\">Due</th>\
             <th scope=\"col\">Status</th><th scope=\"col\">Attempts</th></tr></thead><tbody>{job_rows}</tbody></table></div>"
        )
    };
    let history = Answer::of(activity::list(
        &ctx.db,
        &ctx.owner(),
        &query(&[("booking_id", id.as_str()), ("limit", "50")]),
    ));
    let items: String = history.body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|entry| {
            format!(
                "<li>{} — {}: {}</li>",
                when(ctx, &entry["occurred_at"]),
                super::activity::status_word(text(&entry["status"])),
                e(text(&entry["summary"]))
            )
        })
        .collect();
    let items = if items.is_empty() {
        "<p>Nothing has run yet.</p>".to_owned()
    } else {
        format!("<ul class=\"plain\">{items}</ul>")
    };
    let main = format!(
        "<h1>Booking</h1>{actions}<section class=\"card\" aria-labelledby=\"facts\"><h2 id=\"facts\">Details</h2>{facts}</section>\
         <section aria-labelledby=\"runs\"><h2 id=\"runs\">Automation runs</h2>{runs}</section>\
         <section aria-labelledby=\"log\"><h2 id=\"log\">Activity</h2>{items}\
         <p><a href=\"/app/activity?customer_id={}\">All activity of this customer</a></p></section>",
        e(customer_id)
    );
    Ok(html::page(
        200,
        "Booking",
        Some(&ctx.frame(Section::Bookings)),
        &main,
    ))
}

/// `POST /app/bookings/{id}/complete`.
pub fn complete(ctx: &Ctx, id: &BookingId, form: &Form) -> anyhow::Result<Response> {
    settle(
        id,
        form,
        bookings::complete(&ctx.db, ctx.account(), id, ctx.now),
    )
}

/// `POST /app/bookings/{id}/cancel`.
pub fn cancel(ctx: &Ctx, id: &BookingId, form: &Form) -> anyhow::Result<Response> {
    settle(
        id,
        form,
        bookings::cancel(&ctx.db, ctx.account(), id, ctx.now),
    )
}

fn settle(
    id: &BookingId,
    form: &Form,
    result: Result<Response, mio_platform::ApiError>,
) -> anyhow::Result<Response> {
    let answer = Answer::of(result);
    if !answer.ok() {
        return Ok(failure(&answer));
    }
    let fallback = format!("/app/bookings/{id}");
    Ok(html::redirect(return_path(
        form.text("return_to"),
        &fallback,
    )))
}
