//! Customers: the searchable list, new and edit, import, delete, and the customer's profile.

use super::{create_once, failure, next_link, param, query, shown, unfielded};
use crate::api::{Answer, text};
use crate::app::{Ctx, Form};
use crate::html::{self, FieldErrors, Section, e};
use mio_api::customers::handlers::{bookings, customers, import};
use mio_platform::{Media, system};
use mio_shared::CustomerId;
use serde_json::{Map, Value, json};
use spin_sdk::http::Response;

const PAGE_SIZE: &str = "25";

/// `/app/customers?q=&cursor=`.
pub fn list(ctx: &Ctx, raw_query: &str) -> anyhow::Result<Response> {
    let q = param(raw_query, "q");
    let cursor = param(raw_query, "cursor");
    let answer = Answer::of(customers::list(
        &ctx.db,
        &ctx.owner(),
        &query(&[("q", &q), ("cursor", &cursor), ("limit", PAGE_SIZE)]),
    ));
    let problem = if answer.ok() {
        String::new()
    } else {
        html::alert(&answer.detail(), &answer.field_errors())
    };
    let rows: String = answer.body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|customer| {
            format!(
                "<tr><td><a href=\"/app/customers/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                e(text(&customer["id"])),
                e(text(&customer["name"])),
                shown(&customer["email"]),
                shown(&customer["phone"]),
                card_summary(&customer["primary_payment_method"]),
            )
        })
        .collect();
    let table = if rows.is_empty() {
        if q.is_empty() {
            "<p>No customers yet.</p>".to_owned()
        } else {
            format!("<p>No customer matches “{}”.</p>", e(&q))
        }
    } else {
        format!(
            "<div class=\"table\"><table><caption class=\"skip\">Customers</caption><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Email</th>\
             <th scope=\"col\">Phone</th><th scope=\"col\">Card</th></tr></thead><tbody>{rows}</tbody></table></div>"
        )
    };
    let main = format!(
        "<h1>Customers</h1>\
         <div class=\"actions\"><a class=\"button\" href=\"/app/customers/new\">New customer</a>\
         <a class=\"button secondary\" href=\"/app/customers/import\">Import customers</a></div>\
         <form role=\"search\" method=\"get\" action=\"/app/customers\" class=\"filters\">\
         <div><label for=\"q\">Search</label><input type=\"search\" id=\"q\" name=\"q\" value=\"{}\" \
         aria-describedby=\"q-hint\"><p class=\"hint\" id=\"q-hint\">Name, e-mail or phone.</p></div>\
         <button type=\"submit\">Search</button></form>{problem}{table}{}",
        e(&q),
        next_link("/app/customers", &[("q", &q)], &answer)
    );
    Ok(html::page(
        200,
        "Customers",
        Some(&ctx.frame(Section::Customers)),
        &main,
    ))
}

/// The primary card as people read it: `Visa •••• 4242, expires 12/2030`, or `No card on file`.
pub fn card_summary(card: &Value) -> String {
    if card.is_null() {
        return "No card on file".to_owned();
    }
    let brand = text(&card["brand"]);
    let mut brand_name = brand.to_owned();
    if let Some(first) = brand_name.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    format!(
        "{} •••• {}, expires {:02}/{}",
        e(&brand_name),
        e(text(&card["last4"])),
        card["exp_month"].as_i64().unwrap_or_default(),
        card["exp_year"].as_i64().unwrap_or_default()
    )
}

/// The fields of the customer form, as `(id, label, API field, input type)`.
const FIELDS: [(&str, &str, &str, &str); 6] = [
    ("name", "Name", "name", "text"),
    ("email", "Email", "email", "email"),
    ("phone", "Phone", "phone", "tel"),
    (
        "service_address",
        "Service address",
        "service_address",
        "text",
    ),
    (
        "billing_address",
        "Billing address",
        "billing_address",
        "text",
    ),
    ("notes", "Notes", "notes", "text"),
];

