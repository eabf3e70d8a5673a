//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document of the whole application.

use spin_sdk::http::Response;

/// The document, kept as a readable JSON file beside this component's `Cargo.toml` and
/// compiled in. The integration tests check it against every route in `spin.toml`.
pub const DOCUMENT: &str = include_str!("../../../openapi.json");

/// The document; public, like the API's shape is.
pub fn get() -> Response {
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("cache-control", "public, max-age=300")
        .body(DOCUMENT)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_json() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).expect("valid JSON");
        assert!(
            doc["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1.")),
            "{}",
            doc["openapi"]
        );
        assert!(doc["paths"]["/api/v1/customers/{id}/automations"].is_object());
    }
}
