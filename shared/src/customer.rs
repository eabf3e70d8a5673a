//! Customers of a business: validated fields, create and partial-update requests, the API view.

use crate::field::{FieldError, Patch, check};
use crate::ids::CustomerId;
use crate::text::bounded_text;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

bounded_text!(
    /// A customer's name: trimmed, 1–200 characters, one line.
    CustomerName,
    max = 200,
    multiline = false
);
bounded_text!(
    /// A service or billing address, free-form: trimmed, 1–500 characters, line breaks allowed.
    Address,
    max = 500,
    multiline = true
);
bounded_text!(
    /// Free notes about a customer: trimmed, 1–5000 characters, line breaks allowed.
    Notes,
    max = 5000,
    multiline = true
);

/// An e-mail address, kept exactly as given (after trimming): `local@domain.tld`.
///
/// Deliberately pragmatic, not RFC 5322: one `@`, no whitespace or quotes, a dotted domain
/// of letters, digits and hyphens (any script), at most 254 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Email(String);

/// Why a string is not an e-mail address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EmailError(&'static str);

impl Email {
    /// Trims and validates.
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let text = input.trim();
        if text.is_empty() {
            return Err(EmailError("must not be empty"));
        }
        if text.chars().count() > 254 {
            return Err(EmailError("must be at most 254 characters"));
        }
        let (local, domain) = text
            .split_once('@')
            .ok_or(EmailError("must look like name@example.com"))?;
        let local_ok = !local.is_empty()
            && local.chars().count() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| !c.is_whitespace() && !c.is_control() && !"@\"(),:;<>[\\]".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.chars().count() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if local_ok && domain_ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(EmailError("must look like name@example.com"))
        }
    }

    /// The address as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A phone number as people write it: digits with optional `+` prefix, spaces, `-`, `.`,
/// parentheses; 7–15 digits (the E.164 maximum), at most 32 characters. Kept as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Phone(String);

/// Why a string is not a phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PhoneError(&'static str);

impl Phone {
    /// Trims and validates.
    pub fn parse(input: &str) -> Result<Self, PhoneError> {
        let text = input.trim();
        if text.is_empty() {
            return Err(PhoneError("must not be empty"));
        }
        if text.chars().count() > 32 {
            return Err(PhoneError("must be at most 32 characters"));
        }
        let body = text.strip_prefix('+').unwrap_or(text);
        if !body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')'))
        {
            return Err(PhoneError(
                "may contain only digits, a leading +, spaces, '-', '.', '(' and ')'",
            ));
        }
        let digits = body.chars().filter(char::is_ascii_digit).count();
        if !(7..=15).contains(&digits) {
            return Err(PhoneError("must have between 7 and 15 digits"));
        }
        Ok(Self(text.to_owned()))
    }

    /// The number as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Only its digits (a leading `+` dropped), for punctuation-blind search.
    pub fn digits(&self) -> String {
        self.0.chars().filter(char::is_ascii_digit).collect()
    }
}

/// A Stripe customer id on the business's connected account: `cus_` then letters and digits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct StripeCustomerId(String);

/// Why a string is not a Stripe customer id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be a Stripe customer id (cus_ followed by letters and digits)")]
pub struct StripeCustomerIdError;

impl StripeCustomerId {
    /// Validates; no trimming, ids are copied, not typed.
    pub fn parse(input: &str) -> Result<Self, StripeCustomerIdError> {
        let rest = input.strip_prefix("cus_").ok_or(StripeCustomerIdError)?;
        let ok = !rest.is_empty()
            && rest.len() <= 250
            && rest.chars().all(|c| c.is_ascii_alphanumeric());
        ok.then(|| Self(input.to_owned()))
            .ok_or(StripeCustomerIdError)
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which channels a customer may be contacted on (feedback requests and receipts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Notifications {
    /// E-mail allowed.
    pub email: bool,
    /// SMS allowed.
    pub sms: bool,
}

// Opted in by default: a customer with no address for a channel is simply not sent to on it.
impl Default for Notifications {
    fn default() -> Self {
        Self {
            email: true,
            sms: true,
        }
    }
}

/// `notifications` as received; either key may be left out.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationsBody {
    /// E-mail allowed; absent or `null` means unchanged (default on create: true).
    pub email: Option<bool>,
    /// SMS allowed; absent or `null` means unchanged (default on create: true).
    pub sms: Option<bool>,
}

/// A change to notification preferences: `None` keeps the stored value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NotificationsPatch {
    /// New e-mail preference.
    pub email: Option<bool>,
    /// New SMS preference.
    pub sms: Option<bool>,
}

impl NotificationsPatch {
    /// True when it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.email.is_none() && self.sms.is_none()
    }

