//! Per-customer automation overrides, end to end on the real components: the account's rules
//! (customer-api), bookings and their planned runs (customer-api), and the overrides, their
//! effective view and history (override-toggle). Every response is checked against the
//! OpenAPI document the app serves.

use crate::support::openapi;
use chrono::{DateTime, Duration, DurationRound, SecondsFormat, Utc};
use mio_tests::{TestApp, assert_documented};
use reqwest::Method;
use serde_json::{Value, json};

/// One account of a running app, calling through documented routes only.
struct Client<'a> {
    app: &'a TestApp,
    token: String,
    doc: &'a Value,
}

impl Client<'_> {
    /// Sends `method path` (with the account's token and a JSON body), checks the answer
    /// against the OpenAPI operation `template`, and returns it.
    async fn call(
        &self,
        method: Method,
        path: &str,
        template: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, answer) = self
            .app
            .call(method.clone(), path, Some(&self.token), body)
            .await;
        assert_documented(self.doc, &method, template, status, &answer);
        (status, answer)
    }

    async fn expect(
        &self,
        method: Method,
        path: &str,
        template: &str,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let (got, answer) = self.call(method.clone(), path, template, body).await;
        assert_eq!(got, status, "{method} {path}: {answer}");
        answer
    }

    async fn set_rules(&self, rules: Value) {
        self.expect(
            Method::PUT,
            "/api/v1/settings/automations",
            "/api/v1/settings/automations",
            Some(rules),
            200,
        )
        .await;
    }

    async fn customer(&self, name: &str) -> String {
        let customer = self
            .expect(
                Method::POST,
                "/api/v1/customers",
                "/api/v1/customers",
                Some(json!({"name": name})),
                201,
            )
            .await;
        customer["id"].as_str().expect("id").to_owned()
    }

    /// A one-time booking of `service_type` starting `days` from now (on the hour), two hours
    /// long.
    async fn booking(&self, customer_id: &str, service_type: &str, days: i64) -> Value {
        let start = (Utc::now() + Duration::days(days))
            .duration_trunc(Duration::hours(1))
            .expect("truncates");
        self.expect(
            Method::POST,
            "/api/v1/bookings",
            "/api/v1/bookings",
            Some(json!({
                "customer_id": customer_id,
                "service_type": service_type,
                "start_at": rfc3339(start),
                "end_at": rfc3339(start + Duration::hours(2)),
                "amount_cents": 12_500,
                "currency": "usd",
            })),
            201,
        )
        .await
    }

    async fn complete(&self, booking: &Value) {
        let path = format!("/api/v1/bookings/{}/complete", id(booking));
        self.expect(
            Method::POST,
            &path,
            "/api/v1/bookings/{id}/complete",
            None,
            200,
        )
        .await;
    }

    /// The booking's runs of `automation`.
    async fn runs(&self, booking: &Value, automation: &str) -> Vec<Value> {
        let path = format!("/api/v1/bookings/{}/automations", id(booking));
        let answer = self
            .expect(
                Method::GET,
                &path,
                "/api/v1/bookings/{id}/automations",
                None,
                200,
            )
            .await;
        let runs = match &answer {
            Value::Array(runs) => runs.clone(),
            other => other["data"].as_array().expect("data").clone(),
        };
        runs.into_iter()
            .filter(|run| run["automation"] == automation)
            .collect()
    }

    /// The statuses of the booking's runs of `automation`.
    async fn run_statuses(&self, booking: &Value, automation: &str) -> Vec<String> {
        self.runs(booking, automation)
            .await
            .iter()
            .map(|run| run["status"].as_str().expect("status").to_owned())
            .collect()
    }

    async fn view(&self, customer_id: &str) -> Value {
        self.expect(
            Method::GET,
            &format!("/api/v1/customers/{customer_id}/automations"),
            "/api/v1/customers/{id}/automations",
            None,
            200,
        )
        .await
    }

    async fn put_override(&self, customer_id: &str, automation: &str, body: Value) -> (u16, Value) {
        self.call(
            Method::PUT,
            &format!("/api/v1/customers/{customer_id}/automations/{automation}"),
            "/api/v1/customers/{id}/automations/{automation}",
            Some(body),
        )
        .await
    }

    async fn set_override(&self, customer_id: &str, automation: &str, body: Value) -> Value {
        let (status, entry) = self.put_override(customer_id, automation, body).await;
        assert_eq!(status, 200, "{entry}");
        entry
    }

    async fn history(&self, customer_id: &str, automation: &str) -> Vec<Value> {
        let page = self
            .expect(
                Method::GET,
                &format!("/api/v1/customers/{customer_id}/automations/{automation}/history"),
                "/api/v1/customers/{id}/automations/{automation}/history",
                None,
                200,
            )
            .await;
        assert_eq!(page["next_cursor"], Value::Null);
        page["data"].as_array().expect("data").clone()
    }
}

