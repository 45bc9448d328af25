//! Pipelines, commands and operands: variable declarations, Go's checks on pipeline
//! stages, field chains, and the terms (functions, variables, literals, parentheses).

use super::super::ast::{Command, Operand, Pipe, Span, Term};
use super::super::funcs::Func;
use super::super::token::Kind;
use super::literal::{number, unquote};
use super::{PResult, ParseError, Parser};

impl Parser {
    pub(super) fn pipeline(&mut self, context: &str, end: Kind) -> PResult<Pipe> {
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

    pub(super) fn check_pipeline(&self, pipe: &Pipe, context: &str, pos: usize) -> PResult<()> {
        if pipe.cmds.is_empty() {
            return self.err(pos, format!("missing value for {context}"));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if let Some(first) = c.args.first()
                && matches!(
                    first.term,
                    Term::Bool(_) | Term::Dot | Term::Nil | Term::Number(_) | Term::Str(_)
                )
            {
                return self.err(
                    first.span.start,
                    format!("non executable command in pipeline stage {}", i + 1),
                );
            }
        }
        Ok(())
    }

    pub(super) fn command(&mut self) -> PResult<Command> {
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

    pub(super) fn operand(&mut self) -> PResult<Option<Operand>> {
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

    pub(super) fn term(&mut self) -> PResult<Option<Operand>> {
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