    /// The preferences after applying this change to `current`.
    pub fn apply(&self, current: Notifications) -> Notifications {
        Notifications {
            email: self.email.unwrap_or(current.email),
            sms: self.sms.unwrap_or(current.sms),
        }
    }
}

/// Fields that appear in a customer's JSON but are set by the system, never by a request.
pub const READ_ONLY_CUSTOMER_FIELDS: &[&str] =
    &["id", "primary_payment_method", "created_at", "updated_at"];

/// `POST /api/v1/customers` as received, before validation. `null` equals absent.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerBody {
    /// Required.
    pub name: Option<String>,
    /// Optional.
    pub email: Option<String>,
    /// Optional.
    pub phone: Option<String>,
    /// Optional, free-form.
    pub service_address: Option<String>,
    /// Optional, free-form.
    pub billing_address: Option<String>,
    /// Optional.
    pub notes: Option<String>,
    /// Optional; missing keys default to `true`.
    pub notifications: Option<NotificationsBody>,
    /// Optional, `cus_…` on the business's Stripe account.
    pub stripe_customer_id: Option<String>,
}

/// A validated request to create a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCustomer {
    /// Name.
    pub name: CustomerName,
    /// E-mail.
    pub email: Option<Email>,
    /// Phone.
    pub phone: Option<Phone>,
    /// Where the work is done.
    pub service_address: Option<Address>,
    /// Where invoices go.
    pub billing_address: Option<Address>,
    /// Notes.
    pub notes: Option<Notes>,
    /// Contact preferences.
    pub notifications: Notifications,
    /// Existing Stripe customer, if any.
    pub stripe_customer_id: Option<StripeCustomerId>,
}

impl TryFrom<CustomerBody> for NewCustomer {
    type Error = Vec<FieldError>;

    fn try_from(body: CustomerBody) -> Result<Self, Self::Error> {
        let mut errors = Vec::new();
        let name = match body.name {
            None => {
                errors.push(FieldError::new("name", "is required"));
                None
            }
            Some(name) => check(&mut errors, "name", name, |s| CustomerName::parse(&s)),
        };
        let e = &mut errors;
        let email = optional(e, "email", body.email, |s| Email::parse(&s));
        let phone = optional(e, "phone", body.phone, |s| Phone::parse(&s));
        let service = optional(e, "service_address", body.service_address, |s| {
            Address::parse(&s)
        });
        let billing = optional(e, "billing_address", body.billing_address, |s| {
            Address::parse(&s)
        });
        let notes = optional(e, "notes", body.notes, |s| Notes::parse(&s));
        let stripe = optional(e, "stripe_customer_id", body.stripe_customer_id, |s| {
            StripeCustomerId::parse(&s)
        });
        let notifications = body.notifications.unwrap_or_default();
        let notifications = NotificationsPatch {
            email: notifications.email,
            sms: notifications.sms,
        }
        .apply(Notifications::default());
        match (name, email, phone, service, billing, notes, stripe) {
            (
                Some(name),
                Some(email),
                Some(phone),
                Some(service_address),
                Some(billing_address),
                Some(notes),
                Some(stripe_customer_id),
            ) if errors.is_empty() => Ok(Self {
                name,
                email,
                phone,
                service_address,
                billing_address,
                notes,
                notifications,
                stripe_customer_id,
            }),
            _ => Err(errors),
        }
    }
}

/// `Some(None)` when absent, `Some(Some(_))` when valid, `None` (error recorded) when invalid.
fn optional<T, E: ToString>(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: Option<String>,
    parse: impl FnOnce(String) -> Result<T, E>,
) -> Option<Option<T>> {
    match value {
        None => Some(None),
        Some(value) => check(errors, field, value, parse).map(Some),
    }
}