async fn client<'a>(app: &'a TestApp, doc: &'a Value, name: &str) -> Client<'a> {
    let (_, token) = app.create_account(name).await;
    Client { app, token, doc }
}

fn rfc3339(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn instant(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().expect("a timestamp"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

fn id(resource: &Value) -> &str {
    resource["id"].as_str().expect("id")
}

/// Payment one day before the start, feedback an hour after completion, both on.
fn rules(payment: bool, feedback: bool) -> Value {
    json!({
        "payment": {"enabled": payment, "trigger": "before_start", "offset_minutes": 1440},
        "feedback": {"enabled": feedback, "delay_minutes": 60},
    })
}

fn entry<'v>(view: &'v Value, automation: &str) -> &'v Value {
    view["automations"]
        .as_array()
        .expect("automations")
        .iter()
        .find(|entry| entry["automation"] == automation)
        .unwrap_or_else(|| panic!("no {automation} entry in {view}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_override_disables_global_payment_rule_for_that_customer_only() {
    let app = TestApp::spawn().await;
    let doc = openapi(&app).await;
    let api = client(&app, &doc, "Sparkle").await;
    api.set_rules(rules(true, true)).await;
    let (ada, grace) = (api.customer("Ada").await, api.customer("Grace").await);

    let entry_after = api
        .set_override(&ada, "payment", json!({"state": "disabled"}))
        .await;
    assert_eq!(entry_after["override"], "disabled");
    assert_eq!(entry_after["effective"]["enabled"], false);
    assert_eq!(entry_after["effective"]["source"], "customer");

    let adas = api.booking(&ada, "standard", 10).await;
    let graces = api.booking(&grace, "standard", 10).await;
    assert_eq!(
        api.run_statuses(&adas, "payment").await,
        Vec::<String>::new()
    );
    assert_eq!(api.run_statuses(&graces, "payment").await, ["scheduled"]);

    let view = api.view(&ada).await;
    assert_eq!(view["rules_configured"], true);
    assert_eq!(entry(&view, "payment")["effective"]["enabled"], false);
    assert_eq!(entry(&view, "payment")["next_run_at"], Value::Null);
    assert_eq!(entry(&view, "feedback")["override"], "inherit");
    assert_eq!(entry(&view, "feedback")["effective"]["source"], "account");
    let view = api.view(&grace).await;
    let payment = entry(&view, "payment");
    assert_eq!(payment["override"], "inherit");
    assert_eq!(payment["effective"]["enabled"], true);
    assert_eq!(payment["effective"]["source"], "account");
    assert_eq!(
        payment["next_run_at"],
        api.runs(&graces, "payment").await[0]["due_at"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_stays_on_while_feedback_is_off_for_the_same_customer() {
    let app = TestApp::spawn().await;
    let doc = openapi(&app).await;
    let api = client(&app, &doc, "Sparkle").await;
    api.set_rules(rules(true, true)).await;
    let (ada, grace) = (api.customer("Ada").await, api.customer("Grace").await);
    api.set_override(&ada, "feedback", json!({"state": "disabled"}))
        .await;

    let adas = api.booking(&ada, "standard", 10).await;
    let graces = api.booking(&grace, "standard", 10).await;
    api.complete(&adas).await;
    api.complete(&graces).await;
    assert_eq!(
        api.run_statuses(&adas, "feedback").await,
        Vec::<String>::new()
    );
    assert_eq!(api.run_statuses(&graces, "feedback").await, ["scheduled"]);
    assert_eq!(api.runs(&adas, "payment").await.len(), 1);

    let view = api.view(&ada).await;
    assert_eq!(entry(&view, "payment")["effective"]["enabled"], true);
    assert_eq!(entry(&view, "payment")["effective"]["source"], "account");
    assert_eq!(entry(&view, "feedback")["effective"]["enabled"], false);
    assert_eq!(entry(&view, "feedback")["effective"]["source"], "customer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_to_inherit_follows_the_account_rule_again() {
    let app = TestApp::spawn().await;
    let doc = openapi(&app).await;
    let api = client(&app, &doc, "Sparkle").await;
    api.set_rules(rules(true, true)).await;
    let ada = api.customer("Ada").await;
    api.set_override(&ada, "payment", json!({"state": "disabled"}))
        .await;
    let booking = api.booking(&ada, "standard", 10).await;
    assert!(api.runs(&booking, "payment").await.is_empty());

    let back = api
        .set_override(&ada, "payment", json!({"state": "inherit"}))
        .await;
    assert_eq!(back["override"], "inherit");
    assert_eq!(back["effective"]["enabled"], true);
    assert_eq!(back["effective"]["source"], "account");
    assert_eq!(
        api.run_statuses(&booking, "payment").await,
        ["scheduled"],
        "inheriting again plans the run the account rule wants"
    );
    let due = api.runs(&booking, "payment").await[0]["due_at"].clone();
    assert_eq!(
        instant(&due),
        instant(&booking["start_at"]) - Duration::days(1)
    );
    assert_eq!(back["next_run_at"], due);

    api.set_rules(rules(false, true)).await;
    let view = api.view(&ada).await;
    assert_eq!(entry(&view, "payment")["effective"]["enabled"], false);
    assert_eq!(entry(&view, "payment")["effective"]["source"], "account");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_account_rules_the_view_says_so_and_where_to_set_them() {
    let app = TestApp::spawn().await;
    let doc = openapi(&app).await;
    let api = client(&app, &doc, "New business").await;
    let ada = api.customer("Ada").await;
    let view = api.view(&ada).await;
    assert_eq!(view["rules_configured"], false);
    assert_eq!(view["set_rules_url"], "/api/v1/settings/automations");
    for automation in ["payment", "feedback"] {
        let entry = entry(&view, automation);
        assert_eq!(entry["override"], "inherit");
        assert_eq!(entry["effective"]["enabled"], false);
        assert_eq!(entry["effective"]["source"], "not_configured");
        assert_eq!(entry["effective"]["trigger"], Value::Null);
        assert_eq!(entry["next_run_at"], Value::Null);
    }
    // The link leads where it says.
    let settings = api
        .expect(
            Method::GET,
            "/api/v1/settings/automations",
            "/api/v1/settings/automations",
            None,
            200,
        )
        .await;
    assert_eq!(settings["configured"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_timing_beats_service_type_and_account_timing() {
    let app = TestApp::spawn().await;
    let doc = openapi(&app).await;
    let api = client(&app, &doc, "Sparkle").await;
    api.set_rules(json!({
        "payment": {
            "enabled": true, "trigger": "before_start", "offset_minutes": 1440,
            "service_types": {"deep_clean": {"trigger": "after_end", "offset_minutes": 60}},
        },
        "feedback": {"enabled": true, "delay_minutes": 60},
    }))
    .await;
    let (ada, grace) = (api.customer("Ada").await, api.customer("Grace").await);
    let entry_after = api
        .set_override(
            &ada,
            "payment",
            json!({"state": "inherit", "timing": {"trigger": "before_start", "offset_minutes": 120}}),
        )
        .await;
    assert_eq!(
        entry_after["timing"],
        json!({"trigger": "before_start", "offset_minutes": 120, "local_time": null})
    );
    assert_eq!(entry_after["effective"]["enabled"], true);
    assert_eq!(entry_after["effective"]["source"], "account");
    assert_eq!(entry_after["effective"]["timing_source"], "customer");
    assert_eq!(entry_after["effective"]["offset_minutes"], 120);

    let due = |runs: Vec<Value>| instant(&runs[0]["due_at"]);
    let adas = api.booking(&ada, "deep_clean", 10).await;
    assert_eq!(
        due(api.runs(&adas, "payment").await),
        instant(&adas["start_at"]) - Duration::hours(2),
        "the customer's timing"
    );
    let graces_deep = api.booking(&grace, "deep_clean", 10).await;
    assert_eq!(
        due(api.runs(&graces_deep, "payment").await),
        instant(&graces_deep["end_at"]) + Duration::hours(1),
        "the service type's timing"
    );
    let graces_standard = api.booking(&grace, "standard", 11).await;
    assert_eq!(
        due(api.runs(&graces_standard, "payment").await),
        instant(&graces_standard["start_at"]) - Duration::days(1),
        "the account's timing"
    );
    let view = api.view(&grace).await;
    assert_eq!(
        entry(&view, "payment")["effective"]["timing_source"],
        "account"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_an_override_off_cancels_the_already_scheduled_run() {
    let app = TestApp::spawn().await;
    let doc = openapi(&app).await;
    let api = client(&app, &doc, "Sparkle").await;
    api.set_rules(rules(true, true)).await;
    let ada = api.customer("Ada").await;
    let booking = api.booking(&ada, "standard", 10).await;
    assert_eq!(api.run_statuses(&booking, "payment").await, ["scheduled"]);
    let before = api.view(&ada).await;
    assert_eq!(
        entry(&before, "payment")["next_run_at"],
        api.runs(&booking, "payment").await[0]["due_at"]
    );

    let off = api
        .set_override(&ada, "payment", json!({"state": "disabled"}))
        .await;
    assert_eq!(off["next_run_at"], Value::Null);
    assert_eq!(api.run_statuses(&booking, "payment").await, ["cancelled"]);

    // And on again: the run comes back.
    api.set_override(&ada, "payment", json!({"state": "enabled"}))
        .await;
    assert_eq!(api.run_statuses(&booking, "payment").await, ["scheduled"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_override_change_is_in_the_history_with_who_when_and_old_and_new() {
    let app = TestApp::spawn().await;
    let doc = openapi(&app).await;
    let api = client(&app, &doc, "Sparkle").await;
    api.set_rules(rules(true, true)).await;
    let ada = api.customer("Ada").await;
    assert!(api.history(&ada, "payment").await.is_empty());

    let start = Utc::now() - Duration::seconds(1);
    let timing = json!({"trigger": "after_end", "offset_minutes": 30, "local_time": null});
    api.set_override(&ada, "payment", json!({"state": "disabled"}))
        .await;
    let enabled = api
        .set_override(
            &ada,
            "payment",
            json!({"state": "enabled", "timing": {"trigger": "after_end", "offset_minutes": 30}}),
        )
        .await;
    // The same value again is not a change.
    api.set_override(
        &ada,
        "payment",
        json!({"state": "enabled", "timing": timing.clone()}),
    )
    .await;
    api.set_override(&ada, "payment", json!({"state": "inherit"}))
        .await;
    let end = Utc::now() + Duration::seconds(1);

    let history = api.history(&ada, "payment").await;
    let steps: Vec<(&Value, &Value, &Value, &Value)> = history
        .iter()
        .map(|c| {
            (
                &c["old_state"],
                &c["new_state"],
                &c["old_timing"],
                &c["new_timing"],
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            (&json!("enabled"), &json!("inherit"), &timing, &Value::Null),
            (&json!("disabled"), &json!("enabled"), &Value::Null, &timing),
            (
                &json!("inherit"),
                &json!("disabled"),
                &Value::Null,
                &Value::Null
            ),
        ],
        "newest first"
    );
    let label = enabled["updated_by"].as_str().expect("who");
    assert!(
        label.starts_with("tok_") && label.len() == 16 && !api.token.contains(&label[4..]),
        "a label that identifies the token without revealing it: {label}"
    );
    for change in &history {
        assert_eq!(change["changed_by"], label);
        let when = instant(&change["changed_at"]);
        assert!(start <= when && when <= end, "{when}");
    }
    assert_eq!(history[1]["changed_at"], enabled["updated_at"]);
    assert!(
        api.history(&ada, "feedback").await.is_empty(),
        "each automation has its own history"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_accounts_customer_answers_404_and_is_not_touched() {
    let app = TestApp::spawn().await;
    let doc = openapi(&app).await;
    let owner = client(&app, &doc, "Owner").await;
    let stranger = client(&app, &doc, "Stranger").await;
    owner.set_rules(rules(true, true)).await;
    stranger.set_rules(rules(true, true)).await;
    let ada = owner.customer("Ada").await;

    let base = format!("/api/v1/customers/{ada}/automations");
    let (status, _) = stranger
        .call(
            Method::GET,
            &base,
            "/api/v1/customers/{id}/automations",
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = stranger
        .put_override(&ada, "payment", json!({"state": "disabled"}))
        .await;
    assert_eq!(status, 404);
    let (status, _) = stranger
        .call(
            Method::GET,
            &format!("{base}/payment/history"),
            "/api/v1/customers/{id}/automations/{automation}/history",
            None,
        )
        .await;
    assert_eq!(status, 404);

    let view = owner.view(&ada).await;
    assert_eq!(entry(&view, "payment")["override"], "inherit");
    assert!(owner.history(&ada, "payment").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_override_is_refused_with_field_errors_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let doc = openapi(&app).await;
    let api = client(&app, &doc, "Sparkle").await;
    api.set_rules(rules(true, true)).await;
    let ada = api.customer("Ada").await;
    let booking = api.booking(&ada, "standard", 10).await;

    let fields = |problem: &Value| -> Vec<String> {
        problem["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| e["field"].as_str().expect("field").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    for (automation, body, expected) in [
        ("payment", json!({"state": "off"}), vec!["state"]),
        ("payment", json!({}), vec!["state"]),
        ("payment", json!({"state": 1}), vec!["state"]),
        (
            "payment",
            json!({"state": "disabled", "timing": {"trigger": "later", "offset_minutes": -1}}),
            vec!["timing.trigger", "timing.offset_minutes"],
        ),
        (
            "feedback",
            json!({"state": "enabled", "timing": {"trigger": "after_end", "offset_minutes": 60}}),
            vec!["timing.trigger"],
        ),
        (
            "payment",
            json!({"state": "disabled", "updated_by": "me"}),
            vec!["updated_by"],
        ),
    ] {
        let (status, problem) = api.put_override(&ada, automation, body.clone()).await;
        assert_eq!(status, 400, "{body}: {problem}");
        assert_eq!(problem["type"], "/problems/validation", "{problem}");
        assert_eq!(fields(&problem), expected, "{body}: {problem}");
    }

    let put = format!("/api/v1/customers/{ada}/automations/payment");
    let template = "/api/v1/customers/{id}/automations/{automation}";
    let res = app
        .client
        .put(app.url(&put))
        .bearer_auth(&api.token)
        .header("content-type", "application/json")
        .body(r#"{"state": "disabled""#)
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    let problem: Value = res.json().await.expect("json");
    assert_documented(&doc, &Method::PUT, template, status, &problem);
    assert_eq!(
        (status, &problem["type"]),
        (400, &json!("/problems/malformed-json"))
    );
    let res = app
        .client
        .put(app.url(&put))
        .bearer_auth(&api.token)
        .header("content-type", "text/plain")
        .body(r#"{"state": "disabled"}"#)
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    let problem: Value = res.json().await.expect("json");
    assert_documented(&doc, &Method::PUT, template, status, &problem);
    assert_eq!(status, 415);

    let (status, problem) = app
        .call(Method::PUT, &put, None, Some(json!({"state": "disabled"})))
        .await;
    assert_documented(&doc, &Method::PUT, template, status, &problem);
    assert_eq!(status, 401);
    let (status, _) = api
        .put_override(&ada, "sms", json!({"state": "disabled"}))
        .await;
    assert_eq!(status, 404, "unknown automation");
    let (status, _) = api.call(Method::GET, &put, template, None).await;
    assert_eq!(status, 405);

    let view = api.view(&ada).await;
    for automation in ["payment", "feedback"] {
        assert_eq!(entry(&view, automation)["override"], "inherit");
        assert_eq!(entry(&view, automation)["updated_at"], Value::Null);
        assert!(api.history(&ada, automation).await.is_empty());
    }
    assert_eq!(api.run_statuses(&booking, "payment").await, ["scheduled"]);
}
