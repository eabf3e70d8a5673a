//! The API's answers, as the screens read them: every screen calls the handler of the API route
//! it stands for (`mio_api`) and renders what it answered, so a screen can neither decide nor
//! validate anything differently from the API.

use mio_platform::ApiError;
use serde_json::Value;
use spin_sdk::http::Response;

/// What a handler answered: its status and JSON body (problem details for errors).
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// The answer a handler gave, as the API would have sent it.
    pub fn of(result: Result<Response, ApiError>) -> Self {
        let response = result.unwrap_or_else(ApiError::into_response);
        let status = *response.status();
        let body = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
        Self { status, body }
    }

    /// A success (2xx).
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The problem's field errors: `(field, message)`.
    pub fn field_errors(&self) -> Vec<(String, String)> {
        self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|error| {
                        (
                            text(&error["field"]).to_owned(),
                            text(&error["message"]).to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The problem's `detail` (or its `title`).
    pub fn detail(&self) -> String {
        let detail = text(&self.body["detail"]);
        if detail.is_empty() {
            text(&self.body["title"]).to_owned()
        } else {
            detail.to_owned()
        }
    }
}

/// A JSON string's text, or "" for anything else.
pub fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}
