//! List requests: page size, opaque cursors, search text, and the page that answers them.

use crate::encoding::{base32_decode, base32_encode};
use crate::field::FieldError;
use crate::time::Timestamp;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// How many items one page holds: 1–200, default 50.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(u16);

/// Why a `limit` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be a whole number from {} to {}", Limit::MIN, Limit::MAX)]
pub struct LimitError;

impl Limit {
    /// Smallest page.
    pub const MIN: u16 = 1;
    /// Largest page.
    pub const MAX: u16 = 200;
    /// Page size when none is asked for.
    pub const DEFAULT: Limit = Limit(50);

    /// Parses decimal digits in range; signs, spaces and fractions are refused.
    pub fn parse(text: &str) -> Result<Self, LimitError> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(LimitError);
        }
        match text.parse::<u16>() {
            Ok(n) if (Self::MIN..=Self::MAX).contains(&n) => Ok(Self(n)),
            _ => Err(LimitError),
        }
    }

    /// The page size.
    pub fn get(self) -> u16 {
        self.0
    }

    /// How many rows to fetch: one more than a page, to learn whether another page follows.
    pub fn fetch(self) -> i64 {
        i64::from(self.0) + 1
    }
}

impl Default for Limit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A position in a list ordered by an ever-increasing sequence number: "after `seq`".
///
/// Its text form is opaque to clients (version, position and a check, in base32); a cursor
/// that was altered or truncated is refused instead of silently starting somewhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    after: i64,
}

/// Why a `cursor` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("is not a cursor this API returned (use `next_cursor` from the previous page as given)")]
pub struct CursorError;

const CURSOR_VERSION: u8 = 1;
const CURSOR_BYTES: usize = 12;

impl Cursor {
    /// The position just after the item with sequence number `seq`.
    pub fn after(seq: i64) -> Self {
        Self { after: seq }
    }

    /// The sequence number that the next page starts after.
    pub fn after_seq(self) -> i64 {
        self.after
    }

    /// The opaque text handed to clients.
    pub fn encode(self) -> String {
        let mut bytes = [0u8; CURSOR_BYTES];
        bytes[0] = CURSOR_VERSION;
        bytes[1..9].copy_from_slice(&self.after.to_be_bytes());
        let check = cursor_check(&bytes[..9]);
        bytes[9..].copy_from_slice(&check);
        base32_encode(&bytes)
    }

    /// Reads back what `encode` produced.
    pub fn decode(text: &str) -> Result<Self, CursorError> {
        let bytes = base32_decode::<CURSOR_BYTES>(text).ok_or(CursorError)?;
        let (payload, check) = bytes.split_at(9);
        if payload[0] != CURSOR_VERSION || check != cursor_check(payload) {
            return Err(CursorError);
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&payload[1..9]);
        Ok(Self::after(i64::from_be_bytes(seq)))
    }
}

// Detects typos and truncation, not forgery: every query is scoped to the caller's account,
// so a forged position reveals nothing.
fn cursor_check(payload: &[u8]) -> [u8; 3] {
    let digest = Sha256::new_with_prefix(b"mio.cursor")
        .chain_update(payload)
        .finalize();
    [digest[0], digest[1], digest[2]]
}

/// Text to look for (case-insensitive substring), folded and ready for a SQL `LIKE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText(String);

/// Why a `q` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    /// Longer than allowed.
    #[error("must be at most {max} characters")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// A control character.
    #[error("must not contain control characters")]
    ControlCharacter,
}

impl SearchText {
    /// Longest accepted search text.
    pub const MAX_CHARS: usize = 200;

    /// Trims; empty text means "no filter" (`None`).
    pub fn parse(text: &str) -> Result<Option<Self>, SearchError> {
        let text = text.trim();
        if text.chars().count() > Self::MAX_CHARS {
            return Err(SearchError::TooLong {
                max: Self::MAX_CHARS,
            });
        }
        if text.chars().any(char::is_control) {
            return Err(SearchError::ControlCharacter);
        }
        Ok((!text.is_empty()).then(|| Self(fold(text))))
    }

    /// `%text%` with `\`, `%` and `_` escaped; use with `LIKE ? ESCAPE '\'`
    /// against columns holding [`fold`]ed text.
    pub fn like_pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.0.len() + 2);
        pattern.push('%');
        for c in self.0.chars() {
            if matches!(c, '\\' | '%' | '_') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        pattern
    }

    /// `%digits%` when the text looks like (part of) a phone number — only digits and phone
    /// punctuation, at least one digit — to match stored phone digits whatever their
    /// punctuation; `None` otherwise.
    pub fn phone_digits_pattern(&self) -> Option<String> {
        let phone_like = self
            .0
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '.' | '(' | ')'));
        let digits: String = self.0.chars().filter(char::is_ascii_digit).collect();
        (phone_like && !digits.is_empty()).then(|| format!("%{digits}%"))
    }
}

