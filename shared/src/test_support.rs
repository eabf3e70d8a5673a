//! Helpers for the core's own unit tests.

/// The value of the first `key` in form body (or query) `form`, decoded.
pub(crate) fn form_value(form: &str, key: &str) -> Option<String> {
    form_urlencoded::parse(form.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}
