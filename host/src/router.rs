//! Spin's HTTP trigger routing: which component handles a request path, and the `spin-*` request
//! headers Spin adds for it.
//!
//! This reproduces Spin 3's router (`crates/http/src/routes.rs` in spinframework/spin), which
//! delegates pattern matching and precedence to the `routefinder` 0.5 crate, and the headers of
//! `crates/trigger-http/src/headers.rs`. The rules, in short:
//!
//! - **Normalisation.** A route is made absolute (`foo` → `/foo`) and loses *one* trailing slash
//!   (`/foo/` → `/foo`, `/` → the empty string). The request path is matched with all leading and
//!   trailing slashes ignored, so `/foo/` and `//foo` reach route `/foo`; inner double slashes
//!   are not collapsed.
//! - **Patterns.** A route is a sequence of `/`-separated segments: literal text, `:name` (one
//!   whole segment, non-empty, captured as `name`), and a trailing wildcard `/...` (or `/*`) which
//!   matches the prefix itself and anything below it; `/...` alone matches every path, `/` only
//!   the root. `.` also separates pieces, so `/:file.json` captures `report` from `/report.json`.
//! - **Precedence.** Routes are ranked segment by segment, left to right; at the first position
//!   where they differ, literal text beats `:name`, which beats the wildcard, which beats a
//!   separator. If one route is a prefix of the other, the one with more `.` separators wins,
//!   then the *shorter* one. The first route in that order that matches wins. So exact routes
//!   beat wildcards with the same prefix, longer wildcard prefixes beat shorter ones, and
//!   `/users/admin` beats `/users/:id` — but also `/foo/...` beats `/:id` for the path `/foo`,
//!   since the first segment decides. Routes that rank equal (`/:a` and `/:b`, or `/foo` and
//!   `/foo/`) keep manifest order: the first listed wins.
//! - **Duplicates.** Routes *written identically* are duplicates: the last one listed wins (in
//!   the first one's place) and each replaced one is reported, as Spin logs them; the router is
//!   still built. Routes equal only after normalisation (`/foo`, `/foo/`) are not reported.
//!
//! Deliberately not handled here: `{ private = true }` routes (pass only routable ones), the
//! reserved `/.well-known/spin/...` paths (the server must answer those before routing; see
//! [`WELL_KNOWN_PREFIX`]), percent-decoding (Spin routes the raw URI path), and I/O.
//! One deliberate divergence: a wildcard that is not the last segment (`/*/x`, `/a/*/b`) is
//! rejected when building, where routefinder would panic on the first request reaching it.
//! (`...` is only a wildcard at the very end: `/a/.../b` is literal text, as in Spin.)

use std::cmp::Ordering;
use std::net::SocketAddr;

use anyhow::{Result, anyhow};

/// Paths under this prefix are answered by Spin itself (`health`, `info`, else 404) before any
/// routing, so routes under it are never reached.
pub const WELL_KNOWN_PREFIX: &str = "/.well-known/spin/";

/// The value Spin 3 sends in `spin-base-path`: applications no longer have a base path.
pub const BASE_PATH: &str = "/";

/// The full request URL as Spin reports it in `spin-full-url`: `{scheme}://{host}{path?query}`,
/// where `host` is the request's `Host` header, or `localhost` without one, and `scheme` is the
/// server's (`http`, or `https` with TLS).
pub fn full_url(scheme: &str, host_header: Option<&str>, path_and_query: &str) -> String {
    let host = host_header.unwrap_or("localhost");
    format!("{scheme}://{host}{path_and_query}")
}

/// One piece of a parsed route, as routefinder sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// A `/` between two pieces.
    Slash,
    /// A `.` that could not be folded into preceding literal text (it follows a `:name`).
    Dot,
    /// Literal text, which must appear verbatim.
    Literal(String),
    /// `:name`: one segment (up to the next `/`, or `.` if a `.` follows in the route).
    Param(String),
    /// The trailing wildcard: everything that is left, possibly nothing.
    Wildcard,
}

/// How two segments at the same position rank, `Greater` meaning `a` is more specific.
///
/// This is routefinder's table, including its quirk that a [`Segment::Dot`] claims to outrank
/// every non-separator segment and is also outranked by literals, `:name`s and the wildcard
/// (both orders say "greater"); only a `.` after a `:name` can meet such a segment, which needs
/// routes like `/:a.x` next to `/:a..x`.
fn segment_rank(a: &Segment, b: &Segment) -> Ordering {
    use Segment::{Dot, Literal, Param, Slash, Wildcard};
    match (a, b) {
        (Literal(_), Literal(_))
        | (Param(_), Param(_))
        | (Wildcard, Wildcard)
        | (Slash | Dot, Slash | Dot) => Ordering::Equal,
        (Dot | Literal(_), _) => Ordering::Greater,
        (Param(_), Literal(_)) => Ordering::Less,
        (Param(_), _) => Ordering::Greater,
        (Wildcard, Literal(_) | Param(_)) => Ordering::Less,
        (Wildcard, _) => Ordering::Greater,
        (Slash, _) => Ordering::Less,
    }
}

/// Whether a route with `new` segments is tried before an already-placed route with `placed`
/// segments. Ties say no, so equal routes keep their listing order.
fn tried_before(new: &[Segment], placed: &[Segment]) -> bool {
    let dots = |s: &[Segment]| s.iter().filter(|seg| **seg == Segment::Dot).count();
    let decided = new
        .iter()
        .zip(placed)
        .map(|(a, b)| segment_rank(a, b))
        .find(|o| o.is_ne())
        .or_else(|| Some(dots(new).cmp(&dots(placed))).filter(|o| o.is_ne()))
        // A route that is a prefix of the other (fewer segments) goes first.
        .or_else(|| Some(placed.len().cmp(&new.len())).filter(|o| o.is_ne()));
    decided == Some(Ordering::Greater)
}

