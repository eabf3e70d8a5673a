//! Service Feedback: the rating link's token, and what a customer's rating may be.
//!
//! A link's token is derived, not drawn: base64url of HMAC-SHA256 with the secret over
//! `"mio-feedback-link-v1:"` followed by the job id: 256 bits that nobody without the operator's `feedback_link_secret` can guess.
//! Deriving it means the token itself is never stored: the database keeps only its SHA-256
//! ([`token_hash`]), and a message resent after a failure carries the very same link (which an
//! idempotent provider requires: the same key must come with the same body).

use crate::encoding::hex_encode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// How long a rating link stays valid after it is first sent.
pub const LINK_VALID_DAYS: i64 = 30;

/// The shortest `feedback_link_secret` accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

const LINK_CONTEXT: &str = "mio-feedback-link-v1:";

/// The token of feedback job `job_id`'s rating link (43 URL-safe characters).
pub fn link_token(secret: &[u8], job_id: &str) -> String {
    // HMAC accepts keys of any length.
    let mut mac = <Hmac<Sha256>>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(LINK_CONTEXT.as_bytes());
    mac.update(job_id.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// The rating link of feedback job `job_id`: its token and its URL on the rating page at
/// `public_base_url`; or why there can be none (the operator's configuration is missing).
pub fn link(public_base_url: &str, secret: &str, job_id: &str) -> Result<(String, String), String> {
    if !(public_base_url.starts_with("https://") || public_base_url.starts_with("http://")) {
        return Err(
            "the platform's public_base_url variable is not set, so there is no \
                    rating page to link to"
                .into(),
        );
    }
    if secret.len() < MIN_SECRET_LEN {
        return Err(format!(
            "the platform's feedback_link_secret variable is not set (at least \
             {MIN_SECRET_LEN} characters)"
        ));
    }
    let token = link_token(secret.as_bytes(), job_id);
    let url = format!("{}/feedback/{token}", public_base_url.trim_end_matches('/'));
    Ok((token, url))
}

/// What is stored of a token: lower-case hex SHA-256.
pub fn token_hash(token: &str) -> String {
    hex_encode(&Sha256::digest(token.as_bytes()))
}

/// Whether `text` has the shape of a link token (so a lookup is worth a query).
pub fn looks_like_token(text: &str) -> bool {
    text.len() == 43
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_stable_per_job_and_differs_between_jobs_and_secrets() {
        let secret = [7u8; 32];
        let a = link_token(&secret, "job_a");
        assert_eq!(a, link_token(&secret, "job_a"));
        assert_ne!(a, link_token(&secret, "job_b"));
        assert_ne!(a, link_token(&[8u8; 32], "job_a"));
        assert!(looks_like_token(&a), "{a}");
    }

    #[test]
    fn a_link_needs_the_page_and_a_long_enough_secret() {
        let secret = "s".repeat(MIN_SECRET_LEN);
        let (token, url) = link("https://mio.example/", &secret, "job_a").expect("a link");
        assert_eq!(url, format!("https://mio.example/feedback/{token}"));
        assert_eq!(token, link_token(secret.as_bytes(), "job_a"));
        assert!(
            link("", &secret, "job_a")
                .expect_err("no page")
                .contains("public_base_url")
        );
        assert!(
            link("https://mio.example", "short", "job_a")
                .expect_err("weak secret")
                .contains("feedback_link_secret")
        );
    }

    #[test]
    fn only_the_hash_of_a_token_is_kept_and_it_is_hex_sha256() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn malformed_tokens_are_recognised_without_a_lookup() {
        assert!(!looks_like_token(""));
        assert!(!looks_like_token(&"a".repeat(42)));
        assert!(!looks_like_token(&format!("{}=", "a".repeat(42))));
        assert!(!looks_like_token(&format!("{}/", "a".repeat(42))));
    }
}
