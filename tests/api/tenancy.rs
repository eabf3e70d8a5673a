//! Tenant isolation, generated from the OpenAPI document the app serves. Account A gets one of
//! every kind of resource; account B gets its own. Then every operation of the document that
//! takes an id (a path parameter, a query parameter or a request-body field, as the document
//! declares them) is sent with B's token and A's ids, with a body that is otherwise valid, and
//! must answer what the API promises for another account's id: 404 problem+json (or the refusal
//! the document names for that route), never 403, never any of A's data. Every table of every
//! SQLite file of the app is the same, row for row, before and after. The operations without an
//! id are sent too: B's reads show nothing of A's, and B's writes touch no row of A's.
//!
//! The matrix is only as good as the document, so it refuses to guess: an operation neither
//! covered nor listed in [`SKIPPED`], a parameter, id field or request schema the builder does
//! not know, or a security scheme it cannot place fails the test, naming the operation. It does
//! not check response schemas (`openapi.rs` and the route tests do that).

use std::collections::{BTreeMap, BTreeSet};

use crate::support::{in_hours, openapi, spawn_on_stripe, tick};
use mio_tests::TestApp;
use mio_tests::fake_notify::WebhookSink;
use mio_tests::fake_stripe::FakeStripe;
use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

const A_STRIPE_ACCOUNT: &str = "acct_1TenantAlpha";
const A_STRIPE_CUSTOMER: &str = "cus_TenantAlphaAda";
const A_CARD: &str = "pm_tenant_alpha_visa";
const A_SERVICE: &str = "alpha-deep-clean";
const A_COMMENT: &str = "Alpha was spotless";
const B_STRIPE_ACCOUNT: &str = "acct_1TenantBravo";
const B_STRIPE_CUSTOMER: &str = "cus_TenantBravoBob";
const B_CARD: &str = "pm_tenant_bravo_visa";
const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const PUBLIC_BASE: &str = "https://mio.example";

/// Fewer covered operations than this means the document (or the matrix) lost routes.
const FLOOR: usize = 25;

/// The operations the matrix does not send, and why: none of them is authenticated by an
/// account's API token, so there is no "other account" to be.
const SKIPPED: &[(&str, &str, &str)] = &[
    (
        "POST",
        "/api/v1/admin/accounts",
        "the platform's bootstrap, authenticated by the admin token (no account's): it takes \
         no id, shows no account's data, and making an account is a write by design",
    ),
    (
        "POST",
        "/api/v1/internal/tick",
        "the platform scheduler's route, authenticated by the tick token (no account's): it \
         takes no id and runs every account's due jobs, a write by design (tick.rs covers it)",
    ),
    (
        "POST",
        "/webhooks/stripe",
        "Stripe's route, authenticated by the Stripe-Signature over the body, not by an account \
         token; an event reaches an account through its connected account, covered by webhook.rs \
         (an_event_can_never_touch_another_accounts_data) and cards.rs \
         (events_for_another_accounts_objects_change_nothing)",
    ),
    (
        "GET",
        "/api/v1/openapi.json",
        "public, and the same document for everyone: there is no account in it",
    ),
];

/// What an id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// A customer of the account (`cus_…`).
    Customer,
    /// A booking of the account (`bkg_…`).
    Booking,
    /// A card on Stripe, which the app looks up on the caller's own connected account.
    Card,
    /// The Stripe customer a customer is linked to.
    StripeCustomer,
    /// The business's Stripe connected account.
    StripeAccount,
}

impl Kind {
    /// Whether another account's value must be refused. A connected Stripe account serves one
    /// Mio account (whoever names it could charge through it). A customer's Stripe customer is
    /// what the business says it is: Stripe scopes it to the caller's own connected account,
    /// which no other business can share. It is still sent as A's value wherever the matrix
    /// sends A's ids.
    fn crosses(self) -> bool {
        matches!(
            self,
            Kind::Customer | Kind::Booking | Kind::Card | Kind::StripeAccount
        )
    }
}

/// Id fields and id parameters, by name. Every name that is `id` or ends in `_id` must be here
/// (or be a path parameter after one of [`COLLECTIONS`]).
const ID_NAMES: &[(&str, Kind)] = &[
    ("customer_id", Kind::Customer),
    ("booking_id", Kind::Booking),
    ("payment_method_id", Kind::Card),
    ("stripe_customer_id", Kind::StripeCustomer),
    ("stripe_account_id", Kind::StripeAccount),
];

/// Path segments whose next `{parameter}` is the id of one of their resources.
const COLLECTIONS: &[(&str, Kind)] = &[("customers", Kind::Customer), ("bookings", Kind::Booking)];

/// A path parameter that names no resource of an account.
#[derive(Debug, Clone, Copy)]
enum PlainPath {
    /// Each value of the parameter's `enum`, one request each.
    EveryValue,
    /// A public link's token: one that was never issued (the token is the credential).
    UnknownLinkToken,
}

const PLAIN_PATH: &[(&str, PlainPath)] = &[
    ("automation", PlainPath::EveryValue),
    ("token", PlainPath::UnknownLinkToken),
];

/// A query parameter that names no resource of an account, and what the matrix sends for it.
#[derive(Debug, Clone, Copy)]
enum PlainQuery {
    /// Not sent.
    Omit,
    /// Always this.
    Fixed(&'static str),
    /// A search for A's first customer (by e-mail address).
    SearchForA,
}

const PLAIN_QUERY: &[(&str, PlainQuery)] = &[
    ("limit", PlainQuery::Fixed("200")),
    ("cursor", PlainQuery::Omit),
    ("from", PlainQuery::Omit),
    ("to", PlainQuery::Omit),
    ("status", PlainQuery::Omit),
    ("automation", PlainQuery::Omit),
    ("min_rating", PlainQuery::Omit),
    ("q", PlainQuery::SearchForA),
];

/// Header parameters the matrix knows, and why it does not send them.
const HEADERS_NOT_SENT: &[(&str, &str)] = &[(
    "Idempotency-Key",
    "optional; without one a create is an ordinary request, and no retry store is written",
)];

/// An account as the matrix sees it: its token, its ids by kind (the first of each is the one
/// sent where a single id goes) and what of it must never show in another account's answers.
struct Tenant {
    account: String,
    token: String,
    ids: BTreeMap<Kind, Vec<String>>,
    email: String,
    markers: BTreeSet<String>,
}

impl Tenant {
    fn first(&self, kind: Kind) -> &str {
        self.ids
            .get(&kind)
            .and_then(|ids| ids.first())
            .unwrap_or_else(|| panic!("the tenant has no {kind:?}"))
    }

