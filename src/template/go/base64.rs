//! Go's `base64.StdEncoding` as confd's `base64Encode`/`base64Decode` use it: padded,
//! strict about padding, tolerant of line breaks and of non-zero trailing bits.

use base64::Engine as _;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

const ENGINE: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// `base64.StdEncoding.EncodeToString`.
pub fn encode(s: &str) -> String {
    ENGINE.encode(s.as_bytes())
}

/// `base64.StdEncoding.DecodeString`; the bytes as text (invalid UTF-8 replaced).
pub fn decode(s: &str) -> Result<String, String> {
    let clean: String = s.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    let bytes = ENGINE.decode(clean.as_bytes()).map_err(|e| {
        use base64::DecodeError::*;
        let at = match e {
            InvalidByte(i, _) | InvalidLastSymbol(i, _) => i,
            InvalidLength(n) => n,
            InvalidPadding => clean.len(),
        };
        format!("illegal base64 data at input byte {at}")
    })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_go() {
        assert_eq!(encode("hello"), "aGVsbG8=");
        assert_eq!(decode("aGVsbG8=").unwrap(), "hello");
        assert_eq!(decode("aGVs\nbG8=").unwrap(), "hello");
        assert!(decode("aGVsbG8").is_err(), "padding is required");
        assert!(decode("a*==").is_err());
        assert_eq!(
            decode("%%%").unwrap_err(),
            "illegal base64 data at input byte 0"
        );
    }
}
