//! The Automations Activity list: which runs to show (`GET /api/v1/activity?…`, parsed here)
//! and the statuses a recorded run can have. Reading and writing the rows is the shells' job.

use crate::field::FieldError;
use crate::ids::{BookingId, CustomerId};
use crate::list::{Cursor, Limit, query_parameters, window_error};
use crate::rules::Automation;
use crate::time::Timestamp;

/// The statuses an activity entry can have, as stored and shown.
pub const STATUSES: [&str; 4] = ["success", "failed", "skipped", "retrying"];

/// `GET /api/v1/activity?customer_id=&booking_id=&automation=&status=&from=&to=&limit=&cursor=`,
/// parsed. Every filter is optional; `from` is inclusive and `to` exclusive.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ActivityQuery {
    /// Only this customer's runs.
    pub customer_id: Option<CustomerId>,
    /// Only this booking's runs.
    pub booking_id: Option<BookingId>,
    /// Only runs of this automation.
    pub automation: Option<Automation>,
    /// Only runs with this status (one of [`STATUSES`]).
    pub status: Option<&'static str>,
    /// Runs at or after this instant.
    pub from: Option<Timestamp>,
    /// Runs before this instant.
    pub to: Option<Timestamp>,
    /// Page size.
    pub limit: Limit,
    /// Where to resume (newest first: entries older than the cursor).
    pub cursor: Option<Cursor>,
}

const PARAMETERS: [&str; 8] = [
    "customer_id",
    "booking_id",
    "automation",
    "status",
    "from",
    "to",
    "limit",
    "cursor",
];

impl ActivityQuery {
    /// Parses a URL query string. Unknown parameters are ignored and an empty value counts as
    /// absent (as in [`crate::ListQuery::parse`]); a bad or repeated one is a field error, and
    /// every error is reported at once.
    pub fn parse(query: &str) -> Result<Self, Vec<FieldError>> {
        let mut parsed = Self::default();
        let mut errors = query_parameters(query, &PARAMETERS, |key, value| match key {
            "customer_id" => CustomerId::parse(value)
                .map(|id| parsed.customer_id = Some(id))
                .map_err(|_| "must be a customer id (cus_…)".into()),
            "booking_id" => BookingId::parse(value)
                .map(|id| parsed.booking_id = Some(id))
                .map_err(|_| "must be a booking id (bkg_…)".into()),
            "automation" => Automation::parse(value)
                .map(|a| parsed.automation = Some(a))
                .ok_or_else(|| "must be payment or feedback".into()),
            "status" => STATUSES
                .iter()
                .find(|s| **s == value)
                .map(|s| parsed.status = Some(s))
                .ok_or_else(|| "must be success, failed, skipped or retrying".into()),
            "from" | "to" => match Timestamp::parse(value) {
                Ok(at) if key == "from" => {
                    parsed.from = Some(at);
                    Ok(())
                }
                Ok(at) => {
                    parsed.to = Some(at);
                    Ok(())
                }
                Err(_) => Err("must be an RFC 3339 timestamp".into()),
            },
            "limit" => Limit::parse(value)
                .map(|limit| parsed.limit = limit)
                .map_err(|e| e.to_string()),
            _ => Cursor::decode(value)
                .map(|cursor| parsed.cursor = Some(cursor))
                .map_err(|e| e.to_string()),
        });
        errors.extend(window_error(parsed.from, parsed.to));
        if errors.is_empty() {
            Ok(parsed)
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(query: &str) -> Vec<String> {
        ActivityQuery::parse(query)
            .expect_err("invalid")
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn every_filter_parses_into_its_domain_type() {
        let customer = CustomerId::from_random(&[1; 16]);
        let booking = BookingId::from_random(&[2; 16]);
        let query = ActivityQuery::parse(&format!(
            "customer_id={customer}&booking_id={booking}&automation=payment&status=failed\
             &from=2026-03-01T00:00:00-05:00&to=2026-03-02T00:00:00Z&limit=5&other=x"
        ))
        .expect("valid");
        assert_eq!(query.customer_id, Some(customer));
        assert_eq!(query.booking_id, Some(booking));
        assert_eq!(query.automation, Some(Automation::Payment));
        assert_eq!(query.status, Some("failed"));
        assert_eq!(
            query.from,
            Some(Timestamp::parse("2026-03-01T05:00:00Z").expect("valid"))
        );
        assert_eq!(query.limit.get(), 5);
        assert_eq!(ActivityQuery::parse(""), Ok(ActivityQuery::default()));
    }

    #[test]
    fn every_bad_filter_is_reported_at_once() {
        assert_eq!(
            fields(
                "customer_id=bob&booking_id=x&automation=sms&status=ok&from=yesterday\
                 &limit=0&cursor=zz"
            ),
            [
                "customer_id",
                "booking_id",
                "automation",
                "status",
                "from",
                "limit",
                "cursor"
            ]
        );
        assert_eq!(fields("status=failed&status=success"), ["status"]);
        assert_eq!(
            fields("from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z"),
            ["to"]
        );
    }
}
