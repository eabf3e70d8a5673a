//! Reading what the handlers need from an incoming request: path, query, credentials, and a
//! body of bounded size in an accepted media type.

use crate::error::ApiError;
use anyhow::anyhow;
use futures::StreamExt;
use spin_sdk::http::{IncomingRequest, Method};

/// The largest JSON request body accepted by ordinary routes: 1 MiB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The media types a route may accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// `application/json` (or `application/merge-patch+json`), UTF-8.
    Json,
    /// `text/csv`, UTF-8 (RFC 4180).
    Csv,
    /// `application/x-www-form-urlencoded` (what an HTML form posts), UTF-8.
    Form,
    /// `multipart/form-data`: a browser form with a file input.
    Multipart,
}

/// The parts of a request read before deciding anything; the body stays unread until needed.
pub struct Incoming {
    /// The method.
    pub method: Method,
    /// The path, without the query.
    pub path: String,
    /// The raw query string (without `?`), possibly empty.
    pub query: String,
    /// Every `Authorization` header value (more than one is refused).
    pub authorization: Vec<String>,
    /// Every `Idempotency-Key` header value.
    pub idempotency_key: Vec<String>,
    /// The `Cookie` headers (the console's session).
    pub cookie: Vec<String>,
    /// The URL the client asked for, as Spin's `spin-full-url` header gives it.
    pub full_url: Option<String>,
    content_type: Vec<String>,
    content_length: Vec<String>,
    request: IncomingRequest,
}

impl Incoming {
    /// Reads the request line and the headers that matter.
    pub fn new(request: IncomingRequest) -> Self {
        let target = request.path_with_query().unwrap_or_else(|| "/".to_owned());
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path.to_owned(), query.to_owned()),
            None => (target, String::new()),
        };
        let headers = request.headers();
        let values = |name: &str| -> Vec<String> {
            headers
                .get(name)
                .into_iter()
                .map(|value| String::from_utf8_lossy(&value).into_owned())
                .collect()
        };
        Self {
            method: request.method(),
            path,
            query,
            authorization: values("authorization"),
            idempotency_key: values("idempotency-key"),
            cookie: values("cookie"),
            full_url: values("spin-full-url").into_iter().next(),
            content_type: values("content-type"),
            content_length: values("content-length"),
            request,
        }
    }

    /// The body's length as declared by exactly one well-formed `Content-Length`.
    pub fn declared_length(&self) -> Option<usize> {
        match self.content_length.as_slice() {
            [length] => length.trim().parse().ok(),
            _ => None,
        }
    }

    /// Which of `accepted` the body's declared media type is, if exactly one `Content-Type` was
    /// sent and it is one of them.
    pub fn media(&self, accepted: &[Media]) -> Option<Media> {
        match self.content_type.as_slice() {
            [content_type] => accepted
                .iter()
                .copied()
                .find(|media| media.matches(content_type)),
            _ => None,
        }
    }

    /// The body, once its media type is JSON and its size is within [`MAX_BODY_BYTES`].
    /// The `Content-Type`, if exactly one was sent.
    pub fn content_type(&self) -> Option<&str> {
        match self.content_type.as_slice() {
            [content_type] => Some(content_type),
            _ => None,
        }
    }

    pub async fn json_body(self) -> Result<Vec<u8>, ApiError> {
        self.body(&[Media::Json], MAX_BODY_BYTES)
            .await
            .map(|(_, body)| body)
    }

    /// The body and its media type, once that is one of `accepted` and the size is within
    /// `max_bytes`.
    ///
    /// A declared oversize body is refused before reading; an undeclared one (chunked) is
    /// refused as soon as it crosses the limit, so memory stays bounded either way.
    pub async fn body(
        self,
        accepted: &[Media],
        max_bytes: usize,
    ) -> Result<(Media, Vec<u8>), ApiError> {
        let Some(media) = self.media(accepted) else {
            return Err(ApiError::UnsupportedMediaType(
                if accepted.contains(&Media::Csv) {
                    "application/json` or `text/csv"
                } else if accepted.contains(&Media::Form) {
                    "application/x-www-form-urlencoded` or `application/json"
                } else {
                    "application/json"
                },
            ));
        };
        if declared_too_large(&self.content_length, max_bytes) {
            return Err(ApiError::PayloadTooLarge(max_bytes));
        }
        let mut body = Vec::new();
        let mut stream = self.request.into_body_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| anyhow!("reading the request body: {e:?}"))?;
            if body.len() + chunk.len() > max_bytes {
                return Err(ApiError::PayloadTooLarge(max_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((media, body))
    }
}

impl Media {
    fn matches(self, content_type: &str) -> bool {
        match self {
            Media::Json => is_json(content_type),
            Media::Csv => is_csv(content_type),
            Media::Form => is_form(content_type),
            Media::Multipart => has_essence(content_type, &["multipart/form-data"]),
        }
    }
}

/// Whether a `Content-Type` is JSON in UTF-8: `application/json` or
/// `application/merge-patch+json` (RFC 7396, which is what our PATCH does), with no charset
/// or `charset=utf-8`.
pub fn is_json(content_type: &str) -> bool {
    has_essence(
        content_type,
        &["application/json", "application/merge-patch+json"],
    )
}

/// Whether a `Content-Type` is `text/csv` in UTF-8 (no charset or `charset=utf-8`; other
/// parameters such as `header=present` are ignored).
pub fn is_csv(content_type: &str) -> bool {
    has_essence(content_type, &["text/csv"])
}

/// Whether a `Content-Type` is an HTML form's `application/x-www-form-urlencoded` in UTF-8 (no
/// charset or `charset=utf-8`).
pub fn is_form(content_type: &str) -> bool {
    has_essence(content_type, &["application/x-www-form-urlencoded"])
}

fn has_essence(content_type: &str, essences: &[&str]) -> bool {
    let mut parts = content_type.split(';');
    let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    if !essences.contains(&essence.as_str()) {
        return false;
    }
    parts.all(|parameter| match parameter.split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
            value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        }
        Some(_) => true,
        None => parameter.trim().is_empty(),
    })
}

