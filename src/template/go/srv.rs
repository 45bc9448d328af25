//! confd's `lookupSRV`: DNS SRV records through the C library's resolver (so
//! `/etc/resolv.conf` applies, as it does to Go's), sorted as confd sorts them.
//!
//! As Go does, a name that is not a valid domain name is refused before any query is sent.

use std::ffi::CString;

use super::value::Srv;

const CLASS_IN: i32 = 1;
const TYPE_SRV: u16 = 33;

unsafe extern "C" {
    /// The C library resolver's `res_query(3)`.
    fn res_query(
        dname: *const libc::c_char,
        class: i32,
        kind: i32,
        answer: *mut u8,
        len: i32,
    ) -> i32;
}

/// Go's `isDomainName`: labels of letters, digits, `_` and inner `-`, at most 63 bytes
/// each and 254 in all, and not all-numeric.
pub fn is_domain_name(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 254 || (b.len() == 254 && b[253] != b'.') {
        return b == b".";
    }
    let (mut last, mut non_numeric, mut part) = (b'.', false, 0usize);
    for &c in b {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                non_numeric = true;
                part += 1;
            }
            b'0'..=b'9' => part += 1,
            b'-' => {
                if last == b'.' {
                    return false;
                }
                part += 1;
                non_numeric = true;
            }
            b'.' => {
                if last == b'.' || last == b'-' || part > 63 || part == 0 {
                    return false;
                }
                part = 0;
            }
            _ => return false,
        }
        last = c;
    }
    last != b'-' && part <= 63 && non_numeric
}

/// The SRV records of `_service._proto.name` (of `name` itself when both are empty),
/// sorted by target, port, priority and weight as confd sorts them; empty when the
/// name does not resolve.
pub fn lookup(service: &str, proto: &str, name: &str) -> Vec<Srv> {
    let target = if service.is_empty() && proto.is_empty() {
        name.to_string()
    } else {
        format!("_{service}._{proto}.{name}")
    };
    if !is_domain_name(&target) {
        return Vec::new();
    }
    let Ok(c) = CString::new(target) else {
        return Vec::new();
    };
    let mut buf = vec![0u8; 65_535];
    // SAFETY: `c` is NUL-terminated and `buf` is writable for the length given.
    let n = unsafe {
        res_query(
            c.as_ptr(),
            CLASS_IN,
            i32::from(TYPE_SRV),
            buf.as_mut_ptr(),
            buf.len() as i32,
        )
    };
    let Ok(n) = usize::try_from(n) else {
        return Vec::new();
    };
    let records = parse(&buf[..n.min(buf.len())]).unwrap_or_default();
    // confd's sortSRV: Go's (unstable) sort.Sort by this text.
    let mut keyed: Vec<(String, Srv)> = records
        .into_iter()
        .map(|s| {
            (
                format!("{}{}{}{}", s.target, s.port, s.priority, s.weight),
                s,
            )
        })
        .collect();
    super::sort::sort(&mut keyed, |a, b| a.0 < b.0);
    keyed.into_iter().map(|(_, s)| s).collect()
}

/// The SRV answers of a DNS response message, `None` when it is malformed.
pub fn parse(msg: &[u8]) -> Option<Vec<Srv>> {
    let u16_at =
        |i: usize| -> Option<u16> { Some(u16::from_be_bytes([*msg.get(i)?, *msg.get(i + 1)?])) };
    let questions = u16_at(4)?;
    let answers = u16_at(6)?;
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(msg, at)? + 4;
    }
    let mut out = Vec::new();
    for _ in 0..answers {
        at = skip_name(msg, at)?;
        let kind = u16_at(at)?;
        let len = usize::from(u16_at(at + 8)?);
        let data = at + 10;
        if msg.len() < data + len {
            return None;
        }
        if kind == TYPE_SRV && len >= 7 {
            out.push(Srv {
                priority: u16_at(data)?,
                weight: u16_at(data + 2)?,
                port: u16_at(data + 4)?,
                target: read_name(msg, data + 6)?,
            });
        }
        at = data + len;
    }
    Some(out)
}

/// The offset just past the (possibly compressed) name at `at`.
fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *msg.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xC0 == 0xC0 => return Some(at + 2),
            l => at += 1 + usize::from(l),
        }
    }
}

/// The name at `at`, following compression pointers (a bounded number of them), as an
/// absolute name with its trailing dot, as Go returns it.
fn read_name(msg: &[u8], mut at: usize) -> Option<String> {
    let mut name = String::new();
    for _ in 0..128 {
        let len = *msg.get(at)?;
        match len {
            0 => {
                if name.is_empty() {
                    name.push('.');
                }
                return Some(name);
            }
            l if l & 0xC0 == 0xC0 => {
                at = (usize::from(l & 0x3F) << 8) | usize::from(*msg.get(at + 1)?);
            }
            l => {
                let label = msg.get(at + 1..at + 1 + usize::from(l))?;
                name.push_str(&String::from_utf8_lossy(label));
                name.push('.');
                at += 1 + usize::from(l);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names_as_go_checks_them() {
        for ok in [
            "example.com",
            "_xmpp._tcp.example.com",
            "a-b.c",
            "x",
            "example.com.",
        ] {
            assert!(is_domain_name(ok), "{ok}");
        }
        for bad in [
            "",
            "bad..name",
            "-a.com",
            "a-.com",
            "123.456",
            "a b",
            &"a".repeat(64),
        ] {
            assert!(!is_domain_name(bad), "{bad}");
        }
        assert!(
            lookup("xmpp", "tcp", "bad..name").is_empty(),
            "refused without a query"
        );
    }

    #[test]
    fn parses_srv_answers_with_compressed_names() {
        // Question `_x._tcp.ex.` SRV IN (`ex` is at offset 20); two answers whose names
        // point back at it, with targets `a.ex.` and a pointer to `ex.`.
        let mut m = vec![0, 1, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
        m.extend_from_slice(b"\x02_x\x04_tcp\x02ex\x00\x00\x21\x00\x01");
        for (prio, weight, port, target) in [
            (10u16, 5u16, 80u16, &b"\x01a\xc0\x14"[..]),
            (20, 0, 443, &b"\xc0\x14"[..]),
        ] {
            m.extend_from_slice(&[0xC0, 12, 0, 33, 0, 1, 0, 0, 0, 60]);
            m.extend_from_slice(&((6 + target.len()) as u16).to_be_bytes());
            for v in [prio, weight, port] {
                m.extend_from_slice(&v.to_be_bytes());
            }
            m.extend_from_slice(target);
        }
        let got = parse(&m).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            (
                got[0].target.as_str(),
                got[0].port,
                got[0].priority,
                got[0].weight
            ),
            ("a.ex.", 80, 10, 5)
        );
        assert_eq!((got[1].target.as_str(), got[1].port), ("ex.", 443));
        assert!(parse(&m[..20]).is_none(), "truncated");
        // A compression pointer to itself is malformed, not a hang.
        let mut looped = m.clone();
        let end = looped.len();
        looped[end - 2] = 0xC0;
        looped[end - 1] = (end - 2) as u8;
        assert!(parse(&looped).is_none());
    }
}
