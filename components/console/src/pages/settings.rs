//! Settings → Automations: the account's rules for every customer (payment on or off, when,
//! per-service-type timing; feedback on or off, its delay and staleness limit) and MioPay's
//! status. Saving is the API's `PUT /api/v1/settings/automations`: its field errors appear
//! beside the fields.

use super::param;
use crate::api::{Answer, text};
use crate::app::{Ctx, Form};
use crate::html::{self, FieldErrors, Section, e};
use mio_api::customers::handlers::settings;
use mio_shared::console::{Unit, in_units, to_minutes};
use serde_json::{Map, Value, json};
use spin_sdk::http::Response;

const TRIGGERS: [(&str, &str); 3] = [
    ("before_start", "Before the visit starts"),
    ("after_end", "After the visit ends"),
    ("after_complete", "After the job is marked complete"),
];

const UNITS: [(&str, &str); 3] = [("minutes", "minutes"), ("hours", "hours"), ("days", "days")];

/// `/app/settings/automations`.
pub fn page(ctx: &Ctx, query: &str) -> anyhow::Result<Response> {
    let rules = Answer::of(settings::get_rules(&ctx.db, ctx.account()));
    if !rules.ok() {
        return Ok(super::failure(&rules));
    }
    let saved = if param(query, "saved") == "1" {
        html::status("Rules saved.")
    } else {
        String::new()
    };
    Ok(render(ctx, 200, &rules.body, &[], &saved))
}

fn render(
    ctx: &Ctx,
    status: u16,
    rules: &Value,
    errors: &[(String, String)],
    message: &str,
) -> Response {
    let errors = FieldErrors(errors);
    let payment = &rules["payment"];
    let feedback = &rules["feedback"];
    let configured = rules["configured"].as_bool() == Some(true);
    let intro = if configured {
        String::new()
    } else {
        "<p class=\"prompt\">No rules are set yet, so no automation runs. The form shows the proposed rules: \
         saving them sets the rules for all customers.</p>"
            .to_owned()
    };
    let (offset, unit) = minutes_field(&payment["offset_minutes"]);
    let mut service_rows = String::new();
    let mut index = 0;
    if let Some(types) = payment["service_types"].as_object() {
        for (name, timing) in types {
            service_rows.push_str(&service_type_row(index, name, timing, &errors));
            index += 1;
        }
    }
    service_rows.push_str(&service_type_row(index, "", &json!({}), &errors));
    let (delay, delay_unit) = minutes_field(&feedback["delay_minutes"]);
    let (stale, stale_unit) = minutes_field(&feedback["stale_after_minutes"]);
    let shown = [
        "payment.enabled",
        "payment.trigger",
        "payment.offset_minutes",
        "payment.local_time",
        "payment.service_types",
        "feedback.enabled",
        "feedback.delay_minutes",
        "feedback.stale_after_minutes",
    ];
    let others = errors.others(&shown);
    let problem = if errors.0.is_empty() {
        String::new()
    } else {
        html::alert(
            "The rules were not saved: some fields need attention.",
            &others,
        )
    };
    let main = format!(
        "<h1>Automation settings</h1>{message}{problem}{intro}\
         <form method=\"post\" action=\"/app/settings/automations\">{}\
         <fieldset><legend>Payment Automation</legend>{}\
         <p class=\"hint\">Charges the customer's primary card for the booking's balance through MioPay.</p>\
         {}<div class=\"row\"><div>{}</div><div>{}</div></div>{}\
         <p class=\"hint\">Times of day are in the account's time zone, {}.</p>\
         <h3>Timing per service type</h3><p class=\"hint\">Optional: a service type listed here uses its own timing. \
         Leave the name empty to remove a row.</p>{service_rows}</fieldset>\
         <fieldset><legend>Service Feedback Automation</legend>{}\
         <p class=\"hint\">Asks the customer for a rating after the job is marked complete.</p>\
         <div class=\"row\"><div>{}</div><div>{}</div></div><div class=\"row\"><div>{}</div><div>{}</div></div></fieldset>\
         <div class=\"actions\"><button type=\"submit\">Save rules</button></div></form>{}",
        html::csrf_input(ctx.csrf()),
        html::checkbox(
            "payment_enabled",
            "Charge automatically",
            payment["enabled"].as_bool() == Some(true)
        ),
        html::select(
            "payment_trigger",
            "When",
            "payment.trigger",
            &TRIGGERS,
            text(&payment["trigger"]),
            &errors
        ),
        html::input(
            "payment_offset",
            "Offset",
            "payment.offset_minutes",
            "number",
            &offset,
            &errors
        ),
        html::select(
            "payment_unit",
            "Unit",
            "payment.offset_unit",
            &UNITS,
            unit,
            &errors
        ),
        html::input(
            "payment_local_time",
            "Time of day (optional)",
            "payment.local_time",
            "time",
            text(&payment["local_time"]),
            &errors
        ),
        e(text(&rules["timezone"])),
        html::checkbox(
            "feedback_enabled",
            "Ask for a rating",
            feedback["enabled"].as_bool() == Some(true)
        ),
        html::input(
            "feedback_delay",
            "Delay",
            "feedback.delay_minutes",
            "number",
            &delay,
            &errors
        ),
        html::select(
            "feedback_delay_unit",
            "Delay unit",
            "feedback.delay_unit",
            &UNITS,
            delay_unit,
            &errors
        ),
        html::input(
            "feedback_stale",
            "Skip requests older than",
            "feedback.stale_after_minutes",
            "number",
            &stale,
            &errors
        ),
        html::select(
            "feedback_stale_unit",
            "Age unit",
            "feedback.stale_unit",
            &UNITS,
            stale_unit,
            &errors
        ),
        miopay(ctx),
    );
    html::page(
        status,
        "Automation settings",
        Some(&ctx.frame(Section::Settings)),
        &main,
    )
}

