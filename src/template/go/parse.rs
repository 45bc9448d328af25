//! The parser of Go's `text/template`, with Go's grammar and its checks: functions must
//! exist, variables must be declared, `break`/`continue` only inside `range`, `define`
//! only at the top level. It builds the main template and every `define`/`block`.

use std::collections::HashMap;

use super::ast::{Command, Control, List, Node, Number, Operand, Pipe, Span, Term, VarRef};
use super::funcs::Func;
use super::lex::{Kind, Token, lex_counting};

/// Deepest nesting of controls and parentheses a template may have (Go has no limit; a
/// config template needs a handful, and the limit keeps the parser's stack bounded).
pub const MAX_NESTING: usize = 100;

/// A parse error: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset in the source.
    pub pos: usize,
    /// The message, Go's where Go has one.
    pub message: String,
}

/// The trees of one template file: the main one and every one it defines.
#[derive(Debug, Default)]
pub struct Trees {
    /// By name; the main template is under the file's name.
    pub trees: HashMap<String, List>,
    /// Variable names by [`VarRef`]; `$` is the first.
    pub vars: Vec<String>,
    /// [`VarRef`]s by name.
    refs: HashMap<String, VarRef>,
}

impl Trees {
    fn intern(&mut self, name: &str) -> VarRef {
        if let Some(r) = self.refs.get(name) {
            return *r;
        }
        let r = VarRef(self.vars.len() as u32);
        self.vars.push(name.to_string());
        self.refs.insert(name.to_string(), r);
        r
    }

    /// The root variable `$`.
    pub const DOLLAR: VarRef = VarRef(0);
}

/// The first of the characters that stand for the bytes of a template that are not
/// UTF-8 (0x80..=0xFF map to U+10FF80..=U+10FFFF), so the parser can work on text and
/// the output still holds the original bytes.
const RAW_BYTE: u32 = 0x10_FF00;

/// `bytes` as text, each byte that is not part of valid UTF-8 mapped to a private
/// character (see [`RAW_BYTE`]); `None` when `bytes` is valid UTF-8 already.
pub fn escape_raw_bytes(bytes: &[u8]) -> Option<String> {
    if std::str::from_utf8(bytes).is_ok() {
        return None;
    }
    let mut out = String::with_capacity(bytes.len() * 2);
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push(char::from_u32(RAW_BYTE + u32::from(*b)).unwrap_or('\u{fffd}'));
        }
    }
    Some(out)
}

