//! The lexer of Go's `text/template`, with Go's rules: `{{`/`}}` delimiters, `{{- ` and
//! ` -}}` trim markers (the dash needs a space on its inner side), `{{/* */}}` comments
//! right after the delimiter, actions spanning lines, raw strings, character constants
//! and Go number syntax. The whole input is turned into tokens in one linear pass.

use super::token::keyword;
pub use super::token::{Kind, Token, go_char};

const LEFT: &str = "{{";
const RIGHT: &str = "}}";

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alnum(c: char) -> bool {
    super::letters::is_alnum(c)
}

/// `{{- ` : a dash then a space.
fn left_trim_marker(s: &[u8]) -> bool {
    s.len() >= 2 && s[0] == b'-' && is_space(s[1])
}

/// ` -}}` : a space then a dash.
fn right_trim_marker(s: &[u8]) -> bool {
    s.len() >= 2 && is_space(s[0]) && s[1] == b'-'
}

/// Splits `input` into tokens; the last one is `Eof` or `Error`.
pub fn lex(input: &str) -> Vec<Token> {
    lex_counting(input).0
}

/// [`lex`], and how many bytes and characters it examined (the parser's linear-time
/// tests bound this by the input's length).
pub fn lex_counting(input: &str) -> (Vec<Token>, u64) {
    let mut l = Lexer {
        input,
        bytes: input.as_bytes(),
        pos: 0,
        start: 0,
        line: 1,
        start_line: 1,
        paren_depth: 0,
        out: Vec::new(),
        work: 0,
    };
    l.run();
    (l.out, l.work)
}

struct Lexer<'s> {
    input: &'s str,
    bytes: &'s [u8],
    pos: usize,
    start: usize,
    line: usize,
    start_line: usize,
    paren_depth: usize,
    out: Vec<Token>,
    /// Bytes and characters examined so far.
    work: u64,
}

enum State {
    Text,
    InsideAction,
    Done,
}

