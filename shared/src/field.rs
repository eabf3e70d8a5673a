//! Field-level validation errors and the three states of a field in a partial update.

use serde::{Deserialize, Deserializer, Serialize};

/// One problem with one input field, as listed in a problem response's `errors`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field's path in the request, dotted for nested objects (`notifications.sms`).
    pub field: String,
    /// What is wrong, in words a client developer can act on.
    pub message: String,
}

impl FieldError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// One field of a partial update: left alone, cleared with `null`, or set to a value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Patch<T> {
    /// The field was absent: keep what is stored.
    #[default]
    Keep,
    /// The field was `null`: clear what is stored.
    Clear,
    /// The field was given: store this.
    Set(T),
}

impl<T> Patch<T> {
    /// True when the field was absent.
    pub fn is_keep(&self) -> bool {
        matches!(self, Patch::Keep)
    }

    /// Validates a set value with `parse`; `Keep` and `Clear` pass through.
    pub fn try_map<U, E>(self, parse: impl FnOnce(T) -> Result<U, E>) -> Result<Patch<U>, E> {
        match self {
            Patch::Keep => Ok(Patch::Keep),
            Patch::Clear => Ok(Patch::Clear),
            Patch::Set(value) => parse(value).map(Patch::Set),
        }
    }
}

// Only called by serde when the key is present (absent keys take `#[serde(default)]`, which is
// `Keep`), so `null` means "clear".
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(deserializer)? {
            None => Patch::Clear,
            Some(value) => Patch::Set(value),
        })
    }
}

/// Runs `parse` on an optional input and records its error under `field`.
pub(crate) fn check<T, U, E: ToString>(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: T,
    parse: impl FnOnce(T) -> Result<U, E>,
) -> Option<U> {
    match parse(value) {
        Ok(parsed) => Some(parsed),
        Err(error) => {
            errors.push(FieldError::new(field, error.to_string()));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Body {
        #[serde(default)]
        email: Patch<String>,
    }

    #[test]
    fn an_absent_field_keeps_a_null_clears_and_a_value_sets() {
        let absent: Body = serde_json::from_str("{}").expect("valid json");
        let null: Body = serde_json::from_str(r#"{"email": null}"#).expect("valid json");
        let set: Body = serde_json::from_str(r#"{"email": "a@b.co"}"#).expect("valid json");
        assert_eq!(absent.email, Patch::Keep);
        assert_eq!(null.email, Patch::Clear);
        assert_eq!(set.email, Patch::Set("a@b.co".to_owned()));
    }

    #[test]
    fn try_map_validates_only_set_values() {
        let parse = |s: String| {
            if s.is_empty() {
                Err("empty")
            } else {
                Ok(s.len())
            }
        };
        assert_eq!(Patch::Keep.try_map(parse), Ok(Patch::Keep));
        assert_eq!(Patch::Clear.try_map(parse), Ok(Patch::Clear));
        assert_eq!(
            Patch::Set("abc".to_owned()).try_map(parse),
            Ok(Patch::Set(3))
        );
        assert_eq!(Patch::Set(String::new()).try_map(parse), Err("empty"));
    }
}
