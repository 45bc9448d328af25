//! The parser of Go's `text/template`, with Go's grammar and its checks: functions must
//! exist, variables must be declared, `break`/`continue` only inside `range`, `define`
//! only at the top level. It builds the main template and every `define`/`block`.

use std::collections::HashMap;

mod controls;
mod float;
mod literal;
mod pipeline;

use super::ast::{List, Node, VarRef};
use super::lex::{Kind, Token, lex_counting};

use literal::unescape_raw_bytes;
pub use literal::{escape_raw_bytes, unquote};

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
    /// Some tree holds a `{{template}}` (or `{{block}}`) call: evaluation may then nest
    /// as deep as the calls do, not only as deep as one tree.
    pub calls_templates: bool,
    /// Where (the opening action's first byte) each `range` starts whose output can be
    /// kept per element between renders (see `incr`); filled in after parsing.
    pub cacheable: std::collections::HashSet<usize>,
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
}

/// Go's `parse.IsEmptyTree`: only whitespace text (and comments).
fn is_empty_tree(list: &List) -> bool {
    list.iter()
        .all(|n| matches!(n, Node::Text(t) if t.trim_ascii().is_empty()))
}

#[cfg(test)]
mod tests;
