//! Placeholders in check and reload commands (`{{.src}}`, `{{ src }}`, `{{ dest }}`)
//! replaced by shell-quoted paths. The command is scanned as `/bin/sh` reads it, so each
//! value is quoted for the context its placeholder sits in: bare, it is single-quoted
//! when it needs it; inside double quotes, `$`, `` ` ``, `"` and `\` are escaped; inside
//! single quotes, the quote is closed, the value's own quotes escaped, and reopened. A
//! path with spaces works, an existing `"{{.src}}"` still works, and nothing in a path
//! can run as a command.

/// The quoting context at a point of a `/bin/sh` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    /// Outside quotes; `parens` counts `(` opened inside this context, so the `)` that
    /// closes a `$(` is told from a subshell's.
    Plain { parens: usize },
    /// Inside `"..."`.
    Double,
    /// Inside `'...'`.
    Single,
    /// Inside `` `...` ``.
    Backtick,
}

/// `cmd` with every placeholder of `vars` (`{{name}}`, `{{.name}}`, with or without
/// spaces inside the braces) replaced by its value, quoted for where it sits.
pub fn substitute(cmd: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(cmd.len());
    let mut stack = vec![Ctx::Plain { parens: 0 }];
    let mut word_start = true;
    let mut chars = cmd.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let top = *stack.last().expect("the outer context is never popped");
        if c == '{'
            && let Some((len, value)) = placeholder(&cmd[i..], vars)
        {
            out.push_str(&quote_for(top, value));
            for _ in 1..cmd[i..i + len].chars().count() {
                chars.next();
            }
            word_start = false;
            continue;
        }
        out.push(c);
        let was_word_start = word_start;
        word_start = c.is_whitespace() || ";&|()".contains(c);
        match (top, c) {
            (Ctx::Single, '\'') | (Ctx::Double, '"') => {
                stack.pop();
            }
            (Ctx::Single, _) => {}
            (_, '\\') => {
                // The next character is taken literally (in double quotes only a few are
                // special, but none of them changes the context).
                if let Some((_, n)) = chars.next() {
                    out.push(n);
                }
            }
            (Ctx::Backtick, '`') => {
                stack.pop();
            }
            (_, '`') => stack.push(Ctx::Backtick),
            (_, '$') if chars.peek().is_some_and(|&(_, n)| n == '(') => {
                chars.next();
                out.push('(');
                stack.push(Ctx::Plain { parens: 0 });
            }
            (Ctx::Plain { .. } | Ctx::Backtick, '\'') => stack.push(Ctx::Single),
            (Ctx::Plain { .. } | Ctx::Backtick, '"') => stack.push(Ctx::Double),
            (Ctx::Plain { parens }, '(') => {
                *stack.last_mut().unwrap() = Ctx::Plain { parens: parens + 1 };
            }
            (Ctx::Plain { parens }, ')') => {
                if parens > 0 {
                    *stack.last_mut().unwrap() = Ctx::Plain { parens: parens - 1 };
                } else if stack.len() > 1 {
                    stack.pop();
                }
            }
            (Ctx::Plain { .. }, '#') if was_word_start => {
                // A comment runs to the end of the line; its quotes mean nothing.
                while let Some(&(_, n)) = chars.peek() {
                    if n == '\n' {
                        break;
                    }
                    out.push(n);
                    chars.next();
                }
            }
            _ => {}
        }
    }
    out
}

/// The length of the placeholder `text` starts with and its value, if it is one:
/// `{{`, spaces, an optional `.`, a name of `vars`, spaces, `}}`.
fn placeholder<'v>(text: &str, vars: &[(&str, &'v str)]) -> Option<(usize, &'v str)> {
    let inner = text.strip_prefix("{{")?;
    let end = inner.find("}}")?;
    let name = inner[..end].trim_matches(' ');
    let name = name.strip_prefix('.').unwrap_or(name);
    vars.iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| (2 + end + 2, *v))
}

