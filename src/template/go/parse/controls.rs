//! `if`, `range`, `with` (and their `else if`/`else with` chains), `break`/`continue`,
//! `template` and `block`.

use super::super::ast::{Control, Node, Span};
use super::super::token::{Kind, Token};
use super::{Item, PResult, ParseError, Parser, Scope, unquote};

impl Parser {
    pub(super) fn loop_control(&mut self, start: usize, t: &Token) -> PResult<Node> {
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

    pub(super) fn else_control(&mut self, pos: usize) -> PResult<Item> {
        let peek = self.peek_non_space();
        if matches!(peek.kind, Kind::If | Kind::With) {
            // `{{else if ...}}`: the `if` is left for the enclosing control to read.
            return Ok(Item::Else(pos));
        }
        self.expect(Kind::RightDelim, "else")?;
        Ok(Item::Else(pos))
    }

    pub(super) fn control(&mut self, start: usize, context: &'static str) -> PResult<Control> {
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

    pub(super) fn template_name(&self, t: &Token, context: &str) -> PResult<String> {
        match t.kind {
            Kind::String | Kind::RawString => unquote(&t.text).map_err(|m| ParseError {
                pos: t.pos,
                message: m,
            }),
            _ => self.unexpected(t, context),
        }
    }

    pub(super) fn template_control(&mut self, start: usize) -> PResult<Node> {
        const CONTEXT: &str = "template clause";
        let t = self.next_non_space();
        let name = self.template_name(&t, CONTEXT)?;
        let mut pipe = None;
        if self.next_non_space().kind != Kind::RightDelim {
            self.backup();
            pipe = Some(self.pipeline(CONTEXT, Kind::RightDelim)?);
        }
        let span = Span::new(start, self.tokens[self.i - 1].pos + 2);
        self.trees.calls_templates = true;
        Ok(Node::Template { name, pipe, span })
    }

    pub(super) fn block_control(&mut self, start: usize) -> PResult<Node> {
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
        self.trees.calls_templates = true;
        Ok(Node::Template {
            name,
            pipe: Some(pipe),
            span,
        })
    }
}
