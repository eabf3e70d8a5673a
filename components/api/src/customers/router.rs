//! Maps a method and path to one of this component's routes.

use mio_platform::routing::{API_PREFIX, NO_ROUTE, customer};
use mio_shared::{BookingId, CustomerId};
use spin_sdk::http::Method;

pub use mio_platform::routing::RouteError;

/// Every route this component serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `POST /api/v1/admin/accounts`
    CreateAccount,
    /// `GET /api/v1/customers`
    ListCustomers,
    /// `POST /api/v1/customers`
    CreateCustomer,
    /// `GET /api/v1/customers/{id}`
    GetCustomer(CustomerId),
    /// `PATCH /api/v1/customers/{id}`
    UpdateCustomer(CustomerId),
    /// `DELETE /api/v1/customers/{id}`
    DeleteCustomer(CustomerId),
    /// `POST /api/v1/customers/import`
    ImportCustomers,
    /// `GET /api/v1/bookings`
    ListBookings,
    /// `POST /api/v1/bookings`
    CreateBooking,
    /// `GET /api/v1/bookings/{id}`
    GetBooking(BookingId),
    /// `PATCH /api/v1/bookings/{id}`
    UpdateBooking(BookingId),
    /// `POST /api/v1/bookings/{id}/complete`
    CompleteBooking(BookingId),
    /// `POST /api/v1/bookings/{id}/cancel`
    CancelBooking(BookingId),
    /// `GET /api/v1/bookings/{id}/automations`
    BookingAutomations(BookingId),
    /// `GET /api/v1/settings/automations`
    GetAutomationSettings,
    /// `PUT /api/v1/settings/automations`
    PutAutomationSettings,
    /// `GET /api/v1/settings/miopay`
    GetMiopay,
    /// `PUT /api/v1/settings/miopay`
    PutMiopay,
    /// `GET /api/v1/settings/notifications`
    GetNotifications,
    /// `PUT /api/v1/settings/notifications`
    PutNotifications,
    /// `GET /api/v1/customers/{id}/activity`
    CustomerActivity(CustomerId),
    /// `GET /api/v1/activity`
    ListActivity,
    /// `GET /api/v1/feedback`
    ListFeedback,
}

/// Resolves a request path (without query) and method.
pub fn resolve(method: &Method, path: &str) -> Result<Route, RouteError> {
    let rest = path.strip_prefix(API_PREFIX).ok_or(NO_ROUTE)?;
    let segments: Vec<&str> = rest.split('/').collect();
    match segments.as_slice() {
        ["admin", "accounts"] => match method {
            Method::Post => Ok(Route::CreateAccount),
            _ => Err(RouteError::MethodNotAllowed(&["POST"])),
        },
        ["customers"] => match method {
            Method::Get => Ok(Route::ListCustomers),
            Method::Post => Ok(Route::CreateCustomer),
            _ => Err(RouteError::MethodNotAllowed(&["GET", "POST"])),
        },
        ["customers", "import"] => match method {
            Method::Post => Ok(Route::ImportCustomers),
            _ => Err(RouteError::MethodNotAllowed(&["POST"])),
        },
        ["customers", id, rest @ ..] if rest.len() <= 1 => {
            let id = customer(id)?;
            match (rest, method) {
                ([], Method::Get) => Ok(Route::GetCustomer(id)),
                ([], Method::Patch) => Ok(Route::UpdateCustomer(id)),
                ([], Method::Delete) => Ok(Route::DeleteCustomer(id)),
                ([], _) => Err(RouteError::MethodNotAllowed(&["GET", "PATCH", "DELETE"])),
                (["activity"], Method::Get) => Ok(Route::CustomerActivity(id)),
                (["activity"], _) => Err(RouteError::MethodNotAllowed(&["GET"])),
                _ => Err(NO_ROUTE),
            }
        }
        ["activity"] => match method {
            Method::Get => Ok(Route::ListActivity),
            _ => Err(RouteError::MethodNotAllowed(&["GET"])),
        },
        ["feedback"] => match method {
            Method::Get => Ok(Route::ListFeedback),
            _ => Err(RouteError::MethodNotAllowed(&["GET"])),
        },
        ["bookings"] => match method {
            Method::Get => Ok(Route::ListBookings),
            Method::Post => Ok(Route::CreateBooking),
            _ => Err(RouteError::MethodNotAllowed(&["GET", "POST"])),
        },
        ["bookings", id, rest @ ..] => {
            let id = booking_id(id)?;
            match (rest, method) {
                ([], Method::Get) => Ok(Route::GetBooking(id)),
                ([], Method::Patch) => Ok(Route::UpdateBooking(id)),
                ([], _) => Err(RouteError::MethodNotAllowed(&["GET", "PATCH"])),
                (["complete"], Method::Post) => Ok(Route::CompleteBooking(id)),
                (["cancel"], Method::Post) => Ok(Route::CancelBooking(id)),
                (["complete" | "cancel"], _) => Err(RouteError::MethodNotAllowed(&["POST"])),
                (["automations"], Method::Get) => Ok(Route::BookingAutomations(id)),
                (["automations"], _) => Err(RouteError::MethodNotAllowed(&["GET"])),
                _ => Err(NO_ROUTE),
            }
        }
        ["settings", "automations"] => match method {
            Method::Get => Ok(Route::GetAutomationSettings),
            Method::Put => Ok(Route::PutAutomationSettings),
            _ => Err(RouteError::MethodNotAllowed(&["GET", "PUT"])),
        },
        ["settings", "miopay"] => match method {
            Method::Get => Ok(Route::GetMiopay),
            Method::Put => Ok(Route::PutMiopay),
            _ => Err(RouteError::MethodNotAllowed(&["GET", "PUT"])),
        },
        ["settings", "notifications"] => match method {
            Method::Get => Ok(Route::GetNotifications),
            Method::Put => Ok(Route::PutNotifications),
            _ => Err(RouteError::MethodNotAllowed(&["GET", "PUT"])),
        },
        _ => Err(NO_ROUTE),
    }
}

