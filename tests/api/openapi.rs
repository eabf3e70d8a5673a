//! The OpenAPI document the app serves: structurally valid 3.1, and in step with `spin.toml`
//! (every routed path documented, every documented path routed).

use mio_tests::{TestApp, assert_documented, workspace_root};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// The component whose routes are screens for people, not API: the README describes them.
const SCREENS: &str = "console";

/// Every `[[trigger.http]]` route of the application manifest, but the console's screens.
fn manifest_routes() -> Vec<String> {
    let text = std::fs::read_to_string(workspace_root().join("spin.toml")).expect("spin.toml");
    let manifest: toml::Table = toml::from_str(&text).expect("spin.toml is TOML");
    let routes: Vec<&toml::Value> = manifest["trigger"]["http"]
        .as_array()
        .expect("[[trigger.http]] entries")
        .iter()
        .collect();
    assert!(
        routes
            .iter()
            .any(|trigger| trigger["component"].as_str() == Some(SCREENS)),
        "the console serves its screens"
    );
    routes
        .into_iter()
        .filter(|trigger| trigger["component"].as_str() != Some(SCREENS))
        .map(|trigger| {
            trigger["route"]
                .as_str()
                .expect("every trigger has a route")
                .to_owned()
        })
        .collect()
}

/// A Spin route as an OpenAPI path template (`:id` → `{id}`), or, for a wildcard route
/// (`/api/v1/customers/...`), `Err(prefix)`.
fn as_template(route: &str) -> Result<String, String> {
    if let Some(prefix) = route.strip_suffix("/...") {
        return Err(prefix.to_owned());
    }
    Ok(route
        .split('/')
        .map(|segment| match segment.strip_prefix(':') {
            Some(name) => format!("{{{name}}}"),
            None => segment.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/"))
}

/// Whether Spin would send a request for the documented `path` (with `{x}` standing for any
/// one segment) to `route`.
fn routes(route: &str, path: &str) -> bool {
    match as_template(route) {
        Err(prefix) => path == prefix || path.starts_with(&format!("{prefix}/")),
        Ok(template) => {
            let (a, b): (Vec<&str>, Vec<&str>) =
                (template.split('/').collect(), path.split('/').collect());
            a.len() == b.len()
                && a.iter()
                    .zip(&b)
                    .all(|(r, p)| r == p || (r.starts_with('{') && !p.is_empty()))
        }
    }
}

async fn served_document(app: &TestApp) -> Value {
    let response = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let media = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(media.starts_with("application/json"), "{media}");
    response.json().await.expect("the document is JSON")
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths is an object") {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                found.push((path.clone(), method.to_owned(), operation));
            }
        }
    }
    found
}

