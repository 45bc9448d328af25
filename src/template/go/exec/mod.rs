//! The evaluator: walks a parsed template with Go's `text/template` semantics (variable
//! scopes, dot rebinding, truth, pipelines passing their value as the last argument,
//! Go's argument type checks) and writes the output.

use super::ast::{Control, List, Node, Number, Operand, Pipe, Span, Term, VarRef};
use super::fmt::print_value;
use super::parse::Trees;
use super::store::Store;
use super::value::{ListKind, Str, Value};

/// Deepest nesting of `{{template}}` calls (Go allows 100,000 on its growable stacks; a
/// fixed stack needs a bound, and real templates nest a few levels).
pub const MAX_TEMPLATE_DEPTH: usize = 100;

/// Largest output any render may produce, whatever its resource's `max_render_size`
/// says, and the longest string a function may build.
pub const MAX_OUTPUT: usize = 256 << 20;

/// Deepest nesting of lists and pipelines a render may reach: controls, parentheses and
/// template calls together. One tree nests at most 100 deep (the parser's limit); this
/// bounds what template calls add, so a render's stack stays within what it runs on.
pub const MAX_RENDER_NESTING: usize = 5_000;

/// Most nodes a render may evaluate: far beyond any real config (a 100,000-key loop
/// takes about a million), it stops a runaway template (a recursion that calls itself
/// twice per level, nested loops over huge sequences) in seconds instead of never.
pub const MAX_STEPS: u64 = 200_000_000;

mod args;
mod cached;

pub use cached::Incremental;
#[cfg(test)]
pub use cached::{last_run, last_spliced};

/// A render-time error: the construct it happened at and what went wrong.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecError {
    /// The construct being evaluated.
    pub span: Span,
    /// What went wrong, worded as Go words it where it can.
    pub message: String,
}

type R<T> = Result<T, ExecError>;

/// How a list of nodes ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Next,
    Break,
    Continue,
}

/// One render in progress.
pub struct Exec<'a> {
    trees: &'a Trees,
    pub(super) store: &'a Store<'a>,
    src: &'a str,
    pub(super) out: Vec<u8>,
    /// Reused for printing values that are not plain strings.
    scratch: String,
    vars: Vec<(VarRef, Value<'a>)>,
    depth: usize,
    /// Lists and pipelines being evaluated (see [`MAX_RENDER_NESTING`]).
    nesting: usize,
    /// Nodes evaluated so far (see [`MAX_STEPS`]).
    steps: u64,
    /// The construct being evaluated, for errors raised inside functions.
    at: Span,
    /// The resource's output limit and cancel flag.
    limits: &'a crate::template::RenderLimits,
    /// Output size that stops the render: the resource's limit, at most [`MAX_OUTPUT`].
    max_output: usize,
    /// The resource's loop fragments from its previous render, when it keeps them.
    incr: Option<Incremental<'a>>,
}

/// Renders the template `name` of `trees` (parsed from `src`) over `store`, into a
/// buffer that starts with `capacity` bytes; with `incr`, cacheable loops reuse what
/// the previous render wrote for unchanged elements.
pub fn render<'a>(
    trees: &'a Trees,
    src: &'a str,
    name: &str,
    store: &'a Store<'a>,
    capacity: usize,
    limits: &'a crate::template::RenderLimits,
    incr: Option<Incremental<'a>>,
) -> Result<Vec<u8>, ExecError> {
    let Some(root) = trees.trees.get(name) else {
        return Err(ExecError {
            span: Span::default(),
            message: format!("no template {name:?}"),
        });
    };
    let mut e = Exec {
        trees,
        store,
        src,
        out: Vec::with_capacity(capacity.min(limits.max_size.min(MAX_OUTPUT))),
        scratch: String::new(),
        vars: vec![(Trees::DOLLAR, Value::Missing)],
        depth: 0,
        nesting: 0,
        steps: 0,
        at: Span::default(),
        limits,
        max_output: limits.max_size.min(MAX_OUTPUT),
        incr,
    };
    e.walk(&Value::Missing, root)?;
    Ok(e.out)
}

impl<'a> Exec<'a> {
    /// An error at the construct being evaluated.
    pub(super) fn fail<T>(&self, message: impl Into<String>) -> R<T> {
        Err(ExecError {
            span: self.at,
            message: message.into(),
        })
    }

    fn at(&mut self, span: Span) {
        self.at = span;
    }

