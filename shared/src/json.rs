//! Decoding JSON request bodies into typed request structs, with errors a client can act on.

use crate::field::FieldError;
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::error::Category;
use serde_json::{Map, Number, Value};

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Not JSON at all, or not a JSON object (syntax error, empty body, trailing data).
    Malformed(String),
    /// JSON, but a field has the wrong type, is unknown, or is repeated.
    Invalid(Vec<FieldError>),
}

/// Decodes `bytes` as one JSON object of type `T`, naming the offending field on failure.
///
/// The body must be a JSON object: serde would otherwise read a top-level array into a struct
/// field by field. A number with a zero fraction (`30.0`) counts as the integer it equals, as
/// JSON Schema counts it, and a key given twice in any object is refused.
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
    let Json(value) = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|error| classify(error, read_only))?;
    deserializer
        .end()
        .map_err(|error| BodyError::Malformed(error.to_string()))?;
    let found = match &value {
        Value::Object(_) => None,
        Value::Array(_) => Some("an array"),
        Value::String(_) => Some("a string"),
        Value::Number(_) => Some("a number"),
        Value::Bool(_) => Some("a boolean"),
        Value::Null => Some("null"),
    };
    if let Some(found) = found {
        return Err(BodyError::Malformed(format!(
            "The request body must be a JSON object, not {found}."
        )));
    }
    serde_path_to_error::deserialize(Strict(value)).map_err(|error| classify(error, read_only))
}

/// Any JSON value, read with the rules of [`decode`]: integral numbers as integers, no key
/// twice in one object.
struct Json(Value);

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor).map(Json)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(integral(v).unwrap_or_else(|| Number::from_f64(v).map_or(Value::Null, Value::Number)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Json::deserialize(deserializer).map(|Json(value)| value)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Json(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate field `{key}`")));
            }
            let Json(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// A decoded value, read into the request types like `serde_json::Value` is, except that an
/// array never stands for an object: serde's derived structs also accept their fields as a
/// sequence (`"notifications": [true, false]`), which no API schema allows.
struct Strict(Value);

impl<'de> Deserializer<'de> for Strict {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(items) => visitor.visit_seq(StrictSeq(items.into_iter())),
            Value::Object(object) => visitor.visit_map(StrictMap {
                entries: object.into_iter(),
                value: None,
            }),
            scalar => scalar.deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            value => visitor.visit_some(Strict(value)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(_) => Err(de::Error::invalid_type(de::Unexpected::Seq, &visitor)),
            value => Strict(value).deserialize_any(visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

struct StrictSeq(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for StrictSeq {
    type Error = serde_json::Error;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        self.0
            .next()
            .map(|item| seed.deserialize(Strict(item)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct StrictMap {
    entries: serde_json::map::IntoIter,
    value: Option<Value>,
}

impl<'de> MapAccess<'de> for StrictMap {
    type Error = serde_json::Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(Strict(Value::String(key))).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        match self.value.take() {
            Some(value) => seed.deserialize(Strict(value)),
            None => Err(de::Error::custom(
                "a map value was asked for before its key",
            )),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// `v` as an integer when it is one (`30.0`) and fits in `i64` or `u64`.
fn integral(v: f64) -> Option<Value> {
    // 2^63 and 2^64 are exact in f64; the casts below are exact for whole numbers under them.
    const I64_END: f64 = 9_223_372_036_854_775_808.0;
    const U64_END: f64 = 18_446_744_073_709_551_616.0;
    if !v.is_finite() || v.fract() != 0.0 {
        return None;
    }
    if (-I64_END..I64_END).contains(&v) {
        return Some(Value::from(v as i64));
    }
    if (0.0..U64_END).contains(&v) {
        return Some(Value::from(v as u64));
    }
    None
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
    fn an_array_is_not_read_into_a_struct_field_by_field() {
        // serde alone accepts `[null, null]` as a struct with its first two fields null.
        assert!(malformed("[null, null]").contains("must be a JSON object, not an array"));
        assert!(malformed(r#"["Ada"]"#).contains("not an array"));
        let result = decode::<CustomerPatchBody>(b"[null]", READ_ONLY_CUSTOMER_FIELDS);
        assert!(matches!(result, Err(BodyError::Malformed(_))));
    }

    #[test]
    fn a_number_with_a_zero_fraction_is_the_integer_it_equals() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Minutes {
            offset_minutes: i64,
            count: Option<u32>,
        }
        let body: Minutes =
            decode(br#"{"offset_minutes": 4498.0, "count": 3e0}"#, &[]).expect("integral");
        assert_eq!((body.offset_minutes, body.count), (4498, Some(3)));
        let body: Minutes = decode(br#"{"offset_minutes": -0.0}"#, &[]).expect("integral");
        assert_eq!(body.offset_minutes, 0);
        match decode::<Minutes>(br#"{"offset_minutes": 1.5}"#, &[]) {
            Err(BodyError::Invalid(errors)) => {
                assert_eq!(errors[0].field, "offset_minutes");
                assert!(errors[0].message.contains("floating point"), "{errors:?}");
            }
            other => panic!("1.5 is not an integer: {other:?}"),
        }
        assert!(matches!(
            decode::<Minutes>(br#"{"offset_minutes": 1e300}"#, &[]),
            Err(BodyError::Invalid(_))
        ));
    }

    #[test]
    fn an_array_is_not_read_into_a_nested_struct_either() {
        let errors = invalid(r#"{"name": "Ada", "notifications": [true, false]}"#);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "notifications");
        assert_eq!(
            errors[0].message,
            "invalid type: sequence, expected a JSON object"
        );
        let patch = decode::<CustomerPatchBody>(
            br#"{"notifications": [null, null]}"#,
            READ_ONLY_CUSTOMER_FIELDS,
        );
        assert!(matches!(patch, Err(BodyError::Invalid(_))), "{patch:?}");
        // Arrays still read where a list belongs, objects where a map does.
        #[derive(Debug, serde::Deserialize)]
        struct Lists {
            items: Vec<u8>,
            names: std::collections::BTreeMap<String, Option<u8>>,
        }
        let lists: Lists =
            decode(br#"{"items": [1, 2.0], "names": {"a": null, "b": 3}}"#, &[]).expect("valid");
        assert_eq!(lists.items, [1, 2]);
        assert_eq!(lists.names.get("b"), Some(&Some(3)));
    }

    #[test]
    fn a_repeated_key_in_a_nested_object_is_named() {
        assert_eq!(
            invalid(r#"{"name": "A", "notifications": {"sms": true, "sms": false}}"#),
            [FieldError::new(
                "notifications.sms",
                "is given more than once"
            )]
        );
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
