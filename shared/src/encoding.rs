//! Text encodings for identifiers, tokens and cursors: Crockford base32 (lower case) and hex.

/// Crockford's alphabet in lower case: no `i`, `l`, `o`, `u`, so ids read aloud unambiguously.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// How many base32 characters encode `bytes` bytes.
pub(crate) const fn base32_len(bytes: usize) -> usize {
    (bytes * 8).div_ceil(5)
}

/// Encodes bytes as lower-case Crockford base32, most significant bit first, zero-padded.
pub(crate) fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(base32_len(bytes.len()));
    let mut buffer: u32 = 0;
    let mut bits: u32 = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 0x1f) as usize]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(
            ALPHABET[((buffer << (5 - bits)) & 0x1f) as usize],
        ));
    }
    out
}

/// Decodes exactly `N` bytes from the canonical form `base32_encode` produces; anything else
/// (wrong length, upper case, a letter outside the alphabet, non-zero padding bits) is `None`.
pub(crate) fn base32_decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != base32_len(N) {
        return None;
    }
    let mut out = [0u8; N];
    let mut filled = 0;
    let mut buffer: u32 = 0;
    let mut bits: u32 = 0;
    for &c in text.as_bytes() {
        let value = ALPHABET.iter().position(|&a| a == c)?;
        buffer = (buffer << 5) | value as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(filled)? = (buffer >> bits) as u8;
            filled += 1;
        }
        buffer &= (1 << bits) - 1;
    }
    // Leftover bits are padding: only the canonical (all-zero) spelling is accepted, so one
    // value has exactly one text form.
    (filled == N && buffer == 0).then_some(out)
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex_encode(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

/// The bytes of hex text (either case, two digits a byte); `None` for anything else, an empty
/// text included.
pub(crate) fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if text.is_empty()
        || !text.len().is_multiple_of(2)
        || !text.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sixteen_bytes_take_twenty_six_characters() {
        assert_eq!(base32_len(16), 26);
        assert_eq!(base32_encode(&[0u8; 16]), "0".repeat(26));
        assert_eq!(base32_encode(&[0xff; 16]).len(), 26);
    }

    #[test]
    fn encoding_matches_a_hand_computed_value() {
        // 0xff = 11111 111(00) -> "z" then "w" (0b11100 = 28)
        assert_eq!(base32_encode(&[0xff]), "zw");
        assert_eq!(base32_decode::<1>("zw"), Some([0xff]));
    }

    #[test]
    fn non_canonical_padding_is_rejected() {
        // "zz" would carry two set padding bits.
        assert_eq!(base32_decode::<1>("zz"), None);
    }

    #[test]
    fn upper_case_and_foreign_letters_are_rejected() {
        assert_eq!(base32_decode::<1>("ZW"), None);
        assert_eq!(base32_decode::<1>("iw"), None);
        assert_eq!(base32_decode::<1>("z"), None);
    }

    #[test]
    fn hex_decodes_what_it_encodes_and_refuses_anything_else() {
        assert_eq!(
            hex_decode(&hex_encode(&[0, 0xab, 0xff])),
            Some(vec![0, 0xab, 0xff])
        );
        assert_eq!(hex_decode("ABff"), Some(vec![0xab, 0xff]));
        for bad in ["", "a", "zz", "+f", "-1", "0x", "a b "] {
            assert_eq!(hex_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn hex_is_lower_case_two_digits_per_byte() {
        assert_eq!(hex_encode(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
    }

    proptest! {
        #[test]
        fn base32_round_trips_any_sixteen_bytes(bytes in any::<[u8; 16]>()) {
            let text = base32_encode(&bytes);
            prop_assert_eq!(base32_decode::<16>(&text), Some(bytes));
        }

        #[test]
        fn only_canonical_text_decodes(text in "[0-9a-z]{26}|\\PC{0,40}") {
            if let Some(bytes) = base32_decode::<16>(&text) {
                prop_assert_eq!(base32_encode(&bytes), text);
            }
        }
    }
}
