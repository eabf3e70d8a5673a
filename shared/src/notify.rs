//! Which channels an account sends on (`GET`/`PUT /api/v1/settings/notifications`), whether a
//! business's webhook URL falls inside the operator's allow-list, and which channels one
//! customer's message goes out on.

use crate::field::FieldError;
use crate::json::{BodyError, decode};
use crate::message::{Channel, mask_secret, webhook_key};
use crate::{Email, Notifications};
use serde::Deserialize;
use serde_json::{Value, json};

/// The longest webhook URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// An account's channels, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChannelSettings {
    /// E-mail on, with an optional reply-to address.
    pub email: Option<EmailChannel>,
    /// SMS on.
    pub sms: bool,
    /// The signed webhook, when set.
    pub webhook: Option<WebhookChannel>,
}

/// The e-mail channel's fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EmailChannel {
    /// Where customers' replies go (the business's own address).
    pub reply_to: Option<String>,
}

/// The signed webhook's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookChannel {
    /// Where deliveries are POSTed.
    pub url: String,
    /// The `whsec_` signing secret.
    pub secret: String,
}

/// Which channels the operator has configured providers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Available {
    /// E-mail provider credentials and sender are set.
    pub email: bool,
    /// Twilio credentials and number are set.
    pub sms: bool,
}

