//! Go's printer (`fmt.pp`) over the template's values: which verbs each Go type takes,
//! the `%!verb(type=value)` errors, the `String`/`GoString` methods of `time.Time`, and
//! how structs (`memkv.KVPair`, `net.SRV`, `time.Time`), slices, maps and pointers are
//! walked, element by element, under the same verb.

use super::super::time::GoTime;
use super::super::value::{Kv, List, Map, Srv, Value};
use super::scalar::Flags;

/// The address printed for a pointer, a slice or a map (`%p`, a `*net.SRV` inside a
/// slice, a time's location). Go prints a heap address no other program can predict;
/// this one has the shape of a Go heap address and never changes.
pub const FAKE_ADDR: u64 = 0xc000010000;

/// One `Sprint`/`Sprintf` call: the output, the current directive's flags, and whether
/// a `%!verb(...)` error is being printed (Go does not call `String` methods then).
pub(super) struct Printer<'o> {
    pub buf: &'o mut String,
    pub f: Flags,
    erroring: bool,
}

impl<'o> Printer<'o> {
    /// A printer appending to `buf`.
    pub fn new(buf: &'o mut String) -> Self {
        Self {
            buf,
            f: Flags::default(),
            erroring: false,
        }
    }

    /// Prints one operand (Go's `printArg`).
    pub fn print_arg(&mut self, arg: &Value<'_>, verb: char) {
        if let Value::Missing | Value::Nil = arg {
            match verb {
                'T' | 'v' => self.pad("<nil>"),
                _ => self.bad_verb(verb, None, |_| {}),
            }
            return;
        }
        match verb {
            'T' => self.fmt_s(&arg.go_type()),
            'p' => self.fmt_pointer_of(arg, 'p'),
            _ => {
                if !self.handle_methods(arg, verb) {
                    self.print_value(arg, verb, 0);
                }
            }
        }
    }

    /// The `net.SRV` a `*net.SRV` points to, with `%v` (`{{ $srv }}` prints it so).
    pub fn print_srv(&mut self, s: &Srv) {
        self.print_srv_struct(s, 'v');
    }

    /// Go's `handleMethods`: `time.Time` has `GoString` (for `%#v`) and `String` (for
    /// the verbs that take a string); nothing else the templates see has methods. `%w`
    /// is an error here, as in any `Sprintf`.
    fn handle_methods(&mut self, v: &Value<'_>, verb: char) -> bool {
        if self.erroring {
            return false;
        }
        // `%w` is for `fmt.Errorf` only: a bad verb for every operand that gets here.
        if verb == 'w' {
            let t = v.go_type();
            self.bad_verb(verb, Some(&t), |p| p.print_value(v, 'v', 0));
            return true;
        }
        let Value::Time(t) = v else { return false };
        if self.f.sharp_v {
            self.fmt_s(&t.go_string());
            return true;
        }
        if matches!(verb, 'v' | 's' | 'x' | 'X' | 'q') {
            self.op_string(&t.string(), verb);
            return true;
        }
        false
    }

    /// Prints a value reached at `depth` (Go's `printValue`); an element of a slice or
    /// map, or a field, is at depth 1 or more.
    fn print_value(&mut self, v: &Value<'_>, verb: char, depth: usize) {
        if depth > 0 && self.handle_methods(v, verb) {
            return;
        }
        match v {
            // A nil `interface {}` inside a slice or a map.
            Value::Missing | Value::Nil => {
                let s = if self.f.sharp_v {
                    "interface {}(nil)"
                } else {
                    "<nil>"
                };
                self.buf.push_str(s);
            }
            Value::Bool(b) => self.op_bool(*b, verb),
            Value::Int(i) => self.op_int(*i as u64, true, verb, "int"),
            Value::U16(u) => self.op_int(u64::from(*u), false, verb, "uint16"),
            Value::Float(x) => self.op_float(*x, verb),
            Value::Str(s) => self.op_string(s, verb),
            Value::Kv(kv) => self.print_kv(kv, verb),
            Value::List(l) => self.print_list(l, verb, depth),
            Value::Map(m) => self.print_map(m, verb, depth),
            Value::Time(t) => self.print_time_struct(t, verb),
            Value::Srv(s) if depth == 0 => {
                self.buf.push('&');
                self.print_srv_struct(s, verb);
            }
            Value::Srv(s) => self.fmt_pointer(FAKE_ADDR, verb, "*net.SRV", |p| {
                p.buf.push('&');
                p.print_srv_struct(s, 'v');
            }),
        }
    }

