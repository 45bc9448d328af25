//! Go 1.19's `unicode.ToUpper` and `unicode.ToLower`: Unicode 13.0.0's simple (one rune
//! for one rune) case mappings.
//!
//! Rust's `char::to_uppercase` is the full mapping of a newer Unicode. Where the full
//! mapping is one character it is the simple one, except for what Unicode assigned after
//! 13.0.0, which Go 1.19 leaves as it is; where it is several, the simple lower-case
//! mapping is the first of them (`İ` -> `i`) and the simple upper-case one is the
//! character itself (`ß`), except for the Greek letters with a iota subscript, whose
//! simple upper case is the title-case letter (`ᾳ` -> `ᾼ`). Checked against Go 1.19 on
//! every rune from U+0000 to U+10FFFF.

/// Case pairs Unicode added after 13.0.0 (inclusive ranges): Go 1.19 maps none of them.
const NEWER_THAN_GO: &[(u32, u32)] = &[
    (0x019B, 0x019B),   // ƛ's capital, Unicode 16
    (0x0264, 0x0264),   // ɤ's capital, Unicode 16
    (0x1C89, 0x1C8A),   // Cyrillic TJE, Unicode 16
    (0x2C2F, 0x2C2F),   // Glagolitic, Unicode 14
    (0x2C5F, 0x2C5F),   // Glagolitic, Unicode 14
    (0xA7C0, 0xA7C1),   // Latin old Polish O, Unicode 14
    (0xA7CB, 0xA7DC),   // Latin, Unicode 14 and 16
    (0x10570, 0x105BC), // Vithkuqi, Unicode 14
    (0x10D50, 0x10D85), // Garay, Unicode 16
    (0x16EA0, 0x16ED3), // Beria Erfe, Unicode 16
];

fn newer_than_go(c: char) -> bool {
    let c = u32::from(c);
    NEWER_THAN_GO.iter().any(|&(a, b)| (a..=b).contains(&c))
}

/// Go 1.19's `unicode.ToUpper(c)`.
pub fn to_upper(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_uppercase();
    }
    if newer_than_go(c) {
        return c;
    }
    let mut m = c.to_uppercase();
    match (m.next(), m.next()) {
        (Some(u), None) => u,
        _ => iota_subscript_title(c).unwrap_or(c),
    }
}

/// Go 1.19's `unicode.ToLower(c)`.
pub fn to_lower(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    if newer_than_go(c) {
        return c;
    }
    c.to_lowercase().next().unwrap_or(c)
}

/// The title-case letter that is the simple upper case of a Greek small letter with a
/// iota subscript (`ᾀ` -> `ᾈ`, `ᾳ` -> `ᾼ`), whose full upper case is two letters.
fn iota_subscript_title(c: char) -> Option<char> {
    let n = u32::from(c);
    let t = match n {
        0x1F80..=0x1F87 | 0x1F90..=0x1F97 | 0x1FA0..=0x1FA7 => n + 8,
        0x1FB3 | 0x1FC3 | 0x1FF3 => n + 9,
        _ => return None,
    };
    char::from_u32(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Go 1.19 returns for runes where a naive use of Rust's mappings differs.
    #[test]
    fn case_mapping_is_go_1_19s() {
        let upper = |s: &str| s.chars().map(to_upper).collect::<String>();
        let lower = |s: &str| s.chars().map(to_lower).collect::<String>();
        assert_eq!(upper("straße ǆ ǅ é"), "STRAßE Ǆ Ǆ É");
        assert_eq!(lower("İ Σ Ǆ"), "i σ ǆ");
        assert_eq!(upper("ᾳ ᾀ ᾗ ᾧ ῃ ῳ"), "ᾼ ᾈ ᾟ ᾯ ῌ ῼ");
        assert_eq!(
            upper("ᾈ ᾼ"),
            "ᾈ ᾼ",
            "title-case letters have no simple upper case"
        );
        // Assigned after Unicode 13.0.0: unchanged in Go 1.19.
        for c in [
            '\u{A7C1}',
            '\u{2C5F}',
            '\u{10597}',
            '\u{1C8A}',
            '\u{19B}',
            '\u{264}',
        ] {
            assert_eq!(to_upper(c), c, "{c:?}");
        }
        for c in [
            '\u{A7C0}',
            '\u{2C2F}',
            '\u{10570}',
            '\u{10D50}',
            '\u{16EA0}',
            '\u{A7DC}',
        ] {
            assert_eq!(to_lower(c), c, "{c:?}");
        }
        // Unicode 12 and 13 pairs, which Go 1.19 has.
        assert_eq!(to_upper('\u{A7C3}'), '\u{A7C2}');
        assert_eq!(to_lower('\u{A7C9}'), '\u{A7CA}');
    }
}