/// `PATCH /api/v1/customers/{id}` as received: absent keeps, `null` clears, a value sets.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerPatchBody {
    /// Cannot be cleared.
    #[serde(default)]
    pub name: Patch<String>,
    /// E-mail.
    #[serde(default)]
    pub email: Patch<String>,
    /// Phone.
    #[serde(default)]
    pub phone: Patch<String>,
    /// Service address.
    #[serde(default)]
    pub service_address: Patch<String>,
    /// Billing address.
    #[serde(default)]
    pub billing_address: Patch<String>,
    /// Notes.
    #[serde(default)]
    pub notes: Patch<String>,
    /// Merged key by key; cannot be `null`.
    #[serde(default)]
    pub notifications: Patch<NotificationsBody>,
    /// Stripe customer id.
    #[serde(default)]
    pub stripe_customer_id: Patch<String>,
}

/// A validated partial update of a customer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomerPatch {
    /// New name, if given.
    pub name: Option<CustomerName>,
    /// E-mail change.
    pub email: Patch<Email>,
    /// Phone change.
    pub phone: Patch<Phone>,
    /// Service address change.
    pub service_address: Patch<Address>,
    /// Billing address change.
    pub billing_address: Patch<Address>,
    /// Notes change.
    pub notes: Patch<Notes>,
    /// Notification preference changes.
    pub notifications: NotificationsPatch,
    /// Stripe customer id change.
    pub stripe_customer_id: Patch<StripeCustomerId>,
}

impl CustomerPatch {
    /// True when the request changes nothing (`{}`).
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.email.is_keep()
            && self.phone.is_keep()
            && self.service_address.is_keep()
            && self.billing_address.is_keep()
            && self.notes.is_keep()
            && self.notifications.is_empty()
            && self.stripe_customer_id.is_keep()
    }
}

impl TryFrom<CustomerPatchBody> for CustomerPatch {
    type Error = Vec<FieldError>;

    fn try_from(body: CustomerPatchBody) -> Result<Self, Self::Error> {
        let mut errors = Vec::new();
        let name = match body.name {
            Patch::Keep => Some(None),
            Patch::Clear => {
                errors.push(FieldError::new("name", "is required and cannot be cleared"));
                None
            }
            Patch::Set(name) => {
                check(&mut errors, "name", name, |s| CustomerName::parse(&s)).map(Some)
            }
        };
        let notifications = match body.notifications {
            Patch::Keep => Some(NotificationsPatch::default()),
            Patch::Clear => {
                errors.push(FieldError::new(
                    "notifications",
                    "cannot be null; set `email` and/or `sms` to true or false",
                ));
                None
            }
            Patch::Set(n) => Some(NotificationsPatch {
                email: n.email,
                sms: n.sms,
            }),
        };
        let e = &mut errors;
        let email = patch(e, "email", body.email, |s| Email::parse(&s));
        let phone = patch(e, "phone", body.phone, |s| Phone::parse(&s));
        let service = patch(e, "service_address", body.service_address, |s| {
            Address::parse(&s)
        });
        let billing = patch(e, "billing_address", body.billing_address, |s| {
            Address::parse(&s)
        });
        let notes = patch(e, "notes", body.notes, |s| Notes::parse(&s));
        let stripe = patch(e, "stripe_customer_id", body.stripe_customer_id, |s| {
            StripeCustomerId::parse(&s)
        });
        match (
            name,
            email,
            phone,
            service,
            billing,
            notes,
            notifications,
            stripe,
        ) {
            (
                Some(name),
                Some(email),
                Some(phone),
                Some(service_address),
                Some(billing_address),
                Some(notes),
                Some(notifications),
                Some(stripe_customer_id),
            ) if errors.is_empty() => Ok(Self {
                name,
                email,
                phone,
                service_address,
                billing_address,
                notes,
                notifications,
                stripe_customer_id,
            }),
            _ => Err(errors),
        }
    }
}

/// `Some(change)` when valid, `None` (error recorded) when the set value is invalid.
fn patch<T, E: ToString>(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: Patch<String>,
    parse: impl FnOnce(String) -> Result<T, E>,
) -> Option<Patch<T>> {
    match value.try_map(parse) {
        Ok(change) => Some(change),
        Err(error) => {
            errors.push(FieldError::new(field, error.to_string()));
            None
        }
    }
}

/// A customer's primary card, as far as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentMethodSummary {
    /// Stripe `pm_…` id.
    pub id: String,
    /// Card brand, e.g. `visa`.
    pub brand: String,
    /// Last four digits.
    pub last4: String,
    /// Expiry month, 1–12.
    pub exp_month: u8,
    /// Expiry year, four digits.
    pub exp_year: u16,
}