/// The customer form, filled with `values` (the customer, or what was submitted).
fn customer_form(
    ctx: &Ctx,
    action: &str,
    submit: &str,
    values: &Value,
    errors: &[(String, String)],
) -> anyhow::Result<String> {
    let errors = FieldErrors(errors);
    let fields: String = FIELDS
        .iter()
        .map(|(id, label, field, kind)| {
            if *id == "notes" {
                html::control(
                    id,
                    label,
                    field,
                    "<textarea",
                    &format!("{}</textarea>", e(text(&values[*field]))),
                    &errors,
                )
            } else {
                html::input(id, label, field, kind, text(&values[*field]), &errors)
            }
        })
        .collect();
    let notifications = &values["notifications"];
    let shown: Vec<&str> = FIELDS.iter().map(|(_, _, field, _)| *field).collect();
    let others = errors.others(&shown);
    let problem = if others.is_empty() {
        String::new()
    } else {
        html::alert("Some fields need attention.", &others)
    };
    Ok(format!(
        "{problem}<form class=\"card\" method=\"post\" action=\"{}\">{}{}{fields}\
         <fieldset><legend>Notification preferences</legend>{}{}</fieldset>\
         <div class=\"actions\"><button type=\"submit\">{}</button></div></form>",
        e(action),
        html::csrf_input(ctx.csrf()),
        html::idempotency_input()?,
        html::checkbox(
            "notify_email",
            "E-mail notifications",
            notifications["email"].as_bool().unwrap_or(true)
        ),
        html::checkbox(
            "notify_sms",
            "SMS notifications",
            notifications["sms"].as_bool().unwrap_or(true)
        ),
        e(submit)
    ))
}

/// The submitted customer form as the API's JSON: on create, empty fields are left out; on
/// update, they clear the stored value (`null`).
fn customer_body(form: &Form, clear_empty: bool) -> Value {
    let mut body = Map::new();
    for (id, _, field, _) in FIELDS {
        let value = form.text(id);
        if !value.is_empty() {
            body.insert(field.to_owned(), json!(value));
        } else if clear_empty || field == "name" {
            body.insert(
                field.to_owned(),
                if field == "name" {
                    json!("")
                } else {
                    Value::Null
                },
            );
        }
    }
    body.insert(
        "notifications".to_owned(),
        json!({"email": form.checked("notify_email"), "sms": form.checked("notify_sms")}),
    );
    Value::Object(body)
}

/// `/app/customers/new`.
pub fn new(ctx: &Ctx) -> anyhow::Result<Response> {
    let form = customer_form(ctx, "/app/customers", "Create customer", &json!({}), &[])?;
    Ok(html::page(
        200,
        "New customer",
        Some(&ctx.frame(Section::Customers)),
        &format!("<h1>New customer</h1>{form}"),
    ))
}

/// `POST /app/customers`: the API's create; its field errors come back beside the fields.
pub fn create(ctx: &Ctx, form: &Form) -> anyhow::Result<Response> {
    let body = customer_body(form, false);
    let bytes = serde_json::to_vec(&body)?;
    let answer = create_once(ctx, form, "/api/v1/customers", &bytes, || {
        let id = CustomerId::from_random(&system::random_bytes()?);
        customers::create(&ctx.db, &ctx.owner(), &bytes, &id, ctx.now)
    });
    if answer.ok() {
        return Ok(html::redirect(&format!(
            "/app/customers/{}",
            text(&answer.body["id"])
        )));
    }
    let form = customer_form(
        ctx,
        "/app/customers",
        "Create customer",
        &body,
        &answer.field_errors(),
    )?;
    Ok(html::page(
        answer.status,
        "New customer",
        Some(&ctx.frame(Section::Customers)),
        &format!("<h1>New customer</h1>{}{form}", unfielded(&answer)),
    ))
}

fn find(ctx: &Ctx, id: &CustomerId) -> Answer {
    Answer::of(customers::get(&ctx.db, &ctx.owner(), id))
}

/// `/app/customers/{id}/edit`.
pub fn edit(ctx: &Ctx, id: &CustomerId) -> anyhow::Result<Response> {
    let answer = find(ctx, id);
    if !answer.ok() {
        return Ok(failure(&answer));
    }
    let name = text(&answer.body["name"]).to_owned();
    let form = customer_form(
        ctx,
        &format!("/app/customers/{id}"),
        "Save customer",
        &answer.body,
        &[],
    )?;
    Ok(html::page(
        200,
        &format!("Edit {name}"),
        Some(&ctx.frame(Section::Customers)),
        &format!("<h1>Edit {}</h1>{form}", e(&name)),
    ))
}

/// `POST /app/customers/{id}`: the API's update (PATCH).
pub fn update(ctx: &Ctx, id: &CustomerId, form: &Form) -> anyhow::Result<Response> {
    let body = customer_body(form, true);
    let answer = Answer::of(customers::update(
        &ctx.db,
        ctx.account(),
        id,
        &serde_json::to_vec(&body)?,
        ctx.now,
    ));
    if answer.ok() {
        return Ok(html::redirect(&format!("/app/customers/{id}")));
    }
    if answer.status == 404 {
        return Ok(failure(&answer));
    }
    let form = customer_form(
        ctx,
        &format!("/app/customers/{id}"),
        "Save customer",
        &body,
        &answer.field_errors(),
    )?;
    Ok(html::page(
        answer.status,
        "Edit customer",
        Some(&ctx.frame(Section::Customers)),
        &format!("<h1>Edit customer</h1>{}{form}", unfielded(&answer)),
    ))
}

