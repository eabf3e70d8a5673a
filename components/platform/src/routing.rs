//! What the components' routers share: why a request matched none of a component's routes (and
//! the problem that answers it), the `/api/v1/` prefix, and the customer id in a path. Each
//! component keeps its own routes and decides its own methods.

use crate::error::ApiError;
use mio_shared::CustomerId;

/// Why no route matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// No such path here (including a path whose id cannot name a resource).
    NotFound(&'static str),
    /// The path exists with other methods, listed for the `Allow` header.
    MethodNotAllowed(&'static [&'static str]),
}

impl From<RouteError> for ApiError {
    fn from(error: RouteError) -> Self {
        match error {
            RouteError::NotFound(detail) => ApiError::NotFound(detail),
            RouteError::MethodNotAllowed(allow) => ApiError::MethodNotAllowed(allow),
        }
    }
}

/// What every API path starts with.
pub const API_PREFIX: &str = "/api/v1/";

/// A path no route of the component serves.
pub const NO_ROUTE: RouteError = RouteError::NotFound("There is no such route in this API.");

/// A path segment that cannot be a customer id.
pub const NO_CUSTOMER: RouteError =
    RouteError::NotFound("No customer has this id (customer ids look like cus_…).");

/// The customer id a path segment names; a segment that cannot be one names no resource,
/// whatever the method.
pub fn customer(segment: &str) -> Result<CustomerId, RouteError> {
    CustomerId::parse(segment).map_err(|_| NO_CUSTOMER)
}
