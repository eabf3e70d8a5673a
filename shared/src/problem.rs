//! RFC 9457 problem details: the one list of problem `type`s the API answers with.

use crate::field::FieldError;
use serde::Serialize;

/// The media type of every error response.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// Every kind of problem the API reports. Its `type` URI, title and status are a contract:
/// clients switch on `type`, so never change one; add new kinds instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemType {
    /// The body is not JSON, is empty, or is not a JSON object.
    MalformedJson,
    /// Fields, query parameters or headers (`Idempotency-Key`) are missing, unknown, of the
    /// wrong type, or out of range.
    Validation,
    /// No credentials, or credentials that do not identify anyone.
    Unauthorized,
    /// No such route, or no such resource in the caller's account.
    NotFound,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// The body exceeds the size limit.
    PayloadTooLarge,
    /// The body is not in a media type the route accepts.
    UnsupportedMediaType,
    /// The request conflicts with the resource's current state (e.g. completing a cancelled
    /// booking).
    Conflict,
    /// Something failed on our side; details are in the server log, never in the answer.
    Internal,
    /// A service we depend on (Stripe) could not be reached or failed; nothing was changed.
    UpstreamUnavailable,
    /// A webhook delivery whose signature is missing, malformed, wrong or too old, or whose
    /// body is not an event; nothing was changed.
    InvalidWebhook,
    /// A customer's rating (`POST /feedback/{token}`) with a missing or out-of-range rating or
    /// an unacceptable comment; nothing was stored. 422, like the rating page's own answer to
    /// a rejected form, which the API contract fixes.
    InvalidFeedback,
    /// A destination the platform may not call: a business's webhook URL outside the
    /// operator's allow-list (`webhook_allowed_origin`). 422: the request is well formed, the
    /// value cannot be used here. Nothing was stored.
    DestinationNotAllowed,
    /// An `Idempotency-Key` already used, within its 24 hours, for another request (another
    /// method, path or body). 422: the request is well formed, the key cannot be used for it.
    /// Nothing ran.
    IdempotencyKeyReused,
    /// An `Idempotency-Key` whose first request is still running; retry once it has answered.
    /// Nothing ran.
    IdempotencyKeyInUse,
}

impl ProblemType {
    /// All kinds, for documentation and tests.
    pub const ALL: [ProblemType; 15] = [
        ProblemType::MalformedJson,
        ProblemType::Validation,
        ProblemType::Unauthorized,
        ProblemType::NotFound,
        ProblemType::MethodNotAllowed,
        ProblemType::PayloadTooLarge,
        ProblemType::UnsupportedMediaType,
        ProblemType::Conflict,
        ProblemType::Internal,
        ProblemType::UpstreamUnavailable,
        ProblemType::InvalidWebhook,
        ProblemType::InvalidFeedback,
        ProblemType::DestinationNotAllowed,
        ProblemType::IdempotencyKeyReused,
        ProblemType::IdempotencyKeyInUse,
    ];

