//! The fast path is never wrong: on generated documents of the shape it reads (and near
//! misses of it), whenever it accepts a file it must give exactly the entries the full
//! parser gives, in the same order. A bounded, seeded loop, so a failure reproduces.

use super::{Entries, fast, yaml};

/// Characters keys and values are drawn from: the indicators and separators that change
/// how YAML reads a line, some non-ASCII, and plenty of letters.
const CHARS: &[&str] = &[
    "a", "b", "c", "x", "y", "Z", "0", "1", "9", ".", "-", "_", "/", " ", " ", ":", "#", "'", "\"",
    "\\", "[", "]", "{", "}", ",", "!", "&", "*", "?", "|", ">", "%", "@", "`", "~", "<", "=", "+",
    "é", "ü", "中", "\t", "\u{85}", "\u{2028}", "\u{feff}",
];

/// Scalars YAML 1.1 gives a type (and some near misses).
const WORDS: &[&str] = &[
    "yes",
    "no",
    "on",
    "off",
    "y",
    "n",
    "true",
    "False",
    "~",
    "null",
    "NULL",
    "0x1F",
    "010",
    "08",
    "1_000",
    "1e3",
    ".5",
    ".inf",
    "-.Inf",
    ".nan",
    "1.10",
    "-7",
    "+12",
    "2001-12-14",
    "12:30:45",
    "10.0.0.1:8080",
    "http://h/p",
    "a #b",
    "a#b",
    "<<",
    "- a",
    "-1",
    "-x",
    "---",
    "...",
    "12345678901234567890",
    "0b101",
    "",
];

struct Gen {
    rng: fastrand::Rng,
}

impl Gen {
    fn text(&mut self, max: usize) -> String {
        let n = self.rng.usize(0..=max);
        (0..n)
            .map(|_| {
                if self.rng.u8(..4) == 0 {
                    CHARS[self.rng.usize(..CHARS.len())]
                } else {
                    CHARS[self.rng.usize(..10)]
                }
            })
            .collect()
    }

    fn scalar(&mut self) -> String {
        match self.rng.u8(..10) {
            0..=2 => WORDS[self.rng.usize(..WORDS.len())].to_string(),
            3 => format!("'{}'", self.text(6).replace('\'', "''")),
            4 => format!("\"{}\"", self.text(6).replace(['"', '\\'], "")),
            5 => format!("\"{}\"", self.text(6)),
            6 => format!("'{}'", self.text(6)),
            _ => {
                let t = self.text(8);
                if t.is_empty() { "v".into() } else { t }
            }
        }
    }

    fn key(&mut self) -> String {
        match self.rng.u8(..12) {
            0 => WORDS[self.rng.usize(..WORDS.len())].to_string(),
            1 => format!("\"{}\"", self.text(4).replace(['"', '\\'], "")),
            2 => format!("'{}'", self.text(4).replace('\'', "''")),
            3 => self.text(5),
            // Few distinct names, so duplicate keys happen.
            _ => ["a", "b", "c", "web1", "k-2", "x.y", "a/b"][self.rng.usize(..7)].to_string(),
        }
    }

    fn comment(&mut self) -> String {
        match self.rng.u8(..6) {
            0 => format!(" # {}", self.text(5)),
            1 => format!("  #{}", self.text(5)),
            2 => format!("#{}", self.text(3)),
            _ => String::new(),
        }
    }