/// Parses a route into segments the way routefinder's `RouteSpec::from_str` does.
fn parse_segments(route: &str) -> std::result::Result<Vec<Segment>, String> {
    let trimmed = route.trim_start_matches('/').trim_end_matches('/');
    let mut segments = Vec::new();
    let mut push = |section: &str, separator: Option<char>| -> std::result::Result<(), String> {
        let segment = if section == "*" {
            Some(Segment::Wildcard)
        } else if section.starts_with('*') {
            return Err(format!(
                "since there can only be one wildcard, it doesn't need a name. replace `{section}` with `*`"
            ));
        } else if section == ":" {
            return Err("params must be named".to_owned());
        } else if let Some(name) = section.strip_prefix(':') {
            Some(Segment::Param(name.to_owned()))
        } else if section.is_empty() {
            None
        } else {
            Some(Segment::Literal(section.to_owned()))
        };
        if separator == Some('.') {
            // A dot after literal text is part of that text; otherwise it is a separator.
            if let Some(Segment::Literal(text)) = segments.last_mut() {
                text.push('.');
            } else {
                segments.push(Segment::Dot);
            }
        }
        if let Some(segment) = segment {
            if separator == Some('/') {
                segments.push(Segment::Slash);
            }
            segments.push(segment);
        }
        Ok(())
    };
    let mut start = 0;
    let mut separator = None;
    for (index, c) in trimmed.char_indices() {
        if c == '/' || c == '.' {
            push(&trimmed[start..index], separator)?;
            separator = Some(c);
            start = index + c.len_utf8();
        }
    }
    push(&trimmed[start..], separator)?;
    if let Some(index) = segments.iter().position(|s| *s == Segment::Wildcard)
        && index + 1 != segments.len()
    {
        return Err("a wildcard (`...` or `*`) may only end a route".to_owned());
    }
    Ok(segments)
}

/// What a path matched: the values of `:name` segments (in route order) and of the wildcard.
struct Captures<'p> {
    params: Vec<&'p str>,
    wildcard: Option<&'p str>,
}

/// Matches `path` against `segments` the way routefinder's `RouteSpec::matches` does.
fn match_segments<'p>(segments: &[Segment], path: &'p str) -> Option<Captures<'p>> {
    let mut rest = path.trim_start_matches('/').trim_end_matches('/');
    let mut captures = Captures {
        params: Vec::new(),
        wildcard: None,
    };
    for (index, segment) in segments.iter().enumerate() {
        let next = segments.get(index + 1);
        match segment {
            Segment::Literal(text) => rest = rest.strip_prefix(text.as_str())?,
            Segment::Param(_) => {
                if rest.is_empty() {
                    return None;
                }
                let end = match next {
                    Some(Segment::Dot) => {
                        let end = rest.find(['.', '/'])?;
                        if !rest[end..].starts_with('.') {
                            return None;
                        }
                        end
                    }
                    _ => rest.find('/').unwrap_or(rest.len()),
                };
                captures.params.push(&rest[..end]);
                rest = &rest[end..];
            }
            Segment::Wildcard => {
                captures.wildcard = Some(rest);
                rest = "";
            }
            Segment::Slash => match (rest.strip_prefix('/'), next) {
                (Some(after), Some(_)) => rest = after,
                (None, None | Some(Segment::Wildcard)) if rest.is_empty() => {}
                _ => return None,
            },
            Segment::Dot => rest = rest.strip_prefix('.')?,
        }
    }
    (rest.is_empty() || rest == "/").then_some(captures)
}

/// A route as Spin combines it with the (Spin 3: always `/`) base: absolute, one trailing slash
/// removed. The root route `/` becomes the empty string.
fn based_route(raw: &str) -> String {
    let absolute = if raw.starts_with('/') {
        raw.to_owned()
    } else {
        format!("/{raw}")
    };
    match absolute.strip_suffix('/') {
        Some(stripped) => stripped.to_owned(),
        None => absolute,
    }
}

/// A route that was listed more than once with exactly the same text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateRoute {
    /// The duplicated route, normalised as Spin reports it (`/` for the root).
    pub route: String,
    /// The component whose route was replaced and will never be used.
    pub replaced_id: String,
    /// The component that handles the route instead (the later one).
    pub effective_id: String,
}

impl std::fmt::Display for DuplicateRoute {
    /// Spin's log line: `  {replaced}: {route} (duplicate of {effective})`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} (duplicate of {})",
            self.replaced_id, self.route, self.effective_id
        )
    }
}

#[derive(Debug, Clone)]
struct RouteEntry {
    component_id: String,
    raw_route: String,
    based_route: String,
    segments: Vec<Segment>,
}

/// The HTTP routes of an application, in the order Spin tries them.
#[derive(Debug, Clone, Default)]
pub struct Router {
    entries: Vec<RouteEntry>,
    duplicates: Vec<DuplicateRoute>,
}

