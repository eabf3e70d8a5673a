//! A customer's answer to a rating link: what a valid rating and comment are, when a link
//! still takes one, how a received rating shows, which received ratings a business lists, and
//! their summary.
//!
//! Pure: answers are parsed from the bytes a shell read, and `now` comes in as a parameter. Not
//! here: the link's token ([`crate::feedback`]), the page's HTML ([`crate::feedback_page`]),
//! HTTP, SQL, the clock.

use crate::field::FieldError;
use crate::ids::CustomerId;
use crate::json::{self, BodyError};
use crate::list::{Cursor, Limit, query_parameters, window_error};
use crate::text::{TextError, bounded};
use crate::time::Timestamp;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

/// The most characters a comment holds, counted after trimming, with a line break as one.
pub const MAX_COMMENT_CHARS: usize = 2000;

/// A rating: a whole number of stars from 1 to 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Rating(u8);

impl Rating {
    /// Every rating, lowest first.
    pub const ALL: [Rating; 5] = [Rating(1), Rating(2), Rating(3), Rating(4), Rating(5)];

    /// Exactly one digit from 1 to 5, as the page's radio buttons send it; nothing else.
    pub fn parse(text: &str) -> Option<Self> {
        match text.as_bytes() {
            [digit @ b'1'..=b'5'] => Some(Self(digit - b'0')),
            _ => None,
        }
    }

    /// A number from 1 to 5 (a JSON integer, a stored value).
    pub fn from_number(number: i64) -> Option<Self> {
        u8::try_from(number)
            .ok()
            .filter(|n| (1..=5).contains(n))
            .map(Self)
    }

    /// The number of stars.
    pub fn get(self) -> u8 {
        self.0
    }
}

/// What is wrong with one field of a customer's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerError {
    /// No rating was given.
    RatingMissing,
    /// The rating is not one whole number from 1 to 5.
    RatingInvalid,
    /// The comment is over [`MAX_COMMENT_CHARS`].
    CommentTooLong,
    /// The comment is not one text, or holds control characters other than line breaks and
    /// tabs.
    CommentInvalid,
}

impl AnswerError {
    /// The field it is about: `rating` or `comment`.
    pub fn field(self) -> &'static str {
        match self {
            AnswerError::RatingMissing | AnswerError::RatingInvalid => "rating",
            AnswerError::CommentTooLong | AnswerError::CommentInvalid => "comment",
        }
    }

    /// What is wrong, for an API client (a problem's `errors`).
    pub fn message(self) -> &'static str {
        match self {
            AnswerError::RatingMissing => "is required: a whole number from 1 to 5",
            AnswerError::RatingInvalid => "must be a whole number from 1 to 5",
            AnswerError::CommentTooLong => "must be at most 2000 characters",
            AnswerError::CommentInvalid => {
                "must be text without control characters other than line breaks and tabs"
            }
        }
    }

    /// What to do about it, for the customer on the rating page.
    pub fn advice(self) -> &'static str {
        match self {
            AnswerError::RatingMissing | AnswerError::RatingInvalid => {
                "Please choose a rating from 1 to 5."
            }
            AnswerError::CommentTooLong => {
                "Please shorten your comment to 2,000 characters or fewer."
            }
            AnswerError::CommentInvalid => {
                "Please remove the unusual characters from your comment."
            }
        }
    }
}

impl From<AnswerError> for FieldError {
    fn from(error: AnswerError) -> Self {
        FieldError::new(error.field(), error.message())
    }
}

/// A customer's valid answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// 1 to 5.
    pub rating: Rating,
    /// Trimmed, line breaks as `\n`; `None` when blank.
    pub comment: Option<String>,
}

/// A form to show again: what was wrong, and what the customer had entered (so nothing they
/// typed is lost).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rejected {
    /// Every problem, rating first.
    pub errors: Vec<AnswerError>,
    /// The rating chosen, if it was a valid one.
    pub rating: Option<Rating>,
    /// The comment as typed.
    pub comment: String,
}

