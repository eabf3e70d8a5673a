//! One request to a rating link: check the token's shape, read the link (or store the rating),
//! answer with a page, or with JSON to a client that sent JSON.
//!
//! Answers: `GET` → 200 the form, or 200 "already received" once rated; an unknown, malformed
//! or expired token → 404 page. `POST` (a form, or JSON) → 200 thank-you page (JSON: the
//! stored rating); 409 when already rated; 422 with the form again (JSON: problem with field
//! `errors`) and nothing stored when the answer is invalid; 400 malformed JSON; 413 over
//! [`MAX_BODY_BYTES`]; 415 another media type. Other methods → 405 with `Allow`.
//!
//! The order is deliberate: a token that cannot be one is refused before any database work,
//! and an unusable link (404, 409) is reported before anything wrong with the answer. Host
//! calls: a page costs two SQLite calls (connect, read); a stored rating two (connect, write);
//! a refused one three at most (connect, write, read).

use crate::storage::{self, Link, Stored};
use mio_platform::{ApiError, Incoming, Media, db, response, system};
use mio_shared::feedback::{looks_like_token, token_hash};
use mio_shared::feedback_answer::{Answer, LinkState, Rejected, link_state};
use mio_shared::feedback_page::{self, Visit};
use mio_shared::{BodyError, Problem, ProblemType, Timestamp};
use spin_sdk::http::{IncomingRequest, Method, Response};

/// Where the links live: `/feedback/{token}`.
const PREFIX: &str = "/feedback/";

/// The largest answer read: 32 KiB. A comment of 2,000 characters in any script fits even
/// percent-encoded (at most 4 bytes a character, 3 characters a byte), and a form or JSON body
/// over it cannot be a valid answer.
pub const MAX_BODY_BYTES: usize = 32 * 1024;

/// What an answer may be posted as.
const ACCEPTED: [Media; 2] = [Media::Form, Media::Json];

/// The methods of a link.
const ALLOW: &[&str] = &["GET", "POST"];

/// How a request is answered: pages for browsers, JSON (problems included) for a client that
/// posted JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Page,
    Json,
}

