//! Decoding JSON request bodies into typed request structs, with errors a client can act on.

use crate::field::FieldError;
use serde::de::DeserializeOwned;
use serde_json::error::Category;

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Not JSON at all, or not a JSON object (syntax error, empty body, trailing data).
    Malformed(String),
    /// JSON, but a field has the wrong type, is unknown, or is repeated.
    Invalid(Vec<FieldError>),
}

/// Decodes `bytes` as one JSON value of type `T`, naming the offending field on failure.
///
/// `read_only` lists fields that the API shows but a client may not set, so that sending one
/// back says so instead of "unknown field".
pub fn decode<T: DeserializeOwned>(bytes: &[u8], read_only: &[&str]) -> Result<T, BodyError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(BodyError::Malformed(
            "The request body is empty; expected a JSON object.".to_owned(),
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|error| classify(error, read_only))?;
    deserializer
        .end()
        .map_err(|error| BodyError::Malformed(error.to_string()))?;
    Ok(value)
}

fn classify(error: serde_path_to_error::Error<serde_json::Error>, read_only: &[&str]) -> BodyError {
    let path = error.path().to_string();
    let inner = error.into_inner();
    match inner.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            BodyError::Malformed(format!("The request body is not valid JSON: {inner}."))
        }
        Category::Data => data_error(&path, &without_position(&inner.to_string()), read_only),
    }
}

fn data_error(path: &str, message: &str, read_only: &[&str]) -> BodyError {
    let is_root = path.is_empty() || path == ".";
    // serde_path_to_error already ends the path with an unknown key; serde alone does not.
    let join = |key: &str| {
        if is_root {
            key.to_owned()
        } else if path == key || path.ends_with(&format!(".{key}")) {
            path.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    if let Some(key) = quoted_after(message, "unknown field `") {
        let field = join(key);
        let text = if field == key && read_only.contains(&key) {
            "is read-only and cannot be set"
        } else {
            "is not a known field"
        };
        return BodyError::Invalid(vec![FieldError::new(field, text)]);
    }
    if let Some(key) = quoted_after(message, "duplicate field `") {
        return BodyError::Invalid(vec![FieldError::new(join(key), "is given more than once")]);
    }
    // Serde names our Rust types ("expected struct CustomerBody"); say what the client must send.
    let message = match message.find("expected struct ") {
        Some(at) => format!("{}expected a JSON object", &message[..at]),
        None => message.to_owned(),
    };
    if is_root {
        BodyError::Malformed(format!(
            "The request body must be a JSON object ({message})."
        ))
    } else {
        BodyError::Invalid(vec![FieldError::new(path, message)])
    }
}

/// The text between `prefix` and the next backtick.
fn quoted_after<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    rest.split('`').next()
}

/// Drops serde_json's " at line L column C": field errors point at the field by name.
fn without_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customer::{CustomerBody, CustomerPatchBody, READ_ONLY_CUSTOMER_FIELDS};

    fn invalid(body: &str) -> Vec<FieldError> {
        match decode::<CustomerBody>(body.as_bytes(), READ_ONLY_CUSTOMER_FIELDS) {
            Err(BodyError::Invalid(errors)) => errors,
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    fn malformed(body: &str) -> String {
        match decode::<CustomerBody>(body.as_bytes(), READ_ONLY_CUSTOMER_FIELDS) {
            Err(BodyError::Malformed(detail)) => detail,
            other => panic!("expected a malformed body, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_body_decodes() {
        let body: CustomerBody = decode(br#"{"name": "Ada", "email": null}"#, &[]).expect("valid");
        assert_eq!(body.name.as_deref(), Some("Ada"));
        assert_eq!(body.email, None);
    }

    #[test]
    fn an_unknown_field_is_named() {
        assert_eq!(
            invalid(r#"{"name": "Ada", "nickname": "A"}"#),
            [FieldError::new("nickname", "is not a known field")]
        );
    }

    #[test]
    fn an_unknown_nested_field_is_named_with_its_path() {
        assert_eq!(
            invalid(r#"{"name": "Ada", "notifications": {"push": true}}"#),
            [FieldError::new(
                "notifications.push",
                "is not a known field"
            )]
        );
    }

    #[test]
    fn a_read_only_field_says_so() {
        assert_eq!(
            invalid(r#"{"id": "cus_x", "name": "Ada"}"#),
            [FieldError::new("id", "is read-only and cannot be set")]
        );
    }

    #[test]
    fn a_wrong_type_is_named_without_rust_type_names() {
        let errors = invalid(r#"{"name": 42}"#);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "name");
        assert_eq!(
            errors[0].message,
            "invalid type: integer `42`, expected a string"
        );

        let errors = invalid(r#"{"name": "Ada", "notifications": "yes"}"#);
        assert_eq!(errors[0].field, "notifications");
        assert!(
            errors[0].message.ends_with("expected a JSON object"),
            "{}",
            errors[0].message
        );
        assert!(!errors[0].message.contains("Body"), "{}", errors[0].message);

        let errors = invalid(r#"{"name": "Ada", "notifications": {"sms": "no"}}"#);
        assert_eq!(errors[0].field, "notifications.sms");
    }

    #[test]
    fn a_repeated_field_is_named() {
        assert_eq!(
            invalid(r#"{"name": "A", "name": "B"}"#),
            [FieldError::new("name", "is given more than once")]
        );
    }

    #[test]
    fn broken_json_empty_bodies_and_trailing_data_are_malformed() {
        assert!(malformed(r#"{"name": "Ada""#).contains("not valid JSON"));
        assert!(malformed("").contains("empty"));
        assert!(malformed("  \n").contains("empty"));
        assert!(!malformed(r#"{"name": "Ada"} {}"#).is_empty());
        assert!(!malformed("{'name': 'Ada'}").is_empty());
    }

    #[test]
    fn a_body_that_is_not_an_object_is_malformed() {
        assert!(malformed("[]").contains("must be a JSON object"));
        assert!(malformed(r#""Ada""#).contains("must be a JSON object"));
        assert!(malformed("null").contains("must be a JSON object"));
    }

    #[test]
    fn patch_bodies_name_unknown_fields_too() {
        let result =
            decode::<CustomerPatchBody>(br#"{"colour": "red"}"#, READ_ONLY_CUSTOMER_FIELDS);
        assert_eq!(
            result.map(|_| ()),
            Err(BodyError::Invalid(vec![FieldError::new(
                "colour",
                "is not a known field"
            )]))
        );
    }
}