/// The customer's open bookings (first page), for the profile and the delete confirmation.
fn bookings_of(ctx: &Ctx, id: &CustomerId, status: &str) -> Answer {
    Answer::of(bookings::list(
        &ctx.db,
        ctx.account(),
        &query(&[
            ("customer_id", id.as_str()),
            ("status", status),
            ("limit", "200"),
        ]),
    ))
}

/// `/app/customers/{id}`: contact details, notification preferences, the card on file, the
/// bookings (with complete and cancel) and the actions.
pub fn profile(ctx: &Ctx, id: &CustomerId) -> anyhow::Result<Response> {
    let answer = find(ctx, id);
    if !answer.ok() {
        return Ok(failure(&answer));
    }
    let customer = &answer.body;
    let name = text(&customer["name"]);
    let yes_no = |value: &Value| {
        if value.as_bool() == Some(true) {
            "Yes"
        } else {
            "No"
        }
    };
    let facts = format!(
        "<dl class=\"facts\"><dt>Email</dt><dd>{}</dd><dt>Phone</dt><dd>{}</dd>\
         <dt>Service address</dt><dd>{}</dd><dt>Billing address</dt><dd>{}</dd><dt>Notes</dt><dd>{}</dd></dl>",
        shown(&customer["email"]),
        shown(&customer["phone"]),
        shown(&customer["service_address"]),
        shown(&customer["billing_address"]),
        shown(&customer["notes"]),
    );
    let notifications = format!(
        "<dl class=\"facts\"><dt>E-mail notifications</dt><dd>{}</dd><dt>SMS notifications</dt><dd>{}</dd></dl>",
        yes_no(&customer["notifications"]["email"]),
        yes_no(&customer["notifications"]["sms"]),
    );
    let card = format!(
        "<p>{}</p><p class=\"hint\">A card is saved when the customer completes a payment-method request (API: <code>POST /api/v1/customers/{}/payment-method-requests</code>).</p>",
        card_summary(&customer["primary_payment_method"]),
        e(id.as_str())
    );
    let all = Answer::of(bookings::list(
        &ctx.db,
        ctx.account(),
        &query(&[("customer_id", id.as_str()), ("limit", "200")]),
    ));
    let (upcoming, past): (Vec<&Value>, Vec<&Value>) = all.body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .partition(|booking| {
            text(&booking["status"]) == "scheduled"
                && mio_shared::Timestamp::parse(text(&booking["end_at"]))
                    .is_ok_and(|end| end >= ctx.now)
        });
    let return_to = format!("/app/customers/{id}");
    let main = format!(
        "<h1>{}</h1>\
         <nav aria-label=\"Actions\" class=\"actions\"><a class=\"button\" href=\"/app/customers/{id}/automations\">Automations</a>\
         <a class=\"button secondary\" href=\"/app/bookings/new?customer_id={id}\">New booking</a>\
         <a class=\"button secondary\" href=\"/app/customers/{id}/edit\">Edit</a>\
         <a class=\"button secondary\" href=\"/app/customers/{id}/delete\">Delete customer</a></nav>\
         <section class=\"card\" aria-labelledby=\"contact\"><h2 id=\"contact\">Contact</h2>{facts}</section>\
         <section class=\"card\" aria-labelledby=\"prefs\"><h2 id=\"prefs\">Notification preferences</h2>{notifications}</section>\
         <section class=\"card\" aria-labelledby=\"card\"><h2 id=\"card\">Card on file</h2>{card}</section>\
         <section aria-labelledby=\"upcoming\"><h2 id=\"upcoming\">Upcoming bookings</h2>{}</section>\
         <section aria-labelledby=\"past\"><h2 id=\"past\">Past bookings</h2>{}</section>",
        e(name),
        super::bookings::table(ctx, &upcoming, Some(&return_to), false),
        super::bookings::table(ctx, &past, Some(&return_to), false),
    );
    Ok(html::page(
        200,
        name,
        Some(&ctx.frame(Section::Customers)),
        &main,
    ))
}