    fn all(&self, kind: Kind) -> &[String] {
        self.ids.get(&kind).map_or(&[], Vec::as_slice)
    }

    fn mark(&mut self, value: &Value) {
        if let Some(text) = value.as_str().filter(|text| !text.is_empty()) {
            self.markers.insert(text.to_owned());
        }
    }
}

/// `method path` as `token`, which must answer `status`; the answer.
async fn ok(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    status: u16,
) -> Value {
    let (answer_status, answer) = app.call(method.clone(), path, Some(token), body).await;
    assert_eq!(answer_status, status, "{method} {path}: {answer}");
    answer
}

fn id_of(value: &Value) -> String {
    value["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {value}"))
        .to_owned()
}

/// A booking of `customer` starting in `hours`, with `recurrence` if given: the created answer.
async fn book(
    app: &TestApp,
    token: &str,
    customer: &str,
    service: &str,
    hours: i64,
    recurrence: Option<Value>,
) -> Value {
    let mut body = json!({
        "customer_id": customer,
        "service_type": service,
        "start_at": in_hours(hours),
        "end_at": in_hours(hours + 2),
        "amount_cents": 12_500,
        "currency": "cad"
    });
    if let Some(recurrence) = recurrence {
        body["recurrence"] = recurrence;
    }
    ok(
        app,
        token,
        Method::POST,
        "/api/v1/bookings",
        Some(body),
        201,
    )
    .await
}

/// Account settings every tenant has: MioPay on `stripe_account`, both automations on
/// (charge a day before the start, ask for a rating right after completion), and the signed
/// webhook channel at `hook`.
async fn configure(app: &TestApp, token: &str, stripe_account: &str, hook: &str) {
    let put = |path: &'static str, body: Value| async move {
        ok(app, token, Method::PUT, path, Some(body), 200).await;
    };
    put(
        "/api/v1/settings/miopay",
        json!({"enabled": true, "stripe_account_id": stripe_account}),
    )
    .await;
    put(
        "/api/v1/settings/automations",
        json!({
            "payment": {"enabled": true, "trigger": "before_start", "offset_minutes": 1440},
            "feedback": {"enabled": true, "delay_minutes": 0}
        }),
    )
    .await;
    put(
        "/api/v1/settings/notifications",
        json!({"webhook": {"url": hook, "secret": WEBHOOK_SECRET}}),
    )
    .await;
}

/// A customer with `stripe_customer` and the primary card `card` on `stripe_account`.
async fn customer_with_card(
    app: &TestApp,
    stripe: &FakeStripe,
    token: &str,
    body: Value,
    (stripe_account, stripe_customer, card): (&str, &str, &str),
) -> Value {
    let customer = ok(
        app,
        token,
        Method::POST,
        "/api/v1/customers",
        Some(body),
        201,
    )
    .await;
    stripe.add_payment_method(
        Some(stripe_account),
        stripe_customer,
        card,
        "visa",
        "4242",
        12,
        2030,
    );
    let path = format!("/api/v1/customers/{}/payment-method", id_of(&customer));
    let body = json!({"payment_method_id": card});
    ok(app, token, Method::PUT, &path, Some(body), 200).await
}

/// Account A: two customers (one with a Stripe customer and a card, one with a card link
/// requested), overrides with a history, a completed and charged booking with a received
/// rating, a charged upcoming one, a recurring series and a cancelled booking, the jobs and
/// activity of a tick, the Stripe events that followed, and every setting.
async fn alpha(app: &TestApp, stripe: &FakeStripe, hook: &WebhookSink) -> Tenant {
    let (account, token) = app.create_account("Alpha Cleaning").await;
    let hook_url = format!("{}/tenant-a/events", hook.url());
    configure(app, &token, A_STRIPE_ACCOUNT, &hook_url).await;
    let t = token.as_str();
    let ada = customer_with_card(
        app,
        stripe,
        t,
        json!({
            "name": "Ada Lovelace",
            "email": "ada@alpha.example",
            "phone": "+1 415 555 0101",
            "service_address": "1 Analytical Engine Way",
            "billing_address": "2 Difference Lane",
            "notes": "Alpha gate code 1815",
            "stripe_customer_id": A_STRIPE_CUSTOMER
        }),
        (A_STRIPE_ACCOUNT, A_STRIPE_CUSTOMER, A_CARD),
    )
    .await;
    let ada_id = id_of(&ada);
    let grace = ok(
        app,
        t,
        Method::POST,
        "/api/v1/customers",
        Some(json!({"name": "Grace Hopper", "email": "grace@alpha.example"})),
        201,
    )
    .await;
    let grace_id = id_of(&grace);
    for (customer, automation, body) in [
        (&grace_id, "payment", json!({"state": "disabled"})),
        (&ada_id, "feedback", json!({"state": "enabled"})),
        (
            &ada_id,
            "payment",
            json!({"state": "enabled", "timing": {"trigger": "before_start", "offset_minutes": 1440}}),
        ),
    ] {
        let path = format!("/api/v1/customers/{customer}/automations/{automation}");
        ok(app, t, Method::PUT, &path, Some(body), 200).await;
    }

    let done = id_of(&book(app, t, &ada_id, A_SERVICE, -3, None).await);
    let path = format!("/api/v1/bookings/{done}/complete");
    ok(app, t, Method::POST, &path, None, 200).await;
    let due = id_of(&book(app, t, &ada_id, A_SERVICE, 3, None).await);
    let weekly = json!({"frequency": "weekly", "count": 3});
    let series = book(app, t, &ada_id, A_SERVICE, 240, Some(weekly)).await;
    let cancelled = id_of(&book(app, t, &grace_id, A_SERVICE, 120, None).await);
    let path = format!("/api/v1/bookings/{cancelled}/cancel");
    ok(app, t, Method::POST, &path, None, 200).await;
    let path = format!("/api/v1/customers/{grace_id}/payment-method-requests");
    let body = json!({"return_url": "https://alpha.example/card-saved"});
    let request = ok(app, t, Method::POST, &path, Some(body), 201).await;

    // Both charges (their time has passed) and the rating request run now; Stripe's events
    // follow.
    let summary = tick(app).await;
    assert_eq!(summary["succeeded"], 3, "{summary}");
    for (event, status) in stripe.deliver_pending().await {
        assert_eq!(status, 200, "{event}");
    }
    let link = hook
        .deliveries()
        .iter()
        .filter(|d| d.path == "/tenant-a/events")
        .filter_map(|d| serde_json::from_slice::<Value>(&d.body).ok())
        .find(|event| event["type"] == "feedback.requested")
        .and_then(|event| event["data"]["url"].as_str().map(str::to_owned))
        .expect("A's rating request went out by webhook");
    let link_token = link.rsplit('/').next().expect("the link's token");
    let rated = app
        .client
        .post(app.url(&format!("/feedback/{link_token}")))
        .json(&json!({"rating": 5, "comment": A_COMMENT}))
        .send()
        .await
        .expect("rating");
    assert_eq!(rated.status().as_u16(), 200);

    let mut bookings = vec![done, due];
    bookings.extend(
        series["bookings"]
            .as_array()
            .expect("the series' bookings")
            .iter()
            .map(id_of),
    );
    bookings.push(cancelled);
    let grace = ok(
        app,
        t,
        Method::GET,
        &format!("/api/v1/customers/{grace_id}"),
        None,
        200,
    )
    .await;
    let mut tenant = Tenant {
        account,
        token: t.to_owned(),
        ids: BTreeMap::from([
            (Kind::Customer, vec![ada_id, grace_id]),
            (Kind::Booking, bookings),
            (Kind::Card, vec![A_CARD.to_owned()]),
            (Kind::StripeCustomer, vec![A_STRIPE_CUSTOMER.to_owned()]),
            (Kind::StripeAccount, vec![A_STRIPE_ACCOUNT.to_owned()]),
        ]),
        email: "ada@alpha.example".to_owned(),
        markers: BTreeSet::new(),
    };
    tenant
        .markers
        .extend(tenant.ids.values().flatten().cloned());
    tenant.markers.extend(
        [
            tenant.account.as_str(),
            "Ada Lovelace",
            "ada@alpha.example",
            "+1 415 555 0101",
            "1 Analytical Engine Way",
            "2 Difference Lane",
            "Alpha gate code 1815",
            "Grace Hopper",
            "grace@alpha.example",
            A_SERVICE,
            A_COMMENT,
            "/tenant-a/",
            link_token,
        ]
        .map(str::to_owned),
    );
    tenant.mark(&series["series_id"]);
    tenant.mark(&grace["stripe_customer_id"]);
    tenant.mark(&request["id"]);
    tenant.mark(&request["url"]);
    // Jobs, activity (with Stripe's ids), ratings: what the app made of A's data.
    for booking in tenant.all(Kind::Booking).to_vec() {
        let path = format!("/api/v1/bookings/{booking}/automations");
        let runs = ok(app, t, Method::GET, &path, None, 200).await;
        for run in runs.as_array().expect("runs") {
            tenant.mark(&run["id"]);
        }
    }
    let activity = ok(app, t, Method::GET, "/api/v1/activity?limit=200", None, 200).await;
    let entries = activity["data"].as_array().expect("entries");
    assert!(
        entries.len() >= 4,
        "charges, rating request, rating: {activity}"
    );
    for entry in entries {
        tenant.mark(&entry["id"]);
        tenant.mark(&entry["details"]["payment_intent_id"]);
    }
    let feedback = ok(app, t, Method::GET, "/api/v1/feedback", None, 200).await;
    assert_eq!(feedback["summary"]["count"], 1, "{feedback}");
    tenant
}

