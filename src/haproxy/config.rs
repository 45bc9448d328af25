//! An HAProxy config read structurally: sections and their lines, each line cut into
//! words (comments, blank lines and spacing dropped), and the difference between two
//! configs as `server` changes per `backend`/`listen` section, when that is all it is.

use std::collections::BTreeMap;

use super::server_line::ServerLine;
use super::{Fallback, Reason};

/// Words that open a section.
const SECTIONS: &[&str] = &[
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "userlist",
    "peers",
    "resolvers",
    "mailers",
    "program",
    "http-errors",
    "ring",
    "cache",
    "fcgi-app",
    "log-forward",
];

/// A line's number and its words.
pub type Line = (usize, Vec<String>);

/// One section: its header's words and its lines, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// `["backend", "app"]`; empty for the lines before the first section.
    pub header: Vec<String>,
    /// Each line's words (with line numbers, for messages).
    pub lines: Vec<Line>,
}

impl Section {
    /// Whether its `server` lines are servers the Runtime API manages.
    fn has_servers(&self) -> bool {
        matches!(
            self.header.first().map(String::as_str),
            Some("backend" | "listen")
        )
    }

    fn name(&self) -> String {
        self.header.join(" ")
    }
}

/// Cuts `text` into sections.
pub fn parse(text: &str) -> Vec<Section> {
    let mut sections = vec![Section {
        header: Vec::new(),
        lines: Vec::new(),
    }];
    for (i, line) in text.lines().enumerate() {
        let words = words(line);
        let Some(first) = words.first() else {
            continue;
        };
        if SECTIONS.contains(&first.as_str()) {
            sections.push(Section {
                header: words,
                lines: Vec::new(),
            });
        } else if let Some(s) = sections.last_mut() {
            s.lines.push((i + 1, words));
        }
    }
    sections
}

/// The words of one line as HAProxy splits them: on unquoted spaces, up to an unquoted
/// `#`. Quotes and escapes are kept in the words (two lines are compared as written).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '#') => break,
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            (_, '\\') => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                cur.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (_, c) => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// What changed in one backend: what the Runtime API must do there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendChange {
    /// The backend (or listen section) name.
    pub backend: String,
    /// Servers only the new config has.
    pub added: Vec<ServerLine>,
    /// Names of servers only the old config has.
    pub removed: Vec<String>,
    /// Servers whose address, port, weight or `disabled` changed: (old, new).
    pub changed: Vec<(ServerLine, ServerLine)>,
    /// Every server of the new config's backend, for the check afterwards.
    pub servers: Vec<ServerLine>,
}

/// The server changes that turn `old` into `new`, or why the difference is more than that.
pub fn diff(old: &str, new: &str) -> Result<Vec<BackendChange>, Fallback> {
    let (old, new) = (parse(old), parse(new));
    let other = |detail: String| Fallback::new(Reason::OtherChange, detail);
    if old.len() != new.len() {
        return Err(other("sections were added or removed".into()));
    }
    let uses_default_server = new
        .iter()
        .any(|s| s.header.first().is_some_and(|h| h == "defaults") && has(s, "default-server"));
    let mut changes = Vec::new();
    for (o, n) in old.iter().zip(&new) {
        if o.header != n.header {
            return Err(other(format!(
                "section `{}` became `{}`",
                o.name(),
                n.name()
            )));
        }
        let ((os, orest), (ns, nrest)) = (split(o), split(n));
        if orest != nrest {
            let line = first_difference(&o.lines, &n.lines);
            return Err(other(format!(
                "a line other than a server changed in `{}`{line}",
                n.name()
            )));
        }
        if os == ns {
            continue;
        }
        let c = backend_change(n, &os, &ns)?;
        if c.added.is_empty() && c.removed.is_empty() && c.changed.is_empty() {
            // Only the order of the lines moved.
            continue;
        }
        if !c.added.is_empty() {
            if lines_with(n, "balance").any(|w| w.get(1).is_some_and(|a| a == "static-rr")) {
                return Err(Fallback::new(
                    Reason::StaticRr,
                    format!(
                        "`{}` uses balance static-rr, which refuses add server",
                        n.name()
                    ),
                ));
            }
            if uses_default_server || has(n, "default-server") {
                return Err(Fallback::new(
                    Reason::DefaultServer,
                    format!(
                        "`{}` has default-server settings, which servers added at runtime do not inherit",
                        n.name()
                    ),
                ));
            }
        }
        changes.push(c);
    }
    Ok(changes)
}

