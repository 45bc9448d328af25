//! The syntax tree of a Go template, as Go's `text/template/parse` builds it. Every node
//! keeps the byte span of its source, so errors can quote the construct and its line.

use super::funcs::Func;

/// A byte range of the template source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// From `start` to `end`.
    pub fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }
}

/// A sequence of nodes.
pub type List = Vec<Node>;

/// One node of a template body.
#[derive(Debug, Clone)]
pub enum Node {
    /// Plain text, printed as is (bytes: a template need not be UTF-8).
    Text(Box<[u8]>),
    /// `{{ pipeline }}`: printed unless it declares variables.
    Action(Pipe),
    /// `{{if}}`
    If(Control),
    /// `{{range}}`
    Range(Control),
    /// `{{with}}`
    With(Control),
    /// `{{template "name" pipeline}}` (also what `{{block}}` leaves in place).
    Template {
        /// The template called.
        name: String,
        /// Its argument, the new dot.
        pipe: Option<Pipe>,
        /// The whole action.
        span: Span,
    },
    /// `{{break}}`
    Break(Span),
    /// `{{continue}}`
    Continue(Span),
}

/// The parts of `if`, `range` and `with`.
#[derive(Debug, Clone)]
pub struct Control {
    /// The condition or the collection.
    pub pipe: Pipe,
    /// The body.
    pub list: List,
    /// The `{{else}}` part, if any.
    pub else_list: Option<List>,
    /// The opening action.
    pub span: Span,
}

/// A pipeline, optionally declaring or assigning variables: `$x := a | b c`.
#[derive(Debug, Clone)]
pub struct Pipe {
    /// The pipeline's source.
    pub span: Span,
    /// Variables declared or assigned (at most two, in `range`).
    pub decl: Vec<VarRef>,
    /// `=` rather than `:=`.
    pub is_assign: bool,
    /// The commands, each one's result the last argument of the next.
    pub cmds: Vec<Command>,
}

/// A variable name, interned per template set so lookups compare numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VarRef(pub u32);

/// One command of a pipeline: an operand, then its arguments.
#[derive(Debug, Clone)]
pub struct Command {
    /// The command's source.
    pub span: Span,
    /// The operands; the first is the function, field or value.
    pub args: Vec<Operand>,
}

/// One operand with its source.
#[derive(Debug, Clone)]
pub struct Operand {
    /// Where it is.
    pub span: Span,
    /// What it is.
    pub term: Term,
}

/// What an operand is.
#[derive(Debug, Clone)]
pub enum Term {
    /// `true` / `false`
    Bool(bool),
    /// `.`
    Dot,
    /// `nil`
    Nil,
    /// A number constant.
    Number(Box<Number>),
    /// A string constant (already unquoted).
    Str(String),
    /// `.A.B`
    Field(Vec<String>),
    /// `$x` or `$x.A.B`
    Variable(VarRef, Vec<String>),
    /// A function name.
    Func(Func),
    /// `( pipeline )`
    Pipe(Box<Pipe>),
    /// `(pipeline).A.B` and the like.
    Chain(Box<Operand>, Vec<String>),
}

/// A number constant and every Go type it can stand for.
#[derive(Debug, Clone, Default)]
pub struct Number {
    /// As written.
    pub text: String,
    /// Fits an int64.
    pub is_int: bool,
    /// Fits a uint64.
    pub is_uint: bool,
    /// Is a float (every int is one too).
    pub is_float: bool,
    /// Has an imaginary part.
    pub is_complex: bool,
    /// The int64 value.
    pub int: i64,
    /// The uint64 value.
    pub uint: u64,
    /// The float64 value.
    pub float: f64,
}
