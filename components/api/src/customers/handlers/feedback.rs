//! `GET /api/v1/feedback`: the ratings customers sent through their links, newest first, with
//! the summary of everything the filter matches.

use crate::customers::storage::feedback::FeedbackEntry;
use crate::customers::storage::{self, Sql};
use mio_platform::{ApiError, response};
use mio_shared::feedback_answer::{FeedbackQuery, Summary};
use mio_shared::{Account, Page};
use serde::Serialize;
use spin_sdk::http::Response;

/// The list envelope of every list route (`data`, `next_cursor`), plus `summary`.
#[derive(Debug, Serialize)]
struct FeedbackList {
    data: Vec<FeedbackEntry>,
    next_cursor: Option<String>,
    /// Over the whole filter, not only this page.
    summary: Summary,
}

/// `GET /api/v1/feedback?from=&to=&min_rating=&customer_id=&limit=&cursor=`.
pub fn list(db: &impl Sql, account: &Account, query: &str) -> Result<Response, ApiError> {
    let query = FeedbackQuery::parse(query).map_err(ApiError::Validation)?;
    let (rows, distribution) = storage::feedback::list(db, account.id.as_str(), &query)?;
    let Page { data, next_cursor } = Page::from_rows(rows, query.limit);
    Ok(response::json(
        200,
        &FeedbackList {
            data,
            next_cursor,
            summary: Summary::of(distribution),
        },
        &[],
    )?)
}