impl Router {
    /// Builds the router from `(route as written in spin.toml, component id)` pairs in manifest
    /// order. Routes listed more than once with identical text are not an error: the last wins
    /// and [`Router::duplicates`] reports the others (Spin logs them as errors and carries on).
    /// An unparsable route (`/:`, `/*name`, a wildcard before the end) is an error.
    pub fn build(routes: impl IntoIterator<Item = (String, String)>) -> Result<Router> {
        // Keyed by the route text as written: the last component wins, in the first one's place.
        let mut unique: Vec<(String, String)> = Vec::new();
        let mut duplicates = Vec::new();
        for (raw, component) in routes {
            if let Some(slot) = unique.iter_mut().find(|(r, _)| *r == raw) {
                let replaced = std::mem::replace(&mut slot.1, component.clone());
                let based = based_route(&raw);
                duplicates.push(DuplicateRoute {
                    route: if based.is_empty() {
                        "/".to_owned()
                    } else {
                        based
                    },
                    replaced_id: replaced,
                    effective_id: component,
                });
            } else {
                unique.push((raw, component));
            }
        }

        let mut entries: Vec<RouteEntry> = Vec::with_capacity(unique.len());
        for (raw_route, component_id) in unique {
            let based = based_route(&raw_route);
            let pattern = match based.strip_suffix("/...") {
                Some(prefix) => format!("{prefix}/*"),
                None => based.clone(),
            };
            let segments = parse_segments(&pattern).map_err(|e| {
                anyhow!("Error parsing route {based} associated with component {component_id}: {e}")
            })?;
            let position = entries
                .iter()
                .position(|placed| tried_before(&segments, &placed.segments))
                .unwrap_or(entries.len());
            entries.insert(
                position,
                RouteEntry {
                    component_id,
                    raw_route,
                    based_route: based,
                    segments,
                },
            );
        }
        Ok(Router {
            entries,
            duplicates,
        })
    }

    /// The routes that were listed more than once, in the order they were replaced.
    pub fn duplicates(&self) -> &[DuplicateRoute] {
        &self.duplicates
    }

    /// The component that handles `path` (the request's raw URI path, without the query), or
    /// `None` (Spin answers 404). Callers must answer [`WELL_KNOWN_PREFIX`] paths first.
    pub fn route(&self, path: &str) -> Option<RouteMatch<'_>> {
        self.entries.iter().find_map(|entry| {
            let captures = match_segments(&entry.segments, path)?;
            Some(RouteMatch::new(entry, captures, path))
        })
    }

    /// `(route as written, component id)` for every effective route, in precedence order.
    pub fn routes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|e| (e.raw_route.as_str(), e.component_id.as_str()))
    }

    /// Whether some route lies under [`WELL_KNOWN_PREFIX`] and so can never be reached (Spin
    /// logs an error for this and carries on).
    pub fn contains_reserved_route(&self) -> bool {
        self.entries
            .iter()
            .any(|e| e.based_route.starts_with(WELL_KNOWN_PREFIX))
    }
}

/// The result of routing one request path.
#[derive(Debug, Clone)]
pub struct RouteMatch<'a> {
    entry: &'a RouteEntry,
    named: Vec<(&'a str, String)>,
    path_info: String,
}

impl<'a> RouteMatch<'a> {
    fn new(entry: &'a RouteEntry, captures: Captures<'_>, path: &str) -> RouteMatch<'a> {
        let names = entry.segments.iter().filter_map(|s| match s {
            Segment::Param(name) => Some(name.as_str()),
            _ => None,
        });
        // Spin collects the captures into a map: a name used twice keeps its last value.
        let mut named: Vec<(&'a str, String)> = Vec::new();
        for (name, value) in names.zip(captures.params) {
            match named.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = value.to_owned(),
                None => named.push((name, value.to_owned())),
            }
        }
        // Spin re-adds the slashes routefinder drops around the wildcard's capture.
        let path_info = match captures.wildcard {
            None => String::new(),
            Some(tail) => match (tail.is_empty(), path.ends_with('/')) {
                (true, false) => String::new(),
                (true, true) => "/".to_owned(),
                (false, false) => format!("/{tail}"),
                (false, true) => format!("/{tail}/"),
            },
        };
        RouteMatch {
            entry,
            named,
            path_info,
        }
    }

    /// The id of the component that handles the request.
    pub fn component_id(&self) -> &'a str {
        &self.entry.component_id
    }

    /// The route exactly as written in `spin.toml`.
    pub fn raw_route(&self) -> &'a str {
        &self.entry.raw_route
    }

    /// The route as Spin matched it: absolute, one trailing slash removed, wildcard kept
    /// (`/users/...`); the empty string for the root route `/`.
    pub fn matched_route(&self) -> &'a str {
        &self.entry.based_route
    }

    /// The route as written, minus a trailing `/...` (`/users/...` → `/users`, `/...` → empty).
    pub fn component_route(&self) -> &'a str {
        let raw = self.entry.raw_route.as_str();
        raw.strip_suffix("/...").unwrap_or(raw)
    }

    /// Whether the route ends in a wildcard (`/...` or `/*`).
    pub fn is_wildcard(&self) -> bool {
        self.entry.segments.last() == Some(&Segment::Wildcard)
    }

    /// The `:name` captures, in route order (a repeated name appears once, with its last value).
    pub fn named_wildcards(&self) -> impl Iterator<Item = (&str, &str)> {
        self.named.iter().map(|(n, v)| (*n, v.as_str()))
    }

    /// The value captured by `:name`, if the route has it.
    pub fn named_wildcard(&self, name: &str) -> Option<&str> {
        self.named
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The part of the path matched by the trailing wildcard, with a leading `/` and the
    /// request's trailing slash kept (`/foo/...` on `/foo/a/b/` gives `/a/b/`, on `/foo` gives
    /// empty, on `/foo/` gives `/`); always empty for a route without a wildcard.
    pub fn path_info(&self) -> &str {
        &self.path_info
    }

    /// The request headers Spin adds for an HTTP component, in Spin's order
    /// (`compute_default_headers` in `crates/trigger-http/src/headers.rs`):
    ///
    /// - `spin-path-info`: [`RouteMatch::path_info`]; empty for a route without a wildcard.
    /// - `spin-full-url`: `full_url` as given (see [`full_url`]).
    /// - `spin-matched-route`: [`RouteMatch::matched_route`], wildcard kept; empty for `/`.
    /// - `spin-base-path`: always `/` ([`BASE_PATH`]).
    /// - `spin-raw-component-route`: [`RouteMatch::raw_route`], as written.
    /// - `spin-component-route`: [`RouteMatch::component_route`], as written minus `/...`.
    /// - `spin-client-addr`: `client_addr` as `ip:port` (`[ip]:port` for IPv6).
    /// - `spin-path-match-<name>` per `:name`, name ASCII-lower-cased with `_` → `-`.
    ///
    /// Spin *appends* these to the client's headers (a client-sent `spin-path-info` is not
    /// removed). Like Spin's executors, a header whose name or value is not valid HTTP is left
    /// out.
    pub fn spin_headers(&self, full_url: &str, client_addr: SocketAddr) -> Vec<(String, String)> {
        let mut headers = vec![
            // The path below the wildcard; empty for exact routes ([`RouteMatch::path_info`]).
            ("spin-path-info".to_owned(), self.path_info.clone()),
            // `{scheme}://{Host header or localhost}{path and query}`.
            ("spin-full-url".to_owned(), full_url.to_owned()),
            // The normalised route, wildcard included: `/users/:id/...`; empty for route `/`.
            (
                "spin-matched-route".to_owned(),
                self.matched_route().to_owned(),
            ),
            // Always `/` in Spin 3, which removed application base paths.
            ("spin-base-path".to_owned(), BASE_PATH.to_owned()),
            // The route exactly as written in spin.toml.
            (
                "spin-raw-component-route".to_owned(),
                self.raw_route().to_owned(),
            ),
            // The route as written minus a trailing `/...`.
            (
                "spin-component-route".to_owned(),
                self.component_route().to_owned(),
            ),
            // `ip:port` of the peer (`[v6]:port` for IPv6).
            ("spin-client-addr".to_owned(), client_addr.to_string()),
        ];
        // One per `:name`: Spin builds `SPIN_PATH_MATCH_{NAME}` and then lower-cases it and
        // turns `_` into `-`, so `:user_id` gives `spin-path-match-user-id`.
        for (name, value) in &self.named {
            let header = format!("spin-path-match-{}", name.to_ascii_lowercase()).replace('_', "-");
            headers.push((header, value.clone()));
        }
        headers.retain(|(name, value)| is_header_name(name) && is_header_value(value));
        headers
    }
}