impl Lexer<'_> {
    fn run(&mut self) {
        let mut state = State::Text;
        loop {
            state = match state {
                State::Text => self.lex_text(),
                State::InsideAction => self.lex_inside_action(),
                State::Done => return,
            };
        }
    }

    fn emit(&mut self, kind: Kind) {
        let text = self.input[self.start..self.pos].to_string();
        self.out.push(Token {
            kind,
            pos: self.start,
            text,
            line: self.start_line,
        });
        self.start = self.pos;
        self.start_line = self.line;
    }

    /// Skips the text since the last token, counting its newlines.
    fn ignore(&mut self) {
        self.line += count_newlines(&self.bytes[self.start..self.pos]);
        self.start = self.pos;
        self.start_line = self.line;
    }

    fn error(&mut self, message: String) -> State {
        self.out.push(Token {
            kind: Kind::Error,
            pos: self.start,
            text: message,
            line: self.start_line,
        });
        State::Done
    }

    fn rest(&self) -> &[u8] {
        &self.bytes[self.pos..]
    }

    /// The next character, advancing past it (None at the end).
    fn next(&mut self) -> Option<char> {
        self.work += 1;
        let c = self.input[self.pos..].chars().next()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn peek(&self) -> Option<char> {
        self.input[self.pos..].chars().next()
    }

    fn backup(&mut self, c: char) {
        self.pos -= c.len_utf8();
        if c == '\n' {
            self.line -= 1;
        }
    }

    fn accept(&mut self, valid: &str) -> bool {
        self.work += 1;
        match self.peek() {
            Some(c) if valid.contains(c) => {
                self.pos += c.len_utf8();
                true
            }
            _ => false,
        }
    }

    fn accept_run(&mut self, valid: &str) {
        while self.accept(valid) {}
    }

    fn lex_text(&mut self) -> State {
        let found = self.input[self.pos..].find(LEFT);
        self.work += found.map_or(self.input.len() - self.pos, |x| x + 2) as u64;
        match found {
            Some(x) => {
                self.pos += x;
                let mut trim = 0;
                if left_trim_marker(&self.bytes[self.pos + LEFT.len()..]) {
                    let text = &self.bytes[self.start..self.pos];
                    trim = text.len()
                        - text
                            .iter()
                            .rposition(|&b| !is_space(b))
                            .map_or(0, |i| i + 1);
                }
                self.pos -= trim;
                if self.pos > self.start {
                    self.line += count_newlines(&self.bytes[self.start..self.pos]);
                    self.emit(Kind::Text);
                }
                self.pos += trim;
                self.ignore();
                self.lex_left_delim()
            }
            None => {
                self.pos = self.input.len();
                if self.pos > self.start {
                    self.line += count_newlines(&self.bytes[self.start..self.pos]);
                    self.emit(Kind::Text);
                }
                self.emit(Kind::Eof);
                State::Done
            }
        }
    }

    /// At a right delimiter (with or without a trim marker before it)?
    fn at_right_delim(&self) -> (bool, bool) {
        let r = self.rest();
        if right_trim_marker(r) && r[2..].starts_with(RIGHT.as_bytes()) {
            return (true, true);
        }
        (r.starts_with(RIGHT.as_bytes()), false)
    }

    fn lex_left_delim(&mut self) -> State {
        self.pos += LEFT.len();
        let trim = left_trim_marker(self.rest());
        let after = if trim { 2 } else { 0 };
        if self.bytes[self.pos + after..].starts_with(b"/*") {
            self.pos += after;
            self.ignore();
            return self.lex_comment();
        }
        self.emit(Kind::LeftDelim);
        self.pos += after;
        self.ignore();
        self.paren_depth = 0;
        State::InsideAction
    }

    fn lex_comment(&mut self) -> State {
        self.pos += 2;
        let found = self.input[self.pos..].find("*/");
        self.work += found.map_or(self.input.len() - self.pos, |i| i + 2) as u64;
        let Some(i) = found else {
            return self.error("unclosed comment".into());
        };
        self.pos += i + 2;
        let (delim, trim) = self.at_right_delim();
        if !delim {
            return self.error("comment ends before closing delimiter".into());
        }
        if trim {
            self.pos += 2;
        }
        self.pos += RIGHT.len();
        if trim {
            self.skip_leading_space();
        }
        self.ignore();
        State::Text
    }

    fn skip_leading_space(&mut self) {
        while self.pos < self.bytes.len() && is_space(self.bytes[self.pos]) {
            self.pos += 1;
        }
    }

    fn lex_right_delim(&mut self) -> State {
        let trim = right_trim_marker(self.rest());
        if trim {
            self.pos += 2;
            self.ignore();
        }
        self.pos += RIGHT.len();
        self.emit(Kind::RightDelim);
        if trim {
            self.skip_leading_space();
            self.ignore();
        }
        State::Text
    }

    fn lex_inside_action(&mut self) -> State {
        let (delim, _) = self.at_right_delim();
        if delim {
            if self.paren_depth == 0 {
                return self.lex_right_delim();
            }
            return self.error("unclosed left paren".into());
        }
        let Some(c) = self.next() else {
            return self.error("unclosed action".into());
        };
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                self.backup(c);
                return self.lex_space();
            }
            '=' => self.emit(Kind::Assign),
            ':' => {
                if self.next() != Some('=') {
                    return self.error("expected :=".into());
                }
                self.emit(Kind::Declare);
            }
            '|' => self.emit(Kind::Pipe),
            '"' => return self.lex_quoted('"', Kind::String, "quoted string"),
            '`' => return self.lex_raw_quote(),
            '$' => return self.lex_variable(),
            '\'' => return self.lex_quoted('\'', Kind::CharConst, "character constant"),
            '.' if self.peek().is_some_and(|d| !d.is_ascii_digit()) => {
                return self.lex_field_or_variable(Kind::Field);
            }
            '.' | '+' | '-' | '0'..='9' => {
                self.backup(c);
                return self.lex_number();
            }
            '(' => {
                self.emit(Kind::LeftParen);
                self.paren_depth += 1;
            }
            ')' => {
                self.emit(Kind::RightParen);
                if self.paren_depth == 0 {
                    return self.error(format!("unexpected right paren {}", go_char(c)));
                }
                self.paren_depth -= 1;
            }
            c if is_alnum(c) => {
                self.backup(c);
                return self.lex_identifier();
            }
            c if c.is_ascii() && !c.is_ascii_control() => self.emit(Kind::Char),
            c => return self.error(format!("unrecognized character in action: {}", go_char(c))),
        }
        State::InsideAction
    }

    fn lex_space(&mut self) -> State {
        let mut spaces = 0;
        while self.pos < self.bytes.len() && is_space(self.bytes[self.pos]) {
            self.next();
            spaces += 1;
        }
        // " -}}": the space before the marker belongs to the delimiter.
        let before = &self.bytes[self.pos - 1..];
        if right_trim_marker(before) && before[2..].starts_with(RIGHT.as_bytes()) {
            let c = self.bytes[self.pos - 1] as char;
            self.backup(c);
            if spaces == 1 {
                return self.lex_right_delim();
            }
        }
        self.emit(Kind::Space);
        State::InsideAction
    }

    fn lex_identifier(&mut self) -> State {
        self.eat_alnum();
        if !self.at_terminator() {
            return self.bad_character();
        }
        let word = &self.input[self.start..self.pos];
        let kind = match keyword(word) {
            Some(k) => k,
            None if word == "true" || word == "false" => Kind::Bool,
            None => Kind::Ident,
        };
        self.emit(kind);
        State::InsideAction
    }

    /// Advances past letters, digits and `_`.
    fn eat_alnum(&mut self) {
        while let Some(c) = self.next() {
            if !is_alnum(c) {
                self.backup(c);
                break;
            }
        }
    }

    fn bad_character(&mut self) -> State {
        let c = self.peek().unwrap_or('\u{fffd}');
        self.error(format!("bad character {}", go_char(c)))
    }

    fn lex_variable(&mut self) -> State {
        if self.at_terminator() {
            self.emit(Kind::Variable);
            return State::InsideAction;
        }
        self.lex_field_or_variable(Kind::Variable)
    }

    fn lex_field_or_variable(&mut self, kind: Kind) -> State {
        if self.at_terminator() {
            self.emit(if kind == Kind::Variable {
                Kind::Variable
            } else {
                Kind::Dot
            });
            return State::InsideAction;
        }
        self.eat_alnum();
        if !self.at_terminator() {
            return self.bad_character();
        }
        self.emit(kind);
        State::InsideAction
    }

    fn at_terminator(&self) -> bool {
        match self.peek() {
            None => true,
            Some(' ' | '\t' | '\r' | '\n' | '.' | ',' | '|' | ':' | ')' | '(') => true,
            Some(_) => self.rest().starts_with(RIGHT.as_bytes()),
        }
    }

    /// A `'c'` or `"string"` up to its closing `quote`, backslash escapes skipped.
    fn lex_quoted(&mut self, quote: char, kind: Kind, what: &str) -> State {
        loop {
            match self.next() {
                Some('\\') => match self.next() {
                    Some('\n') | None => return self.error(format!("unterminated {what}")),
                    Some(_) => {}
                },
                Some('\n') | None => return self.error(format!("unterminated {what}")),
                Some(c) if c == quote => break,
                Some(_) => {}
            }
        }
        self.emit(kind);
        State::InsideAction
    }

    fn lex_number(&mut self) -> State {
        if !self.scan_number() {
            let text = self.input[self.start..self.pos].to_string();
            return self.error(format!("bad number syntax: {text:?}"));
        }
        if matches!(self.peek(), Some('+' | '-')) {
            if !self.scan_number() || !self.input[..self.pos].ends_with('i') {
                let text = self.input[self.start..self.pos].to_string();
                return self.error(format!("bad number syntax: {text:?}"));
            }
            self.emit(Kind::Complex);
        } else {
            self.emit(Kind::Number);
        }
        State::InsideAction
    }

    fn scan_number(&mut self) -> bool {
        self.accept("+-");
        let mut digits = "0123456789_";
        if self.accept("0") {
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits.len() == 11 && self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        if digits.len() == 23 && self.accept("pP") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        self.accept("i");
        if self.peek().is_some_and(is_alnum) {
            self.next();
            return false;
        }
        true
    }

    fn lex_raw_quote(&mut self) -> State {
        let found = self.input[self.pos..].find('`');
        self.work += found.map_or(self.input.len() - self.pos, |i| i + 1) as u64;
        match found {
            Some(i) => {
                let end = self.pos + i + 1;
                self.line += count_newlines(&self.bytes[self.pos..end]);
                self.pos = end;
                self.emit(Kind::RawString);
                State::InsideAction
            }
            None => self.error("unterminated raw quoted string".into()),
        }
    }
}

fn count_newlines(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

#[cfg(test)]
#[path = "lex_tests.rs"]
mod tests;