/// Account B: a customer of its own with a card, a booking, every setting.
async fn bravo(app: &TestApp, stripe: &FakeStripe, hook: &WebhookSink) -> Tenant {
    let (account, token) = app.create_account("Bravo Plumbing").await;
    let hook_url = format!("{}/tenant-b/events", hook.url());
    configure(app, &token, B_STRIPE_ACCOUNT, &hook_url).await;
    let bob = customer_with_card(
        app,
        stripe,
        &token,
        json!({
            "name": "Bob Byers",
            "email": "bob@bravo.example",
            "stripe_customer_id": B_STRIPE_CUSTOMER
        }),
        (B_STRIPE_ACCOUNT, B_STRIPE_CUSTOMER, B_CARD),
    )
    .await;
    let bob = id_of(&bob);
    let booking = id_of(&book(app, &token, &bob, "bravo-repair", 96, None).await);
    let mut tenant = Tenant {
        account,
        token,
        ids: BTreeMap::from([
            (Kind::Customer, vec![bob]),
            (Kind::Booking, vec![booking]),
            (Kind::Card, vec![B_CARD.to_owned()]),
            (Kind::StripeCustomer, vec![B_STRIPE_CUSTOMER.to_owned()]),
            (Kind::StripeAccount, vec![B_STRIPE_ACCOUNT.to_owned()]),
        ]),
        email: "bob@bravo.example".to_owned(),
        markers: BTreeSet::new(),
    };
    tenant
        .markers
        .extend(tenant.ids.values().flatten().cloned());
    tenant.markers.extend(
        [
            tenant.account.as_str(),
            "Bob Byers",
            "bob@bravo.example",
            "bravo-repair",
            "/tenant-b/",
        ]
        .map(str::to_owned),
    );
    tenant
}

// ---------------------------------------------------------------------------------------------
// The document

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Follows local `$ref`s.
fn resolve<'d>(doc: &'d Value, mut node: &'d Value) -> &'d Value {
    for _ in 0..32 {
        match node.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                node = doc
                    .pointer(reference.trim_start_matches('#'))
                    .unwrap_or_else(|| panic!("$ref {reference} does not resolve"));
            }
            None => return node,
        }
    }
    panic!("$ref cycle");
}

/// How an operation is authenticated.
#[derive(Debug, PartialEq, Eq)]
enum Auth {
    /// The document's default: an account's API token.
    Account,
    /// None (`security: []`).
    Public,
    /// Another scheme (the admin's, the scheduler's).
    Other(Value),
}

fn auth(doc: &Value, operation: &Value) -> Auth {
    match operation.get("security") {
        None => Auth::Account,
        Some(security) if *security == doc["security"] => Auth::Account,
        Some(Value::Array(none)) if none.is_empty() => Auth::Public,
        Some(other) => Auth::Other(other.clone()),
    }
}

/// Where a path parameter's values come from.
#[derive(Debug, Clone)]
enum PathSlot {
    Id(Kind),
    Values(Vec<String>),
}

/// Where a query parameter's value comes from.
#[derive(Debug, Clone, Copy)]
enum QuerySlot {
    Id(Kind),
    Plain(PlainQuery),
}

