//! `confsync status`'s output: the [`Report`] as tables for a terminal. Texts from the
//! store and from commands pass through [`printable`] first, so they cannot move the
//! cursor, change colours or retitle the terminal.

use std::fmt::Write;

use super::clock::age;
use super::model::{Failure, Report, ResourceReport, When};

/// Longest cell before it is cut with `...`.
const MAX_CELL: usize = 60;

/// `s` with control characters (escape sequences included) shown as `\u{..}`, tabs
/// and newlines as spaces when `one_line`.
pub fn printable(s: &str, one_line: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\t' | '\r' if one_line => out.push(' '),
            '\n' => out.push('\n'),
            '\t' => out.push_str("    "),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// The report as text: a backend table, a resource table, then each resource's last
/// error with its command output.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let rows: Vec<Vec<String>> = report
        .backends
        .iter()
        .map(|b| {
            let state = match (b.up, b.serving_saved_state) {
                (true, _) => "up".to_owned(),
                (false, true) => "down (saved state)".to_owned(),
                (false, false) => "down".to_owned(),
            };
            vec![
                b.name.clone(),
                b.kind.clone(),
                state,
                b.keys.map_or_else(|| "-".to_owned(), |n| n.to_string()),
                b.last_sync.as_ref().map_or_else(|| "never".to_owned(), ago),
                b.last_listing
                    .as_ref()
                    .map_or_else(|| "never".to_owned(), ago),
                b.last_error
                    .as_ref()
                    .map_or_else(String::new, |f| f.message.clone()),
            ]
        })
        .collect();
    table(
        &mut out,
        &[
            "BACKEND",
            "KIND",
            "STATE",
            "KEYS",
            "LAST SYNC",
            "LAST LISTING",
            "LAST ERROR",
        ],
        &rows,
    );
    out.push('\n');
    let rows: Vec<Vec<String>> = report.resources.iter().map(resource_row).collect();
    table(
        &mut out,
        &[
            "RESOURCE", "DEST", "BACKEND", "KEYS", "RENDERED", "CHANGED", "RELOADED", "STATE",
        ],
        &rows,
    );
    for r in &report.resources {
        if let Some(e) = &r.last_error {
            error(&mut out, &r.name, e);
        }
    }
    out
}

fn resource_row(r: &ResourceReport) -> Vec<String> {
    let mut state = r.state.replace('_', " ");
    if let Some(d) = &r.state_detail {
        let _ = write!(state, ": {d}");
    }
    if r.reload_pending {
        state.push_str("; reload pending");
    }
    if r.guard_refusal.is_some() {
        state.push_str("; guarded");
    }
    let reloaded = r.last_reload.as_ref().map_or_else(
        || "never".to_owned(),
        |l| {
            let verdict = if l.ok { "" } else { " FAILED" };
            format!("{} ({}){verdict}", ago(&l.at), l.path)
        },
    );
    vec![
        r.name.clone(),
        r.dest.clone(),
        r.backend.clone(),
        r.keys_seen
            .map_or_else(|| "-".to_owned(), |n| n.to_string()),
        r.last_render
            .as_ref()
            .map_or_else(|| "never".to_owned(), ago),
        r.last_change
            .as_ref()
            .map_or_else(|| "never".to_owned(), ago),
        reloaded,
        state,
    ]
}

fn error(out: &mut String, name: &str, e: &Failure) {
    let _ = writeln!(
        out,
        "\n{} last error ({}, {}): {}",
        printable(name, true),
        e.stage,
        ago(&e.at),
        printable(&e.message, true)
    );
    if let Some(o) = &e.output {
        for line in printable(o, false).lines() {
            let _ = writeln!(out, "  | {line}");
        }
    }
}

fn ago(w: &When) -> String {
    format!("{} ago", age(w.age_seconds))
}

/// Left-aligned columns, two spaces apart; cells made printable and cut at [`MAX_CELL`].
fn table(out: &mut String, head: &[&str], rows: &[Vec<String>]) {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| cut(&printable(c, true))).collect())
        .collect();
    let mut width: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for row in &cells {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |out: &mut String, row: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (c, w) in row.zip(&width) {
            let _ = write!(text, "{c:<w$}  ");
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(out, &mut head.iter().copied());
    for row in &cells {
        line(out, &mut row.iter().map(String::as_str));
    }
    if rows.is_empty() {
        out.push_str("(none)\n");
    }
}

fn cut(s: &str) -> String {
    if s.chars().count() <= MAX_CELL {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(MAX_CELL - 3).collect();
    t.push_str("...");
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_shown_not_sent() {
        assert_eq!(printable("a\u{1b}[31mb\nc", true), "a\\u{1b}[31mb c");
        assert_eq!(printable("x\ny\u{7}", false), "x\ny\\u{7}");
    }

    #[test]
    fn long_cells_are_cut() {
        let long = "é".repeat(100);
        assert_eq!(cut(&long).chars().count(), MAX_CELL);
    }
}
