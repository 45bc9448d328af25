//! Standard base64 (RFC 4648, with padding) for the `base64_encode`/`base64_decode` filters.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes `data` with padding.
pub fn encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64, padded or not; white space (line breaks) is ignored.
/// Anything else that is not base64 is an error, never skipped: a stray `=` inside or a
/// length no encoder makes (`a`) would otherwise decode to something the writer did not
/// mean. Bits set past the last whole byte (`Zm9=`) are allowed, as Go's
/// `base64.StdEncoding` (confd's `base64Decode`) allows them. The error gives the
/// position, not the input (it may be a secret).
pub fn decode(text: &str) -> Result<Vec<u8>, String> {
    use ::base64::Engine as _;
    use ::base64::alphabet::STANDARD;
    use ::base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let clean: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    ENGINE.decode(&clean).map_err(|e| {
        use ::base64::DecodeError::*;
        match e {
            InvalidByte(i, b) => format!("invalid character {:?} at byte {i}", b as char),
            InvalidLength(n) => format!("{n} base64 characters cannot be whole bytes"),
            InvalidLastSymbol(i, b) => {
                format!("invalid last character {:?} at byte {i}", b as char)
            }
            InvalidPadding => "misplaced or missing `=` padding".to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips() {
        for s in ["", "f", "fo", "foo", "foob", "fooba", "foobar"] {
            let e = super::encode(s.as_bytes());
            assert_eq!(super::decode(&e).unwrap(), s.as_bytes());
        }
        assert_eq!(super::encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(super::encode(b"fo"), "Zm8=");
        assert!(super::decode("a!").is_err());
        assert_eq!(super::decode("Zm8").unwrap(), b"fo", "unpadded");
        assert_eq!(
            super::decode("Zm9=").unwrap(),
            b"fo",
            "trailing bits, as Go"
        );
        assert_eq!(super::decode("Zm9v\nYmFy\n").unwrap(), b"foobar");
    }

    #[test]
    fn invalid_input_is_an_error() {
        for bad in ["%%%", "a", "Zg=v", "Zm8=Zm8=", "Zm9v!", "Zg==="] {
            assert!(super::decode(bad).is_err(), "{bad}");
        }
        let e = super::decode("%%%").unwrap_err();
        assert!(e.contains("'%' at byte 0"), "{e}");
    }
}
