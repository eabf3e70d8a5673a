//! Opaque identifiers with a type prefix (`acc_…`, `cus_…`): 128 random bits in base32.

use crate::encoding::{base32_decode, base32_encode, base32_len};
use serde::Serialize;
use std::fmt;

/// Why a string is not an identifier of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {kind} id (expected `{prefix}` followed by {len} characters of [0-9a-z])")]
pub struct IdError {
    kind: &'static str,
    prefix: &'static str,
    len: usize,
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The type prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// Formats an id from 16 random bytes that the caller drew.
            pub fn from_random(bytes: &[u8; 16]) -> Self {
                Self(format!("{}{}", $prefix, base32_encode(bytes)))
            }

            /// Accepts exactly the form `from_random` produces.
            pub fn parse(text: &str) -> Result<Self, IdError> {
                text.strip_prefix($prefix)
                    .and_then(base32_decode::<16>)
                    .map(|_| Self(text.to_owned()))
                    .ok_or(IdError {
                        kind: $kind,
                        prefix: $prefix,
                        len: base32_len(16),
                    })
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// The id of an account (one business), `acc_…`.
    AccountId,
    "acc_",
    "account"
);
prefixed_id!(
    /// The id of a customer of a business, `cus_…`.
    CustomerId,
    "cus_",
    "customer"
);
prefixed_id!(
    /// The id of a booking (one visit), `bkg_…`.
    BookingId,
    "bkg_",
    "booking"
);
prefixed_id!(
    /// The id of a recurring series of bookings, `ser_…`.
    SeriesId,
    "ser_",
    "series"
);
prefixed_id!(
    /// The id of an automation job (one planned run), `job_…`.
    JobId,
    "job_",
    "job"
);

prefixed_id!(
    /// The id of an activity entry (one run of one automation), `act_…`.
    ActivityId,
    "act_",
    "activity"
);

prefixed_id!(
    /// The id of one message to one customer on one channel, `msg_…`: also its idempotency key
    /// (e-mail) and `webhook-id`.
    MessageId,
    "msg_",
    "message"
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_customer_id_starts_with_cus_and_has_26_more_characters() {
        let id = CustomerId::from_random(&[7; 16]);
        assert!(id.as_str().starts_with("cus_"));
        assert_eq!(id.as_str().len(), 4 + 26);
    }

    #[test]
    fn an_id_with_the_wrong_prefix_is_rejected() {
        let account = AccountId::from_random(&[1; 16]);
        assert!(CustomerId::parse(account.as_str()).is_err());
    }

    #[test]
    fn ids_with_bad_characters_or_length_are_rejected() {
        for text in [
            "",
            "cus_",
            "cus_0000000000000000000000000",
            "cus_000000000000000000000000000",
            "cus_0000000000000000000000000I",
            "CUS_00000000000000000000000000",
            "cus_00000000000000000000000000 ",
            "cus_../../0000000000000000000000",
        ] {
            assert!(
                CustomerId::parse(text).is_err(),
                "{text:?} should be rejected"
            );
        }
    }

    #[test]
    fn the_error_names_the_expected_shape() {
        let message = CustomerId::parse("nope").expect_err("invalid").to_string();
        assert!(message.contains("`cus_`"), "{message}");
    }

    proptest! {
        #[test]
        fn any_random_id_parses_back_to_itself(bytes in any::<[u8; 16]>()) {
            let id = CustomerId::from_random(&bytes);
            prop_assert_eq!(CustomerId::parse(id.as_str()), Ok(id));
        }
    }
}