fn declared_too_large(content_length: &[String], max_bytes: usize) -> bool {
    content_length
        .iter()
        .any(|value| match value.trim().parse::<u64>() {
            Ok(length) => length > max_bytes as u64,
            // A length too long to parse is too large; other garbage is left to the host.
            Err(_) => value.trim().bytes().all(|b| b.is_ascii_digit()) && !value.trim().is_empty(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types_are_recognised_with_or_without_utf8_charset() {
        for value in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=\"UTF-8\"",
            "application/merge-patch+json",
        ] {
            assert!(is_json(value), "{value}");
        }
    }

    #[test]
    fn other_media_types_and_charsets_are_not_json() {
        for value in [
            "",
            "text/plain",
            "application/x-www-form-urlencoded",
            "text/json",
            "application/json; charset=latin1",
            "application/jsonx",
        ] {
            assert!(!is_json(value), "{value}");
        }
    }

    #[test]
    fn a_declared_length_over_one_mebibyte_is_too_large() {
        let declared = |v: &str| declared_too_large(&[v.to_owned()], MAX_BODY_BYTES);
        assert!(!declared("1048576"));
        assert!(declared("1048577"));
        assert!(declared("99999999999999999999999"));
        assert!(!declared("12"));
        assert!(!declared_too_large(&[], MAX_BODY_BYTES));
    }

    #[test]
    fn html_forms_are_recognised_with_utf8_or_no_charset() {
        assert!(is_form("application/x-www-form-urlencoded"));
        assert!(is_form("Application/X-WWW-Form-Urlencoded; charset=UTF-8"));
        assert!(!is_form(
            "application/x-www-form-urlencoded; charset=iso-8859-1"
        ));
        assert!(!is_form("multipart/form-data; boundary=x"));
    }

    #[test]
    fn csv_is_recognised_with_utf8_or_no_charset() {
        assert!(is_csv("text/csv"));
        assert!(is_csv("text/csv; charset=utf-8; header=present"));
        assert!(!is_csv("text/csv; charset=latin1"));
        assert!(!is_csv("application/csv"));
    }
}
