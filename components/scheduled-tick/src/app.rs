//! `POST /api/v1/internal/tick`: authenticate with the tick token, run the tick, answer counts.

use crate::tick;
use mio_platform::{ApiError, Incoming, auth, response, system};
use spin_sdk::http::{IncomingRequest, Method, Response};

const TICK_PATH: &str = "/api/v1/internal/tick";
const TICK_TOKEN_VARIABLE: &str = "tick_token";

/// Answers one request; every failure becomes a problem response.
pub async fn handle(request: IncomingRequest) -> Response {
    match serve(&Incoming::new(request)) {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

fn serve(request: &Incoming) -> Result<Response, ApiError> {
    if request.path != TICK_PATH {
        return Err(ApiError::NotFound("There is no such route in this API."));
    }
    if request.method != Method::Post {
        return Err(ApiError::MethodNotAllowed(&["POST"]));
    }
    auth::require_secret(request, system::secret_variable(TICK_TOKEN_VARIABLE))?;
    let summary = tick::run_requested()?;
    Ok(response::json(200, &summary, &[])?)
}