/// A segment that cannot be a booking id names no resource, whatever the method.
fn booking_id(segment: &str) -> Result<BookingId, RouteError> {
    BookingId::parse(segment)
        .map_err(|_| RouteError::NotFound("No booking has this id (booking ids look like bkg_…)."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> CustomerId {
        CustomerId::from_random(&[1; 16])
    }

    #[test]
    fn customer_routes_resolve_by_method() {
        let path = format!("/api/v1/customers/{}", id());
        assert_eq!(
            resolve(&Method::Get, "/api/v1/customers"),
            Ok(Route::ListCustomers)
        );
        assert_eq!(
            resolve(&Method::Post, "/api/v1/customers"),
            Ok(Route::CreateCustomer)
        );
        assert_eq!(resolve(&Method::Get, &path), Ok(Route::GetCustomer(id())));
        assert_eq!(
            resolve(&Method::Patch, &path),
            Ok(Route::UpdateCustomer(id()))
        );
        assert_eq!(
            resolve(&Method::Delete, &path),
            Ok(Route::DeleteCustomer(id()))
        );
        assert_eq!(
            resolve(&Method::Post, "/api/v1/admin/accounts"),
            Ok(Route::CreateAccount)
        );
        assert_eq!(
            resolve(&Method::Get, &format!("{path}/activity")),
            Ok(Route::CustomerActivity(id()))
        );
        assert_eq!(
            resolve(&Method::Get, "/api/v1/activity"),
            Ok(Route::ListActivity)
        );
        assert_eq!(
            resolve(&Method::Get, "/api/v1/feedback"),
            Ok(Route::ListFeedback)
        );
        assert_eq!(
            resolve(&Method::Post, "/api/v1/feedback"),
            Err(RouteError::MethodNotAllowed(&["GET"]))
        );
    }

    #[test]
    fn booking_settings_and_import_routes_resolve_by_method() {
        let booking = BookingId::from_random(&[2; 16]);
        let path = format!("/api/v1/bookings/{booking}");
        assert_eq!(
            resolve(&Method::Post, "/api/v1/customers/import"),
            Ok(Route::ImportCustomers)
        );
        assert_eq!(
            resolve(&Method::Post, "/api/v1/bookings"),
            Ok(Route::CreateBooking)
        );
        assert_eq!(
            resolve(&Method::Patch, &path),
            Ok(Route::UpdateBooking(booking.clone()))
        );
        assert_eq!(
            resolve(&Method::Post, &format!("{path}/cancel")),
            Ok(Route::CancelBooking(booking.clone()))
        );
        assert_eq!(
            resolve(&Method::Get, &format!("{path}/automations")),
            Ok(Route::BookingAutomations(booking.clone()))
        );
        assert_eq!(
            resolve(&Method::Get, &format!("{path}/complete")),
            Err(RouteError::MethodNotAllowed(&["POST"]))
        );
        assert_eq!(
            resolve(&Method::Put, "/api/v1/settings/automations"),
            Ok(Route::PutAutomationSettings)
        );
        assert_eq!(
            resolve(&Method::Put, "/api/v1/settings/miopay"),
            Ok(Route::PutMiopay)
        );
    }

    #[test]
    fn a_wrong_method_lists_the_allowed_ones() {
        let path = format!("/api/v1/customers/{}", id());
        assert_eq!(
            resolve(&Method::Put, &path),
            Err(RouteError::MethodNotAllowed(&["GET", "PATCH", "DELETE"]))
        );
        assert_eq!(
            resolve(&Method::Delete, "/api/v1/customers"),
            Err(RouteError::MethodNotAllowed(&["GET", "POST"]))
        );
        assert_eq!(
            resolve(&Method::Get, "/api/v1/admin/accounts"),
            Err(RouteError::MethodNotAllowed(&["POST"]))
        );
    }

    #[test]
    fn card_routes_are_not_served_here() {
        // The `card-api` component serves them: spin.toml routes them there.
        let path = format!("/api/v1/customers/{}", id());
        for (method, suffix) in [
            (Method::Put, "payment-method"),
            (Method::Post, "payment-method-requests"),
            (Method::Get, "payment-method-requests"),
        ] {
            assert!(
                matches!(
                    resolve(&method, &format!("{path}/{suffix}")),
                    Err(RouteError::NotFound(_))
                ),
                "{suffix}"
            );
        }
    }

    #[test]
    fn unknown_paths_and_impossible_ids_are_not_found() {
        for path in [
            "/",
            "/api/v1/",
            "/api/v1/nope",
            "/api/v1/customers/",
            "/api/v1/customers/cus_short",
            "/api/v1/bookings/bkg_short",
            "/api/v1/bookings/bkg_short/cancel",
            "/api/v1/settings",
            "/api/v1/settings/other",
            "/api/v2/customers",
            "/api/v1/customers/x/y",
        ] {
            assert!(
                matches!(resolve(&Method::Post, path), Err(RouteError::NotFound(_))),
                "{path}"
            );
        }
    }
}