/// The case-folded form that searchable columns store and search text is compared in
/// (Unicode-aware, unlike SQLite's ASCII-only `LIKE` folding).
pub fn fold(text: &str) -> String {
    text.to_lowercase()
}

/// `GET /api/v1/customers?q=&limit=&cursor=`, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListQuery {
    /// Filter text, if any.
    pub search: Option<SearchText>,
    /// Page size.
    pub limit: Limit,
    /// Where to resume, if not at the start.
    pub cursor: Option<Cursor>,
}

impl ListQuery {
    /// Parses a URL query string (`a=1&b=2`, percent-encoded, `+` as space). Unknown parameters
    /// are ignored; an empty value counts as absent; a repeated known parameter is an error.
    pub fn parse(query: &str) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        let mut parsed = Self::default();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            if !matches!(key.as_ref(), "q" | "limit" | "cursor") {
                continue;
            }
            if seen.iter().any(|k| *k == key) {
                errors.push(FieldError::new(key.as_ref(), "must be given at most once"));
                continue;
            }
            seen.push(key.to_string());
            if value.is_empty() {
                continue;
            }
            let outcome = match key.as_ref() {
                "q" => SearchText::parse(&value)
                    .map(|search| parsed.search = search)
                    .map_err(|e| e.to_string()),
                "limit" => Limit::parse(&value)
                    .map(|limit| parsed.limit = limit)
                    .map_err(|e| e.to_string()),
                _ => Cursor::decode(&value)
                    .map(|cursor| parsed.cursor = Some(cursor))
                    .map_err(|e| e.to_string()),
            };
            if let Err(message) = outcome {
                errors.push(FieldError::new(key.as_ref(), message));
            }
        }
        if errors.is_empty() {
            Ok(parsed)
        } else {
            Err(errors)
        }
    }
}

/// One page of a list: `{"data": [...], "next_cursor": "…" | null}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    /// The items, in list order.
    pub data: Vec<T>,
    /// Where the next page starts, or `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit.fetch()` rows (sequence number, item) in list order.
    pub fn from_rows(rows: Vec<(i64, T)>, limit: Limit) -> Self {
        let page_size = usize::from(limit.get());
        let has_more = rows.len() > page_size;
        let mut data = Vec::with_capacity(rows.len().min(page_size));
        let mut last_seq = None;
        for (seq, item) in rows.into_iter().take(page_size) {
            last_seq = Some(seq);
            data.push(item);
        }
        let next_cursor = if has_more {
            last_seq.map(|seq| Cursor::after(seq).encode())
        } else {
            None
        };
        Self { data, next_cursor }
    }
}

/// Walks a URL query string for the filters of a list: unknown parameters are ignored, an empty
/// value counts as absent, a repeated one is an error, and `visit` reads each other one
/// (`Err(message)` for a bad value). Every error is returned at once; `to` must be later than
/// `from` when the caller passes both.
pub(crate) fn query_parameters(
    query: &str,
    known: &[&str],
    mut visit: impl FnMut(&str, &str) -> Result<(), String>,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let key = key.as_ref();
        if !known.contains(&key) {
            continue;
        }
        if seen.iter().any(|k| k == key) {
            errors.push(FieldError::new(key, "must be given at most once"));
            continue;
        }
        seen.push(key.to_owned());
        if value.is_empty() {
            continue;
        }
        if let Err(message) = visit(key, &value) {
            errors.push(FieldError::new(key, message));
        }
    }
    errors
}