impl ChannelSettings {
    /// The answer of `GET`/`PUT`: secrets masked.
    pub fn to_json(&self) -> Value {
        json!({
            "email": self.email.as_ref().map(|e| json!({ "reply_to": e.reply_to })),
            "sms": self.sms.then(|| json!({})),
            "webhook": self.webhook.as_ref().map(|w| json!({
                "url": w.url,
                "secret": mask_secret(&w.secret),
            })),
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    #[serde(default)]
    email: Option<EmailBody>,
    #[serde(default)]
    sms: Option<SmsBody>,
    #[serde(default)]
    webhook: Option<WebhookBody>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailBody {
    #[serde(default)]
    reply_to: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SmsBody {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookBody {
    url: String,
    #[serde(default)]
    secret: Option<String>,
}

/// Why a `PUT` body is refused.
#[derive(Debug)]
pub enum PutError {
    /// Not the JSON shape.
    Body(BodyError),
    /// Field errors.
    Fields(Vec<FieldError>),
    /// Everything is valid but the webhook URL, which falls outside the operator's allow-list.
    NotAllowed(FieldError),
    /// The operator's allow-list entry cannot be understood: a deployment error.
    AllowList(String),
}

/// Reads a `PUT` body into the settings to store. A channel left out or `null` is off. The
/// webhook's `secret` may be left out to keep `current`'s (when the webhook is already set);
/// `allowed_origin` is the operator's `webhook_allowed_origin`.
pub fn parse_put(
    bytes: &[u8],
    current: &ChannelSettings,
    available: Available,
    allowed_origin: &str,
) -> Result<ChannelSettings, PutError> {
    let body: Body = decode(bytes, &[]).map_err(PutError::Body)?;
    let mut errors = Vec::new();
    let mut outside = None;
    let email = match body.email {
        None => None,
        Some(_) if !available.email => {
            errors.push(FieldError::new(
                "email",
                "is not available: this platform has no e-mail provider configured",
            ));
            None
        }
        Some(email) => {
            let reply_to = match email.reply_to {
                None => None,
                Some(text) => match Email::parse(&text) {
                    Ok(address) => Some(address.as_str().to_owned()),
                    Err(error) => {
                        errors.push(FieldError::new("email.reply_to", error.to_string()));
                        None
                    }
                },
            };
            Some(EmailChannel { reply_to })
        }
    };
    let sms = match body.sms {
        None => false,
        Some(SmsBody {}) if !available.sms => {
            errors.push(FieldError::new(
                "sms",
                "is not available: this platform has no SMS provider configured",
            ));
            false
        }
        Some(SmsBody {}) => true,
    };
    let webhook = match body.webhook {
        None => None,
        Some(hook) => {
            match check_url(&hook.url, allowed_origin) {
                Ok(()) => {}
                Err(UrlError::Field(message)) => {
                    errors.push(FieldError::new("webhook.url", message));
                }
                Err(UrlError::Outside(message)) => {
                    outside = Some(FieldError::new("webhook.url", message));
                }
                Err(UrlError::AllowList(message)) => return Err(PutError::AllowList(message)),
            }
            let secret = match hook.secret {
                Some(secret) => match webhook_key(&secret) {
                    Ok(_) => Some(secret),
                    Err(message) => {
                        errors.push(FieldError::new("webhook.secret", message));
                        None
                    }
                },
                None => match &current.webhook {
                    Some(existing) => Some(existing.secret.clone()),
                    None => {
                        errors.push(FieldError::new(
                            "webhook.secret",
                            "is required when the webhook is first set: a whsec_ secret that \
                             your receiver verifies signatures with",
                        ));
                        None
                    }
                },
            };
            secret.map(|secret| WebhookChannel {
                url: hook.url,
                secret,
            })
        }
    };
    match outside {
        Some(error) if errors.is_empty() => return Err(PutError::NotAllowed(error)),
        Some(error) => errors.push(error),
        None => {}
    }
    if !errors.is_empty() {
        return Err(PutError::Fields(errors));
    }
    Ok(ChannelSettings {
        email,
        sms,
        webhook,
    })
}

/// Why a webhook URL is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlError {
    /// The URL's fault.
    Field(String),
    /// A valid URL outside the allow-list.
    Outside(String),
    /// The operator's entry cannot be understood.
    AllowList(String),
}

/// Whether `url` is an absolute http(s) URL that the allow-list entry `allowed` (Spin's
/// `allowed_outbound_hosts` syntax: `scheme://host[:port]`, `*` for any scheme, host or port,
/// `*.example.com` for subdomains, a port range `8000..8100`) lets a component reach.
/// <https://spinframework.dev/v3/http-outbound#granting-http-permissions-to-components>
pub fn check_url(url: &str, allowed: &str) -> Result<(), UrlError> {
    let field = |m: &str| Err(UrlError::Field(m.to_owned()));
    if url.len() > MAX_URL_LEN {
        return field("must be at most 2048 characters");
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return field("must not contain spaces or control characters");
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return field("must be an absolute URL, e.g. https://hooks.example.com/mio");
    };
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return field("must be an http or https URL");
    }
    if rest.contains('#') {
        return field("must not have a fragment");
    }
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if authority.contains('@') {
        return field("must not carry a user name or password");
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => match port.parse::<u16>() {
            Ok(port) => (host, port),
            Err(_) => return field("has an invalid port"),
        },
        None => (authority, if scheme == "https" { 443 } else { 80 }),
    };
    let host = host.to_ascii_lowercase();
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        || host.starts_with('.')
        || host.ends_with('.')
    {
        return field("has an invalid host (a domain name or IPv4 address)");
    }
    let rule = Rule::parse(allowed)
        .map_err(|m| UrlError::AllowList(format!("webhook_allowed_origin {allowed:?}: {m}")))?;
    if rule.allows(&scheme, &host, port) {
        Ok(())
    } else {
        Err(UrlError::Outside(format!(
            "is outside what this platform may call ({allowed})"
        )))
    }
}

struct Rule {
    scheme: Option<String>,
    host: HostRule,
    ports: (u16, u16),
}

enum HostRule {
    Any,
    Subdomains(String),
    Exactly(String),
}

impl Rule {
    fn parse(entry: &str) -> Result<Rule, String> {
        let (scheme, rest) = entry
            .trim()
            .split_once("://")
            .ok_or("has no scheme (e.g. https://)")?;
        let rest = rest.trim_end_matches('/');
        let (host, port) = rest.rsplit_once(':').unwrap_or((rest, ""));
        let scheme = match scheme {
            "*" => None,
            s if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphabetic()) => {
                Some(s.to_ascii_lowercase())
            }
            _ => return Err("has an invalid scheme".into()),
        };
        let ports = match port {
            "" => match scheme.as_deref() {
                Some("https") => (443, 443),
                Some("http") => (80, 80),
                _ => return Err("has no port, and its scheme has no default port".into()),
            },
            "*" => (0, u16::MAX),
            range if range.contains("..") => {
                let (start, end) = range.split_once("..").unwrap_or_default();
                let start: u16 = start.parse().map_err(|_| "has an invalid port range")?;
                let end: u16 = end.parse().map_err(|_| "has an invalid port range")?;
                // Spin's ranges exclude their end.
                (start, end.checked_sub(1).ok_or("has an empty port range")?)
            }
            single => {
                let port: u16 = single.parse().map_err(|_| "has an invalid port")?;
                (port, port)
            }
        };
        let host = match host {
            "*" => HostRule::Any,
            h if h.starts_with("*.") && !h[2..].contains('*') && h.len() > 2 => {
                HostRule::Subdomains(h[1..].to_ascii_lowercase())
            }
            h if !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') =>
            {
                HostRule::Exactly(h.to_ascii_lowercase())
            }
            _ => return Err("has a host this check does not understand".into()),
        };
        Ok(Rule {
            scheme,
            host,
            ports,
        })
    }

    fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.scheme.as_deref().is_none_or(|s| s == scheme)
            && match &self.host {
                HostRule::Any => true,
                HostRule::Subdomains(suffix) => host.ends_with(suffix.as_str()),
                HostRule::Exactly(exact) => exact == host,
            }
            && (self.ports.0..=self.ports.1).contains(&port)
    }
}

/// What one customer can be reached on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact<'a> {
    /// E-mail address.
    pub email: Option<&'a str>,
    /// Phone.
    pub phone: Option<&'a str>,
    /// The customer's preferences.
    pub notifications: Notifications,
}

/// Where a message to `contact` goes: `(channel, to)` for every channel the account uses and
/// the customer can be reached on, or why it goes nowhere. A customer who turned off both e-mail
/// and SMS gets nothing on any channel, the webhook included (API.md).
pub fn destinations(
    settings: &ChannelSettings,
    contact: &Contact<'_>,
) -> Result<Vec<(Channel, String)>, String> {
    let prefs = contact.notifications;
    if !prefs.email && !prefs.sms {
        return Err("the customer has turned off e-mail and SMS notifications".into());
    }
    if settings.email.is_none() && !settings.sms && settings.webhook.is_none() {
        return Err(
            "the account has no notification channel: set one in Settings → Notifications".into(),
        );
    }
    let mut out = Vec::new();
    let mut missing = Vec::new();
    if settings.email.is_some() && prefs.email {
        match contact.email {
            Some(email) => out.push((Channel::Email, email.to_owned())),
            None => missing.push("has no e-mail address"),
        }
    } else if settings.email.is_some() {
        missing.push("turned off e-mail");
    }
    if settings.sms && prefs.sms {
        match contact.phone.map(e164) {
            Some(Some(number)) => out.push((Channel::Sms, number)),
            Some(None) => missing.push("has a phone number without its country code (+…)"),
            None => missing.push("has no phone number"),
        }
    } else if settings.sms {
        missing.push("turned off SMS");
    }
    if let Some(hook) = &settings.webhook {
        out.push((Channel::Webhook, hook.url.clone()));
    }
    if out.is_empty() {
        return Err(format!("the customer {}", missing.join(" and ")));
    }
    Ok(out)
}

/// A stored phone number in E.164 (`+` and digits), as Twilio needs it; `None` when it has no
/// leading `+` (its country is unknown).
/// <https://www.twilio.com/docs/glossary/what-e164>
pub fn e164(phone: &str) -> Option<String> {
    let rest = phone.trim().strip_prefix('+')?;
    let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
    (7..=15)
        .contains(&digits.len())
        .then(|| format!("+{digits}"))
}

/// Where an "add your card" link goes: the first channel, in the order e-mail, SMS, webhook,
/// that reaches the customer (one message, so the request shows one channel), or why none does.
pub fn link_destination(
    settings: &ChannelSettings,
    contact: &Contact<'_>,
) -> Result<(Channel, String), String> {
    destinations(settings, contact)?
        .into_iter()
        .next()
        .ok_or_else(|| "no channel reaches the customer".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_inside_the_allow_list_pass_and_others_are_refused_with_the_reason() {
        let ok = |url: &str, allowed: &str| check_url(url, allowed).is_ok();
        assert!(ok("https://hooks.example.com/mio?x=1", "https://*:443"));
        assert!(ok("https://hooks.example.com:443/mio", "https://*:443"));
        assert!(!ok("http://hooks.example.com/mio", "https://*:443"));
        assert!(!ok("https://hooks.example.com:8443/mio", "https://*:443"));
        assert!(ok("https://a.hooks.example.com/", "https://*.example.com"));
        assert!(!ok("https://example.org/", "https://*.example.com"));
        assert!(ok("http://127.0.0.1:4000/x", "http://127.0.0.1:4000"));
        assert!(!ok("http://127.0.0.1:4001/x", "http://127.0.0.1:4000"));
        assert!(ok("http://127.0.0.1:4001/x", "http://127.0.0.1:4000..4002"));
        assert!(!ok(
            "http://127.0.0.1:4002/x",
            "http://127.0.0.1:4000..4002"
        ));
        for bad in [
            "hooks.example.com",
            "ftp://hooks.example.com",
            "https://user:pw@hooks.example.com/",
            "https://hooks.example.com/#frag",
            "https://hooks example.com/",
            "https://hooks.example.com:99999/",
            "https:///path",
        ] {
            assert!(
                matches!(check_url(bad, "*://*:*"), Err(UrlError::Field(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            check_url("https://a.example/", "10.0.0.0/8"),
            Err(UrlError::AllowList(_))
        ));
    }

    fn settings() -> ChannelSettings {
        ChannelSettings {
            email: Some(EmailChannel::default()),
            sms: true,
            webhook: None,
        }
    }

    fn contact(email: Option<&'static str>, phone: Option<&'static str>) -> Contact<'static> {
        Contact {
            email,
            phone,
            notifications: Notifications::default(),
        }
    }

    #[test]
    fn a_message_goes_out_on_every_channel_the_customer_can_be_reached_on() {
        let both = destinations(
            &settings(),
            &contact(Some("a@b.example"), Some("+14155550100")),
        )
        .expect("reachable");
        assert_eq!(
            both,
            vec![
                (Channel::Email, "a@b.example".to_owned()),
                (Channel::Sms, "+14155550100".to_owned())
            ]
        );
        let formatted = destinations(&settings(), &contact(None, Some("+1 (415) 555-0100")))
            .expect("reachable");
        assert_eq!(formatted, vec![(Channel::Sms, "+14155550100".to_owned())]);
        assert_eq!(
            destinations(&settings(), &contact(None, Some("(415) 555-0100"))),
            Err("the customer has no e-mail address and has a phone number without its country code (+…)"
                .into())
        );
        let email_only =
            destinations(&settings(), &contact(Some("a@b.example"), None)).expect("reachable");
        assert_eq!(email_only.len(), 1);
        assert_eq!(
            destinations(&settings(), &contact(None, None)),
            Err("the customer has no e-mail address and has no phone number".into())
        );
        let opted_out = Contact {
            notifications: Notifications {
                email: false,
                sms: false,
            },
            ..contact(Some("a@b.example"), Some("+14155550100"))
        };
        let with_hook = ChannelSettings {
            webhook: Some(WebhookChannel {
                url: "https://h.example/".into(),
                secret: "whsec_x".into(),
            }),
            ..settings()
        };
        assert!(destinations(&with_hook, &opted_out).is_err());
        assert!(
            destinations(
                &ChannelSettings::default(),
                &contact(Some("a@b.example"), None)
            )
            .is_err()
        );
    }

    #[test]
    fn a_put_keeps_the_stored_secret_refuses_unavailable_channels_and_masks_answers() {
        let all = Available {
            email: true,
            sms: true,
        };
        let body = br#"{"webhook": {"url": "https://h.example/x"}}"#;
        let Err(PutError::Fields(errors)) =
            parse_put(body, &ChannelSettings::default(), all, "https://*:443")
        else {
            panic!("a first webhook needs its secret");
        };
        assert_eq!(errors[0].field, "webhook.secret");
        let secret = crate::message::new_webhook_secret(&[1; 32]);
        let current = ChannelSettings {
            webhook: Some(WebhookChannel {
                url: "https://old.example/".into(),
                secret: secret.clone(),
            }),
            ..ChannelSettings::default()
        };
        let kept = parse_put(body, &current, all, "https://*:443").expect("valid");
        assert_eq!(
            kept.webhook.as_ref().map(|w| w.secret.as_str()),
            Some(secret.as_str())
        );
        let shown = kept.to_json().to_string();
        assert!(!shown.contains(&secret), "{shown}");
        assert!(matches!(
            parse_put(
                br#"{"sms": {}}"#,
                &current,
                Available::default(),
                "https://*:443"
            ),
            Err(PutError::Fields(_))
        ));
        assert!(matches!(
            parse_put(br#"{"fax": {}}"#, &current, all, "https://*:443"),
            Err(PutError::Body(_))
        ));
    }
}
