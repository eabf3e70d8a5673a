//! The one error type of a component's HTTP boundary, and how each becomes a problem response.

use crate::response;
use mio_shared::{BodyError, FieldError, Problem, ProblemType};
use spin_sdk::http::Response;

/// Everything a request can fail with. Internal errors keep their cause for the log only.
#[derive(Debug)]
pub enum ApiError {
    /// The body is not a JSON object.
    MalformedJson(String),
    /// Fields or query parameters are invalid.
    Validation(Vec<FieldError>),
    /// A well-formed destination (a webhook URL) that the platform may not call.
    DestinationNotAllowed(Vec<FieldError>),
    /// No usable credentials. `presented` tells whether any were sent (RFC 6750 §3.1).
    Unauthorized {
        /// Whether the request carried an `Authorization` header at all.
        presented: bool,
    },
    /// No such route, or nothing with this id in the caller's account.
    NotFound(&'static str),
    /// The route exists with other methods.
    MethodNotAllowed(&'static [&'static str]),
    /// The body is over the size limit (in bytes) of the route.
    PayloadTooLarge(usize),
    /// The body is not in a media type the route accepts; says which ones it does.
    UnsupportedMediaType(&'static str),
    /// The request conflicts with the resource's current state.
    Conflict(String),
    /// Our fault: storage, randomness, clock. Logged, never shown.
    Internal(anyhow::Error),
    /// The request's `Idempotency-Key` was used, within its 24 hours, for another request.
    IdempotencyKeyReused,
    /// The request's `Idempotency-Key` is held by a run of its first request that has not
    /// answered yet.
    IdempotencyKeyInUse,
    /// A service we call (Stripe) failed or could not be reached; nothing was changed. The
    /// detail is shown; the cause goes to the log.
    BadGateway {
        /// What the client is told.
        detail: &'static str,
        /// Why, for the log only.
        cause: String,
    },
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::MalformedJson(_) | ApiError::Validation(_) => 400,
            ApiError::DestinationNotAllowed(_) => 422,
            ApiError::Unauthorized { .. } => 401,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::PayloadTooLarge(_) => 413,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::Conflict(_) | ApiError::IdempotencyKeyInUse => 409,
            ApiError::IdempotencyKeyReused => 422,
            ApiError::Internal(_) => 500,
            ApiError::BadGateway { .. } => 502,
        }
    }

    /// The problem `type` it is reported as.
    pub fn problem_type(&self) -> ProblemType {
        match self {
            ApiError::MalformedJson(_) => ProblemType::MalformedJson,
            ApiError::Validation(_) => ProblemType::Validation,
            ApiError::DestinationNotAllowed(_) => ProblemType::DestinationNotAllowed,
            ApiError::Unauthorized { .. } => ProblemType::Unauthorized,
            ApiError::NotFound(_) => ProblemType::NotFound,
            ApiError::MethodNotAllowed(_) => ProblemType::MethodNotAllowed,
            ApiError::PayloadTooLarge(_) => ProblemType::PayloadTooLarge,
            ApiError::UnsupportedMediaType(_) => ProblemType::UnsupportedMediaType,
            ApiError::Conflict(_) => ProblemType::Conflict,
            ApiError::IdempotencyKeyReused => ProblemType::IdempotencyKeyReused,
            ApiError::IdempotencyKeyInUse => ProblemType::IdempotencyKeyInUse,
            ApiError::Internal(_) => ProblemType::Internal,
            ApiError::BadGateway { .. } => ProblemType::UpstreamUnavailable,
        }
    }

    /// The problem response; internal causes go to the log.
    pub fn into_response(self) -> Response {
        let kind = self.problem_type();
        let status = self.status();
        let (problem, headers) = match self {
            ApiError::MalformedJson(detail) => (Problem::new(kind, detail), vec![]),
            ApiError::Validation(errors) | ApiError::DestinationNotAllowed(errors) => {
                let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
                let detail = format!("Invalid input: {}.", fields.join(", "));
                (Problem::new(kind, detail).with_errors(errors), vec![])
            }
            ApiError::Unauthorized { presented } => {
                let (detail, challenge) = if presented {
                    (
                        "The bearer token is not valid.",
                        r#"Bearer error="invalid_token""#,
                    )
                } else {
                    ("Send `Authorization: Bearer <token>`.", "Bearer")
                };
                (
                    Problem::new(kind, detail),
                    vec![("www-authenticate", challenge.to_owned())],
                )
            }
            ApiError::NotFound(detail) => (Problem::new(kind, detail), vec![]),
            ApiError::MethodNotAllowed(allow) => (
                Problem::new(kind, format!("This route accepts {}.", allow.join(", "))),
                vec![("allow", allow.join(", "))],
            ),
            ApiError::PayloadTooLarge(limit) => (
                Problem::new(kind, format!("The body must be at most {limit} bytes.")),
                vec![],
            ),
            ApiError::UnsupportedMediaType(accepted) => (
                Problem::new(
                    kind,
                    format!("Send the body as `Content-Type: {accepted}`."),
                ),
                vec![],
            ),
            ApiError::Conflict(detail) => (Problem::new(kind, detail), vec![]),
            ApiError::IdempotencyKeyReused => (
                Problem::new(
                    kind,
                    "This Idempotency-Key was used in the last 24 hours for another request \
                     (another method, path or body); nothing was done. Send a new key for a \
                     new request.",
                ),
                vec![],
            ),
            ApiError::IdempotencyKeyInUse => (
                Problem::new(
                    kind,
                    "The first request with this Idempotency-Key is still running; nothing was \
                     done. Retry in a moment to get its answer.",
                ),
                vec![],
            ),
            ApiError::Internal(cause) => {
                // Spin prefixes component output with the component id in its logs.
                eprintln!("internal error: {cause:#}");
                (
                    Problem::new(
                        kind,
                        "Something went wrong on our side; it has been logged.",
                    ),
                    vec![],
                )
            }
            ApiError::BadGateway { detail, cause } => {
                eprintln!("upstream failure: {cause}");
                (Problem::new(kind, detail), vec![])
            }
        };
        response::problem(status, &problem, &headers)
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> Self {
        ApiError::Internal(error)
    }
}

