//! Accounts (one business each): name, IANA time zone, and the bootstrap request.

use crate::field::{FieldError, check};
use crate::ids::AccountId;
use crate::text::bounded_text;
use crate::token::ApiToken;
use crate::zone::Zone;
use serde::{Deserialize, Serialize, Serializer};

bounded_text!(
    /// The display name of a business: trimmed, 1–200 characters, one line.
    AccountName,
    max = 200,
    multiline = false
);

/// An IANA time zone known to the bundled tz database, e.g. `America/Toronto`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeZone(Zone);

/// Why a string is not a time zone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be an IANA time zone name, e.g. America/Toronto")]
pub struct TimeZoneError;

impl TimeZone {
    /// Accepts IANA names exactly as the tz database spells them (case matters).
    pub fn parse(input: &str) -> Result<Self, TimeZoneError> {
        Zone::named(input.trim()).map(Self).ok_or(TimeZoneError)
    }

    /// The IANA name.
    pub fn name(&self) -> &str {
        self.0.name()
    }

    /// The zone, for local-time arithmetic.
    pub fn tz(&self) -> &Zone {
        &self.0
    }

    /// When a visit starts, as its customer reads it in this zone: `Tuesday, March 3, 2026 at
    /// 9:30 AM` (the rating page and the messages that link to it say it alike).
    pub fn local_start(&self, start_at: crate::Timestamp) -> String {
        start_at
            .as_datetime()
            .with_timezone(&self.0)
            .format("%A, %B %-d, %Y at %-I:%M %p")
            .to_string()
    }
}

impl Serialize for TimeZone {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// `POST /api/v1/admin/accounts` as received, before validation.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountBody {
    /// Required.
    pub name: Option<String>,
    /// Required, IANA.
    pub timezone: Option<String>,
}

/// A validated request to create an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    /// The business's name.
    pub name: AccountName,
    /// Where its local times are reckoned.
    pub timezone: TimeZone,
}

impl TryFrom<AccountBody> for NewAccount {
    type Error = Vec<FieldError>;

    fn try_from(body: AccountBody) -> Result<Self, Self::Error> {
        let mut errors = Vec::new();
        let name = required(&mut errors, "name", body.name, |s| AccountName::parse(&s));
        let timezone = required(&mut errors, "timezone", body.timezone, |s| {
            TimeZone::parse(&s)
        });
        match (name, timezone) {
            (Some(name), Some(timezone)) if errors.is_empty() => Ok(Self { name, timezone }),
            _ => Err(errors),
        }
    }
}

fn required<T, E: ToString>(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: Option<String>,
    parse: impl FnOnce(String) -> Result<T, E>,
) -> Option<T> {
    match value {
        None => {
            errors.push(FieldError::new(field, "is required"));
            None
        }
        Some(value) => check(errors, field, value, parse),
    }
}

/// A stored account, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    /// `acc_…`
    pub id: AccountId,
    /// The business's name.
    pub name: String,
    /// Its IANA time zone.
    pub timezone: TimeZone,
}

/// The answer to account creation: the account and its token, shown this once.
#[derive(Debug)]
pub struct CreatedAccount {
    /// The new account.
    pub account: Account,
    /// Its API token in clear; only its hash is stored.
    pub api_token: ApiToken,
}

impl Serialize for CreatedAccount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Wire<'a> {
            account: &'a Account,
            api_token: &'a str,
        }
        Wire {
            account: &self.account,
            api_token: self.api_token.expose_secret(),
        }
        .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(name: Option<&str>, timezone: Option<&str>) -> AccountBody {
        AccountBody {
            name: name.map(str::to_owned),
            timezone: timezone.map(str::to_owned),
        }
    }

    #[test]
    fn a_named_account_in_a_real_zone_is_accepted() {
        let account =
            NewAccount::try_from(body(Some(" Sparkle Cleaning "), Some("America/Toronto")))
                .expect("valid");
        assert_eq!(account.name.as_str(), "Sparkle Cleaning");
        assert_eq!(account.timezone.name(), "America/Toronto");
    }

    #[test]
    fn every_missing_or_invalid_field_is_reported_at_once() {
        let errors = NewAccount::try_from(body(None, Some("Mars/Olympus"))).expect_err("invalid");
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "timezone"]);
    }

    #[test]
    fn zone_names_are_case_sensitive_like_the_tz_database() {
        assert!(TimeZone::parse("america/toronto").is_err());
        assert!(TimeZone::parse("Europe/Paris").is_ok());
        assert!(TimeZone::parse("UTC").is_ok());
    }

    #[test]
    fn the_created_account_shows_the_token_once_in_its_json() {
        let token = ApiToken::from_random(&[5; 32]);
        let created = CreatedAccount {
            account: Account {
                id: AccountId::from_random(&[6; 16]),
                name: "Sparkle".to_owned(),
                timezone: TimeZone::parse("Europe/Paris").expect("valid"),
            },
            api_token: token.clone(),
        };
        let json = serde_json::to_value(&created).expect("serialisable");
        assert_eq!(json["api_token"], token.expose_secret());
        assert_eq!(json["account"]["timezone"], "Europe/Paris");
        assert!(
            json["account"]["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("acc_"))
        );
    }
}