/// The error of a time window whose `to` is not later than its `from`.
pub(crate) fn window_error(from: Option<Timestamp>, to: Option<Timestamp>) -> Option<FieldError> {
    match (from, to) {
        (Some(from), Some(to)) if to <= from => {
            Some(FieldError::new("to", "must be later than from"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn limit_defaults_to_50_and_accepts_1_to_200() {
        assert_eq!(Limit::default().get(), 50);
        assert_eq!(Limit::parse("1").map(Limit::get), Ok(1));
        assert_eq!(Limit::parse("200").map(Limit::get), Ok(200));
        assert_eq!(Limit::parse("007").map(Limit::get), Ok(7));
    }

    #[test]
    fn limits_out_of_range_or_not_numbers_are_refused() {
        for text in [
            "0",
            "201",
            "-1",
            "+5",
            " 5",
            "5.0",
            "abc",
            "99999999999999999999",
            "",
        ] {
            assert_eq!(Limit::parse(text), Err(LimitError), "{text:?}");
        }
    }

    #[test]
    fn an_altered_cursor_is_refused() {
        let text = Cursor::after(42).encode();
        let mut altered: Vec<char> = text.chars().collect();
        altered[5] = if altered[5] == 'a' { 'b' } else { 'a' };
        let altered: String = altered.into_iter().collect();
        assert_eq!(Cursor::decode(&altered), Err(CursorError));
        assert_eq!(Cursor::decode(&text[..text.len() - 1]), Err(CursorError));
        assert_eq!(Cursor::decode("not-a-cursor"), Err(CursorError));
        assert_eq!(Cursor::decode(""), Err(CursorError));
    }

    #[test]
    fn search_text_is_folded_and_wildcards_are_escaped() {
        let search = SearchText::parse("  ÉMILE_50%\\ ")
            .expect("valid")
            .expect("not empty");
        assert_eq!(search.like_pattern(), "%émile\\_50\\%\\\\%");
    }

    #[test]
    fn phone_like_search_text_also_matches_by_digits() {
        let search = |q: &str| SearchText::parse(q).expect("valid").expect("not empty");
        assert_eq!(
            search("(416) 555").phone_digits_pattern(),
            Some("%416555%".to_owned())
        );
        assert_eq!(search("ada 4").phone_digits_pattern(), None);
        assert_eq!(search("+-").phone_digits_pattern(), None);
    }

    #[test]
    fn blank_search_text_means_no_filter() {
        assert_eq!(SearchText::parse("   "), Ok(None));
    }

    #[test]
    fn overlong_search_text_is_refused() {
        assert_eq!(
            SearchText::parse(&"a".repeat(201)),
            Err(SearchError::TooLong { max: 200 })
        );
    }

    #[test]
    fn a_query_string_is_decoded() {
        let cursor = Cursor::after(7).encode();
        let query = ListQuery::parse(&format!(
            "q=j%C3%A9r%C3%B4me+B&limit=10&cursor={cursor}&x=1"
        ))
        .expect("valid");
        assert_eq!(query.search, SearchText::parse("jérôme b").expect("valid"));
        assert_eq!(query.limit.get(), 10);
        assert_eq!(query.cursor, Some(Cursor::after(7)));
    }

    #[test]
    fn an_empty_query_string_gives_the_defaults() {
        assert_eq!(ListQuery::parse(""), Ok(ListQuery::default()));
        assert_eq!(
            ListQuery::parse("q=&limit=&cursor="),
            Ok(ListQuery::default())
        );
    }

    #[test]
    fn every_bad_parameter_is_reported() {
        let errors = ListQuery::parse("limit=0&cursor=zzz&q=a&q=b").expect_err("invalid");
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["limit", "cursor", "q"]);
    }

    #[test]
    fn a_short_page_has_no_next_cursor() {
        let page = Page::from_rows(vec![(1, "a"), (2, "b")], Limit::parse("2").expect("valid"));
        assert_eq!(page.data, ["a", "b"]);
        assert_eq!(page.next_cursor, None);
    }

    #[test]
    fn a_full_page_points_after_its_last_item() {
        let page = Page::from_rows(
            vec![(1, "a"), (5, "b"), (9, "c")],
            Limit::parse("2").expect("valid"),
        );
        assert_eq!(page.data, ["a", "b"]);
        let next = page.next_cursor.expect("another page");
        assert_eq!(Cursor::decode(&next), Ok(Cursor::after(5)));
    }

    proptest! {
        #[test]
        fn cursors_round_trip(seq in any::<i64>()) {
            prop_assert_eq!(Cursor::decode(&Cursor::after(seq).encode()), Ok(Cursor::after(seq)));
        }

        #[test]
        fn cursor_decoding_never_panics(text in "\\PC{0,30}") {
            let decoded = Cursor::decode(&text);
            if let Ok(cursor) = decoded {
                prop_assert_eq!(cursor.encode(), text);
            }
        }

        #[test]
        fn paging_visits_every_row_once_in_order(count in 0usize..60, limit in 1u16..=20) {
            let all: Vec<(i64, usize)> = (0..count).map(|i| (i as i64 * 3 + 1, i)).collect();
            let limit = Limit::parse(&limit.to_string()).expect("in range");
            let mut seen = Vec::new();
            let mut after = i64::MIN;
            loop {
                let rows: Vec<_> = all.iter().copied().filter(|(seq, _)| *seq > after)
                    .take(usize::try_from(limit.fetch()).expect("small")).collect();
                let page = Page::from_rows(rows, limit);
                seen.extend(page.data);
                match page.next_cursor {
                    Some(next) => after = Cursor::decode(&next).expect("ours").after_seq(),
                    None => break,
                }
            }
            prop_assert_eq!(seen, (0..count).collect::<Vec<_>>());
        }
    }
}
