//! Maps a method and path to one of this component's routes.

use mio_platform::routing::{API_PREFIX, NO_ROUTE, customer};
use mio_shared::CustomerId;
use spin_sdk::http::Method;

pub use mio_platform::routing::RouteError;

/// Every route this component serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `PUT /api/v1/customers/{id}/payment-method`
    PutPaymentMethod(CustomerId),
    /// `POST /api/v1/customers/{id}/payment-method-requests`
    RequestPaymentMethod(CustomerId),
    /// `GET /api/v1/customers/{id}/payment-method-requests`
    ListPaymentMethodRequests(CustomerId),
}

/// Resolves a request path (without query) and method.
pub fn resolve(method: &Method, path: &str) -> Result<Route, RouteError> {
    let rest = path.strip_prefix(API_PREFIX).ok_or(NO_ROUTE)?;
    let segments: Vec<&str> = rest.split('/').collect();
    match segments.as_slice() {
        ["customers", id, "payment-method"] => {
            let id = customer(id)?;
            match method {
                Method::Put => Ok(Route::PutPaymentMethod(id)),
                _ => Err(RouteError::MethodNotAllowed(&["PUT"])),
            }
        }
        ["customers", id, "payment-method-requests"] => {
            let id = customer(id)?;
            match method {
                Method::Post => Ok(Route::RequestPaymentMethod(id)),
                Method::Get => Ok(Route::ListPaymentMethodRequests(id)),
                _ => Err(RouteError::MethodNotAllowed(&["GET", "POST"])),
            }
        }
        _ => Err(NO_ROUTE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> CustomerId {
        CustomerId::from_random(&[1; 16])
    }

    #[test]
    fn card_routes_resolve_by_method() {
        let path = format!("/api/v1/customers/{}", id());
        assert_eq!(
            resolve(&Method::Put, &format!("{path}/payment-method")),
            Ok(Route::PutPaymentMethod(id()))
        );
        assert_eq!(
            resolve(&Method::Post, &format!("{path}/payment-method-requests")),
            Ok(Route::RequestPaymentMethod(id()))
        );
        assert_eq!(
            resolve(&Method::Get, &format!("{path}/payment-method-requests")),
            Ok(Route::ListPaymentMethodRequests(id()))
        );
    }

    #[test]
    fn a_wrong_method_lists_the_allowed_ones() {
        let path = format!("/api/v1/customers/{}", id());
        assert_eq!(
            resolve(&Method::Get, &format!("{path}/payment-method")),
            Err(RouteError::MethodNotAllowed(&["PUT"]))
        );
        assert_eq!(
            resolve(&Method::Delete, &format!("{path}/payment-method-requests")),
            Err(RouteError::MethodNotAllowed(&["GET", "POST"]))
        );
    }

    #[test]
    fn other_paths_and_impossible_ids_are_not_found() {
        let path = format!("/api/v1/customers/{}", id());
        for path in [
            "/".to_owned(),
            "/api/v1/customers/cus_short/payment-method".to_owned(),
            "/api/v1/customers/x/payment-method-requests".to_owned(),
            format!("{path}/payment-method/"),
            format!("{path}/payment-method-requests/pmr_1"),
            format!("{path}/activity"),
            path.clone(),
        ] {
            assert!(
                matches!(resolve(&Method::Put, &path), Err(RouteError::NotFound(_))),
                "{path}"
            );
        }
    }
}
