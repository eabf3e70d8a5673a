//! Account API tokens (shown once, stored only as a SHA-256 hash) and bearer credentials.

use crate::encoding::{base32_decode, base32_encode, hex_encode};
use sha2::{Digest, Sha256};
use std::fmt;

/// An account API token: `mio_` followed by 256 random bits in base32.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

impl ApiToken {
    /// The prefix every account API token starts with (lets secret scanners spot leaked ones).
    pub const PREFIX: &'static str = "mio_";

    /// Formats a token from 32 random bytes that the caller drew.
    pub fn from_random(bytes: &[u8; 32]) -> Self {
        Self(format!("{}{}", Self::PREFIX, base32_encode(bytes)))
    }

    /// Accepts exactly the form `from_random` produces; anything else cannot be a token.
    pub fn parse(text: &str) -> Option<Self> {
        text.strip_prefix(Self::PREFIX)
            .and_then(base32_decode::<32>)
            .map(|_| Self(text.to_owned()))
    }

    /// The token itself, for the one response that shows it to its owner.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The hash that is stored and looked up instead of the token.
    pub fn hash(&self) -> TokenHash {
        TokenHash(hex_encode(&Sha256::digest(self.0.as_bytes())))
    }
}

// Never print a secret by accident (logs, panics, test failures).
impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

/// Lower-case hex SHA-256 of an [`ApiToken`]: what the database holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(String);

impl TokenHash {
    /// A hash as stored (64 lower-case hex digits); `None` for anything else.
    pub fn from_stored(hex: &str) -> Option<Self> {
        (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| Self(hex.to_owned()))
    }

    /// The 64 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The credential of an `Authorization: Bearer <credential>` header, if that is what it holds.
///
/// The scheme is case-insensitive (RFC 9110 §11.1); the credential must be one token68.
pub fn bearer_credential(header: &str) -> Option<&str> {
    let (scheme, credential) = header.trim().split_once(' ')?;
    let credential = credential.trim_start_matches(' ');
    let is_token68 = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    (scheme.eq_ignore_ascii_case("bearer")
        && !credential.is_empty()
        && credential.chars().all(is_token68))
    .then_some(credential)
}

/// Whether a presented secret equals the configured one, in time independent of where they
/// differ. An empty configured secret matches nothing, so an unset variable locks the door.
pub fn secret_matches(presented: &str, configured: &str) -> bool {
    if configured.is_empty() {
        return false;
    }
    // Comparing fixed-length digests hides the configured secret's length too.
    let presented = Sha256::digest(presented.as_bytes());
    let configured = Sha256::digest(configured.as_bytes());
    constant_time_eq(&presented, &configured)
}

/// Byte-wise equality whose running time depends only on the lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_token_starts_with_mio_and_carries_256_bits() {
        let token = ApiToken::from_random(&[9; 32]);
        assert!(token.expose_secret().starts_with("mio_"));
        assert_eq!(token.expose_secret().len(), 4 + 52);
    }

    #[test]
    fn the_hash_is_the_hex_sha256_of_the_token_text() {
        let token = ApiToken::from_random(&[0; 32]);
        let expected = hex_encode(&Sha256::digest(token.expose_secret().as_bytes()));
        assert_eq!(token.hash().as_str(), expected);
        assert_eq!(token.hash().as_str().len(), 64);
    }

    #[test]
    fn different_tokens_hash_differently() {
        let a = ApiToken::from_random(&[1; 32]);
        let b = ApiToken::from_random(&[2; 32]);
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let token = ApiToken::from_random(&[3; 32]);
        assert!(!format!("{token:?}").contains(token.expose_secret()));
    }

    #[test]
    fn text_that_is_not_a_token_does_not_parse() {
        assert!(ApiToken::parse("").is_none());
        assert!(ApiToken::parse("mio_").is_none());
        assert!(ApiToken::parse("Bearer mio_abc").is_none());
        let token = ApiToken::from_random(&[4; 32]);
        let truncated = &token.expose_secret()[..token.expose_secret().len() - 1];
        assert!(ApiToken::parse(truncated).is_none());
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_credential("Bearer abc"), Some("abc"));
        assert_eq!(bearer_credential("bearer abc"), Some("abc"));
        assert_eq!(bearer_credential("BEARER  abc "), Some("abc"));
    }

    #[test]
    fn other_schemes_and_empty_credentials_are_not_bearer() {
        assert_eq!(bearer_credential("Basic YWxhZGRpbjpvcGVuc2VzYW1l"), None);
        assert_eq!(bearer_credential("Bearer"), None);
        assert_eq!(bearer_credential("Bearer "), None);
        assert_eq!(bearer_credential("Bearer a b"), None);
        assert_eq!(bearer_credential("Bearerabc"), None);
    }

    #[test]
    fn an_empty_configured_secret_matches_nothing() {
        assert!(!secret_matches("", ""));
        assert!(!secret_matches("anything", ""));
    }

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(secret_matches("s3cret", "s3cret"));
        assert!(!secret_matches("s3cret ", "s3cret"));
        assert!(!secret_matches("s3cre", "s3cret"));
    }

    #[test]
    fn constant_time_eq_compares_lengths_and_bytes() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    proptest! {
        #[test]
        fn any_formatted_token_parses_back(bytes in any::<[u8; 32]>()) {
            let token = ApiToken::from_random(&bytes);
            prop_assert_eq!(ApiToken::parse(token.expose_secret()), Some(token));
        }
    }
}