/// A minutes value as the form shows it: the amount and its unit.
fn minutes_field(value: &Value) -> (String, &'static str) {
    match value.as_i64() {
        Some(minutes) => {
            let (amount, unit) = in_units(minutes);
            (amount.to_string(), unit.as_str())
        }
        // A value the API refused comes back as typed.
        None => (text(value).to_owned(), "minutes"),
    }
}

fn service_type_row(index: usize, name: &str, timing: &Value, errors: &FieldErrors<'_>) -> String {
    let field = format!("payment.service_types.{name}");
    let (offset, unit) = minutes_field(&timing["offset_minutes"]);
    let trigger = text(&timing["trigger"]);
    let trigger = if trigger.is_empty() {
        "before_start"
    } else {
        trigger
    };
    format!(
        "<fieldset><legend>Service type timing {}</legend><div class=\"row\"><div>{}</div><div>{}</div><div>{}</div><div>{}</div><div>{}</div></div></fieldset>",
        index + 1,
        html::input(
            &format!("st{index}_name"),
            "Service type",
            &field,
            "text",
            name,
            errors
        ),
        html::select(
            &format!("st{index}_trigger"),
            "Service type trigger",
            &format!("{field}.trigger"),
            &TRIGGERS,
            trigger,
            errors
        ),
        html::input(
            &format!("st{index}_offset"),
            "Service type offset",
            &format!("{field}.offset_minutes"),
            "number",
            &offset,
            errors
        ),
        html::select(
            &format!("st{index}_unit"),
            "Service type offset unit",
            &format!("{field}.unit"),
            &UNITS,
            unit,
            errors
        ),
        html::input(
            &format!("st{index}_time"),
            "Service type time of day",
            &format!("{field}.local_time"),
            "time",
            text(&timing["local_time"]),
            errors
        ),
    )
}

fn miopay(ctx: &Ctx) -> String {
    let answer = Answer::of(settings::get_miopay(&ctx.db, ctx.account()));
    let body = &answer.body;
    let state = match (body["enabled"].as_bool(), body["ready"].as_bool()) {
        (Some(true), Some(true)) => "On, ready to charge".to_owned(),
        (Some(true), _) => format!("On, not ready: {}", text(&body["reason"])),
        _ => "Off: payments are not charged until MioPay is enabled".to_owned(),
    };
    format!(
        "<section class=\"card\" aria-labelledby=\"miopay\"><h2 id=\"miopay\">MioPay</h2>\
         <dl class=\"facts\"><dt>Status</dt><dd>{}</dd><dt>Stripe account</dt><dd>{}</dd></dl>\
         <p class=\"hint\">MioPay is connected through the API (<code>PUT /api/v1/settings/miopay</code>).</p></section>",
        e(&state),
        super::shown(&body["stripe_account_id"]),
    )
}