/// Text back to bytes, the private characters of [`escape_raw_bytes`] as their bytes.
fn unescape_raw_bytes(text: &str) -> Box<[u8]> {
    let mut out = Vec::with_capacity(text.len());
    let mut buf = [0u8; 4];
    for c in text.chars() {
        let n = c as u32;
        if (RAW_BYTE + 0x80..=RAW_BYTE + 0xFF).contains(&n) {
            out.push((n - RAW_BYTE) as u8);
        } else {
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    out.into_boxed_slice()
}

/// Parses `text` as the template `name` (and the templates it defines); `raw_bytes`
/// says `text` came from [`escape_raw_bytes`].
pub fn parse(name: &str, text: &str, raw_bytes: bool) -> Result<Trees, ParseError> {
    parse_counting(name, text, raw_bytes).0
}

/// [`parse`], and how much work lexing and parsing took (characters examined plus
/// tokens read), which the tests bound by the input's length.
pub fn parse_counting(name: &str, text: &str, raw_bytes: bool) -> (Result<Trees, ParseError>, u64) {
    let mut trees = Trees::default();
    trees.intern("$");
    let (tokens, lexed) = lex_counting(text);
    let mut p = Parser {
        tokens,
        i: 0,
        trees,
        scope: Scope::new(),
        depth: 0,
        raw_bytes,
        work: 0,
        action_line: None,
    };
    let result = p.parse_top().and_then(|root| p.add(name, root));
    let work = lexed + p.work;
    (result.map(|()| p.trees), work)
}

/// What one tree's parse tracks: the variables in scope and how deep in `range` it is.
struct Scope {
    /// Declarations in order, so a control's end can drop its own.
    vars: Vec<VarRef>,
    /// How many of `vars` each variable is (a declaration check costs no scan).
    live: HashMap<VarRef, u32>,
    range_depth: usize,
}

impl Scope {
    fn new() -> Self {
        let mut s = Self {
            vars: Vec::new(),
            live: HashMap::new(),
            range_depth: 0,
        };
        s.push(Trees::DOLLAR);
        s
    }

    fn push(&mut self, r: VarRef) {
        self.vars.push(r);
        *self.live.entry(r).or_insert(0) += 1;
    }

    fn truncate(&mut self, mark: usize) {
        for r in self.vars.drain(mark.min(self.vars.len())..) {
            if let Some(n) = self.live.get_mut(&r) {
                *n -= 1;
                if *n == 0 {
                    self.live.remove(&r);
                }
            }
        }
    }

    fn contains(&self, r: VarRef) -> bool {
        self.live.contains_key(&r)
    }
}

/// What `textOrAction` can return: a node, or the `{{end}}`/`{{else}}` that closes a list.
enum Item {
    Node(Node),
    End(usize),
    /// `{{else}}`; `true` when an `if` or `with` follows it (`{{else if ...}}`).
    Else(usize),
}

struct Parser {
    tokens: Vec<Token>,
    i: usize,
    trees: Trees,
    scope: Scope,
    depth: usize,
    raw_bytes: bool,
    /// Tokens read, counting re-reads after a backup.
    work: u64,
    /// The line of the action being parsed, for errors found further on.
    action_line: Option<usize>,
}

type PResult<T> = Result<T, ParseError>;

/// A token as Go's parser names it in messages.
fn describe(t: &Token) -> String {
    match t.kind {
        Kind::Eof => "EOF".into(),
        Kind::Error => t.text.clone(),
        Kind::Block
        | Kind::Break
        | Kind::Continue
        | Kind::Dot
        | Kind::Define
        | Kind::Else
        | Kind::End
        | Kind::If
        | Kind::Nil
        | Kind::Range
        | Kind::Template
        | Kind::With => format!("<{}>", t.text),
        _ if t.text.chars().count() > 10 => {
            let head: String = t.text.chars().take(10).collect();
            format!("{head:?}...")
        }
        _ => format!("{:?}", t.text),
    }
}

impl Parser {
    fn err<T>(&self, pos: usize, message: impl Into<String>) -> PResult<T> {
        Err(ParseError {
            pos,
            message: message.into(),
        })
    }

    /// An error at the last token read.
    fn err_here<T>(&self, message: impl Into<String>) -> PResult<T> {
        let pos = self.tokens[self.i.saturating_sub(1).min(self.tokens.len() - 1)].pos;
        self.err(pos, message)
    }

    fn next(&mut self) -> Token {
        self.work += 1;
        let t = self.tokens[self.i.min(self.tokens.len() - 1)].clone();
        if self.i < self.tokens.len() {
            self.i += 1;
        }
        t
    }

    fn peek(&self) -> &Token {
        &self.tokens[self.i.min(self.tokens.len() - 1)]
    }

    fn backup(&mut self) {
        self.i -= 1;
    }

    fn next_non_space(&mut self) -> Token {
        loop {
            let t = self.next();
            if t.kind != Kind::Space {
                return t;
            }
        }
    }

    fn peek_non_space(&mut self) -> Token {
        let t = self.next_non_space();
        self.backup();
        t
    }

    fn unexpected<T>(&self, t: &Token, context: &str) -> PResult<T> {
        if t.kind == Kind::Error {
            // An error inside an action that began on an earlier line says where it began.
            let message = match self.action_line {
                Some(line) if line != t.line && t.text.ends_with(" action") => {
                    format!("{} started at line {line}", t.text)
                }
                Some(line) if line != t.line => {
                    format!("{} in action started at line {line}", t.text)
                }
                _ => t.text.clone(),
            };
            return self.err(t.pos, message);
        }
        self.err(t.pos, format!("unexpected {} in {context}", describe(t)))
    }

    fn expect(&mut self, kind: Kind, context: &str) -> PResult<Token> {
        let t = self.next_non_space();
        if t.kind != kind {
            return self.unexpected(&t, context);
        }
        Ok(t)
    }

    fn enter(&mut self, pos: usize) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return self.err(pos, format!("nested deeper than {MAX_NESTING} levels"));
        }
        Ok(())
    }

    /// Adds a finished tree as Go does: an empty tree never replaces a non-empty one,
    /// and two non-empty trees of one name are an error.
    fn add(&mut self, name: &str, root: List) -> PResult<()> {
        match self.trees.trees.get(name) {
            Some(old) if !is_empty_tree(old) => {
                if !is_empty_tree(&root) {
                    let pos = self.tokens[self.i.saturating_sub(1)].pos;
                    return self.err(
                        pos,
                        format!("template: multiple definition of template {name:?}"),
                    );
                }
            }
            _ => {
                self.trees.trees.insert(name.to_string(), root);
            }
        }
        Ok(())
    }

    fn parse_top(&mut self) -> PResult<List> {
        let mut root = List::new();
        while self.peek().kind != Kind::Eof {
            if self.peek().kind == Kind::LeftDelim {
                let at = self.i;
                self.next();
                if self.next_non_space().kind == Kind::Define {
                    self.parse_definition()?;
                    continue;
                }
                self.i = at;
            }
            match self.text_or_action()? {
                Item::Node(n) => root.push(n),
                Item::End(pos) => return self.err(pos, "unexpected {{end}}"),
                Item::Else(pos) => return self.err(pos, "unexpected {{else}}"),
            }
        }
        Ok(root)
    }

    fn parse_definition(&mut self) -> PResult<()> {
        const CONTEXT: &str = "define clause";
        let t = self.next_non_space();
        if !matches!(t.kind, Kind::String | Kind::RawString) {
            return self.unexpected(&t, CONTEXT);
        }
        let name = unquote(&t.text).map_err(|m| ParseError {
            pos: t.pos,
            message: m,
        })?;
        self.expect(Kind::RightDelim, CONTEXT)?;
        let outer = std::mem::replace(&mut self.scope, Scope::new());
        let (root, end) = self.item_list()?;
        self.scope = outer;
        if let Item::Else(pos) = end {
            return self.err(pos, format!("unexpected {{{{else}}}} in {CONTEXT}"));
        }
        self.add(&name, root)
    }

    /// Nodes up to the `{{end}}` or `{{else}}` that closes them.
    fn item_list(&mut self) -> PResult<(List, Item)> {
        let mut list = List::new();
        while self.peek_non_space().kind != Kind::Eof {
            match self.text_or_action()? {
                Item::Node(n) => list.push(n),
                end => return Ok((list, end)),
            }
        }
        self.err(self.peek().pos, "unexpected EOF")
    }

    fn text_or_action(&mut self) -> PResult<Item> {
        let t = self.next_non_space();
        match t.kind {
            Kind::Text if self.raw_bytes => Ok(Item::Node(Node::Text(unescape_raw_bytes(&t.text)))),
            Kind::Text => Ok(Item::Node(Node::Text(
                t.text.into_bytes().into_boxed_slice(),
            ))),
            Kind::LeftDelim => {
                self.action_line = Some(t.line);
                let item = self.action(t.pos);
                self.action_line = None;
                item
            }
            _ => self.unexpected(&t, "input"),
        }
    }

    fn action(&mut self, start: usize) -> PResult<Item> {
        let t = self.next_non_space();
        match t.kind {
            Kind::Block => return self.block_control(start).map(Item::Node),
            Kind::Break | Kind::Continue => return self.loop_control(start, &t).map(Item::Node),
            Kind::Else => return self.else_control(t.pos),
            Kind::End => {
                self.expect(Kind::RightDelim, "end")?;
                return Ok(Item::End(t.pos));
            }
            Kind::If => return self.control(start, "if").map(|c| Item::Node(Node::If(c))),
            Kind::Range => {
                return self
                    .control(start, "range")
                    .map(|c| Item::Node(Node::Range(c)));
            }
            Kind::With => {
                return self
                    .control(start, "with")
                    .map(|c| Item::Node(Node::With(c)));
            }
            Kind::Template => return self.template_control(start).map(Item::Node),
            _ => {}
        }
        self.backup();
        let pipe = self.pipeline("command", Kind::RightDelim)?;
        Ok(Item::Node(Node::Action(pipe)))
    }

    fn loop_control(&mut self, start: usize, t: &Token) -> PResult<Node> {
        let word = if t.kind == Kind::Break {
            "break"
        } else {
            "continue"
        };
        let next = self.next_non_space();
        if next.kind != Kind::RightDelim {
            return self.unexpected(&next, &format!("{{{{{word}}}}}"));
        }
        if self.scope.range_depth == 0 {
            return self.err(t.pos, format!("{{{{{word}}}}} outside {{{{range}}}}"));
        }
        let span = Span::new(start, next.pos + 2);
        Ok(if t.kind == Kind::Break {
            Node::Break(span)
        } else {
            Node::Continue(span)
        })
    }

    fn else_control(&mut self, pos: usize) -> PResult<Item> {
        let peek = self.peek_non_space();
        if matches!(peek.kind, Kind::If | Kind::With) {
            // `{{else if ...}}`: the `if` is left for the enclosing control to read.
            return Ok(Item::Else(pos));
        }
        self.expect(Kind::RightDelim, "else")?;
        Ok(Item::Else(pos))
    }

    fn control(&mut self, start: usize, context: &'static str) -> PResult<Control> {
        self.enter(start)?;
        let mark = self.scope.vars.len();
        let pipe = self.pipeline(context, Kind::RightDelim)?;
        let span = Span::new(start, self.tokens[self.i - 1].pos + 2);
        let is_range = context == "range";
        if is_range {
            self.scope.range_depth += 1;
        }
        let (list, next) = self.item_list()?;
        if is_range {
            self.scope.range_depth -= 1;
        }
        let mut else_list = None;
        if let Item::Else(_) = next {
            let chained = match (context, self.peek().kind) {
                ("if", Kind::If) => Some("if"),
                ("with", Kind::With) => Some("with"),
                _ => None,
            };
            match chained {
                Some(kind) => {
                    // `{{else if}}`/`{{else with}}`: a nested control that reads the `{{end}}`.
                    let at = self.next().pos;
                    let inner = self.control(at, kind)?;
                    else_list = Some(vec![if kind == "if" {
                        Node::If(inner)
                    } else {
                        Node::With(inner)
                    }]);
                }
                None => {
                    let (l, end) = self.item_list()?;
                    if let Item::Else(pos) = end {
                        return self.err(pos, "expected end; found {{else}}");
                    }
                    else_list = Some(l);
                }
            }
        }
        self.scope.truncate(mark);
        self.depth -= 1;
        Ok(Control {
            pipe,
            list,
            else_list,
            span,
        })
    }

    fn template_name(&self, t: &Token, context: &str) -> PResult<String> {
        match t.kind {
            Kind::String | Kind::RawString => unquote(&t.text).map_err(|m| ParseError {
                pos: t.pos,
                message: m,
            }),
            _ => self.unexpected(t, context),
        }
    }

    fn template_control(&mut self, start: usize) -> PResult<Node> {
        const CONTEXT: &str = "template clause";
        let t = self.next_non_space();
        let name = self.template_name(&t, CONTEXT)?;
        let mut pipe = None;
        if self.next_non_space().kind != Kind::RightDelim {
            self.backup();
            pipe = Some(self.pipeline(CONTEXT, Kind::RightDelim)?);
        }
        let span = Span::new(start, self.tokens[self.i - 1].pos + 2);
        Ok(Node::Template { name, pipe, span })
    }

    fn block_control(&mut self, start: usize) -> PResult<Node> {
        const CONTEXT: &str = "block clause";
        self.enter(start)?;
        let t = self.next_non_space();
        let name = self.template_name(&t, CONTEXT)?;
        let pipe = self.pipeline(CONTEXT, Kind::RightDelim)?;
        let span = Span::new(start, self.tokens[self.i - 1].pos + 2);
        let outer = std::mem::replace(&mut self.scope, Scope::new());
        let (root, end) = self.item_list()?;
        self.scope = outer;
        if let Item::Else(pos) = end {
            return self.err(pos, format!("unexpected {{{{else}}}} in {CONTEXT}"));
        }
        self.add(&name, root)?;
        self.depth -= 1;
        Ok(Node::Template {
            name,
            pipe: Some(pipe),
            span,
        })
    }

    fn pipeline(&mut self, context: &str, end: Kind) -> PResult<Pipe> {
        let start = self.peek_non_space().pos;
        let mut pipe = Pipe {
            span: Span::new(start, start),
            decl: Vec::new(),
            is_assign: false,
            cmds: Vec::new(),
        };
        loop {
            let v = self.peek_non_space();
            if v.kind != Kind::Variable {
                break;
            }
            let at = self.i;
            self.next_non_space();
            let after = self.peek().kind;
            let next = self.peek_non_space();
            match next.kind {
                Kind::Assign | Kind::Declare => {
                    pipe.is_assign = next.kind == Kind::Assign;
                    self.next_non_space();
                    let r = self.trees.intern(&v.text);
                    pipe.decl.push(r);
                    self.scope.push(r);
                }
                Kind::Char if next.text == "," => {
                    self.next_non_space();
                    let r = self.trees.intern(&v.text);
                    pipe.decl.push(r);
                    self.scope.push(r);
                    if context == "range" && pipe.decl.len() < 2 {
                        match self.peek_non_space().kind {
                            Kind::Variable | Kind::RightDelim | Kind::RightParen => continue,
                            _ => return self.err_here("range can only initialize variables"),
                        }
                    }
                    return self.err_here(format!("too many declarations in {context}"));
                }
                _ => {
                    let _ = after;
                    self.i = at;
                }
            }
            break;
        }
        loop {
            let t = self.next_non_space();
            match t.kind {
                k if k == end => {
                    pipe.span.end = t.pos;
                    self.check_pipeline(&pipe, context, t.pos)?;
                    return Ok(pipe);
                }
                Kind::Bool
                | Kind::CharConst
                | Kind::Complex
                | Kind::Dot
                | Kind::Field
                | Kind::Ident
                | Kind::Number
                | Kind::Nil
                | Kind::RawString
                | Kind::String
                | Kind::Variable
                | Kind::LeftParen => {
                    self.backup();
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return self.unexpected(&t, context),
            }
        }
    }

    fn check_pipeline(&self, pipe: &Pipe, context: &str, pos: usize) -> PResult<()> {
        if pipe.cmds.is_empty() {
            return self.err(pos, format!("missing value for {context}"));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if let Some(first) = c.args.first() {
                if matches!(
                    first.term,
                    Term::Bool(_) | Term::Dot | Term::Nil | Term::Number(_) | Term::Str(_)
                ) {
                    return self.err(
                        first.span.start,
                        format!("non executable command in pipeline stage {}", i + 1),
                    );
                }
            }
        }
        Ok(())
    }

    fn command(&mut self) -> PResult<Command> {
        let start = self.peek_non_space().pos;
        let mut args = Vec::new();
        loop {
            self.peek_non_space();
            if let Some(op) = self.operand()? {
                args.push(op);
            }
            let t = self.next();
            match t.kind {
                Kind::Space => continue,
                Kind::RightDelim | Kind::RightParen => self.backup(),
                Kind::Pipe => {}
                _ => return self.unexpected(&t, "operand"),
            }
            break;
        }
        let Some(last) = args.last() else {
            return self.err(start, "empty command");
        };
        let span = Span::new(start, last.span.end);
        Ok(Command { span, args })
    }

    fn operand(&mut self) -> PResult<Option<Operand>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().kind != Kind::Field {
            return Ok(Some(node));
        }
        let mut fields = Vec::new();
        let mut end = node.span.end;
        while self.peek().kind == Kind::Field {
            let f = self.next();
            end = f.pos + f.text.len();
            fields.push(f.text[1..].to_string());
        }
        let span = Span::new(node.span.start, end);
        let term = match node.term {
            Term::Field(mut first) => {
                first.extend(fields);
                Term::Field(first)
            }
            Term::Variable(v, mut first) => {
                first.extend(fields);
                Term::Variable(v, first)
            }
            Term::Bool(_) | Term::Str(_) | Term::Number(_) | Term::Nil | Term::Dot => {
                return self.err(node.span.start, "unexpected . after term");
            }
            _ => Term::Chain(Box::new(node), fields),
        };
        Ok(Some(Operand { span, term }))
    }

    fn term(&mut self) -> PResult<Option<Operand>> {
        let t = self.next_non_space();
        let span = Span::new(t.pos, t.pos + t.text.len());
        let term = match t.kind {
            Kind::Ident => match Func::lookup(&t.text) {
                Some(f) => Term::Func(f),
                None => return self.err(t.pos, format!("function {:?} not defined", t.text)),
            },
            Kind::Dot => Term::Dot,
            Kind::Nil => Term::Nil,
            Kind::Variable => {
                let r = self.trees.intern(&t.text);
                if !self.scope.contains(r) {
                    return self.err(t.pos, format!("undefined variable {:?}", t.text));
                }
                Term::Variable(r, Vec::new())
            }
            Kind::Field => Term::Field(vec![t.text[1..].to_string()]),
            Kind::Bool => Term::Bool(t.text == "true"),
            Kind::CharConst | Kind::Complex | Kind::Number => {
                let n = number(&t.text, t.kind).map_err(|m| ParseError {
                    pos: t.pos,
                    message: m,
                })?;
                Term::Number(Box::new(n))
            }
            Kind::LeftParen => {
                self.enter(t.pos)?;
                let pipe = self.pipeline("parenthesized pipeline", Kind::RightParen)?;
                self.depth -= 1;
                let end = self.tokens[self.i - 1].pos + 1;
                return Ok(Some(Operand {
                    span: Span::new(t.pos, end),
                    term: Term::Pipe(Box::new(pipe)),
                }));
            }
            Kind::String | Kind::RawString => {
                Term::Str(unquote(&t.text).map_err(|m| ParseError {
                    pos: t.pos,
                    message: m,
                })?)
            }
            _ => {
                self.backup();
                return Ok(None);
            }
        };
        Ok(Some(Operand { span, term }))
    }
}

