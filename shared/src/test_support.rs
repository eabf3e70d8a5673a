//! Helpers for the core's own unit tests.

/// The value of the first `key` in form body (or query) `form`, decoded.
pub(crate) fn form_value(form: &str, key: &str) -> Option<String> {
    form_urlencoded::parse(form.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// A zone the bundled tz database has.
pub(crate) fn zone(name: &str) -> crate::Zone {
    crate::Zone::named(name).expect("a bundled zone")
}