/// The request body: a valid one without its id fields, and the id fields the schema has.
#[derive(Debug, Clone)]
struct BodyPlan {
    /// The body (for an array body: its one item).
    base: Value,
    /// Whether the body is an array of `base`.
    array: bool,
    /// The id fields of the schema (of its items, for an array), by name.
    ids: Vec<(String, Kind)>,
}

/// How to send one operation.
#[derive(Debug, Clone)]
struct Plan {
    label: String,
    method: Method,
    template: String,
    operation: Value,
    public: bool,
    path: Vec<(String, PathSlot)>,
    query: Vec<(String, QuerySlot)>,
    body: Option<BodyPlan>,
}

impl Plan {
    fn has_path_id(&self) -> bool {
        self.path.iter().any(|(_, s)| matches!(s, PathSlot::Id(_)))
    }

    fn crossing_query(&self) -> Vec<(String, Kind)> {
        self.query
            .iter()
            .filter_map(|(name, slot)| match slot {
                QuerySlot::Id(kind) if kind.crosses() => Some((name.clone(), *kind)),
                _ => None,
            })
            .collect()
    }

    fn crossing_body(&self) -> Vec<(String, Kind)> {
        self.body
            .iter()
            .flat_map(|b| &b.ids)
            .filter(|(_, kind)| kind.crosses())
            .cloned()
            .collect()
    }

    /// Whether any id of another account can be put in this request.
    fn crosses(&self) -> bool {
        self.has_path_id() || !self.crossing_query().is_empty() || !self.crossing_body().is_empty()
    }

    fn documents(&self, status: u16) -> bool {
        let responses = &self.operation["responses"];
        responses.get(status.to_string()).is_some()
            || responses.get(format!("{}XX", status / 100)).is_some()
    }

    /// The media types documented for `status`.
    fn media(&self, doc: &Value, status: u16) -> Vec<String> {
        let response = &self.operation["responses"][status.to_string()];
        resolve(doc, response)["content"]
            .as_object()
            .map(|content| content.keys().cloned().collect())
            .unwrap_or_default()
    }
}

fn kind_of_name(name: &str) -> Option<Kind> {
    ID_NAMES.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
}

fn is_id_name(name: &str) -> bool {
    name == "id" || name.ends_with("_id")
}

/// The operation's parameters: the path item's, overridden by the operation's own.
fn parameters<'d>(doc: &'d Value, path_item: &'d Value, operation: &'d Value) -> Vec<&'d Value> {
    let mut found: Vec<&Value> = Vec::new();
    for list in [&path_item["parameters"], &operation["parameters"]] {
        for parameter in list.as_array().into_iter().flatten() {
            let parameter = resolve(doc, parameter);
            found.retain(|p| !(p["name"] == parameter["name"] && p["in"] == parameter["in"]));
            found.push(parameter);
        }
    }
    found
}

/// Every property name of `schema` with its depth (0: the body's own fields, or an array
/// body's items' fields), through `$ref`, `allOf`/`oneOf`/`anyOf`, `items` and maps.
fn property_names(doc: &Value, schema: &Value, depth: usize, out: &mut Vec<(usize, String)>) {
    if depth > 8 {
        return;
    }
    let schema = resolve(doc, schema);
    for key in ["allOf", "oneOf", "anyOf"] {
        for part in schema[key].as_array().into_iter().flatten() {
            property_names(doc, part, depth, out);
        }
    }
    if let Some(items) = schema.get("items") {
        property_names(doc, items, depth, out);
    }
    if let Some(properties) = schema["properties"].as_object() {
        for (name, property) in properties {
            out.push((depth, name.clone()));
            property_names(doc, property, depth + 1, out);
        }
    }
    if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
        property_names(doc, values, depth + 1, out);
    }
}