/// Every `$ref` in `node`, with where it was found.
fn references<'a>(node: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
    match node {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(reference)) => out.push((at.clone(), reference)),
                    _ => references(value, format!("{at}/{key}"), out),
                }
            }
        }
        Value::Array(items) => {
            for (index, value) in items.iter().enumerate() {
                references(value, format!("{at}/{index}"), out);
            }
        }
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_in_spin_toml_is_documented_and_every_documented_path_is_routed() {
    let app = TestApp::spawn().await;
    let doc = served_document(&app).await;
    let paths: BTreeSet<&str> = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(String::as_str)
        .collect();
    let routes_in_manifest = manifest_routes();
    let mut undocumented = Vec::new();
    for route in &routes_in_manifest {
        let documented = match as_template(route) {
            Ok(template) => paths.contains(template.as_str()),
            Err(prefix) => paths
                .iter()
                .any(|path| *path == prefix || path.starts_with(&format!("{prefix}/"))),
        };
        if !documented {
            undocumented.push(route.as_str());
        }
    }
    assert!(
        undocumented.is_empty(),
        "routes in spin.toml missing from the OpenAPI document: {undocumented:?}"
    );
    let unrouted: Vec<&&str> = paths
        .iter()
        .filter(|path| !routes_in_manifest.iter().any(|route| routes(route, path)))
        .collect();
    assert!(
        unrouted.is_empty(),
        "documented paths that no spin.toml route serves: {unrouted:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_structurally_valid_openapi_3_1() {
    let app = TestApp::spawn().await;
    let doc = served_document(&app).await;
    let version = doc["openapi"].as_str().expect("`openapi` is a string");
    assert!(version.starts_with("3.1."), "openapi: {version}");
    assert!(doc["info"]["title"].is_string(), "info.title");
    assert!(doc["info"]["version"].is_string(), "info.version");

    let mut refs = Vec::new();
    references(&doc, String::new(), &mut refs);
    assert!(!refs.is_empty(), "the document uses no $ref at all");
    for (at, reference) in refs {
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{at}: non-local $ref {reference}"));
        assert!(
            doc.pointer(pointer).is_some(),
            "{at}: $ref {reference} does not resolve"
        );
    }

    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    assert!(
        schemes
            .values()
            .any(|s| s["type"] == "http" && s["scheme"] == "bearer"),
        "a bearer security scheme"
    );
    let mut operation_ids = BTreeSet::new();
    for (path, method, operation) in operations(&doc) {
        let what = format!("{method} {path}");
        assert!(path.starts_with('/'), "{what}: paths start with /");
        let id = operation["operationId"].as_str().expect("operationId");
        assert!(
            operation_ids.insert(id.to_owned()),
            "{what}: duplicate operationId {id}"
        );
        let responses = operation["responses"].as_object().expect("responses");
        assert!(!responses.is_empty(), "{what}: no responses");
        assert!(
            responses.keys().any(|status| status.starts_with('2')),
            "{what}: no success response"
        );
        // Every `{name}` of the template is a declared path parameter.
        let declared: BTreeSet<String> = doc["paths"][&path]["parameters"]
            .as_array()
            .into_iter()
            .chain(operation["parameters"].as_array())
            .flatten()
            .filter_map(|p| {
                let p = if let Some(r) = p["$ref"].as_str() {
                    doc.pointer(r.trim_start_matches('#')).expect("resolves")
                } else {
                    p
                };
                (p["in"].as_str() == Some("path"))
                    .then(|| p["name"].as_str().expect("name").to_owned())
            })
            .collect();
        for segment in path.split('/') {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                assert!(
                    declared.contains(name),
                    "{what}: path parameter `{name}` is not declared"
                );
            }
        }
        // Authenticated operations document 401; every error is problem+json, except that a
        // public page (the rating link's) answers a browser with a page.
        let public = operation["security"].as_array().is_some_and(Vec::is_empty);
        if !public {
            assert!(responses.contains_key("401"), "{what}: 401 not documented");
        }
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                let response = match response["$ref"].as_str() {
                    Some(r) => doc.pointer(r.trim_start_matches('#')).expect("resolves"),
                    None => response,
                };
                let content = &response["content"];
                assert!(
                    content["application/problem+json"].is_object()
                        || (public && content["text/html"].is_object()),
                    "{what} {status}: errors are application/problem+json (or a public page)"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_public_and_describes_its_own_route() {
    let app = TestApp::spawn().await;
    let doc = served_document(&app).await;
    let (status, body) = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_documented(&doc, &Method::GET, "/api/v1/openapi.json", status, &body);
    assert_eq!(body, doc);
    let (status, problem) = app
        .call(Method::POST, "/api/v1/openapi.json", None, None)
        .await;
    assert_documented(
        &doc,
        &Method::POST,
        "/api/v1/openapi.json",
        status,
        &problem,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_responses_match_their_documented_schemas() {
    let app = TestApp::spawn().await;
    let doc = served_document(&app).await;
    let (_, token) = app.create_account("Documented").await;
    let token = Some(token.as_str());
    let body = serde_json::json!({"name": "Ada", "email": "ada@example.com"});
    let (status, customer) = app
        .call(Method::POST, "/api/v1/customers", token, Some(body))
        .await;
    assert_documented(&doc, &Method::POST, "/api/v1/customers", status, &customer);
    assert_eq!(status, 201);
    let path = format!("/api/v1/customers/{}", customer["id"].as_str().expect("id"));
    let (status, body) = app.call(Method::GET, &path, token, None).await;
    assert_documented(&doc, &Method::GET, "/api/v1/customers/{id}", status, &body);
    let (status, body) = app
        .call(Method::GET, "/api/v1/customers", token, None)
        .await;
    assert_documented(&doc, &Method::GET, "/api/v1/customers", status, &body);
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/customers",
            token,
            Some(serde_json::json!({"name": ""})),
        )
        .await;
    assert_eq!(status, 400);
    assert_documented(&doc, &Method::POST, "/api/v1/customers", status, &body);
    let (status, body) = app.call(Method::GET, &path, None, None).await;
    assert_documented(&doc, &Method::GET, "/api/v1/customers/{id}", status, &body);
    let (status, body) = app.call(Method::DELETE, &path, token, None).await;
    assert_documented(
        &doc,
        &Method::DELETE,
        "/api/v1/customers/{id}",
        status,
        &body,
    );
    let (status, body) = app.call(Method::GET, &path, token, None).await;
    assert_eq!(status, 404);
    assert_documented(&doc, &Method::GET, "/api/v1/customers/{id}", status, &body);
}

#[test]
fn the_manifest_keeps_to_what_spin_3_0_accepts() {
    // Spin 3.0's variable entries take `default`, `required` and `secret`; `description` only
    // arrived in 3.4, and an older Spin refuses the whole manifest over it.
    let text = std::fs::read_to_string(workspace_root().join("spin.toml")).expect("spin.toml");
    let manifest: toml::Table = toml::from_str(&text).expect("spin.toml is TOML");
    let variables = manifest["variables"].as_table().expect("[variables]");
    assert!(!variables.is_empty());
    for (name, entry) in variables {
        let entry = entry.as_table().expect("an inline table");
        for key in entry.keys() {
            assert!(
                ["default", "required", "secret"].contains(&key.as_str()),
                "variable {name} has `{key}`, which Spin 3.0 does not accept"
            );
        }
    }
}

/// The schema a `$ref` (or a schema) stands for, and the parts it is made of (`allOf`).
fn parts<'a>(doc: &'a Value, schema: &'a Value) -> Vec<&'a Value> {
    let resolve = |mut node: &'a Value| {
        while let Some(reference) = node["$ref"].as_str() {
            node = doc
                .pointer(reference.trim_start_matches('#'))
                .expect("resolves");
        }
        node
    };
    let schema = resolve(schema);
    let mut found = vec![schema];
    for part in schema["allOf"].as_array().into_iter().flatten() {
        found.extend(parts(doc, part));
    }
    found
}

/// Whether no value can match both `a` and `b`, by what tells them apart at a glance: their JSON
/// types, a `const` of one property, or a property one requires and the other forbids.
fn exclusive(doc: &Value, a: &Value, b: &Value) -> bool {
    let (a, b) = (parts(doc, a), parts(doc, b));
    let types = |parts: &[&Value]| -> Option<BTreeSet<String>> {
        parts.iter().find_map(|part| match &part["type"] {
            Value::String(t) => Some(BTreeSet::from([t.clone()])),
            Value::Array(ts) => Some(
                ts.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        })
    };
    if let (Some(ta), Some(tb)) = (types(&a), types(&b))
        && ta.is_disjoint(&tb)
    {
        return true;
    }
    let constant = |parts: &[&Value], name: &str| {
        parts
            .iter()
            .find_map(|part| part["properties"][name].get("const").cloned())
    };
    let required = |parts: &[&Value]| -> BTreeSet<String> {
        parts
            .iter()
            .flat_map(|part| part["required"].as_array().into_iter().flatten())
            .filter_map(|name| name.as_str().map(str::to_owned))
            .collect()
    };
    let forbids = |parts: &[&Value], name: &str| {
        parts
            .iter()
            .any(|part| part["additionalProperties"] == false)
            && !parts
                .iter()
                .any(|part| part["properties"].get(name).is_some())
    };
    let declared = |parts: &[&Value], name: &str| {
        let property: Vec<&Value> = parts.iter().map(|part| &part["properties"][name]).collect();
        types(&property)
    };
    let (ra, rb) = (required(&a), required(&b));
    ra.intersection(&rb).any(|name| {
        matches!((constant(&a, name), constant(&b, name)), (Some(x), Some(y)) if x != y)
    }) || ra.iter().any(|name| forbids(&b, name))
        || rb.iter().any(|name| forbids(&a, name))
        // A field one requires, whose type the two declare apart.
        || ra.union(&rb).any(|name| {
            matches!((declared(&a, name), declared(&b, name)), (Some(x), Some(y)) if x.is_disjoint(&y))
        })
}

/// Every `oneOf` in `node` (with where it is).
fn one_ofs<'a>(node: &'a Value, at: String, out: &mut Vec<(String, &'a Vec<Value>)>) {
    match node {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("oneOf", Value::Array(alternatives)) => out.push((at.clone(), alternatives)),
                    _ => one_ofs(value, format!("{at}/{key}"), out),
                }
            }
        }
        Value::Array(items) => {
            for (index, value) in items.iter().enumerate() {
                one_ofs(value, format!("{at}/{index}"), out);
            }
        }
        _ => {}
    }
}

/// A `oneOf` whose alternatives overlap makes a valid answer invalid: a validation problem was
/// both a `ValidationError` and a `Problem` (Schemathesis, `scripts/fuzz-api`). Each pair of
/// alternatives must be told apart by type, a `const` (`type` of a problem) or a field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alternatives_of_every_one_of_exclude_each_other() {
    let app = TestApp::spawn().await;
    let doc = served_document(&app).await;
    let mut found = Vec::new();
    one_ofs(&doc, String::new(), &mut found);
    assert!(!found.is_empty());
    for (at, alternatives) in found {
        for (i, a) in alternatives.iter().enumerate() {
            for b in &alternatives[i + 1..] {
                assert!(
                    exclusive(&doc, a, b),
                    "{at}: {a} and {b} can both match one value"
                );
            }
        }
    }
    // Both kinds of 400 the JSON routes answer match the branch that names them.
    let (_, token) = app.create_account("Problems").await;
    for (body, kind) in [
        (json!({"name": ""}), "/problems/validation"),
        (json!(["Ada"]), "/problems/malformed-json"),
    ] {
        let (status, problem) = app
            .call(Method::POST, "/api/v1/customers", Some(&token), Some(body))
            .await;
        assert_eq!((status, &problem["type"]), (400, &json!(kind)), "{problem}");
        assert_documented(&doc, &Method::POST, "/api/v1/customers", status, &problem);
    }
}

