//! Spin's `{{ variable }}` template syntax, as used in `[component.<id>.variables]` values and in
//! `allowed_outbound_hosts` entries.
//!
//! The rules follow Spin's `spin-expressions` crate (`crates/expressions/src/template.rs` and
//! `lib.rs` in spinframework/spin):
//!
//! - Text outside `{{ … }}` is copied as is. A lone `}}` is ordinary text.
//! - `{{` starts an expression that runs to the *first* following `}}`; the text between is
//!   trimmed of surrounding whitespace and is the variable name (`{{ api_host }}` and
//!   `{{api_host}}` are the same).
//! - A `{{` without a closing `}}` is an error ("unmatched '{{'").
//! - There is no escape for a literal `{{`: every `{{` opens an expression.
//! - Expressions are bare variable names: no defaults, filters or nesting. Anything else
//!   (`{{ a b }}`, `{{ }}`, `{{ {{ a }} }}`) is read as a name that no variable can have, so it
//!   fails as an unknown variable.
//!
//! This module is pure: it parses and substitutes, and never looks values up itself. It does
//! not decide *which* variables a template may see (see [`expand`]) and does not resolve
//! variable providers (environment, Vault, …).

use anyhow::{Result, bail};

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece<'a> {
    /// Text copied verbatim.
    Text(&'a str),
    /// A variable reference, already trimmed.
    Var(&'a str),
}

/// Splits `template` into text and variable pieces, as Spin's `Template::new` does.
fn parse(template: &str) -> Result<Vec<Piece<'_>>> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        if let Some(after_open) = rest.strip_prefix("{{") {
            let Some((expr, after_close)) = after_open.split_once("}}") else {
                bail!("unmatched '{{{{' in template {template:?}");
            };
            pieces.push(Piece::Var(expr.trim()));
            rest = after_close;
        } else {
            let end = rest.find("{{").unwrap_or(rest.len());
            pieces.push(Piece::Text(&rest[..end]));
            rest = &rest[end..];
        }
    }
    Ok(pieces)
}

/// Expands every `{{ name }}` in `template` with `lookup(name)`.
///
/// The whole template is checked for syntax first (an unmatched `{{` fails before any lookup),
/// then each reference is looked up in order. A name `lookup` does not know is an error that
/// names it.
///
/// # Which variables a template can reference
///
/// In Spin, both kinds of manifest template see **application variables only** (the top-level
/// `[variables]` table), never a component's own `[component.<id>.variables]`:
///
/// - `[component.<id>.variables]` values are validated against the application variables
///   (`Resolver::validate_template` rejects any other name as "unknown variable").
/// - `allowed_outbound_hosts` entries are resolved with a `PreparedResolver` built by
///   `ProviderResolver::prepare`, which holds exactly the resolved application variables
///   (`crates/factor-outbound-networking/src/lib.rs`); Spin's manifest reference says "The only
///   variables permitted in manifest expressions are application variables."
///
/// So callers should pass a `lookup` over the resolved application variables in both cases.
pub fn expand(template: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String> {
    let pieces = parse(template)?;
    let mut out = String::with_capacity(template.len());
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Var(name) => match lookup(name) {
                Some(value) => out.push_str(&value),
                None if is_valid_variable_name(name) => {
                    bail!("unknown variable {name:?} in template {template:?}")
                }
                None => bail!(
                    "unknown variable {name:?} in template {template:?} (not a valid variable name: {})",
                    name_problem(name).unwrap_or_default()
                ),
            },
        }
    }
    Ok(out)
}

