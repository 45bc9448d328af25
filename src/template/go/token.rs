//! The tokens of Go's template lexer: what each is, where it starts, its text and line.

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A lexing error; the token's text is the message.
    Error,
    /// `true` or `false`.
    Bool,
    /// A printable ASCII character inside an action (`,` and friends).
    Char,
    /// `'a'`
    CharConst,
    /// `1+2i`
    Complex,
    /// `=`
    Assign,
    /// `:=`
    Declare,
    /// End of input.
    Eof,
    /// `.Name` (one segment).
    Field,
    /// A function name.
    Ident,
    /// `{{`
    LeftDelim,
    /// `(`
    LeftParen,
    /// A number.
    Number,
    /// `|`
    Pipe,
    /// `` `raw` ``
    RawString,
    /// `}}`
    RightDelim,
    /// `)`
    RightParen,
    /// Spaces between arguments.
    Space,
    /// `"quoted"`
    String,
    /// Plain text outside actions.
    Text,
    /// `$` or `$name`.
    Variable,
    /// `block`
    Block,
    /// `break`
    Break,
    /// `continue`
    Continue,
    /// `.`
    Dot,
    /// `define`
    Define,
    /// `else`
    Else,
    /// `end`
    End,
    /// `if`
    If,
    /// `nil`
    Nil,
    /// `range`
    Range,
    /// `template`
    Template,
    /// `with`
    With,
}

/// One token: its kind, where it starts, its text and its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// What it is.
    pub kind: Kind,
    /// Byte offset of its start in the input.
    pub pos: usize,
    /// Its text (for `Error`, the message).
    pub text: String,
    /// 1-based line of its start.
    pub line: usize,
}

/// The keyword `word` is, if any.
pub fn keyword(word: &str) -> Option<Kind> {
    Some(match word {
        "block" => Kind::Block,
        "break" => Kind::Break,
        "continue" => Kind::Continue,
        "define" => Kind::Define,
        "else" => Kind::Else,
        "end" => Kind::End,
        "if" => Kind::If,
        "range" => Kind::Range,
        "nil" => Kind::Nil,
        "template" => Kind::Template,
        "with" => Kind::With,
        _ => return None,
    })
}

/// A character as Go's `%#U` prints it: `U+0029 ')'`.
pub fn go_char(c: char) -> String {
    if c.is_control() {
        format!("U+{:04X}", c as u32)
    } else {
        format!("U+{:04X} '{c}'", c as u32)
    }
}
