//! Customers → customer → Actions → Automations: each automation's state for this customer
//! (inherit / on / off), the decision in effect with its source and explanation, the next run,
//! and the history of changes. One click changes the state.

use super::{failure, when};
use crate::api::{Answer, text};
use crate::app::{Ctx, Form};
use crate::html::{self, Section, e};
use mio_api::customers::handlers::customers;
use mio_api::overrides::handlers::overrides;
use mio_shared::CustomerId;
use mio_shared::console::describe_timing;
use mio_shared::rules::{Automation, Trigger};
use serde_json::{Value, json};
use spin_sdk::http::Response;

/// The product's name of an automation.
pub fn title(automation: &str) -> &'static str {
    match automation {
        "payment" => "Payment Automation",
        "feedback" => "Service Feedback Automation",
        _ => "Automation",
    }
}

/// Where a decision came from, in words.
fn source(source: &str) -> &'static str {
    match source {
        "customer" => "customer override",
        "account" => "account rule",
        "service_type" => "service-type rule",
        _ => "no rules set",
    }
}

/// `/app/customers/{id}/automations`.
pub fn panel(ctx: &Ctx, id: &CustomerId, _query: &str) -> anyhow::Result<Response> {
    let customer = Answer::of(customers::get(&ctx.db, &ctx.owner(), id));
    if !customer.ok() {
        return Ok(failure(&customer));
    }
    let view = Answer::of(overrides::view(&ctx.db, &ctx.caller, id));
    if !view.ok() {
        return Ok(failure(&view));
    }
    let name = text(&customer.body["name"]);
    let prompt = if view.body["rules_configured"].as_bool() == Some(true) {
        String::new()
    } else {
        "<div class=\"prompt\" role=\"status\"><p>No automation rules are set for this account yet.</p>\
         <p><a href=\"/app/settings/automations\">Set automation rules for all customers</a></p></div>"
            .to_owned()
    };
    let sections: String = view.body["automations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|entry| section(ctx, id, entry))
        .collect();
    let main = format!(
        "<h1>Automations for {}</h1><p><a href=\"/app/customers/{id}\">Back to {}</a></p>{prompt}{sections}",
        e(name),
        e(name)
    );
    Ok(html::page(
        200,
        &format!("Automations for {name}"),
        Some(&ctx.frame(Section::Customers)),
        &main,
    ))
}

fn section(ctx: &Ctx, id: &CustomerId, entry: &Value) -> String {
    let automation = text(&entry["automation"]);
    let state = text(&entry["override"]);
    let effective = &entry["effective"];
    let on = effective["enabled"].as_bool() == Some(true);
    let buttons: String = [
        ("inherit", "Inherit"),
        ("enabled", "On"),
        ("disabled", "Off"),
    ]
    .iter()
    .map(|(value, label)| {
        format!(
            "<form method=\"post\" action=\"/app/customers/{id}/automations/{automation}\">{}\
                 <input type=\"hidden\" name=\"state\" value=\"{value}\">\
                 <button type=\"submit\" aria-pressed=\"{}\">{label}</button></form>",
            html::csrf_input(ctx.csrf()),
            state == *value
        )
    })
    .collect();
    let timing = match Trigger::parse(text(&effective["trigger"])) {
        Some(trigger) => format!(
            "<dt>Timing</dt><dd>{}</dd>",
            e(&describe_timing(
                trigger,
                effective["offset_minutes"].as_i64().unwrap_or_default(),
                effective["local_time"].as_str(),
            ))
        ),
        None => String::new(),
    };
    let next = if entry["next_run_at"].is_string() {
        when(ctx, &entry["next_run_at"])
    } else {
        "No run planned".to_owned()
    };
    let warnings: String = entry["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|warning| format!("<li>{}</li>", e(text(&warning["message"]))))
        .collect();
    let warnings = if warnings.is_empty() {
        String::new()
    } else {
        format!(
            "<div class=\"alert\"><p>Why it cannot succeed now:</p><ul class=\"plain\">{warnings}</ul></div>"
        )
    };
    let heading = format!("{automation}-title");
    format!(
        "<section class=\"card\" aria-labelledby=\"{heading}\"><h2 id=\"{heading}\">{}</h2>\
         <div class=\"actions\" role=\"group\" aria-label=\"{} for this customer\">{buttons}</div>\
         <p><strong>Effective: {}</strong> ({})</p>\
         <dl class=\"facts\"><dt>Why</dt><dd>{}</dd>{timing}<dt>Next run</dt><dd>{next}</dd></dl>{warnings}\
         <h3>Changes</h3>{}</section>",
        title(automation),
        title(automation),
        if on { "On" } else { "Off" },
        source(text(&effective["source"])),
        e(text(&effective["explanation"])),
        history(ctx, id, automation),
    )
}

fn state_name(state: &str) -> &'static str {
    match state {
        "enabled" => "On",
        "disabled" => "Off",
        _ => "Inherit",
    }
}

fn history(ctx: &Ctx, id: &CustomerId, automation: &str) -> String {
    let Some(automation) = Automation::parse(automation) else {
        return String::new();
    };
    let answer = Answer::of(overrides::history(
        &ctx.db,
        &ctx.caller,
        id,
        automation,
        "limit=10",
    ));
    let items: String = answer.body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|change| {
            format!(
                "<li>{}: {} → {} (by {})</li>",
                when(ctx, &change["changed_at"]),
                state_name(text(&change["old_state"])),
                state_name(text(&change["new_state"])),
                e(text(&change["changed_by"]))
            )
        })
        .collect();
    if items.is_empty() {
        "<p>No changes: it has always followed the account rule.</p>".to_owned()
    } else {
        format!("<ul class=\"plain\">{items}</ul>")
    }
}

/// `POST /app/customers/{id}/automations/{automation}`: the API's override change.
pub fn set(ctx: &Ctx, id: &CustomerId, automation: &str, form: &Form) -> anyhow::Result<Response> {
    let Some(parsed) = Automation::parse(automation) else {
        return Ok(crate::app::not_found());
    };
    let body = json!({"state": form.text("state")});
    let answer = Answer::of(overrides::set(
        &ctx.db,
        &ctx.caller,
        id,
        parsed,
        &serde_json::to_vec(&body)?,
        ctx.now,
    ));
    if !answer.ok() {
        return Ok(failure(&answer));
    }
    Ok(html::redirect(&format!("/app/customers/{id}/automations")))
}