    fn block(&mut self, out: &mut Vec<String>, indent: usize, depth: usize) {
        let pad = " ".repeat(indent);
        for _ in 0..self.rng.usize(1..5) {
            let k = self.key();
            match self.rng.u8(..20) {
                0..=2 if depth < 4 => {
                    out.push(format!("{pad}{k}:{}", self.comment()));
                    let step = [1, 2, 2, 4][self.rng.usize(..4)];
                    self.block(out, indent + step, depth + 1);
                }
                3..=4 if depth < 4 => {
                    out.push(format!("{pad}{k}:"));
                    let at = indent + [0, 0, 2, 1][self.rng.usize(..4)];
                    for _ in 0..self.rng.usize(1..4) {
                        let item = if self.rng.u8(..8) == 0 {
                            format!("{}: {}", self.key(), self.scalar())
                        } else {
                            self.scalar()
                        };
                        out.push(format!("{}- {item}{}", " ".repeat(at), self.comment()));
                    }
                }
                5 => out.push(format!("{pad}{k}:{}", self.comment())),
                6 => out.push(String::new()),
                7 => out.push(format!(
                    "{}#{}",
                    " ".repeat(self.rng.usize(0..6)),
                    self.text(6)
                )),
                8 => out.push(format!(
                    "{pad}{k}: {}{}",
                    self.scalar(),
                    " ".repeat(self.rng.usize(0..3))
                )),
                9 => {
                    // Near misses: continuation lines, odd indents, separators.
                    let odd = [
                        format!("{pad}  {}", self.scalar()),
                        format!("{pad}{k}:{}", self.scalar()),
                        format!("{pad}{k} : {}", self.scalar()),
                        format!("{pad}- {}", self.scalar()),
                        format!("{} {k}: {}", pad, self.scalar()),
                        format!("{pad}{k}: [{}]", self.scalar()),
                        format!("{pad}{k}: {}: {}", self.scalar(), self.scalar()),
                        format!("{pad}{k}:\t{}", self.scalar()),
                        "---".to_string(),
                    ];
                    out.push(odd[self.rng.usize(..odd.len())].clone());
                }
                _ => out.push(format!("{pad}{k}: {}{}", self.scalar(), self.comment())),
            }
        }
    }

    fn doc(&mut self) -> String {
        let mut lines = Vec::new();
        if self.rng.u8(..8) == 0 {
            lines.push("---".to_string());
        }
        let indent = if self.rng.u8(..10) == 0 { 2 } else { 0 };
        self.block(&mut lines, indent, 0);
        let eol = if self.rng.u8(..10) == 0 { "\r\n" } else { "\n" };
        let mut text = lines.join(eol);
        if self.rng.u8(..4) != 0 {
            text.push_str(eol);
        }
        text
    }
}

#[test]
fn fast_path_gives_the_full_parsers_entries() {
    let mut g = Gen {
        rng: fastrand::Rng::with_seed(0x5eed),
    };
    let (mut accepted, total) = (0, 12_000);
    for i in 0..total {
        let text = g.doc();
        let mut fast_out = Entries::new();
        if !fast::read(&text, &mut fast_out) {
            continue;
        }
        accepted += 1;
        let mut full_out = Entries::new();
        if let Err(e) = yaml::read_full(&text, &mut full_out) {
            panic!("doc {i}: the fast path read it, the full parser fails ({e}):\n{text}");
        }
        assert_eq!(fast_out, full_out, "doc {i}:\n{text}");
    }
    // The generator must keep the fast path busy (and give it things to refuse).
    assert!(
        accepted > total / 5 && accepted < total * 9 / 10,
        "{accepted} of {total}"
    );
}

#[test]
fn fast_path_reads_the_common_shapes() {
    for text in [
        "app:\n  servers:\n    web1: 10.0.0.1:8080 # primary\n    web2: '10.0.0.2:8080'\n",
        "---\n# servers\nlist:\n- a\n- \"b\"\nmap:\n    k: v\n\nother: ~\n",
        "a:\r\n  b: c\r\n",
        "  indented: root\n  second: key\n",
    ] {
        let mut out = Entries::new();
        assert!(fast::read(text, &mut out), "{text:?}");
    }
    for text in [
        "a: &x 1\n",
        "a: [1]\n",
        "a: |\n  x\n",
        "a: b\n  c\n",
        "a:\tb\n",
        "<<: {}\n",
        "yes: 1\n",
        "a: \"\\n\"\n",
        "- a\n",
    ] {
        let mut out = Entries::new();
        assert!(!fast::read(text, &mut out), "{text:?}");
    }
}