/// `/app/customers/{id}/delete`: what deleting cancels, and the button.
pub fn confirm_delete(ctx: &Ctx, id: &CustomerId) -> anyhow::Result<Response> {
    let answer = find(ctx, id);
    if !answer.ok() {
        return Ok(failure(&answer));
    }
    let name = text(&answer.body["name"]);
    let open = bookings_of(ctx, id, "scheduled");
    let count = open.body["data"].as_array().map_or(0, Vec::len);
    let count = if open.body["next_cursor"].is_string() {
        format!("{count} or more open bookings")
    } else if count == 1 {
        "1 open booking".to_owned()
    } else {
        format!("{count} open bookings")
    };
    let main = format!(
        "<h1>Delete {}?</h1><div class=\"card\"><p>Deleting {} cancels {count} and every automation run \
         planned for them (no further charges or rating requests). The activity history stays.</p>\
         <p>This cannot be undone.</p><div class=\"actions\">{}<a href=\"/app/customers/{id}\">Keep the customer</a></div></div>",
        e(name),
        e(name),
        html::button_form(
            &format!("/app/customers/{id}/delete"),
            ctx.csrf(),
            &[],
            "Delete customer",
            "danger"
        ),
    );
    Ok(html::page(
        200,
        &format!("Delete {name}"),
        Some(&ctx.frame(Section::Customers)),
        &main,
    ))
}

/// `POST /app/customers/{id}/delete`: the API's delete.
pub fn delete(ctx: &Ctx, id: &CustomerId) -> anyhow::Result<Response> {
    let answer = Answer::of(customers::delete(&ctx.db, ctx.account(), id, ctx.now));
    if !answer.ok() {
        return Ok(failure(&answer));
    }
    Ok(html::redirect("/app/customers"))
}

/// `/app/customers/import`.
pub fn import_form(ctx: &Ctx) -> Response {
    html::page(
        200,
        "Import customers",
        Some(&ctx.frame(Section::Customers)),
        &format!("<h1>Import customers</h1>{}", upload_form(ctx)),
    )
}

fn upload_form(ctx: &Ctx) -> String {
    format!(
        "<form class=\"card\" method=\"post\" action=\"/app/customers/import\" enctype=\"multipart/form-data\">{}\
         <label for=\"file\">CSV file</label><input type=\"file\" id=\"file\" name=\"file\" accept=\".csv,text/csv\" required aria-describedby=\"file-hint\">\
         <p class=\"hint\" id=\"file-hint\">A header row <code>name,email,phone,service_address,billing_address,notes</code>, then one customer per line. \
         A customer whose e-mail is already known is updated. Good rows are kept even when others fail.</p>\
         <div class=\"actions\"><button type=\"submit\">Import</button></div></form>",
        html::csrf_input(ctx.csrf())
    )
}

/// `POST /app/customers/import`: the API's CSV import, and its report by line.
pub fn import(ctx: &Ctx, form: &Form) -> anyhow::Result<Response> {
    let frame = ctx.frame(Section::Customers);
    let Some(file) = form.file("file") else {
        let main = format!(
            "<h1>Import customers</h1>{}{}",
            html::alert("Choose a CSV file to import.", &[]),
            upload_form(ctx)
        );
        return Ok(html::page(422, "Import customers", Some(&frame), &main));
    };
    let answer = Answer::of(import::import(
        &ctx.db,
        ctx.account(),
        Media::Csv,
        file,
        ctx.now,
    ));
    if !answer.ok() {
        let main = format!(
            "<h1>Import customers</h1>{}{}",
            html::alert(&answer.detail(), &answer.field_errors()),
            upload_form(ctx)
        );
        return Ok(html::page(
            answer.status,
            "Import customers",
            Some(&frame),
            &main,
        ));
    }
    let failed: String = answer.body["failed"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|row| {
            let reasons: Vec<String> = row["errors"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|error| match error.as_str() {
                    Some(message) => message.to_owned(),
                    None => format!("{}: {}", text(&error["field"]), text(&error["message"])),
                })
                .collect();
            format!(
                "<li>Line {}: {}</li>",
                row["line"].as_i64().unwrap_or_default(),
                e(&reasons.join("; "))
            )
        })
        .collect();
    let failed = if failed.is_empty() {
        "<p>No row failed.</p>".to_owned()
    } else {
        format!("<h2>Rows not imported</h2><ul>{failed}</ul>")
    };
    let main = format!(
        "<h1>Import customers</h1><div class=\"card\" role=\"status\"><p>Created: {}</p><p>Updated: {}</p></div>{failed}\
         <p><a href=\"/app/customers\">Back to customers</a></p>",
        answer.body["created"].as_i64().unwrap_or_default(),
        answer.body["updated"].as_i64().unwrap_or_default(),
    );
    Ok(html::page(200, "Import customers", Some(&frame), &main))
}
