//! Keys and values from a store as text, strictly: bytes that are not UTF-8 are never
//! replaced with U+FFFD. The entry is left out instead, with a warning that names it.
//!
//! Why not the lossy conversion: `a\xff` and `a\xfe` would both become `a\u{fffd}`, two
//! keys in one, and a template would see whichever came last, without a word.
//!
//! Why leave the entry out rather than fail the listing: any instance can write under
//! the watched prefix. If one bad key failed every listing, the daemon would keep its
//! last good snapshot forever, and one instance could freeze the updates of all the
//! others. Left out, the proxy keeps following every good key, and the bad one is loud:
//! a warning naming it (escaped, bounded) and `confsync_backend_invalid_text_total`.
//! A watch event treats it the same way, so a watch and the next listing agree: a good
//! key whose new value is not UTF-8 is gone from the snapshot, not kept at its old value.

use std::fmt::Write as _;

/// Bytes of a key shown in a message; a longer key is cut (its length is given).
const SHOWN_BYTES: usize = 64;
/// Entries named one by one per listing or event batch; the rest are summed up, so a
/// million bad keys cost one line each listing, not a million.
const NAMED_PER_BATCH: usize = 10;

/// A store key for a message: quoted and escaped as Rust escapes a string (so control
/// characters, quotes and line breaks cannot forge log lines), a byte that is not UTF-8
/// as `\xff`; then, when there are such bytes, all of them in hex. Cut at
/// [`SHOWN_BYTES`].
pub fn shown(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(SHOWN_BYTES)];
    let mut out = String::from("\"");
    for chunk in cut.utf8_chunks() {
        out.extend(chunk.valid().chars().flat_map(char::escape_debug));
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out.push('"');
    if std::str::from_utf8(bytes).is_err() {
        out.push_str(" (bytes ");
        for b in cut {
            let _ = write!(out, "{b:02x}");
        }
        out.push(')');
    }
    if bytes.len() > SHOWN_BYTES {
        let _ = write!(out, "... ({} bytes in all)", bytes.len());
    }
    out
}

/// Converts one batch of store entries (a listing, or the events of one response) and
/// reports what it had to leave out. Dropping it logs the summary and counts the
/// entries left out.
pub struct Strict<'a> {
    kind: &'static str,
    endpoint: &'a str,
    /// Entries left out so far in this batch.
    left_out: usize,
}

impl<'a> Strict<'a> {
    /// A batch read by a `kind` backend from `endpoint`.
    pub fn new(kind: &'static str, endpoint: &'a str) -> Self {
        Self {
            kind,
            endpoint,
            left_out: 0,
        }
    }

    /// The endpoint this batch is read from.
    pub fn endpoint(&self) -> &'a str {
        self.endpoint
    }

    /// The key as text, or `None` (with a warning) when it is not UTF-8.
    pub fn key(&mut self, raw: Vec<u8>) -> Option<String> {
        match String::from_utf8(raw) {
            Ok(k) => Some(k),
            Err(e) => {
                self.left_out(&shown(e.as_bytes()), "the key is not UTF-8");
                None
            }
        }
    }

    /// The value of `key` as text, or `None` (with a warning naming the key) when it is
    /// not UTF-8. The value itself is not shown: it may be long, or a secret.
    pub fn value(&mut self, key: &str, raw: Vec<u8>) -> Option<String> {
        match String::from_utf8(raw) {
            Ok(v) => Some(v),
            Err(e) => {
                let why = format!(
                    "its value is not UTF-8 (byte {} of {})",
                    e.utf8_error().valid_up_to(),
                    e.as_bytes().len()
                );
                self.left_out(&shown(key.as_bytes()), &why);
                None
            }
        }
    }

    /// A key and value that are both text, or `None`.
    pub fn entry(&mut self, key: Vec<u8>, value: Vec<u8>) -> Option<(String, String)> {
        let key = self.key(key)?;
        let value = self.value(&key, value)?;
        Some((key, value))
    }

    /// How many entries this batch has left out so far.
    #[cfg(test)]
    pub fn count(&self) -> usize {
        self.left_out
    }

    fn left_out(&mut self, key: &str, why: &str) {
        self.left_out += 1;
        if self.left_out <= NAMED_PER_BATCH {
            tracing::warn!(
                backend = self.kind,
                endpoint = self.endpoint,
                key = %key,
                "{why}: the key is left out of the snapshot (bytes are never guessed at)"
            );
        }
    }
}

impl Drop for Strict<'_> {
    fn drop(&mut self) {
        if self.left_out == 0 {
            return;
        }
        if self.left_out > NAMED_PER_BATCH {
            tracing::warn!(
                backend = self.kind,
                endpoint = self.endpoint,
                left_out = self.left_out,
                "{} more keys left out as not UTF-8",
                self.left_out - NAMED_PER_BATCH
            );
        }
        crate::metrics::count_invalid_text(self.kind, self.left_out as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_escapes_and_gives_the_bytes() {
        assert_eq!(shown(b"/app/a"), r#""/app/a""#);
        assert_eq!(shown(b"/a\xff"), r#""/a\xff" (bytes 2f61ff)"#);
        assert_eq!(shown(b"/a\nserver x"), r#""/a\nserver x""#);
        assert_eq!(shown("/é\"\u{2028}".as_bytes()), r#""/é\"\u{2028}""#);
        let long = [b'x'; 100];
        let s = shown(&long);
        assert!(s.ends_with("... (100 bytes in all)"), "{s}");
        assert!(s.len() < 100, "{s}");
        let long_bad = [0xffu8; 1000];
        assert!(shown(&long_bad).len() < 450, "bounded whatever the key");
    }

    #[test]
    fn keys_that_would_collide_are_both_left_out() {
        let mut s = Strict::new("etcd", "test");
        let got: Vec<_> = [b"/p/a\xff".to_vec(), b"/p/a\xfe".to_vec(), b"/p/b".to_vec()]
            .into_iter()
            .filter_map(|k| s.entry(k, b"v".to_vec()))
            .collect();
        assert_eq!(got, vec![("/p/b".to_string(), "v".to_string())]);
        assert_eq!(s.count(), 2);
    }

    #[test]
    fn a_bad_value_leaves_its_key_out() {
        let mut s = Strict::new("redis", "test");
        assert_eq!(s.entry(b"/p/k".to_vec(), b"ok\xc3".to_vec()), None);
        assert_eq!(s.value("/p/k", "é".into()), Some("é".to_string()));
        assert_eq!(s.count(), 1);
    }

    #[test]
    fn dropping_counts_in_the_metric() {
        let before = count_of("etcd");
        let mut s = Strict::new("etcd", "test");
        for i in 0..12u8 {
            assert!(s.key(vec![b'/', i, 0xff]).is_none());
        }
        drop(s);
        assert!(count_of("etcd") >= before + 12);
    }

    fn count_of(kind: &str) -> u64 {
        let text = crate::metrics::Metrics::new().encode();
        let line = format!("confsync_backend_invalid_text_total{{kind=\"{kind}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&line))
            .map_or(0, |n| n.parse().unwrap())
    }
}