/// The names of the variables `template` refers to, in order of first use, without repeats.
///
/// Fails only on template syntax (an unmatched `{{`); names are returned as written (trimmed),
/// even when they are not valid variable names, so that the caller's "unknown variable" check
/// reports them.
pub fn references(template: &str) -> Result<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    for piece in parse(template)? {
        if let Piece::Var(name) = piece
            && !names.iter().any(|n| n == name)
        {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// True when `template` contains no `{{ … }}` expression (and is well formed).
pub fn is_literal(template: &str) -> Result<bool> {
    Ok(parse(template)?
        .iter()
        .all(|piece| matches!(piece, Piece::Text(_))))
}

/// Whether `name` is a valid Spin variable name (application or component variable).
///
/// Spin's rule (`Key::validate` in `crates/expressions/src/lib.rs`, matching the manifest's
/// lower-snake-case ids): non-empty; only `a-z`, `0-9` and `_`; starts with a lower-case letter;
/// ends with a letter or digit; no two underscores in a row. So `a`, `a1`, `api_host_2` are
/// valid and `A`, `1a`, `_a`, `a_`, `a__b`, `a-b`, `a.b` are not.
pub fn is_valid_variable_name(name: &str) -> bool {
    name_problem(name).is_none()
}

/// Checks `name` with [`is_valid_variable_name`]'s rule, saying what is wrong if it fails.
pub fn validate_variable_name(name: &str) -> Result<()> {
    match name_problem(name) {
        None => Ok(()),
        Some(problem) => bail!("invalid variable name {name:?}: {problem}"),
    }
}

/// Why `name` is not a valid variable name, in Spin's words, or `None` if it is valid.
fn name_problem(name: &str) -> Option<String> {
    let (Some(first), Some(last)) = (name.chars().next(), name.chars().last()) else {
        return Some("must not be empty".to_owned());
    };
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        return Some(format!(
            "invalid character {bad:?}; variable names may contain only lower-case letters, numbers, and underscores"
        ));
    }
    if !first.is_ascii_lowercase() {
        return Some("must start with a lower-case ASCII letter".to_owned());
    }
    if !last.is_ascii_alphanumeric() {
        return Some("must end with a lower-case ASCII letter or digit".to_owned());
    }
    if name.contains("__") {
        return Some("must not contain multiple consecutive underscores".to_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn text_without_braces_is_unchanged() {
        assert_eq!(expand("static-value", vars(&[])).unwrap(), "static-value");
        assert!(is_literal("static-value").unwrap());
    }

    #[test]
    fn empty_template_expands_to_empty_string() {
        assert_eq!(expand("", vars(&[])).unwrap(), "");
        assert!(references("").unwrap().is_empty());
    }

    #[test]
    fn variable_is_substituted_between_text() {
        // The example from Spin's expressions tests.
        let lookup = vars(&[("default", "default-value")]);
        assert_eq!(
            expand("prefix-{{ default }}-suffix", lookup).unwrap(),
            "prefix-default-value-suffix"
        );
    }

    #[test]
    fn whitespace_inside_braces_is_ignored() {
        let lookup = vars(&[("api_host", "example.com")]);
        for t in [
            "{{api_host}}",
            "{{ api_host }}",
            "{{   api_host\t}}",
            "{{\napi_host\n}}",
        ] {
            assert_eq!(expand(t, &lookup).unwrap(), "example.com", "{t:?}");
        }
    }

    #[test]
    fn adjacent_expressions_are_both_expanded() {
        let lookup = vars(&[("a", "1"), ("b", "2")]);
        assert_eq!(expand("{{ a }}{{ b }}", lookup).unwrap(), "12");
    }

    #[test]
    fn manifest_example_for_allowed_hosts_expands() {
        let lookup = vars(&[("stripe_host", "127.0.0.1:4242")]);
        assert_eq!(
            expand("http://{{ stripe_host }}", lookup).unwrap(),
            "http://127.0.0.1:4242"
        );
    }

    #[test]
    fn unknown_variable_is_an_error_naming_it() {
        let err = expand("https://{{ api_host }}/users", vars(&[])).unwrap_err();
        assert!(err.to_string().contains("\"api_host\""), "{err}");
    }

    #[test]
    fn invalid_name_in_braces_is_an_unknown_variable() {
        let lookup = vars(&[("a", "1")]);
        for t in ["{{ A }}", "{{ a b }}", "{{ }}", "{{ a-b }}"] {
            let err = expand(t, &lookup).unwrap_err();
            assert!(err.to_string().contains("unknown variable"), "{t:?}: {err}");
        }
    }

    #[test]
    fn unmatched_open_braces_are_an_error() {
        // From Spin's template tests.
        assert!(expand("{{ matched }} {{ unmatched", vars(&[("matched", "x")])).is_err());
        assert!(references("{{ unmatched").is_err());
        assert!(is_literal("{{").is_err());
    }

    #[test]
    fn syntax_is_checked_before_any_lookup() {
        let err = expand("{{ missing }} {{ unmatched", vars(&[])).unwrap_err();
        assert!(err.to_string().contains("unmatched"), "{err}");
    }

    #[test]
    fn lone_closing_braces_are_text() {
        assert_eq!(expand("a}}b", vars(&[])).unwrap(), "a}}b");
        assert_eq!(expand("{{ a }}}}", vars(&[("a", "x")])).unwrap(), "x}}");
    }

    #[test]
    fn expression_ends_at_the_first_closing_braces() {
        // `{{{ a }}}` is the expression "{ a" followed by the text "}", as in Spin.
        assert_eq!(references("{{{ a }}}").unwrap(), vec!["{ a".to_owned()]);
        assert!(expand("{{{ a }}}", vars(&[("a", "x")])).is_err());
        // There is no way to escape `{{`: it always opens an expression.
        assert!(expand("literal {{ braces", vars(&[])).is_err());
    }

    #[test]
    fn references_lists_names_in_order_without_repeats() {
        assert_eq!(
            references("{{ b }}-{{a}}-{{ b }}").unwrap(),
            vec!["b".to_owned(), "a".to_owned()]
        );
        assert!(!is_literal("x{{ a }}").unwrap());
    }

    #[test]
    fn valid_variable_names_are_accepted() {
        // Spin's `keys_good` examples.
        for name in ["a", "abc", "a1b2c3", "a_1", "a_1_b_3"] {
            assert!(is_valid_variable_name(name), "{name:?}");
            validate_variable_name(name).unwrap();
        }
    }

    #[test]
    fn invalid_variable_names_are_rejected() {
        // Spin's `keys_bad` examples.
        for name in ["", "aX", "1bc", "_x", "x.y", "x_", "a__b", "x-y"] {
            assert!(!is_valid_variable_name(name), "{name:?}");
            assert!(validate_variable_name(name).is_err(), "{name:?}");
        }
        assert!(!is_valid_variable_name("Abc"));
        assert!(!is_valid_variable_name("é"));
    }

    #[test]
    fn invalid_name_error_explains_the_rule() {
        let err = validate_variable_name("a__b").unwrap_err().to_string();
        assert!(err.contains("consecutive underscores"), "{err}");
        let err = validate_variable_name("1a").unwrap_err().to_string();
        assert!(err.contains("start with"), "{err}");
    }
}