    /// `%!verb(type=value)`, or `%!verb(<nil>)` without a type; `value` prints the
    /// operand with `%v` and the directive's other flags, as Go does.
    fn bad_verb(&mut self, verb: char, type_name: Option<&str>, value: impl FnOnce(&mut Self)) {
        self.erroring = true;
        self.buf.push_str("%!");
        self.buf.push(verb);
        self.buf.push('(');
        match type_name {
            Some(t) => {
                self.buf.push_str(t);
                self.buf.push('=');
                value(self);
            }
            None => self.buf.push_str("<nil>"),
        }
        self.buf.push(')');
        self.erroring = false;
    }

    /// A `bool`: `%t`, `%v`.
    fn op_bool(&mut self, b: bool, verb: char) {
        match verb {
            't' | 'v' => self.fmt_boolean(b),
            _ => self.bad_verb(verb, Some("bool"), |p| p.op_bool(b, 'v')),
        }
    }

    /// An integer of Go type `type_name` (`int`, `uint16`, `uint64`, `int64`).
    fn op_int(&mut self, u: u64, signed: bool, verb: char, type_name: &str) {
        match verb {
            'v' if self.f.sharp_v && !signed => self.fmt_0x64(u, true),
            'v' | 'd' => self.fmt_integer(u, 10, signed, verb, false),
            'b' => self.fmt_integer(u, 2, signed, verb, false),
            'o' | 'O' => self.fmt_integer(u, 8, signed, verb, false),
            'x' => self.fmt_integer(u, 16, signed, verb, false),
            'X' => self.fmt_integer(u, 16, signed, verb, true),
            'c' => self.fmt_c(u),
            'q' => self.fmt_qc(u),
            'U' => self.fmt_unicode(u),
            _ => self.bad_verb(verb, Some(type_name), |p| {
                p.op_int(u, signed, 'v', type_name)
            }),
        }
    }

    /// `u` in hex, with `0x` when `leading_0x` (Go's `fmt0x64`).
    fn fmt_0x64(&mut self, u: u64, leading_0x: bool) {
        let sharp = std::mem::replace(&mut self.f.sharp, leading_0x);
        self.fmt_integer(u, 16, false, 'v', false);
        self.f.sharp = sharp;
    }

    /// A `float64`.
    fn op_float(&mut self, x: f64, verb: char) {
        match verb {
            'v' => self.fmt_float(x, b'g', -1),
            'b' | 'g' | 'G' | 'x' | 'X' => self.fmt_float(x, verb as u8, -1),
            'f' | 'e' | 'E' => self.fmt_float(x, verb as u8, 6),
            'F' => self.fmt_float(x, b'f', 6),
            _ => self.bad_verb(verb, Some("float64"), |p| p.op_float(x, 'v')),
        }
    }

    /// A `string`.
    fn op_string(&mut self, s: &str, verb: char) {
        match verb {
            'v' if self.f.sharp_v => self.fmt_q(s),
            'v' | 's' => self.fmt_s(s),
            'x' => self.fmt_sx(s, false),
            'X' => self.fmt_sx(s, true),
            'q' => self.fmt_q(s),
            _ => self.bad_verb(verb, Some("string"), |p| p.op_string(s, 'v')),
        }
    }

    /// Separates two fields or elements: `, ` in Go syntax, a space otherwise.
    fn separator(&mut self) {
        self.buf.push_str(if self.f.sharp_v { ", " } else { " " });
    }

    /// Opens a struct: its type in Go syntax, then `{`.
    fn open_struct(&mut self, type_name: &str) {
        if self.f.sharp_v {
            self.buf.push_str(type_name);
        }
        self.buf.push('{');
    }

    /// Writes a struct field's name with `%+v` and `%#v`, and the separator before it.
    fn field_name(&mut self, i: usize, name: &str) {
        if i > 0 {
            self.separator();
        }
        if self.f.plus_v || self.f.sharp_v {
            self.buf.push_str(name);
            self.buf.push(':');
        }
    }

    /// `memkv.KVPair{Key, Value}`.
    fn print_kv(&mut self, kv: &Kv<'_>, verb: char) {
        self.open_struct("memkv.KVPair");
        self.field_name(0, "Key");
        self.op_string(&kv.key, verb);
        self.field_name(1, "Value");
        self.op_string(&kv.value, verb);
        self.buf.push('}');
    }

