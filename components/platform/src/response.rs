//! Building HTTP responses: JSON documents, problems, empty answers.

use mio_shared::Problem;
use mio_shared::problem::PROBLEM_CONTENT_TYPE;
use serde::Serialize;
use spin_sdk::http::Response;

const JSON: &str = "application/json";

/// A JSON document with `status`, plus extra headers.
pub fn json<T: Serialize>(
    status: u16,
    body: &T,
    headers: &[(&str, String)],
) -> anyhow::Result<Response> {
    let bytes = serde_json::to_vec(body)?;
    let mut builder = Response::builder();
    builder.status(status).header("content-type", JSON);
    for (name, value) in headers {
        builder.header(*name, value.as_str());
    }
    Ok(builder.body(bytes).build())
}

/// `204 No Content`.
pub fn no_content() -> Response {
    Response::builder().status(204).build()
}

/// An `application/problem+json` response with `status`, plus extra headers.
pub fn problem(status: u16, problem: &Problem, headers: &[(&str, String)]) -> Response {
    // Serialising these plain structs cannot fail; keep a fixed body just in case.
    let bytes = serde_json::to_vec(problem).unwrap_or_else(|_| {
        br#"{"type":"/problems/internal","title":"Internal error","status":500}"#.to_vec()
    });
    let mut builder = Response::builder();
    builder
        .status(status)
        .header("content-type", PROBLEM_CONTENT_TYPE);
    for (name, value) in headers {
        builder.header(*name, value.as_str());
    }
    builder.body(bytes).build()
}