type Lines<'a> = [&'a Line];

/// A section's managed `server` lines, and its other lines' words.
fn split(s: &Section) -> (Vec<&Line>, Vec<&Vec<String>>) {
    let (servers, rest): (Vec<_>, Vec<_>) = s
        .lines
        .iter()
        .partition(|(_, w)| s.has_servers() && w.first().is_some_and(|k| k == "server"));
    (servers, rest.into_iter().map(|(_, w)| w).collect())
}

fn backend_change(section: &Section, old: &Lines, new: &Lines) -> Result<BackendChange, Fallback> {
    let name = section.header.get(1).cloned().unwrap_or_default();
    if !super::server_line::safe_word(&name) || name.contains('/') {
        return Err(Fallback::new(
            Reason::RefusedLine,
            format!(
                "section `{}`: a name the runtime API cannot be sent safely",
                section.name()
            ),
        ));
    }
    let by_name = |lines: &Lines| -> Result<BTreeMap<String, Line>, Fallback> {
        let mut m = BTreeMap::new();
        for (n, w) in lines.iter().map(|l| (&l.0, &l.1)) {
            let key = w.get(1).cloned().unwrap_or_default();
            if m.insert(key.clone(), (*n, w.clone())).is_some() {
                return Err(Fallback::new(
                    Reason::OtherChange,
                    format!("server `{key}` appears twice in `{}`", section.name()),
                ));
            }
        }
        Ok(m)
    };
    let (old, new) = (by_name(old)?, by_name(new)?);
    let parse = |(line, w): &Line| {
        ServerLine::parse(w).map_err(|e| {
            Fallback::new(
                Reason::RefusedLine,
                format!("`{}` line {line}: {e}", section.name()),
            )
        })
    };
    let mut c = BackendChange {
        backend: name,
        ..BackendChange::default()
    };
    for (key, line) in &new {
        let parsed = parse(line)?;
        match old.get(key) {
            None => c.added.push(parsed.clone()),
            Some(o) if o.1 == line.1 => {}
            Some(o) => {
                let was = parse(o)?;
                if was.rest != parsed.rest || was.port.is_some() != parsed.port.is_some() {
                    return Err(Fallback::new(
                        Reason::OtherChange,
                        format!(
                            "`{}` line {}: server `{key}` changed more than its address, weight or disabled",
                            section.name(),
                            line.0
                        ),
                    ));
                }
                c.changed.push((was, parsed.clone()));
            }
        }
        c.servers.push(parsed);
    }
    c.removed = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .cloned()
        .collect();
    Ok(c)
}

fn lines_with<'a>(s: &'a Section, kw: &'a str) -> impl Iterator<Item = &'a Vec<String>> {
    s.lines
        .iter()
        .map(|(_, w)| w)
        .filter(move |w| w.first().is_some_and(|k| k == kw))
}

fn has(s: &Section, kw: &str) -> bool {
    lines_with(s, kw).next().is_some()
}

/// ` (line N)`: the first non-server line that differs, for the log.
fn first_difference(old: &[Line], new: &[Line]) -> String {
    let is_server = |w: &Vec<String>| w.first().is_some_and(|k| k == "server");
    let o = old.iter().filter(|(_, w)| !is_server(w));
    let mut n = new.iter().filter(|(_, w)| !is_server(w));
    for a in o {
        match n.next() {
            Some(b) if a.1 == b.1 => continue,
            Some(b) => return format!(" (line {}: `{}`)", b.0, b.1.join(" ")),
            None => return String::new(),
        }
    }
    n.next()
        .map(|b| format!(" (line {}: `{}`)", b.0, b.1.join(" ")))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
