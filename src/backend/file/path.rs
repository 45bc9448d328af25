//! The key path of the node being read, as confd's `nodeWalk` builds it: `path.Join` of
//! the parent and each map key or list index, so `/`, `.`, `..` and empty keys are
//! cleaned (`/a` + `../b` is `/b`, and nothing climbs above `/`).

/// The path, `/` at the top.
#[derive(Debug)]
pub(super) struct KeyPath(String);

/// How to put the path back once a value is done.
#[derive(Debug)]
pub(super) enum Restore {
    Truncate(usize),
    /// A key with `/`, `.` or `..` rewrote the path.
    Replace(String),
}

impl KeyPath {
    pub(super) fn new() -> Self {
        Self(String::from("/"))
    }

    pub(super) fn as_str(&self) -> &str {
        &self.0
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// `path = path.Join(path, key)`; the bytes written are added to `*work`.
    pub(super) fn push(&mut self, key: &str, work: &mut usize) -> Restore {
        let len = self.0.len();
        let dots = key.len() <= 2 && key.bytes().all(|c| c == b'.');
        if !dots && !key.bytes().any(|c| c == b'/') {
            *work += key.len() + 1;
            if len > 1 {
                self.0.push('/');
            }
            self.0.push_str(key);
            return Restore::Truncate(len);
        }
        let joined = crate::gopath::join(&self.0, key);
        *work += joined.len() + len;
        Restore::Replace(std::mem::replace(&mut self.0, joined))
    }

    /// `path = path.Join(path, strconv.Itoa(i))`.
    pub(super) fn push_index(&mut self, i: usize, work: &mut usize) -> Restore {
        let mut buf = [0u8; 20];
        let mut at = buf.len();
        let mut n = i;
        loop {
            at -= 1;
            buf[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let digits = std::str::from_utf8(&buf[at..]).expect("ASCII digits");
        self.push(digits, work)
    }

    pub(super) fn truncate(&mut self, len: usize) {
        self.0.truncate(len);
    }

    pub(super) fn restore(&mut self, r: Restore) {
        match r {
            Restore::Truncate(n) => self.0.truncate(n),
            Restore::Replace(p) => self.0 = p,
        }
    }
}
