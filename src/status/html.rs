//! The status page: one self-contained HTML document (inline style, no script, no
//! external asset) that refreshes itself every [`REFRESH_SECONDS`]. Every text in it
//! comes from the store or a command and is escaped by [`escape`]; the server also
//! sends a Content-Security-Policy that allows no script at all.

use std::fmt::Write;

use super::clock::{age, utc};
use super::model::{BackendReport, Failure, Report, ResourceReport, When};

/// How often the page reloads itself.
pub const REFRESH_SECONDS: u32 = 5;

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin-bottom:1.5em}\
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}\
th{background:#f3f3f3}.ok{color:#171}.bad{color:#b00;font-weight:bold}.warn{color:#a60}\
pre{background:#f7f7f7;border:1px solid #ddd;padding:.5em;overflow:auto;max-height:40em}\
.add{color:#171}.del{color:#b00}.hunk{color:#06a}section{margin-bottom:2em}\
.muted{color:#777}";

/// Text as HTML: `&`, `<`, `>`, `"` and `'` become entities, so no text can open or
/// close an element or an attribute.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The whole page for `report`.
pub fn page(report: &Report) -> String {
    let mut h = String::with_capacity(8192);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>confsync status</title><style>{STYLE}</style></head><body>\n\
         <h1>confsync</h1><p class=\"muted\">version {} &middot; as of {} &middot; \
         refreshes every {REFRESH_SECONDS}s &middot; <a href=\"status.json\">status.json</a></p>\n",
        escape(&report.version),
        utc(report.generated_unix)
    );
    backends(&mut h, &report.backends);
    resources(&mut h, &report.resources);
    for r in &report.resources {
        details(&mut h, r);
    }
    h.push_str("</body></html>\n");
    h
}

fn backends(h: &mut String, list: &[BackendReport]) {
    h.push_str(
        "<h2>Backends</h2>\n<table id=\"backends\"><tr><th>backend</th><th>kind</th>\
                <th>state</th><th>keys</th><th>last sync</th><th>age</th><th>last listing</th>\
                <th>last error</th></tr>\n",
    );
    for b in list {
        let state = match (b.up, b.serving_saved_state) {
            (true, _) => "<span class=\"ok\">up</span>",
            (false, true) => "<span class=\"bad\">down</span> (serving saved state)",
            (false, false) => "<span class=\"bad\">down</span>",
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{state}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&b.name),
            escape(&b.kind),
            b.keys.map_or_else(|| "-".to_owned(), |n| n.to_string()),
            b.last_sync
                .map_or_else(|| "never".to_owned(), |w| utc(w.unix)),
            b.last_sync
                .map_or_else(|| "-".to_owned(), |w| age(w.age_seconds)),
            b.last_listing
                .as_ref()
                .map_or_else(|| "never".to_owned(), ago),
            b.last_error.as_ref().map_or_else(String::new, failure_line),
        );
    }
    h.push_str("</table>\n");
}

fn resources(h: &mut String, list: &[ResourceReport]) {
    h.push_str(
        "<h2>Resources</h2>\n<table id=\"resources\"><tr><th>resource</th><th>dest</th>\
                <th>backend</th><th>keys seen</th><th>last render</th><th>last change</th>\
                <th>last reload</th><th>state</th></tr>\n",
    );
    for r in list {
        let reload = r.last_reload.as_ref().map_or_else(
            || "-".to_owned(),
            |l| {
                let class = if l.ok { "ok" } else { "bad" };
                let verdict = if l.ok { "ok" } else { "failed" };
                format!(
                    "{} via {} <span class=\"{class}\">{verdict}</span>",
                    ago(&l.at),
                    escape(&l.path)
                )
            },
        );
        let _ = writeln!(
            h,
            "<tr><td><a href=\"#r-{id}\">{name}</a></td><td>{dest}</td><td>{backend}</td>\
             <td>{keys}</td><td>{render}</td><td>{change}</td><td>{reload}</td><td>{state}</td></tr>",
            id = anchor(&r.name),
            name = escape(&r.name),
            dest = escape(&r.dest),
            backend = escape(&r.backend),
            keys = keys(r),
            render = r
                .last_render
                .as_ref()
                .map_or_else(|| "never".to_owned(), ago),
            change = r
                .last_change
                .as_ref()
                .map_or_else(|| "never".to_owned(), ago),
            state = state(r),
        );
    }
    h.push_str("</table>\n");
}

fn details(h: &mut String, r: &ResourceReport) {
    let _ = writeln!(
        h,
        "<section id=\"r-{}\"><h3>{}</h3><p>{} &larr; template {} from backend {}</p>",
        anchor(&r.name),
        escape(&r.name),
        escape(&r.dest),
        escape(&r.template),
        escape(&r.backend)
    );
    if let Some(e) = &r.last_error {
        let _ = writeln!(
            h,
            "<h4>Last error</h4><p class=\"bad\">{}</p>",
            failure_line(e)
        );
        if let Some(out) = &e.output {
            let _ = writeln!(h, "<pre class=\"stderr\">{}</pre>", escape(out));
        }
    }
    if let Some(d) = &r.diff {
        let at = r.last_change.as_ref().map_or_else(String::new, ago);
        let _ = writeln!(h, "<h4>Last change ({at})</h4><pre class=\"diff\">");
        for line in d.text.lines() {
            let class = match line.as_bytes().first() {
                _ if line.starts_with("+++") || line.starts_with("---") => "muted",
                Some(b'+') => "add",
                Some(b'-') => "del",
                Some(b'@') => "hunk",
                _ => "",
            };
            let _ = writeln!(h, "<span class=\"{class}\">{}</span>", escape(line));
        }
        if d.truncated {
            h.push_str("<span class=\"warn\">[diff cut at the size cap]</span>\n");
        }
        h.push_str("</pre>\n");
    } else if let Some(why) = &r.diff_withheld {
        let _ = writeln!(h, "<p class=\"muted\">Diff withheld: {}</p>", escape(why));
    }
    h.push_str("</section>\n");
}

fn keys(r: &ResourceReport) -> String {
    let seen = r
        .keys_seen
        .map_or_else(|| "-".to_owned(), |n| n.to_string());
    if r.keys_left_out > 0 {
        format!("{seen} ({} left out by a pattern)", r.keys_left_out)
    } else {
        seen
    }
}

fn state(r: &ResourceReport) -> String {
    let class = match r.state.as_str() {
        "in_step" => "ok",
        "retrying" => "bad",
        _ => "warn",
    };
    let mut s = format!(
        "<span class=\"{class}\">{}</span>",
        escape(&r.state.replace('_', " "))
    );
    if let Some(d) = &r.state_detail {
        let _ = write!(s, ": {}", escape(d));
    }
    if r.reload_pending {
        s.push_str("; <span class=\"bad\">reload pending</span>");
    }
    if let Some(g) = &r.guard_refusal {
        let _ = write!(s, "; guarded: {}", escape(g));
    }
    s
}

fn failure_line(f: &Failure) -> String {
    format!(
        "{} at {} ({} ago): {}",
        escape(&f.stage),
        utc(f.at.unix),
        age(f.at.age_seconds),
        escape(&f.message)
    )
}

fn ago(w: &When) -> String {
    format!(
        "<span title=\"{}\">{} ago</span>",
        utc(w.unix),
        age(w.age_seconds)
    )
}

/// A fragment id from a resource name: letters, digits, `-` and `_` kept, anything
/// else as `.XX` hex, so distinct names give distinct ids and no quote gets through.
fn anchor(name: &str) -> String {
    let mut id = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            id.push(char::from(b));
        } else {
            let _ = write!(id, ".{b:02x}");
        }
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_leaves_no_markup() {
        assert_eq!(
            escape("</pre><script>a('x\")&</script>"),
            "&lt;/pre&gt;&lt;script&gt;a(&#39;x&quot;)&amp;&lt;/script&gt;"
        );
    }

    #[test]
    fn anchors_keep_names_apart_and_quote_free() {
        assert_eq!(anchor("web-1_a"), "web-1_a");
        assert_eq!(anchor("a\"b"), "a.22b");
        assert_ne!(anchor("a.2e"), anchor("a.."));
    }
}
