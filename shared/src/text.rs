//! Bounded, trimmed free text: the rules shared by names, addresses and notes.

/// Why a piece of text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// Nothing but whitespace.
    #[error("must not be empty")]
    Empty,
    /// Longer than allowed (counted in characters after trimming).
    #[error("must be at most {max} characters")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// A control character (line breaks count, unless the field is multi-line).
    #[error("must not contain control characters{}", if *.multiline { " other than line breaks and tabs" } else { "" })]
    ControlCharacter {
        /// Whether line breaks and tabs were allowed.
        multiline: bool,
    },
}

/// Trims `input` and checks it is non-empty, at most `max` characters and free of control
/// characters (`\n`, `\r`, `\t` are allowed when `multiline`).
pub(crate) fn bounded(input: &str, max: usize, multiline: bool) -> Result<String, TextError> {
    let text = input.trim();
    if text.is_empty() {
        return Err(TextError::Empty);
    }
    if text.chars().count() > max {
        return Err(TextError::TooLong { max });
    }
    let allowed = |c: char| !c.is_control() || (multiline && matches!(c, '\n' | '\r' | '\t'));
    if !text.chars().all(allowed) {
        return Err(TextError::ControlCharacter { multiline });
    }
    Ok(text.to_owned())
}

/// Declares a newtype of bounded text with `parse` and `as_str`.
macro_rules! bounded_text {
    ($(#[$doc:meta])* $name:ident, max = $max:expr, multiline = $multiline:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The most characters this field holds.
            pub const MAX_CHARS: usize = $max;

            /// Trims and validates.
            pub fn parse(input: &str) -> Result<Self, $crate::text::TextError> {
                $crate::text::bounded(input, $max, $multiline).map(Self)
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}
pub(crate) use bounded_text;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surrounding_whitespace_is_trimmed() {
        assert_eq!(bounded("  Ada \n", 10, false), Ok("Ada".to_owned()));
    }

    #[test]
    fn whitespace_only_text_is_empty() {
        assert_eq!(bounded(" \t\n ", 10, true), Err(TextError::Empty));
    }

    #[test]
    fn the_limit_counts_characters_not_bytes() {
        assert_eq!(bounded("ééé", 3, false), Ok("ééé".to_owned()));
        assert_eq!(
            bounded("éééé", 3, false),
            Err(TextError::TooLong { max: 3 })
        );
    }

    #[test]
    fn line_breaks_are_allowed_only_in_multiline_text() {
        assert_eq!(bounded("a\nb", 10, true), Ok("a\nb".to_owned()));
        assert_eq!(
            bounded("a\nb", 10, false),
            Err(TextError::ControlCharacter { multiline: false })
        );
        assert_eq!(
            bounded("a\u{0}b", 10, true),
            Err(TextError::ControlCharacter { multiline: true })
        );
    }
}