/// An HTTP header name: one or more token characters (RFC 9110).
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// An HTTP header value as the `http` crate accepts it: visible bytes, spaces and tabs.
fn is_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| (b >= 0x20 && b != 0x7f) || b == b'\t')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn router(routes: &[(&str, &str)]) -> Router {
        Router::build(
            routes
                .iter()
                .map(|(route, component)| ((*route).to_owned(), (*component).to_owned())),
        )
        .unwrap()
    }

    fn component<'r>(router: &'r Router, path: &str) -> Option<&'r str> {
        router.route(path).map(|m| m.component_id())
    }

    fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
        let mut found = headers.iter().filter(|(n, _)| n == name);
        let value = found.next().map(|(_, v)| v.as_str());
        assert!(found.next().is_none(), "{name} appears twice");
        value
    }

    fn addr() -> SocketAddr {
        "127.0.0.1:8777".parse().unwrap()
    }

    #[test]
    fn exact_route_matches_only_that_path() {
        // Spin docs: `/cart` matches only `/cart`, not `/cart/checkout`.
        let r = router(&[("/cart", "shopping-cart"), ("/cart/checkout", "checkout")]);
        assert_eq!(component(&r, "/cart"), Some("shopping-cart"));
        assert_eq!(component(&r, "/cart/checkout"), Some("checkout"));
        assert_eq!(component(&r, "/cart/other"), None);
        assert_eq!(component(&r, "/carts"), None);
        assert_eq!(component(&r, "/"), None);
    }

    #[test]
    fn nothing_matches_an_empty_router() {
        assert!(router(&[]).route("/").is_none());
    }

    #[test]
    fn trailing_and_leading_slashes_in_the_path_are_ignored() {
        let r = router(&[("/foo", "foo")]);
        assert_eq!(component(&r, "/foo/"), Some("foo"));
        assert_eq!(component(&r, "//foo//"), Some("foo"));
    }

    #[test]
    fn inner_double_slashes_in_the_path_are_not_collapsed() {
        let r = router(&[("/foo/bar", "foobar")]);
        assert_eq!(component(&r, "/foo//bar"), None);
    }

    #[test]
    fn trailing_slash_in_a_route_is_normalised_away() {
        let r = router(&[("/foo/", "foo")]);
        let m = r.route("/foo").unwrap();
        assert_eq!(m.component_id(), "foo");
        assert_eq!(m.matched_route(), "/foo");
        assert_eq!(m.raw_route(), "/foo/");
    }

    #[test]
    fn route_without_leading_slash_is_made_absolute() {
        let r = router(&[("foo", "foo")]);
        let m = r.route("/foo").unwrap();
        assert_eq!(m.matched_route(), "/foo");
        assert_eq!(m.raw_route(), "foo");
    }

    #[test]
    fn root_route_matches_only_the_root() {
        let r = router(&[("/", "root")]);
        assert_eq!(component(&r, "/"), Some("root"));
        assert_eq!(component(&r, ""), Some("root"));
        assert_eq!(component(&r, "/a"), None);
    }

    #[test]
    fn trailing_wildcard_matches_its_prefix_and_everything_below() {
        // Spin docs: `/users/...` matches `/users`, `/users/1`, `/users/1/edit`.
        let r = router(&[("/users/...", "user-manager")]);
        for path in ["/users", "/users/", "/users/1", "/users/1/edit"] {
            assert_eq!(component(&r, path), Some("user-manager"), "{path}");
        }
        assert_eq!(component(&r, "/usersx"), None);
        assert_eq!(component(&r, "/"), None);
    }

    #[test]
    fn root_wildcard_matches_every_path() {
        // Spin's `test_router_wildcard`.
        let r = router(&[("/...", "all")]);
        for path in ["/foo/bar", "/abc/", "/", "/this/should/be/captured"] {
            assert_eq!(component(&r, path), Some("all"), "{path}");
        }
    }

    #[test]
    fn star_suffix_is_also_a_trailing_wildcard() {
        let r = router(&[("/files/*", "files")]);
        let m = r.route("/files/a/b").unwrap();
        assert_eq!(m.path_info(), "/a/b");
        assert!(m.is_wildcard());
        // Only `/...` is stripped for spin-component-route.
        assert_eq!(m.component_route(), "/files/*");
    }

    #[test]
    fn named_segment_captures_value() {
        // Spin docs: `/users/:userid/edit` matches `/users/1/edit` and `/users/alice/edit`
        // but not `/users`, `/users/1` or `/users/1/edit/cart`.
        let r = router(&[("/users/:userid/edit", "edit")]);
        assert_eq!(
            r.route("/users/1/edit").unwrap().named_wildcard("userid"),
            Some("1")
        );
        assert_eq!(
            r.route("/users/alice/edit")
                .unwrap()
                .named_wildcard("userid"),
            Some("alice")
        );
        for path in ["/users", "/users/1", "/users/1/edit/cart"] {
            assert_eq!(component(&r, path), None, "{path}");
        }
    }

    #[test]
    fn named_segment_can_capture_an_empty_inner_segment() {
        // A routefinder quirk Spin inherits: `//` in the middle gives an empty capture.
        let r = router(&[("/users/:userid/edit", "edit")]);
        assert_eq!(
            r.route("/users//edit").unwrap().named_wildcard("userid"),
            Some("")
        );
    }

    #[test]
    fn dots_in_the_middle_are_literal_text_not_a_wildcard() {
        // `/a/.../b/...` is the literal `a...` then `b` then a trailing wildcard.
        let r = router(&[("/a/.../b/...", "c")]);
        assert_eq!(component(&r, "/a/x/b/y"), None);
        assert_eq!(r.route("/a.../b/y").unwrap().path_info(), "/y");
    }

    #[test]
    fn named_segment_does_not_match_an_empty_segment() {
        let r = router(&[("/users/:id", "user")]);
        assert_eq!(component(&r, "/users/"), None);
        assert_eq!(component(&r, "/users"), None);
    }

    #[test]
    fn named_segments_and_trailing_wildcard_capture_together() {
        // Spin's `named_wildcard_is_captured`.
        let r = router(&[("/1/:two/3", "comp")]);
        assert_eq!(r.route("/1/2/3").unwrap().named_wildcard("two"), Some("2"));
        let r = router(&[("/1/:two/...", "comp")]);
        let m = r.route("/1/2/3").unwrap();
        assert_eq!(m.named_wildcard("two"), Some("2"));
        assert_eq!(m.path_info(), "/3");
    }

    #[test]
    fn repeated_name_keeps_its_last_value() {
        let r = router(&[("/:a/:a", "comp")]);
        let m = r.route("/x/y").unwrap();
        assert_eq!(m.named_wildcards().collect::<Vec<_>>(), [("a", "y")]);
    }

    #[test]
    fn dot_separates_a_named_segment_from_literal_text() {
        let r = router(&[("/reports/:name.json", "reports")]);
        let m = r.route("/reports/q3.json").unwrap();
        assert_eq!(m.named_wildcard("name"), Some("q3"));
        assert_eq!(component(&r, "/reports/q3.csv"), None);
        assert_eq!(component(&r, "/reports/q3"), None);
    }

    #[test]
    fn literal_dots_are_ordinary_text() {
        let r = router(&[("/favicon.ico", "icon"), ("/.well-known/x", "wk")]);
        assert_eq!(component(&r, "/favicon.ico"), Some("icon"));
        assert_eq!(component(&r, "/faviconxico"), None);
        assert_eq!(component(&r, "/.well-known/x"), Some("wk"));
    }

    #[test]
    fn exact_route_beats_wildcard() {
        // Spin's `test_router_exact_beats_wildcard`.
        let r = router(&[("/one", "one_exact"), ("/...", "wildcard")]);
        assert_eq!(component(&r, "/one"), Some("one_exact"));
        let r = router(&[("/...", "wildcard"), ("/one", "one_exact")]);
        assert_eq!(component(&r, "/one"), Some("one_exact"));
        assert_eq!(component(&r, "/two"), Some("wildcard"));
    }

    #[test]
    fn exact_route_beats_wildcard_with_the_same_prefix() {
        let r = router(&[("/foo/...", "wild"), ("/foo", "exact")]);
        assert_eq!(component(&r, "/foo"), Some("exact"));
        assert_eq!(component(&r, "/foo/"), Some("exact"));
        assert_eq!(component(&r, "/foo/x"), Some("wild"));
    }

    #[test]
    fn root_route_beats_root_wildcard_for_the_root() {
        let r = router(&[("/...", "all"), ("/", "home")]);
        assert_eq!(component(&r, "/"), Some("home"));
        assert_eq!(component(&r, "/x"), Some("all"));
    }

    #[test]
    fn longest_wildcard_prefix_wins_regardless_of_order() {
        // Spin's `test_router_respects_longest_match`.
        let forward = [
            ("/one/...", "one_wildcard"),
            ("/one/two/...", "onetwo_wildcard"),
            ("/one/two/three/...", "onetwothree_wildcard"),
        ];
        let mut backward = forward;
        backward.reverse();
        for routes in [forward, backward] {
            let r = router(&routes);
            assert_eq!(
                component(&r, "/one/two/three/four"),
                Some("onetwothree_wildcard")
            );
            assert_eq!(component(&r, "/one/two/x"), Some("onetwo_wildcard"));
            assert_eq!(component(&r, "/one"), Some("one_wildcard"));
        }
    }

    #[test]
    fn overlapping_routes_example_from_spin_docs() {
        let r = router(&[
            ("/users/...", "user-manager"),
            ("/users/admin", "admin"),
            ("/...", "shop"),
        ]);
        assert_eq!(component(&r, "/users/1"), Some("user-manager"));
        assert_eq!(component(&r, "/users/admin"), Some("admin"));
        assert_eq!(component(&r, "/cart"), Some("shop"));
        assert_eq!(component(&r, "/"), Some("shop"));
    }

    #[test]
    fn literal_segment_beats_named_segment() {
        let r = router(&[("/users/:id", "by-id"), ("/users/admin", "admin")]);
        assert_eq!(component(&r, "/users/admin"), Some("admin"));
        assert_eq!(component(&r, "/users/7"), Some("by-id"));
    }

    #[test]
    fn named_segment_beats_trailing_wildcard() {
        let r = router(&[("/users/...", "wild"), ("/users/:id", "by-id")]);
        assert_eq!(component(&r, "/users/7"), Some("by-id"));
        assert_eq!(component(&r, "/users/7/edit"), Some("wild"));
        assert_eq!(component(&r, "/users"), Some("wild"));
    }

    #[test]
    fn first_differing_segment_decides_precedence() {
        // Segment by segment, not "longest match": at the first segment a literal beats `:a`,
        // so `/foo/...` wins for `/foo/b/c` although `/:a/b/c` matches more specifically.
        let r = router(&[("/:a/b/c", "specific"), ("/foo/...", "prefix")]);
        assert_eq!(component(&r, "/foo/b/c"), Some("prefix"));
        assert_eq!(component(&r, "/bar/b/c"), Some("specific"));
        // And `/foo/...` even takes `/foo` from `/:id`.
        let r = router(&[("/:id", "by-id"), ("/foo/...", "foo")]);
        assert_eq!(component(&r, "/foo"), Some("foo"));
        assert_eq!(component(&r, "/bar"), Some("by-id"));
    }

    #[test]
    fn precedence_order_matches_routefinder() {
        // routefinder's `it_works` ordering, in Spin's route syntax.
        let r = router(&[
            ("/*", "1"),
            ("/hello", "2"),
            ("/:greeting", "3"),
            ("/hey/:world", "4"),
            ("/hey/earth", "5"),
            ("/:greeting/:world/...", "6"),
        ]);
        let order: Vec<&str> = r.routes().map(|(route, _)| route).collect();
        assert_eq!(
            order,
            [
                "/hello",
                "/hey/earth",
                "/hey/:world",
                "/:greeting",
                "/:greeting/:world/...",
                "/*"
            ]
        );
        assert_eq!(component(&r, "/hey/earth"), Some("5"));
        assert_eq!(
            r.route("/hey/mars").unwrap().named_wildcard("world"),
            Some("mars")
        );
        let m = r.route("/hey/earth/wildcard/stuff").unwrap();
        assert_eq!(m.component_id(), "6");
        assert_eq!(m.path_info(), "/wildcard/stuff");
        assert_eq!(m.named_wildcard("greeting"), Some("hey"));
        assert_eq!(component(&r, "/"), Some("1"));
    }

    #[test]
    fn more_dots_win_when_segments_tie() {
        // routefinder's `dots` test.
        let r = router(&[
            ("/:a.:b", "1"),
            ("/:a/:b.:c", "2"),
            ("/:a/:b", "3"),
            ("/:a/:b.txt", "4"),
        ]);
        assert_eq!(component(&r, "/hello.world"), Some("1"));
        assert_eq!(component(&r, "/hi/there.world"), Some("2"));
        assert_eq!(component(&r, "/hi/yep"), Some("3"));
        assert_eq!(component(&r, "/hi/planet.txt"), Some("4"));
        let order: Vec<&str> = r.routes().map(|(_, c)| c).collect();
        assert_eq!(order, ["1", "4", "2", "3"]);
    }

    #[test]
    fn equal_rank_routes_keep_manifest_order() {
        let r = router(&[("/:a", "first"), ("/:b", "second")]);
        assert_eq!(component(&r, "/x"), Some("first"));
        let r = router(&[("/b", "b"), ("/a", "a"), ("/c", "c")]);
        assert_eq!(
            r.routes().map(|(_, c)| c).collect::<Vec<_>>(),
            ["b", "a", "c"]
        );
    }

    #[test]
    fn routes_equal_only_after_normalisation_are_not_duplicates_and_first_wins() {
        let r = router(&[("/foo", "first"), ("/foo/", "second"), ("foo", "third")]);
        assert!(r.duplicates().is_empty());
        assert_eq!(component(&r, "/foo"), Some("first"));
        assert_eq!(r.routes().count(), 3);
    }

    #[test]
    fn duplicate_routes_last_one_wins_and_are_reported() {
        // Spin's `duplicate_routes_are_unreachable` and `duplicate_routes_last_one_wins`.
        let r = router(&[
            ("/", "comp-/"),
            ("/foo", "comp-first /foo"),
            ("/foo", "comp-second /foo"),
            ("/whee/...", "comp-/whee/..."),
        ]);
        assert_eq!(r.routes().count(), 3);
        assert_eq!(component(&r, "/foo"), Some("comp-second /foo"));
        assert_eq!(
            r.duplicates(),
            [DuplicateRoute {
                route: "/foo".to_owned(),
                replaced_id: "comp-first /foo".to_owned(),
                effective_id: "comp-second /foo".to_owned(),
            }]
        );
        assert_eq!(
            r.duplicates()[0].to_string(),
            "comp-first /foo: /foo (duplicate of comp-second /foo)"
        );
    }

    #[test]
    fn duplicate_reports_name_routes_as_spin_does() {
        // Spin's `duplicate_routes_reporting_is_faithful`.
        let r = router(&[
            ("/", "comp-first /"),
            ("/", "comp-second /"),
            ("/foo", "comp-first /foo"),
            ("/foo", "comp-second /foo"),
            ("/...", "comp-first /..."),
            ("/...", "comp-second /..."),
            ("/whee/...", "comp-first /whee/..."),
            ("/whee/...", "comp-second /whee/..."),
        ]);
        let reported: Vec<(&str, &str)> = r
            .duplicates()
            .iter()
            .map(|d| (d.replaced_id.as_str(), d.route.as_str()))
            .collect();
        assert_eq!(
            reported,
            [
                ("comp-first /", "/"),
                ("comp-first /foo", "/foo"),
                ("comp-first /...", "/..."),
                ("comp-first /whee/...", "/whee/..."),
            ]
        );
    }

    #[test]
    fn a_route_listed_three_times_reports_two_replacements() {
        let r = router(&[("/x", "a"), ("/x", "b"), ("/x", "c")]);
        assert_eq!(component(&r, "/x"), Some("c"));
        let pairs: Vec<(&str, &str)> = r
            .duplicates()
            .iter()
            .map(|d| (d.replaced_id.as_str(), d.effective_id.as_str()))
            .collect();
        assert_eq!(pairs, [("a", "b"), ("b", "c")]);
    }

    #[test]
    fn invalid_routes_are_rejected_naming_the_component() {
        for route in ["/:", "/files/*name", "/*/x", "/a/*/b", "/a/*.json"] {
            let err = Router::build([(route.to_owned(), "comp".to_owned())]).unwrap_err();
            assert!(err.to_string().contains("comp"), "{route}: {err}");
        }
    }

    #[test]
    fn path_info_is_empty_for_an_exact_route() {
        let r = router(&[("/foo", "foo")]);
        assert_eq!(r.route("/foo").unwrap().path_info(), "");
        assert_eq!(r.route("/foo/").unwrap().path_info(), "");
    }

    #[test]
    fn path_info_is_the_part_below_the_wildcard() {
        // Spin's `trailing_wildcard_is_captured`.
        let r = router(&[("/...", "comp")]);
        assert_eq!(r.route("/1/2/3").unwrap().path_info(), "/1/2/3");
        assert_eq!(r.route("/").unwrap().path_info(), "/");
        let r = router(&[("/1/...", "comp")]);
        assert_eq!(r.route("/1/2/3").unwrap().path_info(), "/2/3");
    }

    #[test]
    fn path_info_keeps_the_request_trailing_slash() {
        // Spin's `trailing_wildcard_respects_trailing_slash`.
        let r = router(&[("/test/...", "comp")]);
        assert_eq!(r.route("/test").unwrap().path_info(), "");
        assert_eq!(r.route("/test/").unwrap().path_info(), "/");
        assert_eq!(r.route("/test/hello").unwrap().path_info(), "/hello");
        assert_eq!(r.route("/test/hello/").unwrap().path_info(), "/hello/");
    }

    #[test]
    fn spin_headers_match_spins_default_headers_test() {
        // Spin's `test_default_headers`.
        let r = router(&[("/foo/...", "DUMMY")]);
        let m = r.route("/foo/bar").unwrap();
        let url = full_url(
            "https",
            Some("fermyon.dev"),
            "/foo/bar?key1=value1&key2=value2",
        );
        let h = m.spin_headers(&url, addr());
        assert_eq!(
            header(&h, "spin-full-url"),
            Some("https://fermyon.dev/foo/bar?key1=value1&key2=value2")
        );
        assert_eq!(header(&h, "spin-path-info"), Some("/bar"));
        assert_eq!(header(&h, "spin-matched-route"), Some("/foo/..."));
        assert_eq!(header(&h, "spin-base-path"), Some("/"));
        assert_eq!(header(&h, "spin-raw-component-route"), Some("/foo/..."));
        assert_eq!(header(&h, "spin-component-route"), Some("/foo"));
        assert_eq!(header(&h, "spin-client-addr"), Some("127.0.0.1:8777"));
        assert_eq!(h.len(), 7);
    }

    #[test]
    fn spin_headers_are_in_spins_order() {
        let r = router(&[("/a/:x", "c")]);
        let h = r
            .route("/a/1")
            .unwrap()
            .spin_headers("http://localhost/a/1", addr());
        let names: Vec<&str> = h.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "spin-path-info",
                "spin-full-url",
                "spin-matched-route",
                "spin-base-path",
                "spin-raw-component-route",
                "spin-component-route",
                "spin-client-addr",
                "spin-path-match-x",
            ]
        );
    }

    #[test]
    fn spin_headers_include_named_wildcards() {
        // Spin's `test_default_headers_with_named_wildcards`.
        let r = router(&[("/foo/:userid/...", "DUMMY")]);
        let m = r.route("/foo/42/bar").unwrap();
        let h = m.spin_headers("https://fermyon.dev/foo/42/bar?key1=value1", addr());
        assert_eq!(header(&h, "spin-path-info"), Some("/bar"));
        assert_eq!(header(&h, "spin-matched-route"), Some("/foo/:userid/..."));
        assert_eq!(
            header(&h, "spin-raw-component-route"),
            Some("/foo/:userid/...")
        );
        assert_eq!(header(&h, "spin-component-route"), Some("/foo/:userid"));
        assert_eq!(header(&h, "spin-path-match-userid"), Some("42"));
    }

    #[test]
    fn spin_headers_docs_table_example() {
        // Spin docs: route `/users/:userid/cart/...`, request
        // `https://example.com:8080/users/1/cart/items/3/edit?theme=pink`.
        let r = router(&[("/users/:userid/cart/...", "cart")]);
        let m = r.route("/users/1/cart/items/3/edit").unwrap();
        let url = full_url(
            "https",
            Some("example.com:8080"),
            "/users/1/cart/items/3/edit?theme=pink",
        );
        let client: SocketAddr = "127.0.0.1:53152".parse().unwrap();
        let h = m.spin_headers(&url, client);
        assert_eq!(
            header(&h, "spin-full-url"),
            Some("https://example.com:8080/users/1/cart/items/3/edit?theme=pink")
        );
        assert_eq!(header(&h, "spin-path-info"), Some("/items/3/edit"));
        assert_eq!(header(&h, "spin-path-match-userid"), Some("1"));
        assert_eq!(
            header(&h, "spin-matched-route"),
            Some("/users/:userid/cart/...")
        );
        assert_eq!(
            header(&h, "spin-raw-component-route"),
            Some("/users/:userid/cart/...")
        );
        assert_eq!(
            header(&h, "spin-component-route"),
            Some("/users/:userid/cart")
        );
        assert_eq!(header(&h, "spin-client-addr"), Some("127.0.0.1:53152"));
    }

    #[test]
    fn matched_route_is_normalised_but_raw_route_is_as_written() {
        let r = router(&[("/api/", "api"), ("", "root")]);
        let h = r
            .route("/api")
            .unwrap()
            .spin_headers("http://x/api", addr());
        assert_eq!(header(&h, "spin-matched-route"), Some("/api"));
        assert_eq!(header(&h, "spin-raw-component-route"), Some("/api/"));
        assert_eq!(header(&h, "spin-component-route"), Some("/api/"));
        let h = r.route("/").unwrap().spin_headers("http://x/", addr());
        assert_eq!(header(&h, "spin-matched-route"), Some(""));
        assert_eq!(header(&h, "spin-raw-component-route"), Some(""));
    }

    #[test]
    fn root_route_headers_have_an_empty_matched_route() {
        let r = router(&[("/", "home")]);
        let h = r
            .route("/")
            .unwrap()
            .spin_headers("http://localhost:3000/", addr());
        assert_eq!(header(&h, "spin-matched-route"), Some(""));
        assert_eq!(header(&h, "spin-raw-component-route"), Some("/"));
        assert_eq!(header(&h, "spin-component-route"), Some("/"));
        assert_eq!(header(&h, "spin-path-info"), Some(""));
    }

    #[test]
    fn root_wildcard_headers_have_an_empty_component_route() {
        let r = router(&[("/...", "all")]);
        let h = r
            .route("/a/b")
            .unwrap()
            .spin_headers("http://localhost:3000/a/b", addr());
        assert_eq!(header(&h, "spin-matched-route"), Some("/..."));
        assert_eq!(header(&h, "spin-raw-component-route"), Some("/..."));
        assert_eq!(header(&h, "spin-component-route"), Some(""));
        assert_eq!(header(&h, "spin-path-info"), Some("/a/b"));
    }

    #[test]
    fn path_match_header_name_is_lower_case_with_dashes() {
        let r = router(&[("/u/:user_Id", "c")]);
        let h = r
            .route("/u/7")
            .unwrap()
            .spin_headers("http://x/u/7", addr());
        assert_eq!(header(&h, "spin-path-match-user-id"), Some("7"));
    }

    #[test]
    fn path_match_header_with_an_invalid_name_is_dropped() {
        let r = router(&[("/u/:na(me)", "c")]);
        let m = r.route("/u/7").unwrap();
        assert_eq!(m.named_wildcard("na(me)"), Some("7"));
        let h = m.spin_headers("http://x/u/7", addr());
        assert!(h.iter().all(|(n, _)| !n.starts_with("spin-path-match-")));
        assert_eq!(h.len(), 7);
    }

    #[test]
    fn client_addr_header_uses_socket_address_format() {
        let r = router(&[("/", "home")]);
        let v6: SocketAddr = "[::1]:5000".parse().unwrap();
        let h = r.route("/").unwrap().spin_headers("http://x/", v6);
        assert_eq!(header(&h, "spin-client-addr"), Some("[::1]:5000"));
    }

    #[test]
    fn full_url_defaults_host_to_localhost() {
        assert_eq!(full_url("http", None, "/a?b=c"), "http://localhost/a?b=c");
        assert_eq!(
            full_url("http", Some("127.0.0.1:3000"), "/"),
            "http://127.0.0.1:3000/"
        );
    }

    #[test]
    fn reserved_routes_are_detected() {
        // Spin's `reserved_routes_are_reserved` and `unreserved_routes_are_unreserved`.
        assert!(router(&[("/.well-known/spin/...", "c")]).contains_reserved_route());
        assert!(router(&[("/.well-known/spin/fie", "c")]).contains_reserved_route());
        assert!(!router(&[("/.well-known/spindle/...", "c")]).contains_reserved_route());
        assert!(!router(&[("/.well-known/spi/...", "c")]).contains_reserved_route());
        assert!(!router(&[("/.well-known/spin", "c")]).contains_reserved_route());
    }

    #[test]
    fn query_string_is_not_part_of_routing() {
        // The caller strips it; if left in, it is treated as path text.
        let r = router(&[("/a", "a")]);
        assert_eq!(component(&r, "/a?x=1"), None);
    }
}
