//! `--key-template` and `--value-template`: text with `{service}`, `{name}`, `{id}`,
//! `{port}` and `{host}` placeholders, expanded once per container.
//!
//! What a placeholder stands for comes from whoever runs a container (its name, its
//! labels), so it is hostile input: a value that is empty, holds `/`, `..`, whitespace,
//! a control character or a brace is refused, and the container is left out with a log
//! naming it. A key built from accepted values therefore stays below the template's own
//! prefix (no segment becomes `.` or `..`, no new segment appears).

use std::fmt;

/// What a placeholder names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The `confsync.service` label, else the image's repository name.
    Service,
    /// The container's name (without Docker's leading `/`).
    Name,
    /// The full container id.
    Id,
    /// The published host port of the service's port.
    Port,
    /// The host address of that port (`--docker-host-ip` for a 0.0.0.0 or :: binding);
    /// an IPv6 address in brackets, so `{host}:{port}` is always an address.
    Host,
}

impl Field {
    fn parse(word: &str) -> Option<Field> {
        Some(match word {
            "service" => Field::Service,
            "name" => Field::Name,
            "id" => Field::Id,
            "port" => Field::Port,
            "host" => Field::Host,
            _ => return None,
        })
    }

    fn word(self) -> &'static str {
        match self {
            Field::Service => "service",
            Field::Name => "name",
            Field::Id => "id",
            Field::Port => "port",
            Field::Host => "host",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Hole(Field),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The flag it came from, for errors.
    flag: &'static str,
    pieces: Vec<Piece>,
}

/// The values of one container's placeholders (`None`: it has none, e.g. no port).
#[derive(Debug, Clone, Default)]
pub struct Values {
    pub service: Option<String>,
    pub name: String,
    pub id: String,
    pub port: Option<String>,
    pub host: Option<String>,
}

impl Values {
    fn get(&self, f: Field) -> Option<&str> {
        match f {
            Field::Service => self.service.as_deref(),
            Field::Name => Some(&self.name),
            Field::Id => Some(&self.id),
            Field::Port => self.port.as_deref(),
            Field::Host => self.host.as_deref(),
        }
    }
}

/// Why a container's template could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Template {
    /// Parses `text`; `flag` names it in errors (`--key-template`).
    pub fn parse(flag: &'static str, text: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let open = rest.find('{');
            let close = rest.find('}');
            match (open, close) {
                (None, None) => {
                    pieces.push(Piece::Text(rest.to_string()));
                    break;
                }
                (Some(o), Some(c)) if o < c => {
                    if o > 0 {
                        pieces.push(Piece::Text(rest[..o].to_string()));
                    }
                    let word = &rest[o + 1..c];
                    let field = Field::parse(word).ok_or_else(|| {
                        format!(
                            "{flag} {text:?}: unknown placeholder {{{word}}} \
                             (use {{service}}, {{name}}, {{id}}, {{port}} or {{host}})"
                        )
                    })?;
                    pieces.push(Piece::Hole(field));
                    rest = &rest[c + 1..];
                }
                _ => return Err(format!("{flag} {text:?}: a brace without its pair")),
            }
        }
        Ok(Template { flag, pieces })
    }

    /// True when the template has at least one placeholder.
    pub fn has_placeholder(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Hole(_)))
    }

    /// True when the template uses `f`.
    pub fn uses(&self, f: Field) -> bool {
        self.pieces.contains(&Piece::Hole(f))
    }

    /// The text before the first placeholder (the prefix every key shares).
    pub fn prefix(&self) -> &str {
        match self.pieces.first() {
            Some(Piece::Text(t)) => t,
            _ => "",
        }
    }

    /// The template with every placeholder filled in from `v`, each value checked.
    pub fn expand(&self, v: &Values) -> Result<String, Refused> {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Hole(f) => {
                    let value = v.get(*f).ok_or_else(|| {
                        Refused(format!(
                            "{} uses {{{}}}, which this container has none of",
                            self.flag,
                            f.word()
                        ))
                    })?;
                    check_value(*f, value).map_err(|why| {
                        Refused(format!("{} {{{}}} = {value:?}: {why}", self.flag, f.word()))
                    })?;
                    out.push_str(value);
                }
            }
        }
        Ok(out)
    }
}

/// A placeholder's value: non-empty, no `/`, no `..`, no whitespace, control characters
/// or braces.
fn check_value(f: Field, value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        return Err("empty");
    }
    if value.contains('/') {
        return Err("holds a `/`");
    }
    if value.contains("..") {
        return Err("holds `..`");
    }
    if value == "." {
        return Err("is `.`");
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("holds whitespace or a control character");
    }
    if value.contains(['{', '}']) {
        return Err("holds a brace");
    }
    // A host in brackets holds colons; nothing else may start a bracket.
    if f != Field::Host && value.contains(['[', ']']) {
        return Err("holds a bracket");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(name: &str) -> Values {
        Values {
            service: Some("web".into()),
            name: name.into(),
            id: "abc123".into(),
            port: Some("32768".into()),
            host: Some("10.0.0.5".into()),
        }
    }

    #[test]
    fn expands_every_placeholder() {
        let k = Template::parse("--key-template", "/app/{service}/{name}-{id}").unwrap();
        assert_eq!(k.expand(&values("web1")).unwrap(), "/app/web/web1-abc123");
        assert_eq!(k.prefix(), "/app/");
        let v = Template::parse("--value-template", "{host}:{port}").unwrap();
        assert_eq!(v.expand(&values("web1")).unwrap(), "10.0.0.5:32768");
        assert!(v.uses(Field::Port) && !v.uses(Field::Name));
    }

    #[test]
    fn bad_templates_are_named() {
        for bad in ["/app/{nme}", "/app/{name", "/app/name}", "/app/}{name"] {
            let e = Template::parse("--key-template", bad).unwrap_err();
            assert!(e.contains("--key-template") && e.contains(bad), "{e}");
        }
        let t = Template::parse("--key-template", "/app/servers").unwrap();
        assert!(!t.has_placeholder());
    }

    #[test]
    fn hostile_values_are_refused() {
        let k = Template::parse("--key-template", "/app/servers/{name}").unwrap();
        for bad in [
            "..", ".", "a/../b", "x/y", "a b", "a\nb", "", "a{b}", "x\u{7f}",
        ] {
            let e = k.expand(&values(bad)).unwrap_err();
            assert!(e.0.contains("{name}"), "{bad:?}: {e}");
        }
        let mut v = values("web1");
        v.port = None;
        let t = Template::parse("--value-template", "{host}:{port}").unwrap();
        assert!(t.expand(&v).unwrap_err().0.contains("{port}"));
        v.host = Some("[::1]".into());
        v.port = Some("80".into());
        assert_eq!(t.expand(&v).unwrap(), "[::1]:80");
    }
}
