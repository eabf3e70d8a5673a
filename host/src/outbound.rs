//! Spin's `allowed_outbound_hosts` rules: parsing the entries and deciding whether a URL is allowed.
//!
//! Behaviour follows `crates/outbound-networking-config/src/allowed_hosts.rs` in
//! spinframework/spin (the version whose literal hosts are compared as parsed `url::Host`s):
//!
//! - An entry is `<scheme>://<host>[:<port>]`, surrounding whitespace ignored. The scheme is
//!   mandatory (`example.com` and `example.com:80` are errors); a single trailing `/` (or
//!   several) is tolerated, any other path is an error.
//! - Scheme: `*` (any) or letters only, compared exactly with the URL's (lower-case) scheme.
//! - Host: `*` (any); `*.example.com` (any subdomain, *not* `example.com` itself); `self` or
//!   `self.alt` (only relative "self" requests, see [`AllowedHosts::allows_relative`]); an IP
//!   network in CIDR form such as `127.0.0.0/24` or `ff00::/8` (host bits are ignored); or a
//!   literal host name / IP address, compared after normalisation (`LOCALHOST` = `localhost`,
//!   `[::1]` is the IPv6 loopback). Wildcards elsewhere (`api.*.com`, `*x.com`) are errors.
//! - Port: `*` (any); a number; or a range `a..b`, which like Rust's `a..b` **excludes** `b`.
//!   Without a port, the scheme's well-known port is used: http 80, https 443, postgres 5432,
//!   mysql 3306, redis 6379, mqtt 1883. Any other scheme (including `*`) *requires* a port, so
//!   `*://example.com` is an error and `*://example.com:*` is not.
//! - The single entry `insecure:allow-all` is rejected with a hint to use `*://*:*`.
//! - Brace lists (`{a,b}`) are rejected as unsupported, as in Spin.
//!
//! A URL is allowed when *some* entry matches its scheme, host and port (its explicit port, else
//! the scheme's well-known port; a URL with neither never matches a numeric port rule). An
//! empty list allows nothing.
//!
//! Deliberately not done here: expanding `{{ variable }}` templates (expand entries with
//! `crate::template` first), service-chaining (`*.spin.internal`) dispatch, DNS resolution
//! (`localhost` does not match `127.0.0.1`), and the runtime's blocked-networks list.

use std::net::IpAddr;
use std::ops::Range;

use anyhow::{Context, Result, bail};
use url::Host;