    /// The `type` member: a URI relative to the API's origin.
    pub fn uri(self) -> &'static str {
        match self {
            ProblemType::MalformedJson => "/problems/malformed-json",
            ProblemType::Validation => "/problems/validation",
            ProblemType::Unauthorized => "/problems/unauthorized",
            ProblemType::NotFound => "/problems/not-found",
            ProblemType::MethodNotAllowed => "/problems/method-not-allowed",
            ProblemType::PayloadTooLarge => "/problems/payload-too-large",
            ProblemType::UnsupportedMediaType => "/problems/unsupported-media-type",
            ProblemType::Conflict => "/problems/conflict",
            ProblemType::Internal => "/problems/internal",
            ProblemType::UpstreamUnavailable => "/problems/upstream-unavailable",
            ProblemType::InvalidWebhook => "/problems/invalid-webhook",
            ProblemType::InvalidFeedback => "/problems/invalid-feedback",
            ProblemType::DestinationNotAllowed => "/problems/destination-not-allowed",
            ProblemType::IdempotencyKeyReused => "/problems/idempotency-key-reused",
            ProblemType::IdempotencyKeyInUse => "/problems/idempotency-key-in-use",
        }
    }

    /// The `title` member: the same for every occurrence of this kind.
    pub fn title(self) -> &'static str {
        match self {
            ProblemType::MalformedJson => "Malformed JSON body",
            ProblemType::Validation => "Invalid request",
            ProblemType::Unauthorized => "Authentication required",
            ProblemType::NotFound => "Not found",
            ProblemType::MethodNotAllowed => "Method not allowed",
            ProblemType::PayloadTooLarge => "Request body too large",
            ProblemType::UnsupportedMediaType => "Unsupported media type",
            ProblemType::Conflict => "Conflict with the current state",
            ProblemType::Internal => "Internal error",
            ProblemType::UpstreamUnavailable => "Upstream service unavailable",
            ProblemType::InvalidWebhook => "Webhook delivery refused",
            ProblemType::InvalidFeedback => "Feedback not accepted",
            ProblemType::DestinationNotAllowed => "Destination not allowed",
            ProblemType::IdempotencyKeyReused => "Idempotency-Key used for another request",
            ProblemType::IdempotencyKeyInUse => "Idempotency-Key in use",
        }
    }

    /// The HTTP status that always accompanies this kind.
    pub fn status(self) -> u16 {
        match self {
            ProblemType::MalformedJson | ProblemType::Validation => 400,
            ProblemType::Unauthorized => 401,
            ProblemType::NotFound => 404,
            ProblemType::MethodNotAllowed => 405,
            ProblemType::PayloadTooLarge => 413,
            ProblemType::UnsupportedMediaType => 415,
            ProblemType::Conflict | ProblemType::IdempotencyKeyInUse => 409,
            ProblemType::Internal => 500,
            ProblemType::UpstreamUnavailable => 502,
            ProblemType::InvalidWebhook => 400,
            ProblemType::InvalidFeedback
            | ProblemType::DestinationNotAllowed
            | ProblemType::IdempotencyKeyReused => 422,
        }
    }
}

/// A problem details document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The kind's URI.
    #[serde(rename = "type")]
    pub type_uri: &'static str,
    /// The kind's title.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What happened this time, for a human.
    pub detail: String,
    /// Field-level errors, for validation problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

impl Problem {
    /// A problem of `kind` with `detail`.
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        Self {
            type_uri: kind.uri(),
            title: kind.title(),
            status: kind.status(),
            detail: detail.into(),
            errors: None,
        }
    }

    /// The same problem listing field errors.
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = Some(errors);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_problem_type_has_its_own_relative_uri() {
        let uris: HashSet<_> = ProblemType::ALL.iter().map(|k| k.uri()).collect();
        assert_eq!(uris.len(), ProblemType::ALL.len());
        assert!(uris.iter().all(|uri| uri.starts_with("/problems/")));
    }

    #[test]
    fn every_problem_type_is_a_client_or_server_error() {
        assert!(
            ProblemType::ALL
                .iter()
                .all(|k| (400..600).contains(&k.status()))
        );
    }

    #[test]
    fn a_problem_serialises_as_rfc_9457() {
        let problem = Problem::new(ProblemType::Validation, "1 field is invalid")
            .with_errors(vec![FieldError::new("name", "is required")]);
        assert_eq!(
            serde_json::to_value(&problem).expect("serialisable"),
            serde_json::json!({
                "type": "/problems/validation",
                "title": "Invalid request",
                "status": 400,
                "detail": "1 field is invalid",
                "errors": [{"field": "name", "message": "is required"}],
            })
        );
    }

    #[test]
    fn errors_are_left_out_when_there_are_none() {
        let json = serde_json::to_value(Problem::new(ProblemType::NotFound, "no such customer"))
            .expect("serialisable");
        assert!(json.get("errors").is_none());
    }
}