/// Go's `parse.IsEmptyTree`: only whitespace text (and comments).
fn is_empty_tree(list: &List) -> bool {
    list.iter()
        .all(|n| matches!(n, Node::Text(t) if t.trim_ascii().is_empty()))
}

/// Go's `strconv.Unquote` for a string literal (`"..."` with escapes, or `` `raw` ``).
pub fn unquote(lit: &str) -> Result<String, String> {
    let bad = || "invalid syntax".to_string();
    if let Some(raw) = lit.strip_prefix('`').and_then(|s| s.strip_suffix('`')) {
        return Ok(raw.replace('\r', ""));
    }
    let body = lit
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .ok_or_else(bad)?;
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while !rest.is_empty() {
        let (c, tail) = unquote_char(rest, '"')?;
        out.push_str(&c);
        rest = tail;
    }
    Ok(out)
}

/// One (possibly escaped) character of a quoted literal; returns it and the rest.
fn unquote_char(s: &str, quote: char) -> Result<(String, &str), String> {
    let bad = || "invalid syntax".to_string();
    let mut chars = s.chars();
    let c = chars.next().ok_or_else(bad)?;
    if c == quote && (quote == '\'' || quote == '"') {
        return Err(bad());
    }
    if c != '\\' {
        return Ok((c.to_string(), chars.as_str()));
    }
    let e = chars.next().ok_or_else(bad)?;
    let rest = chars.as_str();
    let simple = match e {
        'a' => Some('\x07'),
        'b' => Some('\x08'),
        'f' => Some('\x0c'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\x0b'),
        '\\' => Some('\\'),
        '\'' | '"' if e == quote => Some(e),
        _ => None,
    };
    if let Some(c) = simple {
        return Ok((c.to_string(), rest));
    }
    let hex = |n: usize| -> Result<(u32, &str), String> {
        if rest.len() < n || !rest.is_char_boundary(n) {
            return Err(bad());
        }
        let v = u32::from_str_radix(&rest[..n], 16).map_err(|_| bad())?;
        Ok((v, &rest[n..]))
    };
    match e {
        'x' => {
            let (v, tail) = hex(2)?;
            // A byte, not a rune: Go strings may hold any bytes; keep valid UTF-8 here.
            let c = char::from_u32(v).ok_or_else(bad)?;
            Ok((c.to_string(), tail))
        }
        'u' | 'U' => {
            let (v, tail) = hex(if e == 'u' { 4 } else { 8 })?;
            let c = char::from_u32(v).ok_or_else(bad)?;
            Ok((c.to_string(), tail))
        }
        '0'..='7' => {
            let digits = format!("{e}{}", rest.get(..2).ok_or_else(bad)?);
            let v = u32::from_str_radix(&digits, 8).map_err(|_| bad())?;
            if v > 255 {
                return Err(bad());
            }
            let c = char::from_u32(v).ok_or_else(bad)?;
            Ok((c.to_string(), &rest[2..]))
        }
        _ => Err(bad()),
    }
}

/// A number constant with every Go type it can stand for (Go's `newNumber`).
fn number(text: &str, kind: Kind) -> Result<Number, String> {
    let mut n = Number {
        text: text.to_string(),
        ..Number::default()
    };
    if kind == Kind::CharConst {
        let body = text.strip_prefix('\'').unwrap_or(text);
        let (c, tail) = unquote_char(body, '\'')
            .map_err(|_| format!("malformed character constant: {text}"))?;
        if tail != "'" {
            return Err(format!("malformed character constant: {text}"));
        }
        let r = c.chars().next().map_or(0, |c| c as u32);
        n.is_int = true;
        n.is_uint = true;
        n.is_float = true;
        n.int = i64::from(r);
        n.uint = u64::from(r);
        n.float = f64::from(r);
        return Ok(n);
    }
    if kind == Kind::Complex || text.ends_with('i') {
        n.is_complex = true;
        return Ok(n);
    }
    let clean = text.replace('_', "");
    if let Some(u) = parse_uint(&clean) {
        n.is_uint = true;
        n.uint = u;
    }
    if let Some(i) = parse_int(&clean) {
        n.is_int = true;
        n.int = i;
        if i == 0 {
            n.is_uint = true;
        }
    }
    if n.is_int {
        n.is_float = true;
        n.float = n.int as f64;
    } else if n.is_uint {
        n.is_float = true;
        n.float = n.uint as f64;
    } else if let Ok(f) = clean.parse::<f64>() {
        if !text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Err(format!("integer overflow: {text:?}"));
        }
        n.is_float = true;
        n.float = f;
        if (f as i64) as f64 == f {
            n.is_int = true;
            n.int = f as i64;
        }
        if f >= 0.0 && (f as u64) as f64 == f {
            n.is_uint = true;
            n.uint = f as u64;
        }
    }
    if !n.is_int && !n.is_uint && !n.is_float {
        return Err(format!("illegal number syntax: {text:?}"));
    }
    Ok(n)
}

/// Go's `strconv.ParseUint(s, 0, 64)`: decimal, `0x`, `0o`, `0b` or a leading-0 octal.
fn parse_uint(s: &str) -> Option<u64> {
    let s = s.strip_prefix('+').unwrap_or(s);
    let (digits, radix) = radix_of(s);
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

fn parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let u = parse_uint(body)?;
    if neg {
        if u <= i64::MAX as u64 + 1 {
            Some((u as i64).wrapping_neg())
        } else {
            None
        }
    } else {
        i64::try_from(u).ok()
    }
}

fn radix_of(s: &str) -> (&str, u32) {
    let lower = |p: &str| s.get(..2).is_some_and(|h| h.eq_ignore_ascii_case(p));
    if lower("0x") {
        (&s[2..], 16)
    } else if lower("0o") {
        (&s[2..], 8)
    } else if lower("0b") {
        (&s[2..], 2)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    }
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