/// Checks `value` against the top of `schema`: every required field there, no undeclared one
/// where the schema allows none (array bodies: each item).
fn shape(doc: &Value, schema: &Value, value: &Value) -> Result<(), String> {
    let schema = resolve(doc, schema);
    if let (Some(items), Some(values)) = (schema.get("items"), value.as_array()) {
        return values.iter().try_for_each(|v| shape(doc, items, v));
    }
    let object = value
        .as_object()
        .ok_or_else(|| format!("{value} is not an object"))?;
    let mut properties = BTreeSet::new();
    let mut required = Vec::new();
    let mut closed = schema["additionalProperties"] == false;
    let parts = std::iter::once(schema).chain(
        schema["allOf"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| resolve(doc, p)),
    );
    for part in parts {
        properties.extend(
            part["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k),
        );
        required.extend(part["required"].as_array().into_iter().flatten());
        closed |= part["additionalProperties"] == false;
    }
    if let Some(missing) = required
        .iter()
        .filter_map(|name| name.as_str())
        .find(|name| !object.contains_key(*name))
    {
        return Err(format!("required field `{missing}` missing"));
    }
    match object
        .keys()
        .find(|key| closed && !properties.contains(key))
    {
        Some(extra) => Err(format!("`{extra}` is not declared")),
        None => Ok(()),
    }
}

/// A valid body of each request schema the API has, without its id fields (the matrix adds
/// those from the schema). `None`: a schema this table does not know yet.
fn valid_body(schema: &str, hook: &str, other_email: &str) -> Option<Value> {
    Some(match schema {
        "NewCustomer" => json!({"name": "Bravo Probe", "email": other_email}),
        "CustomerPatch" => json!({"notes": "tenancy probe"}),
        "MiopaySettingsUpdate" => json!({"enabled": true}),
        "PaymentMethodUpdate" => json!({}),
        "PaymentMethodRequestInput" => json!({"return_url": "https://bravo.example/card-saved"}),
        "OverrideUpdate" => json!({"state": "disabled"}),
        "NewBooking" => json!({
            "service_type": "tenancy-probe",
            "start_at": in_hours(300),
            "end_at": in_hours(302),
            "amount_cents": 1_000,
            "currency": "usd"
        }),
        "BookingPatch" => json!({"amount_cents": 1}),
        "AutomationSettingsUpdate" => json!({
            "payment": {"enabled": false, "trigger": "after_end", "offset_minutes": 60},
            "feedback": {"enabled": false, "delay_minutes": 30}
        }),
        "NotificationSettingsUpdate" => json!({
            "webhook": {"url": format!("{hook}/tenant-b/probe"), "secret": WEBHOOK_SECRET}
        }),
        "RatingInput" => json!({"rating": 5, "comment": "tenancy probe"}),
        _ => return None,
    })
}

/// The request body plan of `operation`, from its `application/json` schema.
fn body_plan(
    doc: &Value,
    operation: &Value,
    hook: &str,
    other_email: &str,
) -> Result<Option<BodyPlan>, String> {
    let Some(content) = operation["requestBody"]["content"].as_object() else {
        return Ok(None);
    };
    let schema = content
        .get("application/json")
        .map(|media| &media["schema"])
        .ok_or_else(|| {
            format!(
                "the request body is documented only as {:?}; the matrix sends JSON",
                content.keys().collect::<Vec<_>>()
            )
        })?;
    // An array body names its item schema directly, or as the one `$ref` branch of an `anyOf`
    // whose other branches only describe what the route refuses row by row (the import).
    let item = schema["items"]["$ref"].as_str().or_else(|| {
        let branches = schema["items"]["anyOf"].as_array()?;
        let mut refs = branches.iter().filter_map(|b| b["$ref"].as_str());
        match (refs.next(), refs.next()) {
            (Some(only), None) => Some(only),
            _ => None,
        }
    });
    let (reference, array) = match (schema["$ref"].as_str(), item) {
        (Some(reference), _) => (reference, false),
        (None, Some(reference)) if schema["type"] == "array" => (reference, true),
        _ => {
            return Err(format!(
                "an inline request schema the matrix does not know: {schema}"
            ));
        }
    };
    let name = reference.rsplit('/').next().unwrap_or(reference);
    let base = valid_body(name, hook, other_email).ok_or_else(|| {
        format!("request schema `{name}` is unknown to the matrix's body table (valid_body)")
    })?;
    let mut names = Vec::new();
    property_names(doc, schema, 0, &mut names);
    let mut ids = Vec::new();
    for (depth, field) in names.into_iter().filter(|(_, n)| is_id_name(n)) {
        let kind = kind_of_name(&field).ok_or_else(|| {
            format!("id field `{field}` of `{name}` is unknown to the matrix (ID_NAMES)")
        })?;
        if depth > 0 {
            return Err(format!(
                "id field `{field}` is nested inside `{name}`; the matrix only places top-level ones"
            ));
        }
        if !ids.iter().any(|(n, _)| *n == field) {
            ids.push((field, kind));
        }
    }
    Ok(Some(BodyPlan { base, array, ids }))
}

/// How to send `method template`, or why the matrix cannot.
fn plan(
    doc: &Value,
    method: &str,
    template: &str,
    hook: &str,
    other_email: &str,
) -> Result<Plan, String> {
    let path_item = &doc["paths"][template];
    let operation = &path_item[method];
    let public = match auth(doc, operation) {
        Auth::Account => false,
        Auth::Public => true,
        Auth::Other(security) => {
            return Err(format!(
                "authenticated by {security}, not by an account's token: skip it with a reason \
                 or teach the matrix"
            ));
        }
    };
    let segments: Vec<&str> = template.split('/').collect();
    let mut path = Vec::new();
    let mut query = Vec::new();
    for parameter in parameters(doc, path_item, operation) {
        let name = parameter["name"].as_str().expect("a parameter name");
        match parameter["in"].as_str() {
            Some("path") => {
                let at = segments
                    .iter()
                    .position(|s| *s == format!("{{{name}}}"))
                    .ok_or_else(|| format!("path parameter `{name}` is not in the path"))?;
                let collection = at.checked_sub(1).map(|i| segments[i]);
                let kind = COLLECTIONS
                    .iter()
                    .find(|(c, _)| Some(*c) == collection)
                    .map(|(_, kind)| *kind)
                    .or_else(|| kind_of_name(name));
                let slot = match kind {
                    Some(kind) => PathSlot::Id(kind),
                    None => match PLAIN_PATH.iter().find(|(n, _)| *n == name) {
                        Some((_, PlainPath::EveryValue)) => PathSlot::Values(
                            resolve(doc, &parameter["schema"])["enum"]
                                .as_array()
                                .ok_or_else(|| format!("path parameter `{name}` has no enum"))?
                                .iter()
                                .map(|v| v.as_str().expect("a string enum").to_owned())
                                .collect(),
                        ),
                        Some((_, PlainPath::UnknownLinkToken)) if public => {
                            PathSlot::Values(vec!["n".repeat(43)])
                        }
                        _ => {
                            return Err(format!(
                                "path parameter `{name}` is unknown to the matrix \
                                 (COLLECTIONS, PLAIN_PATH)"
                            ));
                        }
                    },
                };
                path.push((name.to_owned(), slot));
            }
            Some("query") => {
                let slot = match (
                    kind_of_name(name),
                    PLAIN_QUERY.iter().find(|(n, _)| *n == name),
                ) {
                    (Some(kind), _) => QuerySlot::Id(kind),
                    (None, Some((_, plain))) if !is_id_name(name) => QuerySlot::Plain(*plain),
                    _ => {
                        return Err(format!(
                            "query parameter `{name}` is unknown to the matrix (ID_NAMES, PLAIN_QUERY)"
                        ));
                    }
                };
                query.push((name.to_owned(), slot));
            }
            Some("header") => {
                if !HEADERS_NOT_SENT
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case(name))
                    || parameter["required"] == true
                {
                    return Err(format!(
                        "header parameter `{name}` is required, or unknown to the matrix \
                         (HEADERS_NOT_SENT)"
                    ));
                }
            }
            other => return Err(format!("parameter `{name}` in {other:?} is unknown")),
        }
    }
    let body = body_plan(doc, operation, hook, other_email)?;
    let plan = Plan {
        label: format!("{} {template}", method.to_ascii_uppercase()),
        method: Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("a method"),
        template: template.to_owned(),
        operation: operation.clone(),
        public,
        path,
        query,
        body,
    };
    if public
        && !plan
            .path
            .iter()
            .any(|(_, s)| matches!(s, PathSlot::Values(_)))
    {
        return Err("public, with no link token to send: skip it with a reason".into());
    }
    if plan.crosses() && !plan.public && !plan.documents(401) {
        return Err("takes an account's id but documents no 401".into());
    }
    Ok(plan)
}

// ---------------------------------------------------------------------------------------------
// Requests

/// What an answer must be.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    /// Another account's id (or an unknown link) in the path: 404, as documented.
    NotFound,
    /// Another account's id in body field `.0`: a refusal the route documents (400, 404, 409
    /// or 422); a validation answer names the field.
    Refused(String),
    /// Another account's id as a filter: an empty page, or a documented 400 or 404.
    Nothing,
    /// No other account's id at all: the caller's own view or change (2xx).
    Own,
}