/// `value` written so that, in context `ctx`, the shell reads exactly `value`.
fn quote_for(ctx: Ctx, value: &str) -> String {
    match ctx {
        Ctx::Plain { .. } | Ctx::Backtick => {
            // Paths hold no NUL, so quoting cannot fail; drop one defensively.
            let v = value.replace('\0', "");
            shlex::try_quote(&v)
                .map(|q| q.into_owned())
                .unwrap_or_default()
        }
        Ctx::Double => {
            let mut out = String::with_capacity(value.len());
            for c in value.chars() {
                if matches!(c, '$' | '`' | '"' | '\\') {
                    out.push('\\');
                }
                out.push(c);
            }
            out
        }
        Ctx::Single => value.replace('\'', r"'\''"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(cmd: &str, src: &str) -> String {
        substitute(cmd, &[("src", src), ("dest", "/etc/d")])
    }

    #[test]
    fn plain_paths_are_left_as_they_are() {
        assert_eq!(
            sub(
                "haproxy -c -f {{.src}} && cp {{ src }} {{ dest }}.bak {{.dest}}",
                "/x/.s"
            ),
            "haproxy -c -f /x/.s && cp /x/.s /etc/d.bak /etc/d"
        );
        assert_eq!(sub("{{src}} {{ .src }} {{  src  }}", "/a"), "/a /a /a");
        // Not ours: left alone.
        assert_eq!(sub("echo {{ other }} {{", "/a"), "echo {{ other }} {{");
    }

    #[test]
    fn a_table_of_contexts_and_values() {
        let cases: &[(&str, &str, &str)] = &[
            ("cat {{.src}}", "/a b/c", "cat '/a b/c'"),
            ("cat \"{{.src}}\"", "/a b/c", "cat \"/a b/c\""),
            ("cat '{{.src}}'", "/a b/c", "cat '/a b/c'"),
            (
                "cat \"{{.src}}\"",
                "/a\"$b`c\\d",
                "cat \"/a\\\"\\$b\\`c\\\\d\"",
            ),
            ("cat '{{.src}}'", "/it's", "cat '/it'\\''s'"),
            (
                "cat \"x $(cat {{.src}}) y\"",
                "/a b",
                "cat \"x $(cat '/a b') y\"",
            ),
            (
                "cat $( (true) ; echo {{.src}})",
                "/a b",
                "cat $( (true) ; echo '/a b')",
            ),
            ("cat `echo {{.src}}`", "/a b", "cat `echo '/a b'`"),
            ("echo \\\" {{.src}}", "/a b", "echo \\\" '/a b'"),
            (
                "true # don't\ncat {{.src}}",
                "/a b",
                "true # don't\ncat '/a b'",
            ),
            ("echo it\\'s {{.src}}", "/a b", "echo it\\'s '/a b'"),
        ];
        for (cmd, value, want) in cases {
            assert_eq!(&sub(cmd, value), want, "{cmd} with {value:?}");
        }
    }

    /// Every context, run through the real `/bin/sh`: what the command sees is the path.
    #[test]
    fn the_shell_reads_back_exactly_the_path() {
        let values = [
            "/tmp/plain.cfg",
            "/tmp/with space/x.cfg",
            "/tmp/it's/x",
            "/tmp/$HOME/`id`/$(id)/x",
            "/tmp/a\"b\\c/x",
            "/tmp/new\nline/*?[a]~{x,y}",
            "/tmp/'; echo injected; '",
        ];
        let commands = [
            "printf '%s' {{.src}}",
            "printf '%s' \"{{.src}}\"",
            "printf '%s' '{{.src}}'",
            "printf '%s' \"$(printf '%s' {{ src }})\"",
            "printf '%s' \"$(printf '%s' \"{{ src }}\")\"",
            "x={{.src}}; printf '%s' \"$x\"",
        ];
        for v in values {
            for c in commands {
                let cmd = sub(c, v);
                let out = std::process::Command::new("/bin/sh")
                    .arg("-c")
                    .arg(&cmd)
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{cmd}");
                assert_eq!(String::from_utf8_lossy(&out.stdout), v, "{c} became {cmd}");
            }
        }
    }
}