impl Answer {
    /// Reads the page's form (`application/x-www-form-urlencoded`, `rating=1..5&comment=…`);
    /// other fields are ignored, and a repeated `rating` or `comment` is invalid.
    pub fn from_form(body: &[u8]) -> Result<Self, Rejected> {
        let mut ratings = Vec::new();
        let mut comments = Vec::new();
        for (key, value) in form_urlencoded::parse(body) {
            match key.as_ref() {
                "rating" => ratings.push(value.into_owned()),
                "comment" => comments.push(value.into_owned()),
                _ => {}
            }
        }
        let rating = match ratings.as_slice() {
            [] => Err(AnswerError::RatingMissing),
            [text] if text.is_empty() => Err(AnswerError::RatingMissing),
            [text] => Rating::parse(text).ok_or(AnswerError::RatingInvalid),
            _ => Err(AnswerError::RatingInvalid),
        };
        let comment = match comments.as_slice() {
            [] => Ok(None),
            [text] => parse_comment(text),
            _ => Err(AnswerError::CommentInvalid),
        };
        match (rating, comment) {
            (Ok(rating), Ok(comment)) => Ok(Self { rating, comment }),
            (rating, comment) => Err(Rejected {
                errors: [rating.err(), comment.err()]
                    .into_iter()
                    .flatten()
                    .collect(),
                rating: rating.ok(),
                comment: comments.into_iter().next().unwrap_or_default(),
            }),
        }
    }

    /// Reads `{"rating": 1..5, "comment"?: string | null}`. A body that is not a JSON object is
    /// [`BodyError::Malformed`]; unknown or repeated fields, a rating that is not an integer
    /// from 1 to 5 and a bad comment are [`BodyError::Invalid`], every one listed.
    pub fn from_json(body: &[u8]) -> Result<Self, BodyError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct AnswerBody {
            #[serde(default)]
            rating: Option<serde_json::Value>,
            #[serde(default)]
            comment: Option<serde_json::Value>,
        }
        let body: AnswerBody = json::decode(body, &["received_at"])?;
        let rating = match body.rating {
            None => Err(AnswerError::RatingMissing),
            Some(serde_json::Value::Number(number)) => number
                .as_i64()
                .and_then(Rating::from_number)
                .ok_or(AnswerError::RatingInvalid),
            Some(_) => Err(AnswerError::RatingInvalid),
        };
        let comment = match body.comment {
            None => Ok(None),
            Some(serde_json::Value::String(text)) => parse_comment(&text),
            Some(_) => Err(AnswerError::CommentInvalid),
        };
        match (rating, comment) {
            (Ok(rating), Ok(comment)) => Ok(Self { rating, comment }),
            (rating, comment) => Err(BodyError::Invalid(
                [rating.err(), comment.err()]
                    .into_iter()
                    .flatten()
                    .map(FieldError::from)
                    .collect(),
            )),
        }
    }
}

/// A comment as stored: trimmed, line breaks as `\n` (browsers send `\r\n`, and count it as
/// one character against the text box's limit), at most [`MAX_COMMENT_CHARS`]; blank is none.
pub fn parse_comment(text: &str) -> Result<Option<String>, AnswerError> {
    let text = text.replace("\r\n", "\n");
    match bounded(&text, MAX_COMMENT_CHARS, true) {
        Ok(comment) => Ok(Some(comment)),
        Err(TextError::Empty) => Ok(None),
        Err(TextError::TooLong { .. }) => Err(AnswerError::CommentTooLong),
        Err(TextError::ControlCharacter { .. }) => Err(AnswerError::CommentInvalid),
    }
}

/// Where a rating link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// It takes a rating.
    Open,
    /// Its rating was received; it takes no other.
    Rated,
    /// Its time is up ([`crate::feedback::LINK_VALID_DAYS`] after it was sent): it leads nowhere, rated or not.
    Expired,
}

/// The state at `now` of a link that expires at `expires_at` and was or was not `rated`.
pub fn link_state(expires_at: Timestamp, rated: bool, now: Timestamp) -> LinkState {
    if now >= expires_at {
        LinkState::Expired
    } else if rated {
        LinkState::Rated
    } else {
        LinkState::Open
    }
}

/// A received rating, as the API shows it (on its booking, in the list, to the customer who
/// sent it as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Received {
    /// 1 to 5.
    pub rating: Rating,
    /// The comment, if any.
    pub comment: Option<String>,
    /// When it was stored.
    pub received_at: Timestamp,
}