#[derive(Debug, Clone)]
struct Probe {
    label: String,
    variant: &'static str,
    method: Method,
    url: String,
    body: Option<Value>,
    public: bool,
    expect: Expect,
    /// Whether the same request as A must succeed (A's ids, read-only).
    control: bool,
}

/// The URL and body of `plan` with `path` values, `id(name, kind)` for every id query
/// parameter and body field (`None`: not sent), and `search` for a search parameter.
fn request(
    plan: &Plan,
    path: &BTreeMap<String, String>,
    id: &dyn Fn(&str, Kind) -> Option<String>,
    search: &str,
) -> (String, Option<Value>) {
    let mut url = plan.template.clone();
    for (name, value) in path {
        url = url.replace(&format!("{{{name}}}"), value);
    }
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, slot) in &plan.query {
        let value = match slot {
            QuerySlot::Id(kind) => id(name, *kind),
            QuerySlot::Plain(PlainQuery::Omit) => None,
            QuerySlot::Plain(PlainQuery::Fixed(value)) => Some((*value).to_owned()),
            QuerySlot::Plain(PlainQuery::SearchForA) => Some(search.to_owned()),
        };
        if let Some(value) = value {
            query.append_pair(name, &value);
        }
    }
    let query = query.finish();
    if !query.is_empty() {
        url = format!("{url}?{query}");
    }
    let body = plan.body.as_ref().map(|body| {
        let mut item = body.base.clone();
        for (name, kind) in &body.ids {
            if let Some(value) = id(name, *kind) {
                item[name.as_str()] = json!(value);
            }
        }
        if body.array { json!([item]) } else { item }
    });
    (url, body)
}

/// Every combination of the path parameters' values, ids from `ids(kind)`.
fn path_values<'t>(
    plan: &Plan,
    ids: &dyn Fn(Kind) -> &'t [String],
) -> Vec<BTreeMap<String, String>> {
    let mut combinations = vec![BTreeMap::new()];
    for (name, slot) in &plan.path {
        let values: Vec<String> = match slot {
            PathSlot::Id(kind) => ids(*kind).to_vec(),
            PathSlot::Values(values) => values.clone(),
        };
        combinations = combinations
            .into_iter()
            .flat_map(|combination| {
                values.iter().map(move |value| {
                    let mut next = combination.clone();
                    next.insert(name.clone(), value.clone());
                    next
                })
            })
            .collect();
    }
    combinations
}

/// The kinds of the path's id parameters, with the value chosen for each.
fn path_kinds(plan: &Plan, values: &BTreeMap<String, String>) -> BTreeMap<Kind, String> {
    plan.path
        .iter()
        .filter_map(|(name, slot)| match slot {
            PathSlot::Id(kind) => Some((*kind, values[name].clone())),
            PathSlot::Values(_) => None,
        })
        .collect()
}

/// The requests of `plan`, as B (`own`) with A's (`other`) ids.
fn probes(plan: &Plan, own: &Tenant, other: &Tenant) -> Vec<Probe> {
    let mut out = Vec::new();
    let probe =
        |variant: &'static str, (url, body): (String, Option<Value>), expect: Expect| Probe {
            label: plan.label.clone(),
            variant,
            method: plan.method.clone(),
            url,
            body,
            public: plan.public,
            expect,
            control: false,
        };
    // Everything A's: every path id of A's (each in turn), every id field and filter A's too,
    // consistent with the path (the same customer in the path and in `customer_id`).
    let expect = if plan.has_path_id() || plan.public {
        Expect::NotFound
    } else if let Some((field, _)) = plan.crossing_body().first() {
        Expect::Refused(field.clone())
    } else if !plan.crossing_query().is_empty() {
        Expect::Nothing
    } else {
        Expect::Own
    };
    for values in path_values(plan, &|kind| other.all(kind)) {
        let chosen = path_kinds(plan, &values);
        let id = |_: &str, kind: Kind| {
            Some(
                chosen
                    .get(&kind)
                    .cloned()
                    .unwrap_or_else(|| other.first(kind).to_owned()),
            )
        };
        let variant = match (plan.public, plan.crosses()) {
            (true, _) => "unknown link",
            (false, true) => "A's ids",
            (false, false) => "own",
        };
        out.push(Probe {
            control: plan.method == Method::GET && !plan.public,
            ..probe(
                variant,
                request(plan, &values, &id, &other.email),
                expect.clone(),
            )
        });
    }
    if plan.has_path_id() {
        // B's own path, one of A's ids in one field or filter: still nothing of A's.
        let crossing = plan
            .crossing_query()
            .into_iter()
            .map(|f| (f, Expect::Nothing))
            .chain(
                plan.crossing_body()
                    .into_iter()
                    .map(|(name, kind)| ((name.clone(), kind), Expect::Refused(name))),
            );
        for ((field, _), expect) in crossing {
            for values in path_values(plan, &|kind| &own.all(kind)[..1]) {
                let chosen = path_kinds(plan, &values);
                let id = |name: &str, kind: Kind| {
                    Some(if name == field {
                        other.first(kind).to_owned()
                    } else {
                        chosen
                            .get(&kind)
                            .cloned()
                            .unwrap_or_else(|| own.first(kind).to_owned())
                    })
                };
                out.push(probe(
                    "B's path, one id of A's",
                    request(plan, &values, &id, &other.email),
                    expect.clone(),
                ));
            }
        }
    } else if plan.method == Method::GET && !plan.crossing_query().is_empty() {
        // The list unfiltered: B's own, and nothing of A's.
        let none = |_: &str, _: Kind| None;
        out.push(probe(
            "unfiltered",
            request(plan, &BTreeMap::new(), &none, &other.email),
            Expect::Own,
        ));
    }
    out
}