    /// The source of `span`, for messages.
    fn text(&self, span: Span) -> &'a str {
        self.src.get(span.start..span.end).unwrap_or("")
    }

    /// One level deeper (see [`MAX_RENDER_NESTING`]); the caller steps back out with `nesting -= 1`.
    fn enter(&mut self) -> R<()> {
        self.nesting += 1;
        if self.nesting > MAX_RENDER_NESTING {
            return self.fail(format!(
                "the template nests deeper than {MAX_RENDER_NESTING} levels (controls, parentheses and template calls together)"
            ));
        }
        Ok(())
    }

    fn walk(&mut self, dot: &Value<'a>, list: &'a List) -> R<Flow> {
        self.enter()?;
        let flow = self.walk_nodes(dot, list);
        self.nesting -= 1;
        flow
    }

    fn walk_nodes(&mut self, dot: &Value<'a>, list: &'a List) -> R<Flow> {
        self.steps += list.len() as u64;
        if self.steps > MAX_STEPS {
            return self.fail(format!(
                "the template evaluated more than {MAX_STEPS} nodes without finishing"
            ));
        }
        if self.limits.cancelled() {
            return self.fail(crate::template::RenderLimits::cancelled_message());
        }
        for node in list {
            let flow = match node {
                Node::Text(t) => {
                    self.out.extend_from_slice(t);
                    Flow::Next
                }
                Node::Action(pipe) => {
                    let v = self.eval_pipeline(dot, pipe)?;
                    if pipe.decl.is_empty() {
                        self.print(&v);
                    }
                    Flow::Next
                }
                Node::If(c) => self.walk_if_or_with(dot, c, false)?,
                Node::With(c) => self.walk_if_or_with(dot, c, true)?,
                Node::Range(c) => self.walk_range(dot, c)?,
                Node::Template { name, pipe, span } => {
                    self.walk_template(dot, name, pipe, *span)?
                }
                Node::Break(_) => return Ok(Flow::Break),
                Node::Continue(_) => return Ok(Flow::Continue),
            };
            self.check_output()?;
            if flow != Flow::Next {
                return Ok(flow);
            }
        }
        Ok(Flow::Next)
    }

    /// Stops the render once its output reached the limit.
    fn check_output(&self) -> R<()> {
        if self.out.len() >= self.max_output {
            return self.fail(if self.max_output < MAX_OUTPUT {
                self.limits.too_large()
            } else {
                format!(
                    "the rendered output is larger than {} MiB",
                    MAX_OUTPUT >> 20
                )
            });
        }
        Ok(())
    }

    fn print(&mut self, v: &Value<'a>) {
        if let Value::Str(s) = v {
            self.out.extend_from_slice(s.as_bytes());
            return;
        }
        self.scratch.clear();
        print_value(&mut self.scratch, v);
        self.out.extend_from_slice(self.scratch.as_bytes());
    }

    fn walk_if_or_with(&mut self, dot: &Value<'a>, c: &'a Control, with: bool) -> R<Flow> {
        let mark = self.vars.len();
        let val = self.eval_pipeline(dot, &c.pipe)?;
        let flow = if val.truth() {
            if with {
                self.walk(&val, &c.list)?
            } else {
                self.walk(dot, &c.list)?
            }
        } else if let Some(e) = &c.else_list {
            self.walk(dot, e)?
        } else {
            Flow::Next
        };
        self.vars.truncate(mark);
        Ok(flow)
    }

    fn walk_range(&mut self, dot: &Value<'a>, c: &'a Control) -> R<Flow> {
        self.at(c.span);
        if self.incr.is_some()
            && self.trees.cacheable.contains(&c.span.start)
            && let Some(flow) = self.walk_cached_range(dot, c)?
        {
            return Ok(flow);
        }
        let outer = self.vars.len();
        let val = self.eval_pipeline(dot, &c.pipe)?;
        let mark = self.vars.len();
        let decls = c.pipe.decl.len();
        let mut ran = false;
        let mut one = |e: &mut Self, index: Value<'a>, elem: Value<'a>| -> R<bool> {
            ran = true;
            if decls > 0 {
                e.vars[mark - 1].1 = elem.clone();
            }
            if decls > 1 {
                e.vars[mark - 2].1 = index;
            }
            let flow = e.walk(&elem, &c.list)?;
            e.vars.truncate(mark);
            Ok(flow == Flow::Break)
        };
        match &val {
            Value::List(l) => {
                for i in 0..l.len() {
                    let Some(elem) = l.get(i) else { break };
                    if one(self, Value::Int(i as i64), elem)? {
                        break;
                    }
                }
            }
            Value::Map(m) => {
                for (k, v) in m.iter() {
                    if one(self, Value::string(k.clone()), v.clone())? {
                        break;
                    }
                }
            }
            Value::Int(n) => {
                if decls > 1 {
                    self.at(c.span);
                    return self.fail(format!(
                        "can't use {n} to iterate over more than one variable"
                    ));
                }
                for i in 0..*n {
                    if one(self, Value::Int(i), Value::Int(i))? {
                        break;
                    }
                }
            }
            Value::Missing | Value::Nil => {}
            other => {
                self.at(c.span);
                let mut shown = String::new();
                print_value(&mut shown, other);
                return self.fail(format!("range can't iterate over {shown}"));
            }
        }
        if !ran && let Some(e) = &c.else_list {
            let flow = self.walk(dot, e)?;
            self.vars.truncate(outer);
            return Ok(flow);
        }
        self.vars.truncate(outer);
        Ok(Flow::Next)
    }

    fn walk_template(
        &mut self,
        dot: &Value<'a>,
        name: &str,
        pipe: &'a Option<Pipe>,
        span: Span,
    ) -> R<Flow> {
        self.at(span);
        let Some(tree) = self.trees.trees.get(name) else {
            return self.fail(format!("template {name:?} not defined"));
        };
        if self.depth >= MAX_TEMPLATE_DEPTH {
            return self.fail(format!(
                "exceeded maximum template depth ({MAX_TEMPLATE_DEPTH})"
            ));
        }
        let new_dot = match pipe {
            Some(p) => self.eval_pipeline(dot, p)?,
            None => Value::Missing,
        };
        let saved = std::mem::replace(&mut self.vars, vec![(Trees::DOLLAR, new_dot.clone())]);
        self.depth += 1;
        let result = self.walk(&new_dot, tree);
        self.depth -= 1;
        self.vars = saved;
        result.map(|_| Flow::Next)
    }

    fn eval_pipeline(&mut self, dot: &Value<'a>, pipe: &'a Pipe) -> R<Value<'a>> {
        self.enter()?;
        let value = self.eval_commands(dot, pipe);
        self.nesting -= 1;
        value
    }

    fn eval_commands(&mut self, dot: &Value<'a>, pipe: &'a Pipe) -> R<Value<'a>> {
        self.at(pipe.span);
        let mut value = None;
        for cmd in &pipe.cmds {
            let mut v = self.eval_command(dot, &cmd.args, cmd.span, value.take())?;
            // An interface holding nil comes out of a command as no value at all.
            if matches!(v, Value::Nil) {
                v = Value::Missing;
            }
            value = Some(v);
        }
        let value = value.unwrap_or_default();
        for var in &pipe.decl {
            if pipe.is_assign {
                self.set_var(*var, value.clone())?;
            } else {
                self.vars.push((*var, value.clone()));
            }
        }
        Ok(value)
    }

    fn set_var(&mut self, var: VarRef, value: Value<'a>) -> R<()> {
        match self.vars.iter_mut().rev().find(|(v, _)| *v == var) {
            Some(slot) => {
                slot.1 = value;
                Ok(())
            }
            None => self.fail(format!("undefined variable: {}", self.var_name(var))),
        }
    }

    fn var_name(&self, var: VarRef) -> &str {
        self.trees
            .vars
            .get(var.0 as usize)
            .map_or("$?", String::as_str)
    }

    fn var_value(&self, var: VarRef) -> R<Value<'a>> {
        match self.vars.iter().rev().find(|(v, _)| *v == var) {
            Some((_, value)) => Ok(value.clone()),
            None => self.fail(format!("undefined variable: {}", self.var_name(var))),
        }
    }

    fn not_a_function(&mut self, args: &'a [Operand], fin: &Option<Value<'a>>) -> R<()> {
        if args.len() > 1 || fin.is_some() {
            self.at(args[0].span);
            return self.fail(format!(
                "can't give argument to non-function {}",
                self.text(args[0].span)
            ));
        }
        Ok(())
    }

    /// One command; `fin` is the previous command's value, its last argument.
    fn eval_command(
        &mut self,
        dot: &Value<'a>,
        args: &'a [Operand],
        span: Span,
        fin: Option<Value<'a>>,
    ) -> R<Value<'a>> {
        self.at(span);
        let first = &args[0];
        match &first.term {
            Term::Field(fields) => {
                self.at(first.span);
                self.eval_field_chain(dot, dot, fields, args, fin)
            }
            Term::Chain(node, fields) => {
                self.at(first.span);
                let receiver = self.eval_arg(dot, None, node)?;
                self.eval_field_chain(dot, &receiver, fields, args, fin)
            }
            Term::Func(f) => {
                self.at(first.span);
                self.eval_call(dot, *f, &args[1..], fin, span)
            }
            Term::Pipe(p) => {
                self.not_a_function(args, &fin)?;
                self.eval_pipeline(dot, p)
            }
            Term::Variable(v, fields) => {
                self.at(first.span);
                let value = self.var_value(*v)?;
                if fields.is_empty() {
                    self.not_a_function(args, &fin)?;
                    Ok(value)
                } else {
                    self.eval_field_chain(dot, &value, fields, args, fin)
                }
            }
            term => {
                self.at(first.span);
                self.not_a_function(args, &fin)?;
                match term {
                    Term::Bool(b) => Ok(Value::Bool(*b)),
                    Term::Dot => Ok(dot.clone()),
                    Term::Nil => self.fail("nil is not a command"),
                    Term::Number(n) => self.ideal_constant(n),
                    Term::Str(s) => Ok(Value::Str(Str::Ref(s))),
                    _ => self.fail(format!(
                        "can't evaluate command {:?}",
                        self.text(first.span)
                    )),
                }
            }
        }
    }

    /// A number constant as the Go value it is on its own: float64 when written as a
    /// float, int otherwise.
    fn ideal_constant(&self, n: &Number) -> R<Value<'a>> {
        let t = n.text.as_str();
        let hex_int = t.len() > 2
            && t.starts_with('0')
            && matches!(t.as_bytes()[1], b'x' | b'X')
            && !t.contains(['p', 'P']);
        if n.is_complex {
            return self.fail(format!("complex number {t} is not supported"));
        }
        if n.is_float && !hex_int && !t.starts_with('\'') && t.contains(['.', 'e', 'E', 'p', 'P']) {
            return Ok(Value::Float(n.float));
        }
        if n.is_int {
            return Ok(Value::Int(n.int));
        }
        self.fail(format!("{t} overflows int"))
    }

    fn eval_field_chain(
        &mut self,
        dot: &Value<'a>,
        receiver: &Value<'a>,
        fields: &'a [String],
        args: &'a [Operand],
        fin: Option<Value<'a>>,
    ) -> R<Value<'a>> {
        let (last, init) = fields.split_last().expect("a chain has a field");
        // The first receiver is borrowed (usually dot); later ones are what a field gave.
        let mut owned: Option<Value<'a>> = None;
        for f in init {
            let next = self.eval_field(dot, f, &[], None, owned.as_ref().unwrap_or(receiver))?;
            owned = Some(next);
        }
        self.eval_field(dot, last, args, fin, owned.as_ref().unwrap_or(receiver))
    }

    /// `.name` of `receiver`: a struct field, a map entry or a method.
    fn eval_field(
        &mut self,
        dot: &Value<'a>,
        name: &str,
        args: &'a [Operand],
        fin: Option<Value<'a>>,
        receiver: &Value<'a>,
    ) -> R<Value<'a>> {
        let has_args = args.len() > 1 || fin.is_some();
        let field = |e: &Self, v: Value<'a>| {
            if has_args {
                e.fail(format!(
                    "{name} has arguments but cannot be invoked as function"
                ))
            } else {
                Ok(v)
            }
        };
        match receiver {
            Value::Missing => Ok(Value::Missing),
            Value::Nil => self.fail(format!("nil pointer evaluating interface {{}}.{name}")),
            Value::Kv(kv) => match name {
                "Key" => field(self, Value::Str(kv.key.clone())),
                "Value" => field(self, Value::Str(kv.value.clone())),
                _ => self.fail(format!("can't evaluate field {name} in type memkv.KVPair")),
            },
            Value::Srv(s) => match name {
                "Target" => field(self, Value::string(s.target.clone())),
                "Port" => field(self, Value::U16(s.port)),
                "Priority" => field(self, Value::U16(s.priority)),
                "Weight" => field(self, Value::U16(s.weight)),
                _ => self.fail(format!("can't evaluate field {name} in type *net.SRV")),
            },
            Value::Map(m) => {
                if has_args {
                    return self.fail(format!("{name} is not a method but has arguments"));
                }
                Ok(m.get(name).cloned().unwrap_or(Value::Missing))
            }
            Value::Time(t) => {
                let argv = self.method_args(dot, args, fin)?;
                match t.method(name, &argv) {
                    Some(Ok(v)) => Ok(Value::relive(v)),
                    Some(Err(e)) => self.fail(format!("error calling {name}: {e}")),
                    None => self.fail(format!("can't evaluate field {name} in type time.Time")),
                }
            }
            Value::List(l) if l.kind == ListKind::KvPairs && name == "Len" => {
                if has_args {
                    return self.fail("wrong number of args for Len: want 0 got 1");
                }
                Ok(Value::Int(l.len() as i64))
            }
            other => self.fail(format!(
                "can't evaluate field {name} in type {}",
                other.go_type()
            )),
        }
    }
}