/// The document lists the time zones an account may be created in (`TimeZoneName`): each of
/// them is one the API accepts, and a name outside the list is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_time_zone_the_document_lists_opens_an_account() {
    use futures::StreamExt;
    let app = TestApp::spawn().await;
    let doc = served_document(&app).await;
    let zones: Vec<&str> = doc["components"]["schemas"]["TimeZoneName"]["enum"]
        .as_array()
        .expect("an enum of zone names")
        .iter()
        .map(|zone| zone.as_str().expect("a name"))
        .collect();
    assert!(zones.contains(&"America/Toronto") && zones.len() > 400);
    let create = |timezone: &str| {
        let request = app
            .client
            .post(app.url("/api/v1/admin/accounts"))
            .bearer_auth(mio_tests::ADMIN_TOKEN)
            .json(&json!({"name": "Zoned", "timezone": timezone}));
        async move { request.send().await.expect("request").status().as_u16() }
    };
    let refused: Vec<(&str, u16)> = futures::stream::iter(zones.iter().copied())
        .map(|zone| async move { (zone, create(zone).await) })
        .buffer_unordered(8)
        .filter(|(_, status)| std::future::ready(*status != 201))
        .collect()
        .await;
    assert!(refused.is_empty(), "listed but refused: {refused:?}");
    for unlisted in ["Mars/Olympus_Mons", "america/toronto", "UTC+1"] {
        assert!(!zones.contains(&unlisted));
        assert_eq!(create(unlisted).await, 400, "{unlisted}");
    }
}