/// A number of units typed in the form as minutes. What is not a whole number is reported
/// against `field` (the API's name) and sent as `0`, so the API still checks everything else.
fn minutes(
    form: &Form,
    amount: &str,
    unit: &str,
    field: &str,
    unreadable: &mut Vec<(String, String)>,
) -> Value {
    let typed = form.text(amount);
    let unit = Unit::parse(form.text(unit)).unwrap_or(Unit::Minutes);
    match typed.parse::<i64>().ok().and_then(|n| to_minutes(n, unit)) {
        Some(minutes) => json!(minutes),
        None => {
            unreadable.push((field.to_owned(), "must be a whole number".to_owned()));
            json!(0)
        }
    }
}

fn optional_time(form: &Form, name: &str) -> Value {
    match form.text(name) {
        "" => Value::Null,
        time => json!(time),
    }
}

/// The submitted form as the API's body, and the fields that did not read as numbers.
fn rules_body(form: &Form) -> (Value, Vec<(String, String)>) {
    let mut unreadable = Vec::new();
    let mut service_types = Map::new();
    for index in 0.. {
        let Some(name) = form.get(&format!("st{index}_name")) else {
            break;
        };
        let name = name.trim();
        if name.is_empty() {
            continue;
        }
        service_types.insert(
            name.to_owned(),
            json!({
                "trigger": form.text(&format!("st{index}_trigger")),
                "offset_minutes": minutes(
                    form,
                    &format!("st{index}_offset"),
                    &format!("st{index}_unit"),
                    &format!("payment.service_types.{name}.offset_minutes"),
                    &mut unreadable,
                ),
                "local_time": optional_time(form, &format!("st{index}_time")),
            }),
        );
    }
    let stale = match form.text("feedback_stale") {
        "" => Value::Null,
        _ => minutes(
            form,
            "feedback_stale",
            "feedback_stale_unit",
            "feedback.stale_after_minutes",
            &mut unreadable,
        ),
    };
    let payment_offset = minutes(
        form,
        "payment_offset",
        "payment_unit",
        "payment.offset_minutes",
        &mut unreadable,
    );
    let delay = minutes(
        form,
        "feedback_delay",
        "feedback_delay_unit",
        "feedback.delay_minutes",
        &mut unreadable,
    );
    let body = json!({
        "payment": {
            "enabled": form.checked("payment_enabled"),
            "trigger": form.text("payment_trigger"),
            "offset_minutes": payment_offset,
            "local_time": optional_time(form, "payment_local_time"),
            "service_types": service_types,
        },
        "feedback": {
            "enabled": form.checked("feedback_enabled"),
            "delay_minutes": delay,
            "stale_after_minutes": stale,
        },
    });
    (body, unreadable)
}

/// `POST /app/settings/automations`.
pub fn save(ctx: &Ctx, form: &Form) -> anyhow::Result<Response> {
    let (body, unreadable) = rules_body(form);
    // With a number that did not read, nothing is saved: the API only checks the rest.
    let answer = Answer::of(if unreadable.is_empty() {
        settings::put_rules(&ctx.db, ctx.account(), &serde_json::to_vec(&body)?, ctx.now)
    } else {
        settings::check_rules(&serde_json::to_vec(&body)?)
    });
    if answer.ok() && unreadable.is_empty() {
        return Ok(html::redirect("/app/settings/automations?saved=1"));
    }
    let mut errors = unreadable;
    errors.extend(answer.field_errors());
    let current = Answer::of(settings::get_rules(&ctx.db, ctx.account()));
    let mut shown = body;
    shown["configured"] = current.body["configured"].clone();
    shown["timezone"] = current.body["timezone"].clone();
    // What was typed, not the 0 sent in place of a number that did not read.
    for (name, field) in [
        ("payment_offset", "/payment/offset_minutes"),
        ("feedback_delay", "/feedback/delay_minutes"),
        ("feedback_stale", "/feedback/stale_after_minutes"),
    ] {
        if let Some(slot) = shown.pointer_mut(field)
            && (!form.text(name).is_empty() || !slot.is_null())
        {
            *slot = json!(form.text(name));
        }
    }
    let status = if answer.ok() { 400 } else { answer.status };
    Ok(render(ctx, status, &shown, &errors, ""))
}