/// `GET /api/v1/feedback?from=&to=&min_rating=&customer_id=&limit=&cursor=`, parsed. Every
/// filter is optional; `from` (inclusive) and `to` (exclusive) bound `received_at`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FeedbackQuery {
    /// Only this customer's ratings.
    pub customer_id: Option<CustomerId>,
    /// Only ratings of at least this many stars.
    pub min_rating: Option<Rating>,
    /// Received at or after this instant.
    pub from: Option<Timestamp>,
    /// Received before this instant.
    pub to: Option<Timestamp>,
    /// Page size.
    pub limit: Limit,
    /// Where to resume (newest first: ratings received before the cursor's).
    pub cursor: Option<Cursor>,
}

const QUERY_PARAMETERS: [&str; 6] = ["customer_id", "min_rating", "from", "to", "limit", "cursor"];

impl FeedbackQuery {
    /// Parses a URL query string like [`crate::ActivityQuery::parse`]: unknown parameters are
    /// ignored, an empty value counts as absent, a bad or repeated one is a field error, and
    /// every error is reported at once.
    pub fn parse(query: &str) -> Result<Self, Vec<FieldError>> {
        let mut parsed = Self::default();
        let mut errors = query_parameters(query, &QUERY_PARAMETERS, |key, value| match key {
            "customer_id" => CustomerId::parse(value)
                .map(|id| parsed.customer_id = Some(id))
                .map_err(|_| "must be a customer id (cus_…)".into()),
            "min_rating" => Rating::parse(value)
                .map(|rating| parsed.min_rating = Some(rating))
                .ok_or_else(|| "must be a whole number from 1 to 5".into()),
            "from" | "to" => Timestamp::parse(value)
                .map(|at| match key {
                    "from" => parsed.from = Some(at),
                    _ => parsed.to = Some(at),
                })
                .map_err(|e| e.to_string()),
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

/// The ratings a list's filter matches, in sum: `{"count", "average", "distribution": {"1": n,
/// …, "5": n}}`. `average` is rounded to two decimals, and `null` when there are none.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// How many ratings.
    pub count: u64,
    /// Their mean, to two decimals.
    pub average: Option<f64>,
    /// How many of each rating.
    pub distribution: Distribution,
}

/// How many ratings of 1, 2, 3, 4 and 5 stars; shown as an object keyed `"1"` to `"5"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Distribution(pub [u64; 5]);

impl Serialize for Distribution {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (rating, count) in Rating::ALL.iter().zip(self.0) {
            map.serialize_entry(&rating.get().to_string(), &count)?;
        }
        map.end()
    }
}

impl Summary {
    /// The summary of `distribution`.
    pub fn of(distribution: Distribution) -> Self {
        let count: u64 = distribution.0.iter().sum();
        let stars: u128 = Rating::ALL
            .iter()
            .zip(distribution.0)
            .map(|(rating, n)| u128::from(rating.get()) * u128::from(n))
            .sum();
        // Hundredths rounded half up, in integers, so 4.335 cannot become 4.33 through floats.
        let average = (count > 0).then(|| {
            let count = u128::from(count);
            let hundredths = (stars * 200 + count) / (count * 2);
            // At most 500: exact as a float.
            hundredths as f64 / 100.0
        });
        Self {
            count,
            average,
            distribution,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        Timestamp::parse(text).expect("valid")
    }

    fn form(body: &str) -> Result<Answer, Rejected> {
        Answer::from_form(body.as_bytes())
    }

    fn json_errors(body: &str) -> Vec<(String, String)> {
        match Answer::from_json(body.as_bytes()) {
            Err(BodyError::Invalid(errors)) => {
                errors.into_iter().map(|e| (e.field, e.message)).collect()
            }
            other => panic!("expected field errors for {body}, got {other:?}"),
        }
    }

    #[test]
    fn a_rating_is_one_digit_from_1_to_5() {
        for (text, stars) in [("1", 1), ("3", 3), ("5", 5)] {
            assert_eq!(Rating::parse(text).map(Rating::get), Some(stars));
        }
        for bad in ["", "0", "6", "x", "05", " 4", "4 ", "+4", "4.0", "-1", "١"] {
            assert_eq!(Rating::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Rating::from_number(5).map(Rating::get), Some(5));
        for bad in [0, 6, -1, 256 + 3] {
            assert_eq!(Rating::from_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_form_answer_is_read_with_its_comment_trimmed_and_blank_as_none() {
        assert_eq!(
            form("rating=4&comment=++Great+job%21%0D%0AThanks++&submit=x"),
            Ok(Answer {
                rating: Rating(4),
                comment: Some("Great job!\nThanks".into())
            })
        );
        assert_eq!(
            form("comment=+++&rating=2"),
            Ok(Answer {
                rating: Rating(2),
                comment: None
            })
        );
        assert_eq!(form("rating=5").map(|a| a.comment), Ok(None));
    }

    #[test]
    fn a_rejected_form_keeps_what_was_typed_and_says_what_is_wrong() {
        let rejected = form("rating=6&comment=Lovely").expect_err("out of range");
        assert_eq!(rejected.errors, [AnswerError::RatingInvalid]);
        assert_eq!(rejected.comment, "Lovely");
        assert_eq!(rejected.rating, None);

        let long = "é".repeat(MAX_COMMENT_CHARS + 1);
        let rejected = form(&format!("rating=3&comment={long}")).expect_err("too long");
        assert_eq!(rejected.errors, [AnswerError::CommentTooLong]);
        assert_eq!(rejected.rating, Some(Rating(3)));

        for (body, errors) in [
            ("", vec![AnswerError::RatingMissing]),
            ("rating=", vec![AnswerError::RatingMissing]),
            ("rating=0", vec![AnswerError::RatingInvalid]),
            ("rating=x", vec![AnswerError::RatingInvalid]),
            ("rating=1&rating=5", vec![AnswerError::RatingInvalid]),
            (
                "comment=a&comment=b",
                vec![AnswerError::RatingMissing, AnswerError::CommentInvalid],
            ),
            ("rating=2&comment=a%00b", vec![AnswerError::CommentInvalid]),
        ] {
            assert_eq!(form(body).expect_err(body).errors, errors, "{body}");
        }
    }

    #[test]
    fn the_comment_limit_counts_characters_and_a_browser_line_break_as_one() {
        let exactly = "ü".repeat(MAX_COMMENT_CHARS);
        assert_eq!(parse_comment(&exactly), Ok(Some(exactly.clone())));
        let lines = "a\r\n".repeat(MAX_COMMENT_CHARS / 2);
        assert!(parse_comment(&lines).is_ok());
        assert_eq!(
            parse_comment(&format!("{exactly}x")),
            Err(AnswerError::CommentTooLong)
        );
    }

    #[test]
    fn a_json_answer_needs_an_integer_rating_and_a_text_comment() {
        assert_eq!(
            Answer::from_json(br#"{"rating": 5, "comment": " Spotless "}"#),
            Ok(Answer {
                rating: Rating(5),
                comment: Some("Spotless".into())
            })
        );
        assert_eq!(
            Answer::from_json(br#"{"rating": 1, "comment": null}"#).map(|a| a.comment),
            Ok(None)
        );
        let rating = || {
            (
                "rating".to_owned(),
                AnswerError::RatingInvalid.message().to_owned(),
            )
        };
        // 4.0 is the integer 4, as JSON Schema (and the OpenAPI document's `integer`) counts it.
        assert_eq!(
            Answer::from_json(br#"{"rating": 4.0}"#).map(|a| a.rating),
            Ok(Rating(4))
        );
        for bad in [
            r#"{"rating": 0}"#,
            r#"{"rating": 6}"#,
            r#"{"rating": 4.5}"#,
            r#"{"rating": 6.0}"#,
            r#"{"rating": "4"}"#,
            r#"{"rating": true}"#,
        ] {
            assert_eq!(json_errors(bad), [rating()], "{bad}");
        }
        assert_eq!(
            json_errors(r#"{"comment": 7}"#),
            [
                (
                    "rating".to_owned(),
                    AnswerError::RatingMissing.message().to_owned()
                ),
                (
                    "comment".to_owned(),
                    AnswerError::CommentInvalid.message().to_owned()
                ),
            ]
        );
        assert_eq!(
            json_errors(r#"{"rating": 4, "stars": 4}"#),
            [("stars".to_owned(), "is not a known field".to_owned())]
        );
        assert!(matches!(
            Answer::from_json(b"rating=4"),
            Err(BodyError::Malformed(_))
        ));
    }

    #[test]
    fn every_answer_error_names_its_field_and_speaks_to_both_audiences() {
        for error in [
            AnswerError::RatingMissing,
            AnswerError::RatingInvalid,
            AnswerError::CommentTooLong,
            AnswerError::CommentInvalid,
        ] {
            assert!(["rating", "comment"].contains(&error.field()));
            assert!(!error.message().is_empty() && error.advice().ends_with('.'));
            assert_eq!(FieldError::from(error).field, error.field());
        }
    }

    #[test]
    fn a_link_expires_at_its_time_even_once_rated() {
        let expires = ts("2026-04-01T00:00:00Z");
        let before = ts("2026-03-31T23:59:59.999Z");
        assert_eq!(link_state(expires, false, before), LinkState::Open);
        assert_eq!(link_state(expires, true, before), LinkState::Rated);
        assert_eq!(link_state(expires, false, expires), LinkState::Expired);
        assert_eq!(link_state(expires, true, expires), LinkState::Expired);
    }

    #[test]
    fn a_received_rating_shows_as_numbers_and_utc_text() {
        let received = Received {
            rating: Rating(4),
            comment: None,
            received_at: ts("2026-03-01T09:30:00-05:00"),
        };
        assert_eq!(
            serde_json::to_value(&received).expect("serialisable"),
            serde_json::json!({
                "rating": 4, "comment": null, "received_at": "2026-03-01T14:30:00.000Z"
            })
        );
    }

    #[test]
    fn the_list_query_parses_every_filter_and_reports_every_bad_one() {
        let customer = CustomerId::from_random(&[3; 16]);
        let query = FeedbackQuery::parse(&format!(
            "customer_id={customer}&min_rating=4&from=2026-03-01T00:00:00-05:00\
             &to=2026-04-01T00:00:00Z&limit=10&q=ignored"
        ))
        .expect("valid");
        assert_eq!(query.customer_id, Some(customer));
        assert_eq!(query.min_rating, Some(Rating(4)));
        assert_eq!(query.from, Some(ts("2026-03-01T05:00:00Z")));
        assert_eq!(query.to, Some(ts("2026-04-01T00:00:00Z")));
        assert_eq!(query.limit.get(), 10);
        assert_eq!(
            FeedbackQuery::parse("min_rating="),
            Ok(FeedbackQuery::default())
        );

        let fields = |query: &str| -> Vec<String> {
            FeedbackQuery::parse(query)
                .expect_err("invalid")
                .into_iter()
                .map(|e| e.field)
                .collect()
        };
        assert_eq!(
            fields("customer_id=bob&min_rating=6&from=monday&to=x&limit=0&cursor=zz"),
            ["customer_id", "min_rating", "from", "to", "limit", "cursor"]
        );
        assert_eq!(fields("min_rating=0"), ["min_rating"]);
        assert_eq!(fields("min_rating=3&min_rating=4"), ["min_rating"]);
        assert_eq!(
            fields("from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z"),
            ["to"]
        );
    }

    #[test]
    fn the_summary_counts_averages_to_two_decimals_and_has_no_average_when_empty() {
        let summary = Summary::of(Distribution([0, 0, 1, 0, 2]));
        assert_eq!(summary.count, 3);
        assert_eq!(summary.average, Some(4.33));
        assert_eq!(
            serde_json::to_value(&summary).expect("serialisable"),
            serde_json::json!({
                "count": 3,
                "average": 4.33,
                "distribution": {"1": 0, "2": 0, "3": 1, "4": 0, "5": 2}
            })
        );
        // 867 / 200 = 4.335 exactly, rounded half up (a float would give 4.33).
        assert_eq!(
            Summary::of(Distribution([0, 0, 0, 133, 67])).average,
            Some(4.34)
        );
        assert_eq!(
            Summary::of(Distribution([0, 0, 1, 1, 0])).average,
            Some(3.5)
        );
        assert_eq!(
            Summary::of(Distribution([1, 1, 0, 0, 0])).average,
            Some(1.5)
        );
        let empty = Summary::of(Distribution::default());
        assert_eq!((empty.count, empty.average), (0, None));
        assert_eq!(
            serde_json::to_value(&empty).expect("serialisable")["average"],
            serde_json::Value::Null
        );
    }
}