/// An answer: status, media type, body text.
#[derive(Debug)]
struct Answer {
    status: u16,
    media: String,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

async fn send(app: &TestApp, probe: &Probe, token: Option<&str>) -> Answer {
    let mut request = app
        .client
        .request(probe.method.clone(), app.url(&probe.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = &probe.body {
        request = request.json(body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let media = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.expect("body");
    Answer {
        status,
        media,
        text,
    }
}

/// What is wrong with `answer` to `probe`, if anything. A's `markers` must not show, except a
/// value the request carried itself (an id echoed in a message, B's own new customer's
/// e-mail address).
fn judge(
    doc: &Value,
    plan: &Plan,
    probe: &Probe,
    answer: &Answer,
    markers: &BTreeSet<String>,
) -> Option<String> {
    let sent = format!(
        "{} {}",
        probe.url,
        probe
            .body
            .as_ref()
            .map(Value::to_string)
            .unwrap_or_default()
    );
    let leaked: Vec<&String> = markers
        .iter()
        .filter(|m| answer.text.contains(m.as_str()) && !sent.contains(m.as_str()))
        .collect();
    let media_base = answer.media.split(';').next().unwrap_or_default().trim();
    let problem = answer.json();
    let wrong = if !leaked.is_empty() {
        Some(format!("shows A's data {leaked:?}"))
    } else if answer.status == 403 || answer.status >= 500 {
        Some("never 403, never a server error".to_owned())
    } else if !plan.documents(answer.status) {
        Some("an undocumented status".to_owned())
    } else {
        match &probe.expect {
            Expect::NotFound => (answer.status != 404
                || !plan.media(doc, 404).iter().any(|m| m == media_base))
            .then(|| format!("expected 404 as {:?}", plan.media(doc, 404))),
            Expect::Refused(field) => {
                let refusals: Vec<u16> = [400, 404, 409, 422]
                    .into_iter()
                    .filter(|s| plan.documents(*s))
                    .collect();
                let names_field = problem["errors"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|e| e["field"] == field.as_str());
                if !refusals.contains(&answer.status) {
                    Some(format!(
                        "expected a documented refusal, one of {refusals:?}"
                    ))
                } else if media_base != "application/problem+json" {
                    Some("a refusal is application/problem+json".to_owned())
                } else if matches!(answer.status, 400 | 422) && !names_field {
                    Some(format!("a validation answer must name `{field}`"))
                } else {
                    None
                }
            }
            Expect::Nothing => {
                let empty = answer.status == 200 && problem["data"] == json!([]);
                let refused =
                    matches!(answer.status, 400 | 404) && media_base == "application/problem+json";
                (!empty && !refused)
                    .then(|| "expected an empty page or a documented 400/404".to_owned())
            }
            Expect::Own => (!(200..300).contains(&answer.status))
                .then(|| "expected the caller's own answer (2xx)".to_owned()),
        }
    };
    wrong.map(|why| {
        format!(
            "{} [{}] {} {}: {} → {} {}: {why}",
            probe.label,
            probe.variant,
            probe.method,
            probe.url,
            probe
                .body
                .as_ref()
                .map(Value::to_string)
                .unwrap_or_default(),
            answer.status,
            answer.text.chars().take(300).collect::<String>()
        )
    })
}

// ---------------------------------------------------------------------------------------------
// The SQLite files

/// One table: its columns, and its rows rendered (sorted, so order does not matter).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Table {
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
}

/// Every row of every table (as `sqlite_master` lists them) of every SQLite file in the app's
/// state directory, by `file/table`. Nothing is left out: no request writes on its own (no
/// last-used stamp on tokens, no read cache in SQLite), so no column needs excluding.
fn snapshot(app: &TestApp) -> BTreeMap<String, Table> {
    let mut files: Vec<_> = std::fs::read_dir(app.state_dir())
        .expect("the state directory")
        .map(|entry| entry.expect("an entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "db"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no SQLite file in {:?}", app.state_dir());
    let mut tables = BTreeMap::new();
    for file in files {
        let conn = rusqlite::Connection::open(&file).expect("a SQLite file");
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .expect("busy timeout");
        let names: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .expect("tables")
            .query_map([], |row| row.get(0))
            .expect("tables")
            .collect::<Result<_, _>>()
            .expect("table names");
        let file_name = file
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        for name in names {
            let mut statement = conn
                .prepare(&format!("SELECT * FROM \"{}\"", name.replace('"', "\"\"")))
                .expect("select");
            let columns: Vec<String> = statement
                .column_names()
                .into_iter()
                .map(str::to_owned)
                .collect();
            let mut rows: Vec<Vec<String>> = statement
                .query_map([], |row| {
                    (0..columns.len())
                        .map(|i| {
                            row.get::<_, rusqlite::types::Value>(i)
                                .map(|v| format!("{v:?}"))
                        })
                        .collect()
                })
                .expect("rows")
                .collect::<Result<_, _>>()
                .expect("row values");
            rows.sort();
            tables.insert(format!("{file_name}/{name}"), Table { columns, rows });
        }
    }
    tables
}

/// Whether `row` of `table` (named `name`) is account `account`'s: its `account_id` (`id` in
/// `accounts`) is that account's, or it is a row of `sqlite_sequence`, the AUTOINCREMENT
/// counters every account's inserts advance.
fn owned_by(account: &str, name: &str, table: &Table, row: &[String]) -> bool {
    let owner = if name.ends_with("/accounts") {
        "id"
    } else {
        "account_id"
    };
    let value = format!("{:?}", rusqlite::types::Value::Text(account.to_owned()));
    name.ends_with("/sqlite_sequence")
        || table
            .columns
            .iter()
            .position(|c| c == owner)
            .is_some_and(|i| row[i] == value)
}

/// The rows that differ between `before` and `after`, leaving out the rows of account
/// `ignoring` if given.
fn differences(
    before: &BTreeMap<String, Table>,
    after: &BTreeMap<String, Table>,
    ignoring: Option<&str>,
) -> Vec<String> {
    let names: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let mut found = Vec::new();
    for name in names {
        let (old, new) = match (before.get(name), after.get(name)) {
            (Some(old), Some(new)) if old.columns == new.columns => (old, new),
            (old, new) => {
                found.push(format!(
                    "{name}: the table itself changed: {:?} → {:?}",
                    old.map(|t| &t.columns),
                    new.map(|t| &t.columns)
                ));
                continue;
            }
        };
        let rows = |table: &Table| -> BTreeSet<Vec<String>> {
            table
                .rows
                .iter()
                .filter(|row| !ignoring.is_some_and(|account| owned_by(account, name, table, row)))
                .cloned()
                .collect()
        };
        let (old_rows, new_rows) = (rows(old), rows(new));
        for gone in old_rows.difference(&new_rows) {
            found.push(format!(
                "{name}: row changed or removed: {:?} = {gone:?}",
                old.columns
            ));
        }
        for added in new_rows.difference(&old_rows) {
            found.push(format!(
                "{name}: row added or changed to: {:?} = {added:?}",
                new.columns
            ));
        }
    }
    found
}

/// How to send every operation of `doc` that is not in [`SKIPPED`], the skips with their
/// reasons, and how many operations the document has. Fails, naming them, for operations the
/// matrix cannot send, skips of operations no longer there, and bodies that do not fit.
fn plans_of(doc: &Value, hook: &str, other: &Tenant) -> (Vec<Plan>, Vec<String>, usize) {
    let mut plans = Vec::new();
    let mut unknown = Vec::new();
    let mut skipped = Vec::new();
    let mut in_document = 0;
    for (template, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS.into_iter().filter(|m| item.get(*m).is_some()) {
            in_document += 1;
            let upper = method.to_ascii_uppercase();
            if let Some((_, _, reason)) = SKIPPED
                .iter()
                .find(|(m, p, _)| *m == upper && p == template)
            {
                skipped.push(format!("{upper} {template}: {reason}"));
                continue;
            }
            match plan(doc, method, template, hook, &other.email) {
                Ok(plan) => plans.push(plan),
                Err(why) => unknown.push(format!("{upper} {template}: {why}")),
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "operations the matrix cannot send (cover them in tenancy.rs, or list them in SKIPPED \
         with the reason):\n{}",
        unknown.join("\n")
    );
    let stale: Vec<_> = SKIPPED
        .iter()
        .filter(|(m, p, _)| doc["paths"][p][m.to_ascii_lowercase()].is_null())
        .collect();
    assert!(
        stale.is_empty(),
        "skips of operations the document no longer has: {stale:?}"
    );
    assert_eq!(plans.len() + skipped.len(), in_document);
    for plan in &plans {
        let schema = &plan.operation["requestBody"]["content"]["application/json"]["schema"];
        let id = |_: &str, kind: Kind| Some(other.first(kind).to_owned());
        if let (_, Some(body)) = request(plan, &BTreeMap::new(), &id, &other.email)
            && let Err(why) = shape(doc, schema, &body)
        {
            panic!(
                "{}: the matrix's body {body} does not fit: {why}",
                plan.label
            );
        }
    }
    (plans, skipped, in_document)
}

/// Sends the control requests of `probes` with A's token: each must succeed, and a list not
/// under an id of A's must find A's data, or the matrix would prove nothing. Their number.
async fn controls(
    app: &TestApp,
    a: &Tenant,
    probes: &[(&Plan, Probe)],
    failures: &mut Vec<String>,
) -> usize {
    let mut sent = 0;
    for (plan, probe) in probes.iter().filter(|(_, probe)| probe.control) {
        sent += 1;
        let answer = send(app, probe, Some(&a.token)).await;
        let listed = answer.json()["data"].as_array().map(Vec::len);
        let wrong = if !(200..300).contains(&answer.status) {
            Some("A's own request must succeed")
        } else if !plan.has_path_id() && listed == Some(0) {
            Some("A's own list must find A's data")
        } else {
            None
        };
        if let Some(why) = wrong {
            failures.push(format!(
                "control: {} {} as A → {} {}: {why}",
                probe.method, probe.url, answer.status, answer.text
            ));
        }
    }
    sent
}

// ---------------------------------------------------------------------------------------------
// The matrix

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_account_reaches_another_accounts_data_through_any_documented_operation() {
    let stripe = FakeStripe::start().await;
    let hook = WebhookSink::start().await;
    let mut options = mio_tests::Options::default();
    for (name, value) in [
        ("PUBLIC_BASE_URL", PUBLIC_BASE.to_owned()),
        ("FEEDBACK_LINK_SECRET", "k".repeat(40)),
        ("WEBHOOK_ALLOWED_ORIGIN", hook.url()),
    ] {
        options
            .variables
            .insert(format!("SPIN_VARIABLE_{name}"), value);
    }
    let app = spawn_on_stripe(options, &stripe).await;
    let a = alpha(&app, &stripe, &hook).await;
    let b = bravo(&app, &stripe, &hook).await;
    // B's own data never looks like A's.
    let alike: Vec<(&String, &String)> = a
        .markers
        .iter()
        .flat_map(|m| b.markers.iter().map(move |n| (m, n)))
        .filter(|(m, n)| n.contains(m.as_str()) || m.contains(n.as_str()))
        .collect();
    assert!(alike.is_empty(), "A's and B's data overlap: {alike:?}");

    let doc = openapi(&app).await;
    let (plans, skipped, in_document) = plans_of(&doc, &hook.url(), &a);

    // Phase 1: everything that cannot write. B's requests with A's ids, B's reads, the public
    // link page with a link never issued; then the same reads with A's token, which must work.
    let (reads, writes): (Vec<_>, Vec<_>) = plans
        .iter()
        .flat_map(|plan| probes(plan, &b, &a).into_iter().map(move |p| (plan, p)))
        .partition(|(_, probe)| probe.expect != Expect::Own || probe.method == Method::GET);
    let before = snapshot(&app);
    let mut failures = Vec::new();
    for (plan, probe) in &reads {
        let token = (!probe.public).then_some(b.token.as_str());
        let answer = send(&app, probe, token).await;
        failures.extend(judge(&doc, plan, probe, &answer, &a.markers));
    }
    let controls = controls(&app, &a, &reads, &mut failures).await;
    let after = snapshot(&app);
    failures.extend(
        differences(&before, &after, None)
            .into_iter()
            .map(|d| format!("phase 1 wrote: {d}")),
    );

    // Phase 2: B's writes that take no id of an account (A's Stripe links and A's customer's
    // e-mail address in them): they change B's rows only (see `owned_by`).
    let before_writes = snapshot(&app);
    for (plan, probe) in &writes {
        let answer = send(&app, probe, Some(&b.token)).await;
        failures.extend(judge(&doc, plan, probe, &answer, &a.markers));
    }
    let after_writes = snapshot(&app);
    failures.extend(
        differences(&before_writes, &after_writes, Some(&b.account))
            .into_iter()
            .map(|d| format!("phase 2 (B's own writes) touched a row not B's: {d}")),
    );

    let covered: BTreeSet<&String> = reads
        .iter()
        .chain(&writes)
        .map(|(plan, _)| &plan.label)
        .collect();
    println!(
        "tenancy matrix: {} operations in the document, {} covered ({} requests with B's \
         token or none, {} controls with A's, {} writes of B's own), {} skipped:\n  {}\n\
         headers not sent: {HEADERS_NOT_SENT:?}",
        in_document,
        covered.len(),
        reads.len(),
        controls,
        writes.len(),
        skipped.len(),
        skipped.join("\n  ")
    );
    assert!(
        failures.is_empty(),
        "{} isolation failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(covered.len(), in_document - SKIPPED.len(), "{covered:?}");
    assert!(covered.len() >= FLOOR, "only {} covered", covered.len());
    assert!(controls >= 10, "only {controls} controls as A");
}