/// A stored customer, in the JSON shape of the API (absent optional fields are `null`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Customer {
    /// `cus_…`
    pub id: CustomerId,
    /// Name.
    pub name: String,
    /// E-mail.
    pub email: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Where the work is done.
    pub service_address: Option<String>,
    /// Where invoices go.
    pub billing_address: Option<String>,
    /// Notes.
    pub notes: Option<String>,
    /// Contact preferences.
    pub notifications: Notifications,
    /// Stripe customer on the business's account.
    pub stripe_customer_id: Option<String>,
    /// Primary card on file; `null` until one is attached.
    pub primary_payment_method: Option<PaymentMethodSummary>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn named(name: &str) -> CustomerBody {
        CustomerBody {
            name: Some(name.to_owned()),
            ..CustomerBody::default()
        }
    }

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn a_customer_needs_only_a_name() {
        let customer = NewCustomer::try_from(named("  Grace Hopper ")).expect("valid");
        assert_eq!(customer.name.as_str(), "Grace Hopper");
        assert_eq!(customer.email, None);
        assert_eq!(
            customer.notifications,
            Notifications {
                email: true,
                sms: true
            }
        );
    }

    #[test]
    fn a_missing_name_is_required() {
        let errors = NewCustomer::try_from(CustomerBody::default()).expect_err("invalid");
        assert_eq!(errors, [FieldError::new("name", "is required")]);
    }

    #[test]
    fn every_invalid_field_is_reported_not_just_the_first() {
        let body = CustomerBody {
            name: Some("   ".to_owned()),
            email: Some("not-an-email".to_owned()),
            phone: Some("call me".to_owned()),
            stripe_customer_id: Some("cust_123".to_owned()),
            notes: Some(String::new()),
            ..CustomerBody::default()
        };
        let errors = NewCustomer::try_from(body).expect_err("invalid");
        assert_eq!(
            fields(&errors),
            ["name", "email", "phone", "notes", "stripe_customer_id"]
        );
    }

    #[test]
    fn notification_preferences_default_to_on_key_by_key() {
        let body = CustomerBody {
            notifications: Some(NotificationsBody {
                email: None,
                sms: Some(false),
            }),
            ..named("Ada")
        };
        let customer = NewCustomer::try_from(body).expect("valid");
        assert_eq!(
            customer.notifications,
            Notifications {
                email: true,
                sms: false
            }
        );
    }

    #[test]
    fn emails_are_kept_as_given_after_trimming() {
        assert_eq!(
            Email::parse(" Ada@Example.COM ").map(|e| e.0),
            Ok("Ada@Example.COM".to_owned())
        );
        assert!(Email::parse("élise@exemple.fr").is_ok());
        assert!(Email::parse("a+tag@sub.example.co.uk").is_ok());
    }

    #[test]
    fn malformed_emails_are_rejected() {
        for text in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "a da@example.com",
            "ada@exa mple.com",
            "ada@-example.com",
            "ada@example..com",
            ".ada@example.com",
            "ada..b@example.com",
            "ada@example.com.",
        ] {
            assert!(Email::parse(text).is_err(), "{text:?} should be rejected");
        }
    }

    #[test]
    fn phones_accept_common_punctuation_and_count_digits() {
        assert!(Phone::parse("+1 (416) 555-0199").is_ok());
        assert!(Phone::parse("416.555.0199").is_ok());
        assert!(Phone::parse("555-01").is_err());
        assert!(Phone::parse("1234567890123456").is_err());
        assert!(Phone::parse("416 555 0199 ext 2").is_err());
        assert!(Phone::parse("++14165550199").is_err());
    }

    #[test]
    fn phone_digits_drop_all_punctuation() {
        let phone = Phone::parse("+1 (416) 555-0199").expect("valid");
        assert_eq!(phone.digits(), "14165550199");
    }

    #[test]
    fn stripe_customer_ids_must_start_with_cus() {
        assert!(StripeCustomerId::parse("cus_NffrFeUfNV2Hib").is_ok());
        assert!(StripeCustomerId::parse("cus_").is_err());
        assert!(StripeCustomerId::parse("pm_123").is_err());
        assert!(StripeCustomerId::parse(" cus_123").is_err());
        assert!(StripeCustomerId::parse("cus_12-3").is_err());
    }

    #[test]
    fn an_empty_patch_changes_nothing() {
        let patch = CustomerPatch::try_from(CustomerPatchBody::default()).expect("valid");
        assert!(patch.is_empty());
    }

    #[test]
    fn a_patch_can_clear_optional_fields_but_not_the_name() {
        let body: CustomerPatchBody =
            serde_json::from_str(r#"{"name": null, "email": null, "notifications": null}"#)
                .expect("valid json");
        let errors = CustomerPatch::try_from(body).expect_err("invalid");
        assert_eq!(fields(&errors), ["name", "notifications"]);

        let body: CustomerPatchBody =
            serde_json::from_str(r#"{"email": null, "notes": "gate code 1234"}"#)
                .expect("valid json");
        let patch = CustomerPatch::try_from(body).expect("valid");
        assert_eq!(patch.email, Patch::Clear);
        assert_eq!(
            patch.notes,
            Patch::Set(Notes::parse("gate code 1234").expect("valid"))
        );
        assert_eq!(patch.phone, Patch::Keep);
        assert!(!patch.is_empty());
    }

    #[test]
    fn a_patch_merges_notification_preferences_key_by_key() {
        let body: CustomerPatchBody =
            serde_json::from_str(r#"{"notifications": {"sms": false}}"#).expect("valid json");
        let patch = CustomerPatch::try_from(body).expect("valid");
        let current = Notifications {
            email: false,
            sms: true,
        };
        assert_eq!(
            patch.notifications.apply(current),
            Notifications {
                email: false,
                sms: false
            }
        );
    }

    #[test]
    fn a_patch_reports_every_invalid_value() {
        let body: CustomerPatchBody = serde_json::from_str(
            r#"{"name": "", "email": "x", "phone": "1", "billing_address": " "}"#,
        )
        .expect("valid json");
        let errors = CustomerPatch::try_from(body).expect_err("invalid");
        assert_eq!(
            fields(&errors),
            ["name", "email", "phone", "billing_address"]
        );
    }

    #[test]
    fn a_customer_serialises_absent_fields_as_null() {
        let stamp = Timestamp::parse("2026-03-01T09:30:00Z").expect("valid");
        let customer = Customer {
            id: CustomerId::from_random(&[1; 16]),
            name: "Ada".to_owned(),
            email: None,
            phone: None,
            service_address: None,
            billing_address: None,
            notes: None,
            notifications: Notifications::default(),
            stripe_customer_id: None,
            primary_payment_method: None,
            created_at: stamp,
            updated_at: stamp,
        };
        let json = serde_json::to_value(&customer).expect("serialisable");
        assert_eq!(json["email"], serde_json::Value::Null);
        assert_eq!(json["primary_payment_method"], serde_json::Value::Null);
        assert_eq!(
            json["notifications"],
            serde_json::json!({"email": true, "sms": true})
        );
        assert_eq!(json["created_at"], "2026-03-01T09:30:00.000Z");
    }

    proptest! {
        #[test]
        fn any_string_that_parses_as_an_email_reserialises_identically(
            text in "[a-zA-Z0-9_%+-]{1,10}(\\.[a-zA-Z0-9_%+-]{1,10}){0,2}@[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?(\\.[a-z]{2,6}){1,2}"
        ) {
            let email = Email::parse(&text);
            prop_assert!(email.is_ok(), "{:?} should be an email", text);
            let email = email.expect("checked above");
            prop_assert_eq!(email.as_str(), text.as_str());
            let json = serde_json::to_string(&email).expect("serialisable");
            prop_assert_eq!(json, serde_json::to_string(&text).expect("serialisable"));
        }

        #[test]
        fn email_parsing_is_idempotent_on_arbitrary_text(text in "\\PC{0,40}") {
            if let Ok(email) = Email::parse(&text) {
                prop_assert_eq!(Email::parse(email.as_str()), Ok(email.clone()));
            }
        }

        #[test]
        fn names_that_parse_are_trimmed_and_within_bounds(text in "\\PC{0,260}") {
            if let Ok(name) = CustomerName::parse(&text) {
                prop_assert_eq!(name.as_str(), name.as_str().trim());
                prop_assert!(!name.as_str().is_empty());
                prop_assert!(name.as_str().chars().count() <= CustomerName::MAX_CHARS);
            }
        }
    }
}