impl From<BodyError> for ApiError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::Malformed(detail) => ApiError::MalformedJson(detail),
            BodyError::Invalid(errors) => ApiError::Validation(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_of_each() -> Vec<ApiError> {
        vec![
            ApiError::MalformedJson(String::new()),
            ApiError::Validation(vec![]),
            ApiError::Unauthorized { presented: false },
            ApiError::NotFound(""),
            ApiError::MethodNotAllowed(&["GET"]),
            ApiError::PayloadTooLarge(1),
            ApiError::UnsupportedMediaType("application/json"),
            ApiError::Conflict(String::new()),
            ApiError::IdempotencyKeyReused,
            ApiError::IdempotencyKeyInUse,
            ApiError::Internal(anyhow::anyhow!("boom")),
            ApiError::BadGateway {
                detail: "",
                cause: String::new(),
            },
        ]
    }

    #[test]
    fn every_error_answers_with_the_status_of_its_problem_type() {
        for error in one_of_each() {
            assert_eq!(error.status(), error.problem_type().status(), "{error:?}");
        }
    }

    #[test]
    fn internal_errors_never_reach_the_client() {
        let response =
            ApiError::Internal(anyhow::anyhow!("no such table: customers")).into_response();
        let body = String::from_utf8_lossy(response.body()).into_owned();
        assert_eq!(*response.status(), 500);
        assert!(!body.contains("customers"), "{body}");
        assert!(body.contains("/problems/internal"), "{body}");
    }

    #[test]
    fn unauthorized_answers_carry_a_bearer_challenge() {
        let response = ApiError::Unauthorized { presented: false }.into_response();
        let challenge = response.header("www-authenticate").and_then(|v| v.as_str());
        assert_eq!(challenge, Some("Bearer"));
        let response = ApiError::Unauthorized { presented: true }.into_response();
        let challenge = response.header("www-authenticate").and_then(|v| v.as_str());
        assert_eq!(challenge, Some(r#"Bearer error="invalid_token""#));
    }

    #[test]
    fn method_not_allowed_lists_the_methods_in_allow() {
        let response = ApiError::MethodNotAllowed(&["GET", "POST"]).into_response();
        assert_eq!(
            response.header("allow").and_then(|v| v.as_str()),
            Some("GET, POST")
        );
        assert_eq!(
            response.header("content-type").and_then(|v| v.as_str()),
            Some("application/problem+json")
        );
    }
}