/// The ports Spin assumes for a scheme when an entry or URL gives none.
pub fn well_known_port(scheme: &str) -> Option<u16> {
    match scheme {
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        "redis" => Some(6379),
        "mqtt" => Some(1883),
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// A component's parsed `allowed_outbound_hosts` list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    entries: Vec<AllowedHost>,
}

/// One parsed `allowed_outbound_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    original: String,
    scheme: SchemeRule,
    host: HostRule,
    port: PortRule,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SchemeRule {
    Any,
    Exactly(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostRule {
    Any,
    /// Holds the suffix including its leading dot, e.g. `.example.com`.
    AnySubdomain(String),
    ToSelf,
    Literal(Host),
    Network(IpNetwork),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortRule {
    Any,
    Exactly(u16),
    Range(Range<u16>),
}

/// An IP network: an address with its host bits cleared, and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IpNetwork {
    addr: IpAddr,
    prefix: u8,
}

impl AllowedHosts {
    /// Parses `allowed_outbound_hosts` entries whose `{{ }}` templates are already expanded.
    ///
    /// Fails on the first invalid entry, naming it.
    pub fn parse(entries: &[String]) -> Result<AllowedHosts> {
        if let [only] = entries
            && only == "insecure:allow-all"
        {
            bail!(
                "'insecure:allow-all' is not allowed - use '*://*:*' instead if you really want to allow all outbound traffic"
            );
        }
        let entries = entries
            .iter()
            .map(|entry| AllowedHost::parse(entry))
            .collect::<Result<Vec<_>>>()?;
        Ok(AllowedHosts { entries })
    }

    /// Whether a request to `url` is allowed: some entry matches its scheme, host and port.
    pub fn allows(&self, url: &url::Url) -> bool {
        // Spin re-parses the URL's host text as a special-scheme host, so that opaque hosts of
        // non-special schemes (`redis://Example.COM`, `tcp://127.0.0.1`) normalise like http's.
        let Some(host) = url.host_str().and_then(|h| Host::parse(h).ok()) else {
            return false;
        };
        self.entries
            .iter()
            .any(|e| e.allows(url.scheme(), &host, url.port()))
    }

    /// Whether a *relative* request (a URL with no authority, which Spin sends to the app
    /// itself) is allowed for any of `schemes`: some entry whose scheme matches has host `self`
    /// (or `self.alt`) or `*`. The entry's port is not considered.
    ///
    /// Spin's outbound HTTP asks this with `["http", "https"]`.
    pub fn allows_relative(&self, schemes: &[&str]) -> bool {
        self.entries.iter().any(|e| {
            schemes.iter().any(|s| e.scheme.allows(s))
                && matches!(e.host, HostRule::Any | HostRule::ToSelf)
        })
    }

    /// True when nothing at all is allowed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries as written (before trimming), in order.
    pub fn entries(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.original.as_str())
    }
}

impl AllowedHost {
    fn parse(original: &str) -> Result<AllowedHost> {
        let entry = original.trim();
        let Some((scheme, rest)) = entry.split_once("://") else {
            match entry {
                "*" | ":" | "" | "?" => bail!(
                    "{entry:?} is not an allowed outbound host format: hosts must be in the form <scheme>://<host>[:<port>], with '*' wildcards allowed for each (use '*://*:*' to allow all outbound networking)"
                ),
                _ => bail!("{entry:?} does not contain a scheme (e.g., 'http://' or '*://')"),
            }
        };
        // The port is whatever follows the *last* colon, so `[::1]` without a port fails.
        let (host, port_and_path) = rest.rsplit_once(':').unwrap_or((rest, ""));
        let port = match port_and_path.split_once('/') {
            Some((_, path)) if !path.is_empty() => {
                bail!("{entry:?} has a path but is not allowed to")
            }
            Some((port, _)) => port,
            None => port_and_path,
        };

        // Spin checks the port, then the scheme, then the host.
        let port_rule = PortRule::parse(port, scheme)
            .with_context(|| format!("{entry:?}: invalid allowed host port {port:?}"))?;
        let scheme_rule = SchemeRule::parse(scheme)
            .with_context(|| format!("{entry:?}: invalid allowed host scheme {scheme:?}"))?;
        let host_rule = HostRule::parse(host)
            .with_context(|| format!("{entry:?}: invalid allowed host {host:?}"))?;
        Ok(AllowedHost {
            original: original.to_owned(),
            scheme: scheme_rule,
            host: host_rule,
            port: port_rule,
        })
    }

    fn allows(&self, scheme: &str, host: &Host, port: Option<u16>) -> bool {
        self.scheme.allows(scheme) && self.host.allows(host) && self.port.allows(port, scheme)
    }
}

impl SchemeRule {
    fn parse(scheme: &str) -> Result<SchemeRule> {
        if scheme == "*" {
            return Ok(SchemeRule::Any);
        }
        if scheme.starts_with('{') {
            bail!("scheme lists are not supported");
        }
        if scheme.chars().any(|c| !c.is_alphabetic()) {
            bail!("only alphabetic characters are allowed");
        }
        Ok(SchemeRule::Exactly(scheme.to_owned()))
    }

    fn allows(&self, scheme: &str) -> bool {
        match self {
            SchemeRule::Any => true,
            SchemeRule::Exactly(s) => s == scheme,
        }
    }
}

impl HostRule {
    fn parse(host: &str) -> Result<HostRule> {
        let host = host.trim();
        if host == "*" {
            return Ok(HostRule::Any);
        }
        if host == "self" || host == "self.alt" {
            return Ok(HostRule::ToSelf);
        }
        if host.starts_with('{') {
            if !host.ends_with('}') {
                bail!("unterminated host list");
            }
            bail!("host lists are not yet supported");
        }
        if let Some(network) = IpNetwork::parse(host) {
            return Ok(HostRule::Network(network));
        }
        let host = host.trim_end_matches('/');
        if host.contains('/') {
            bail!("must not include a path");
        }
        if let Some(domain) = host.strip_prefix("*.") {
            if domain.contains('*') {
                bail!("wildcards are allowed only as prefixes");
            }
            return Ok(HostRule::AnySubdomain(format!(".{domain}")));
        }
        if host.contains('*') {
            bail!("wildcards are allowed only as subdomains");
        }
        Ok(HostRule::Literal(Host::parse(host)?))
    }

    fn allows(&self, host: &Host) -> bool {
        match (self, host) {
            (HostRule::Any, _) => true,
            (HostRule::AnySubdomain(suffix), Host::Domain(domain)) => domain.ends_with(suffix),
            (HostRule::AnySubdomain(_), _) => false,
            (HostRule::Literal(literal), host) => literal == host,
            (HostRule::Network(net), Host::Ipv4(ip)) => net.contains(IpAddr::V4(*ip)),
            (HostRule::Network(net), Host::Ipv6(ip)) => net.contains(IpAddr::V6(*ip)),
            (HostRule::Network(_), Host::Domain(_)) => false,
            // `self` only permits relative requests.
            (HostRule::ToSelf, _) => false,
        }
    }
}

impl PortRule {
    fn parse(port: &str, scheme: &str) -> Result<PortRule> {
        if port.is_empty() {
            return well_known_port(scheme).map(PortRule::Exactly).with_context(|| {
                format!(
                    "no port was provided and the scheme {scheme:?} does not have a known default port number"
                )
            });
        }
        if port == "*" {
            return Ok(PortRule::Any);
        }
        if port.starts_with('{') {
            bail!("port lists are not yet supported");
        }
        if let Some((start, end)) = port.split_once("..") {
            let start = start
                .parse()
                .with_context(|| format!("port range {port:?} contains non-number"))?;
            let end = end
                .parse()
                .with_context(|| format!("port range {port:?} contains non-number"))?;
            return Ok(PortRule::Range(start..end));
        }
        let port = port
            .parse()
            .with_context(|| format!("port {port:?} is not a number"))?;
        Ok(PortRule::Exactly(port))
    }

    fn allows(&self, port: Option<u16>, scheme: &str) -> bool {
        let port = port.or_else(|| well_known_port(scheme));
        match self {
            PortRule::Any => true,
            PortRule::Exactly(p) => port == Some(*p),
            PortRule::Range(r) => port.is_some_and(|p| r.contains(&p)),
        }
    }
}

impl IpNetwork {
    /// Parses `<ip>/<prefix>` CIDR notation, clearing host bits as Spin's
    /// `IpNetwork::from_str_truncate` does. `None` if `text` is not valid CIDR (including a
    /// prefix too long for the address family): Spin then treats it as a host with a path.
    fn parse(text: &str) -> Option<IpNetwork> {
        let (addr, prefix) = text.split_once('/')?;
        let addr: IpAddr = addr.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        let addr = match addr {
            IpAddr::V4(a) if prefix <= 32 => IpAddr::V4((u32::from(a) & v4_mask(prefix)).into()),
            IpAddr::V6(a) if prefix <= 128 => IpAddr::V6((u128::from(a) & v6_mask(prefix)).into()),
            _ => return None,
        };
        Some(IpNetwork { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & v4_mask(self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & v6_mask(self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

fn v4_mask(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn v6_mask(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn hosts(entries: &[&str]) -> AllowedHosts {
        let entries: Vec<String> = entries.iter().map(|e| (*e).to_owned()).collect();
        AllowedHosts::parse(&entries).unwrap()
    }

    fn parse_err(entry: &str) -> String {
        format!(
            "{:#}",
            AllowedHosts::parse(&[entry.to_owned()]).expect_err(entry)
        )
    }

    fn allows(list: &AllowedHosts, url: &str) -> bool {
        list.allows(&url::Url::parse(url).unwrap())
    }

    #[test]
    fn empty_list_allows_nothing() {
        let list = hosts(&[]);
        assert!(list.is_empty());
        assert!(!allows(&list, "https://example.com"));
        assert!(!allows(&list, "http://127.0.0.1:4242"));
        assert!(!list.allows_relative(&["http", "https"]));
    }

    #[test]
    fn fake_stripe_on_loopback_ip_and_port_is_allowed_exactly() {
        let list = hosts(&["http://127.0.0.1:4242"]);
        assert!(allows(&list, "http://127.0.0.1:4242"));
        assert!(allows(&list, "http://127.0.0.1:4242/v1/charges?x=1"));
        assert!(!allows(&list, "http://127.0.0.1:4243/v1/charges"));
        assert!(!allows(&list, "https://127.0.0.1:4242/v1/charges"));
        assert!(!allows(&list, "http://127.0.0.2:4242/"));
        assert!(!allows(&list, "http://127.0.0.1/"));
        // No DNS: the IP entry does not allow the name.
        assert!(!allows(&list, "http://localhost:4242/"));
    }

    #[test]
    fn fake_stripe_on_localhost_and_port_is_allowed_exactly() {
        let list = hosts(&["http://localhost:4242"]);
        assert!(allows(&list, "http://localhost:4242/v1/charges"));
        assert!(allows(&list, "http://LOCALHOST:4242/"));
        assert!(!allows(&list, "http://localhost:4243/"));
        assert!(!allows(&list, "http://localhost/"));
        assert!(!allows(&list, "http://127.0.0.1:4242/"));
    }

    #[test]
    fn entry_without_port_uses_the_scheme_default() {
        let list = hosts(&["https://api.stripe.com"]);
        assert!(allows(&list, "https://api.stripe.com/v1/charges"));
        assert!(allows(&list, "https://api.stripe.com:443/"));
        assert!(!allows(&list, "https://api.stripe.com:8443/"));
        assert!(!allows(&list, "http://api.stripe.com/"));
        let list = hosts(&["http://example.com"]);
        assert!(allows(&list, "http://example.com:80/"));
        assert!(!allows(&list, "http://example.com:8080/"));
    }

    #[test]
    fn explicit_default_port_matches_url_without_port() {
        let list = hosts(&["http://example.com:80", "*://spin.fermyon.dev:443"]);
        assert!(allows(&list, "http://example.com/"));
        assert!(allows(&list, "https://spin.fermyon.dev"));
        assert!(allows(&list, "https://spin.fermyon.dev/"));
    }

    #[test]
    fn spin_can_be_specific_example() {
        // Spin's `test_allowed_hosts_can_be_specific`.
        let list = hosts(&["*://spin.fermyon.dev:443", "http://example.com:8383"]);
        assert!(allows(&list, "http://example.com:8383/foo/bar"));
        assert!(allows(&list, "https://spin.fermyon.dev"));
        assert!(!allows(&list, "http://example.com/"));
        assert!(!allows(&list, "http://google.com/"));
    }

    #[test]
    fn other_schemes_have_their_well_known_ports() {
        let list = hosts(&[
            "redis://cache.internal",
            "postgres://db",
            "mysql://db2",
            "mqtt://q",
        ]);
        assert!(allows(&list, "redis://cache.internal"));
        assert!(allows(&list, "redis://cache.internal:6379"));
        assert!(!allows(&list, "redis://cache.internal:6380"));
        assert!(allows(&list, "postgres://db:5432/app"));
        assert!(allows(&list, "mysql://db2/app"));
        assert!(allows(&list, "mqtt://q:1883"));
    }

    #[test]
    fn scheme_without_well_known_port_requires_a_port() {
        let err = parse_err("ws://example.com");
        assert!(err.contains("known default port"), "{err}");
        assert!(parse_err("*://example.com").contains("known default port"));
        assert!(parse_err("*://*").contains("known default port"));
        assert!(
            hosts(&["ws://example.com:9000"])
                .allows(&url::Url::parse("ws://example.com:9000/x").unwrap())
        );
    }

    #[test]
    fn url_without_any_port_does_not_match_a_numeric_port_rule() {
        // `ws` URLs elide port 80, and `ws` has no Spin well-known port.
        let list = hosts(&["ws://example.com:80"]);
        assert!(!allows(&list, "ws://example.com/"));
        assert!(
            hosts(&["ws://example.com:*"]).allows(&url::Url::parse("ws://example.com/").unwrap())
        );
    }

    #[test]
    fn star_scheme_matches_any_scheme() {
        let list = hosts(&["*://spin.fermyon.dev:7777"]);
        assert!(allows(&list, "http://spin.fermyon.dev:7777"));
        assert!(allows(&list, "https://spin.fermyon.dev:7777"));
        assert!(allows(&list, "redis://spin.fermyon.dev:7777"));
        assert!(!allows(&list, "http://spin.fermyon.dev:7778"));
    }

    #[test]
    fn star_host_matches_any_host() {
        let list = hosts(&["https://*"]);
        assert!(allows(&list, "https://example.com/"));
        assert!(allows(&list, "https://10.0.0.1/"));
        assert!(!allows(&list, "https://example.com:8443/"));
        assert!(!allows(&list, "http://example.com/"));
    }

    #[test]
    fn star_port_matches_any_port() {
        let list = hosts(&["*://localhost:*"]);
        assert!(allows(&list, "http://localhost:1/"));
        assert!(allows(&list, "https://localhost/"));
        assert!(allows(&list, "redis://localhost:6379"));
        assert!(!allows(&list, "http://127.0.0.1:1/"));
    }

    #[test]
    fn allow_all_entry_allows_everything() {
        let list = hosts(&["*://*:*"]);
        assert!(allows(&list, "http://example.com:1234/x"));
        assert!(allows(&list, "wss://[::1]/"));
        assert!(allows(&list, "tcp://10.1.2.3:22"));
    }

    #[test]
    fn subdomain_wildcard_matches_subdomains_only() {
        // Spin's `test_allowed_hosts_can_be_subdomain_wildcards`.
        let list = hosts(&["http://*.example.com", "http://*.example2.com:8383"]);
        assert!(allows(&list, "http://a.example.com/foo/bar"));
        assert!(allows(&list, "http://a.b.example.com/foo/bar"));
        assert!(allows(&list, "http://a.b.example2.com:8383/foo/bar"));
        assert!(!allows(&list, "http://a.b.example2.com/foo/bar"));
        assert!(!allows(&list, "http://example.com/foo/bar"));
        assert!(!allows(&list, "http://example.com:8383/foo/bar"));
        assert!(!allows(&list, "http://myexample.com/foo/bar"));
    }

    #[test]
    fn wildcards_other_than_a_subdomain_prefix_are_rejected() {
        assert!(parse_err("http://api.*.com").contains("only as subdomains"));
        assert!(parse_err("http://*example.com").contains("only as subdomains"));
        assert!(parse_err("http://*.*.example.com").contains("only as prefixes"));
    }

    #[test]
    fn port_range_excludes_its_end() {
        let list = hosts(&["http://spin.fermyon.dev:4444..5555"]);
        assert!(allows(&list, "http://spin.fermyon.dev:4444/"));
        assert!(allows(&list, "http://spin.fermyon.dev:5554/"));
        assert!(!allows(&list, "http://spin.fermyon.dev:5555/"));
        assert!(!allows(&list, "http://spin.fermyon.dev:4443/"));
        assert!(parse_err("http://x.com:1..y").contains("non-number"));
    }

    #[test]
    fn bad_port_is_rejected() {
        assert!(parse_err("http://example.com:http").contains("not a number"));
        assert!(parse_err("http://example.com:65536").contains("not a number"));
        assert!(parse_err("http://example.com:{80,443}").contains("not yet supported"));
    }

    #[test]
    fn missing_scheme_is_rejected() {
        for entry in [
            "example.com",
            "spin.fermyon.dev:80",
            "localhost",
            "localhost:3001",
        ] {
            assert!(
                parse_err(entry).contains("does not contain a scheme"),
                "{entry}"
            );
        }
        for entry in ["*", "", ":", "?"] {
            assert!(parse_err(entry).contains("*://*:*"), "{entry:?}");
        }
    }

    #[test]
    fn insecure_allow_all_is_rejected_with_a_hint() {
        assert!(parse_err("insecure:allow-all").contains("'*://*:*'"));
        let two = vec![
            "https://example.com".to_owned(),
            "insecure:allow-all".to_owned(),
        ];
        assert!(AllowedHosts::parse(&two).is_err());
    }

    #[test]
    fn paths_are_rejected_but_a_trailing_slash_is_not() {
        // Spin's `test_allowed_hosts_rejects_path` and `..._with_trailing_slash`.
        let list = hosts(&["https://my.api.com/", "http://spin.fermyon.dev:4444/"]);
        assert!(allows(&list, "https://my.api.com"));
        assert!(allows(&list, "https://my.api.com/"));
        assert!(allows(&list, "http://spin.fermyon.dev:4444/x"));
        assert!(parse_err("http://spin.fermyon.dev/a").contains("path"));
        assert!(parse_err("http://spin.fermyon.dev:6666/a/b").contains("path"));
        assert!(parse_err("http://*.fermyon.dev/a").contains("path"));
    }

    #[test]
    fn scheme_must_be_alphabetic() {
        assert!(parse_err("h2c://example.com:80").contains("alphabetic"));
        assert!(parse_err("{http,https}://example.com:80").contains("not supported"));
    }

    #[test]
    fn scheme_is_compared_exactly() {
        // Spin does not lower-case the entry's scheme, and URL schemes are always lower case.
        let list = hosts(&["HTTP://example.com:80"]);
        assert!(!allows(&list, "http://example.com/"));
    }

    #[test]
    fn host_lists_are_rejected() {
        assert!(parse_err("http://{a.com,b.com}").contains("not yet supported"));
    }

    #[test]
    fn ipv6_literal_needs_an_explicit_port() {
        let list = hosts(&["http://[::1]:8001"]);
        assert!(allows(&list, "http://[::1]:8001/"));
        assert!(allows(&list, "http://[0:0:0:0:0:0:0:1]:8001/"));
        assert!(!allows(&list, "http://127.0.0.1:8001/"));
        // The port is taken after the last ':', so a bare IPv6 literal fails.
        assert!(AllowedHosts::parse(&["http://[::1]".to_owned()]).is_err());
    }

    #[test]
    fn cidr_networks_match_addresses_inside_them() {
        let list = hosts(&["*://127.0.0.0/24:80", "*://ff00::/8:80"]);
        assert!(allows(&list, "http://127.0.0.1/"));
        assert!(allows(&list, "http://127.0.0.255/"));
        assert!(!allows(&list, "http://127.0.1.1/"));
        assert!(!allows(&list, "http://127.0.0.1:81/"));
        assert!(allows(&list, "http://[ff02::1]/"));
        assert!(!allows(&list, "http://[fe80::1]/"));
        assert!(!allows(&list, "http://localhost/"));
        // Spin's `test_cidr`: host bits are ignored, non-special schemes work.
        let list = hosts(&["*://127.0.0.1/24:63551"]);
        assert!(allows(&list, "tcp://127.0.0.1:63551"));
        // Without a port, `*` has no default.
        assert!(AllowedHosts::parse(&["*://127.0.0.0/24".to_owned()]).is_err());
        assert!(AllowedHosts::parse(&["*://127.0.0.0/33:80".to_owned()]).is_err());
    }

    #[test]
    fn self_allows_only_relative_requests() {
        let list = hosts(&["http://self", "https://self.alt"]);
        assert!(list.allows_relative(&["http", "https"]));
        assert!(list.allows_relative(&["https"]));
        assert!(!list.allows_relative(&["redis"]));
        assert!(!allows(&list, "http://self/"));
        assert!(!allows(&list, "http://localhost/"));
    }

    #[test]
    fn star_host_also_allows_relative_requests() {
        assert!(hosts(&["https://*"]).allows_relative(&["http", "https"]));
        assert!(!hosts(&["https://*"]).allows_relative(&["http"]));
        assert!(!hosts(&["http://localhost:3000"]).allows_relative(&["http", "https"]));
    }

    #[test]
    fn service_chaining_hosts_are_ordinary_hosts() {
        let list = hosts(&["http://billing.spin.internal"]);
        assert!(allows(&list, "http://billing.spin.internal/charge"));
        assert!(!allows(&list, "http://other.spin.internal/"));
        let list = hosts(&["http://*.spin.internal"]);
        assert!(allows(&list, "http://other.spin.internal/"));
    }

    #[test]
    fn whitespace_around_an_entry_is_ignored_and_originals_are_kept() {
        let list = hosts(&["  https://example.com  "]);
        assert!(allows(&list, "https://example.com/"));
        assert_eq!(
            list.entries().collect::<Vec<_>>(),
            ["  https://example.com  "]
        );
    }

    #[test]
    fn url_without_host_is_not_allowed() {
        let list = hosts(&["*://*:*"]);
        assert!(!allows(&list, "mailto:someone@example.com"));
        assert!(!allows(&list, "file:///etc/passwd"));
    }

    #[test]
    fn invalid_literal_host_is_rejected() {
        assert!(AllowedHosts::parse(&["http://exa mple.com".to_owned()]).is_err());
        assert!(AllowedHosts::parse(&["http://:80".to_owned()]).is_err());
    }

    #[test]
    fn well_known_ports_are_spins() {
        assert_eq!(well_known_port("http"), Some(80));
        assert_eq!(well_known_port("https"), Some(443));
        assert_eq!(well_known_port("redis"), Some(6379));
        assert_eq!(well_known_port("ws"), None);
    }
}
