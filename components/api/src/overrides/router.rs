//! Maps a method and path to one of this component's routes.

use mio_platform::routing::{API_PREFIX, NO_ROUTE, customer};
use mio_shared::CustomerId;
use mio_shared::rules::Automation;
use spin_sdk::http::Method;

pub use mio_platform::routing::RouteError;

/// Every route this component serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /api/v1/openapi.json`
    OpenApi,
    /// `GET /api/v1/customers/{id}/automations`
    View(CustomerId),
    /// `PUT /api/v1/customers/{id}/automations/{automation}`
    Set(CustomerId, Automation),
    /// `GET /api/v1/customers/{id}/automations/{automation}/history`
    History(CustomerId, Automation),
}

const NO_AUTOMATION: RouteError =
    RouteError::NotFound("There is no such automation (use `payment` or `feedback`).");

/// Resolves a request path (without query) and method.
pub fn resolve(method: &Method, path: &str) -> Result<Route, RouteError> {
    let rest = path.strip_prefix(API_PREFIX).ok_or(NO_ROUTE)?;
    let segments: Vec<&str> = rest.split('/').collect();
    match segments.as_slice() {
        ["openapi.json"] => only(method, Method::Get, Route::OpenApi),
        ["customers", id, "automations"] => {
            let id = customer(id)?;
            only(method, Method::Get, Route::View(id))
        }
        ["customers", id, "automations", name] => {
            let (id, automation) = (customer(id)?, automation(name)?);
            only(method, Method::Put, Route::Set(id, automation))
        }
        ["customers", id, "automations", name, "history"] => {
            let (id, automation) = (customer(id)?, automation(name)?);
            only(method, Method::Get, Route::History(id, automation))
        }
        _ => Err(NO_ROUTE),
    }
}

// A segment that cannot name a resource is "not found", whatever the method (customer ids:
// `mio_platform::routing::customer`).
fn automation(segment: &str) -> Result<Automation, RouteError> {
    Automation::parse(segment).ok_or(NO_AUTOMATION)
}

fn only(method: &Method, allowed: Method, route: Route) -> Result<Route, RouteError> {
    if *method == allowed {
        return Ok(route);
    }
    Err(RouteError::MethodNotAllowed(match allowed {
        Method::Put => &["PUT"],
        _ => &["GET"],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> CustomerId {
        CustomerId::from_random(&[1; 16])
    }

    #[test]
    fn override_routes_resolve_by_method() {
        let base = format!("/api/v1/customers/{}/automations", id());
        assert_eq!(resolve(&Method::Get, &base), Ok(Route::View(id())));
        assert_eq!(
            resolve(&Method::Put, &format!("{base}/payment")),
            Ok(Route::Set(id(), Automation::Payment))
        );
        assert_eq!(
            resolve(&Method::Get, &format!("{base}/feedback/history")),
            Ok(Route::History(id(), Automation::Feedback))
        );
        assert_eq!(
            resolve(&Method::Get, "/api/v1/openapi.json"),
            Ok(Route::OpenApi)
        );
    }

    #[test]
    fn a_wrong_method_lists_the_allowed_one() {
        let base = format!("/api/v1/customers/{}/automations", id());
        assert_eq!(
            resolve(&Method::Put, &base),
            Err(RouteError::MethodNotAllowed(&["GET"]))
        );
        assert_eq!(
            resolve(&Method::Get, &format!("{base}/payment")),
            Err(RouteError::MethodNotAllowed(&["PUT"]))
        );
        assert_eq!(
            resolve(&Method::Post, "/api/v1/openapi.json"),
            Err(RouteError::MethodNotAllowed(&["GET"]))
        );
    }

    #[test]
    fn unknown_automations_ids_and_paths_are_not_found() {
        let base = format!("/api/v1/customers/{}/automations", id());
        for path in [
            format!("{base}/sms"),
            format!("{base}/Payment"),
            format!("{base}/sms/history"),
            format!("{base}/"),
            "/api/v1/customers/cus_short/automations".to_owned(),
            "/api/v1/customers/cus_short/automations/payment".to_owned(),
            "/api/v2/openapi.json".to_owned(),
            "/api/v1/openapi.yaml".to_owned(),
        ] {
            assert!(
                matches!(resolve(&Method::Put, &path), Err(RouteError::NotFound(_))),
                "{path}"
            );
        }
    }
}