/// Answers one request; failures of ours are problem responses (logged, never detailed).
pub async fn handle(request: IncomingRequest) -> Response {
    match serve(Incoming::new(request)).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn serve(request: Incoming) -> Result<Response, ApiError> {
    let style = if request.method == Method::Post && request.media(&[Media::Json]).is_some() {
        Style::Json
    } else {
        Style::Page
    };
    let hash = match request.path.strip_prefix(PREFIX) {
        Some(token) if looks_like_token(token) => token_hash(token),
        _ => return Ok(no_link(style)),
    };
    match request.method {
        Method::Get => show(&hash),
        Method::Post => submit(request, &hash, style).await,
        _ => Err(ApiError::MethodNotAllowed(ALLOW)),
    }
}

/// `GET`: the form, or what became of the link.
fn show(hash: &str) -> Result<Response, ApiError> {
    let now = system::now()?;
    let db = db::connect()?;
    let link = storage::find(&db, hash, now)?;
    Ok(match usable(link.as_ref(), now) {
        Some((link, LinkState::Open)) => page(200, &feedback_page::form(&visit(link), None)),
        Some((link, LinkState::Rated)) => {
            page(200, &feedback_page::already_received(&link.business))
        }
        Some((_, LinkState::Expired)) | None => no_link(Style::Page),
    })
}

/// `POST`: store the answer once, or say why not.
async fn submit(request: Incoming, hash: &str, style: Style) -> Result<Response, ApiError> {
    let Some(media) = request.media(&ACCEPTED) else {
        return Err(ApiError::UnsupportedMediaType(
            "application/x-www-form-urlencoded` or `application/json",
        ));
    };
    let body = match request.body(&ACCEPTED, MAX_BODY_BYTES).await {
        Ok((_, body)) => body,
        Err(ApiError::PayloadTooLarge(_)) if style == Style::Page => {
            return Ok(page(413, &feedback_page::too_large()));
        }
        Err(error) => return Err(error),
    };
    let answer = match media {
        Media::Form => Answer::from_form(&body).map_err(Invalid::Form),
        Media::Json => Answer::from_json(&body).map_err(Invalid::Json),
        // Not in `ACCEPTED`, so never read.
        Media::Csv | Media::Multipart => {
            return Err(ApiError::UnsupportedMediaType("application/json"));
        }
    };
    let now = system::now()?;
    let db = db::connect()?;
    let invalid = match answer {
        Ok(answer) => {
            if let Some(stored) = storage::store(&db, hash, &answer, now)? {
                return thanks(&stored, style);
            }
            None
        }
        Err(invalid) => Some(invalid),
    };
    // Nothing was stored: find out why. An unusable link comes first.
    let link = storage::find(&db, hash, now)?;
    match (usable(link.as_ref(), now), invalid) {
        (None | Some((_, LinkState::Expired)), _) => Ok(no_link(style)),
        (Some((link, LinkState::Rated)), _) => Ok(already_rated(link, style)),
        (Some((link, LinkState::Open)), Some(invalid)) => Ok(rejected(link, invalid)),
        (Some((_, LinkState::Open)), None) => Err(ApiError::Internal(anyhow::anyhow!(
            "a valid rating on an open link stored nothing"
        ))),
    }
}

/// Why an answer was not taken, in the form it was sent.
enum Invalid {
    Form(Rejected),
    Json(BodyError),
}

/// The link and its state at `now`, when there is one.
fn usable(link: Option<&Link>, now: Timestamp) -> Option<(&Link, LinkState)> {
    link.map(|link| {
        (
            link,
            link_state(link.expires_at, link.received.is_some(), now),
        )
    })
}

fn visit(link: &Link) -> Visit<'_> {
    Visit {
        business: &link.business,
        service: &link.service,
        start_at: link.start_at,
        timezone: &link.timezone,
    }
}

fn thanks(stored: &Stored, style: Style) -> Result<Response, ApiError> {
    Ok(match style {
        Style::Page => page(
            200,
            &feedback_page::thanks(&stored.business, stored.received.rating),
        ),
        Style::Json => response::json(
            200,
            &stored.received,
            &[("cache-control", "no-store".to_owned())],
        )?,
    })
}

fn no_link(style: Style) -> Response {
    match style {
        Style::Page => page(404, &feedback_page::not_found()),
        Style::Json => problem(Problem::new(
            ProblemType::NotFound,
            "No rating link has this token, or it has expired.",
        )),
    }
}

fn already_rated(link: &Link, style: Style) -> Response {
    match style {
        Style::Page => page(409, &feedback_page::already_received(&link.business)),
        Style::Json => problem(Problem::new(
            ProblemType::Conflict,
            "This link's rating was already received; a link takes one rating.",
        )),
    }
}

fn rejected(link: &Link, invalid: Invalid) -> Response {
    match invalid {
        Invalid::Form(rejected) => page(422, &feedback_page::form(&visit(link), Some(&rejected))),
        Invalid::Json(BodyError::Malformed(detail)) => {
            problem(Problem::new(ProblemType::MalformedJson, detail))
        }
        Invalid::Json(BodyError::Invalid(errors)) => {
            let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
            let detail = format!("Invalid input: {}. Nothing was stored.", fields.join(", "));
            problem(Problem::new(ProblemType::InvalidFeedback, detail).with_errors(errors))
        }
    }
}

fn problem(problem: Problem) -> Response {
    response::problem(problem.status, &problem, &[])
}

/// A page with every header pages carry.
fn page(status: u16, html: &str) -> Response {
    let mut builder = Response::builder();
    builder.status(status);
    for (name, value) in feedback_page::headers() {
        builder.header(name, value);
    }
    builder.body(html.to_owned()).build()
}