    /// `net.SRV{Target, Port, Priority, Weight}` (the struct a `*net.SRV` points to).
    fn print_srv_struct(&mut self, s: &Srv, verb: char) {
        self.open_struct("net.SRV");
        self.field_name(0, "Target");
        self.op_string(&s.target, verb);
        for (i, (name, n)) in [
            ("Port", s.port),
            ("Priority", s.priority),
            ("Weight", s.weight),
        ]
        .into_iter()
        .enumerate()
        {
            self.field_name(i + 1, name);
            self.op_int(u64::from(n), false, verb, "uint16");
        }
        self.buf.push('}');
    }

    /// `time.Time{wall, ext, loc}` for the verbs its `String` method does not serve.
    fn print_time_struct(&mut self, t: &GoTime, verb: char) {
        self.open_struct("time.Time");
        self.field_name(0, "wall");
        self.op_int(t.wall(), false, verb, "uint64");
        self.field_name(1, "ext");
        self.op_int(t.ext() as u64, true, verb, "int64");
        self.field_name(2, "loc");
        let addr = if t.is_utc() { 0 } else { FAKE_ADDR };
        self.fmt_pointer(addr, verb, "*time.Location", |p| {
            if addr == 0 {
                p.pad("<nil>");
            } else {
                p.fmt_0x64(addr, true);
            }
        });
        self.buf.push('}');
    }

    /// A slice: `[a b]`, or `[]string{"a", "b"}` in Go syntax.
    fn print_list(&mut self, l: &List<'_>, verb: char, depth: usize) {
        // Nothing mutates a slice while it prints; were it borrowed, print it empty.
        let Ok(items) = l.items.try_borrow() else {
            self.buf.push_str(if self.f.sharp_v {
                l.kind.go_type()
            } else {
                "["
            });
            self.buf.push_str(if self.f.sharp_v { "{}" } else { "]" });
            return;
        };
        if self.f.sharp_v {
            self.buf.push_str(l.kind.go_type());
            self.buf.push('{');
        } else {
            self.buf.push('[');
        }
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.separator();
            }
            self.print_value(item, verb, depth + 1);
        }
        self.buf.push(if self.f.sharp_v { '}' } else { ']' });
    }

    /// A `map[string]interface {}`, keys in order: `map[a:1 b:x]`, or
    /// `map[string]interface {}{"a":1, "b":"x"}` in Go syntax.
    fn print_map(&mut self, m: &Map<'_>, verb: char, depth: usize) {
        if self.f.sharp_v {
            self.buf.push_str("map[string]interface {}{");
        } else {
            self.buf.push_str("map[");
        }
        for (i, (k, v)) in m.iter().enumerate() {
            if i > 0 {
                self.separator();
            }
            self.op_string(k, verb);
            self.buf.push(':');
            self.print_value(v, verb, depth + 1);
        }
        self.buf.push(if self.f.sharp_v { '}' } else { ']' });
    }

    /// `%p` (or another verb) of a top-level operand: slices, maps and pointers have an
    /// address, everything else is a bad verb.
    fn fmt_pointer_of(&mut self, v: &Value<'_>, verb: char) {
        match v {
            Value::List(_) | Value::Map(_) | Value::Srv(_) => {
                let t = v.go_type();
                self.fmt_pointer(FAKE_ADDR, verb, &t, |p| p.print_value(v, 'v', 0));
            }
            _ => {
                let t = v.go_type();
                self.bad_verb(verb, Some(&t), |p| p.print_value(v, 'v', 0));
            }
        }
    }

    /// A pointer of type `type_name` holding `addr` (0 for nil); `deref` prints it with
    /// `%v` for a bad verb (Go's `fmtPointer`).
    fn fmt_pointer(
        &mut self,
        addr: u64,
        verb: char,
        type_name: &str,
        deref: impl FnOnce(&mut Self),
    ) {
        match verb {
            'v' if self.f.sharp_v => {
                self.buf.push('(');
                self.buf.push_str(type_name);
                self.buf.push_str(")(");
                if addr == 0 {
                    self.buf.push_str("nil");
                } else {
                    self.fmt_0x64(addr, true);
                }
                self.buf.push(')');
            }
            'v' if addr == 0 => self.pad("<nil>"),
            'v' | 'p' => self.fmt_0x64(addr, !self.f.sharp),
            'b' | 'o' | 'd' | 'x' | 'X' => self.op_int(addr, false, verb, type_name),
            _ => self.bad_verb(verb, Some(type_name), deref),
        }
    }
}
