//! Calls a function with arguments the evaluator has already checked against its Go
//! signature (`funcs`), dispatching to the builtins and confd's function map.

use super::builtins;
use super::confd::{self, int_arg, str_arg};
use super::escape;
use super::exec::Exec;
use super::fmt;
use super::funcs::Func;
use super::value::{Str, Value};

impl<'a> Exec<'a> {
    /// Runs `f`; an `Err` is the function's own error (Go's "error calling f: ...").
    pub(super) fn call(&mut self, f: Func, args: &[Value<'a>]) -> Result<Value<'a>, String> {
        let store = self.store;
        let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
        let v = match f {
            // `and`/`or` never get here: the evaluator short-circuits them.
            Func::And | Func::Or => Value::Missing,
            Func::Not => Value::Bool(!arg(0).truth()),
            Func::Len => builtins::len(&arg(0))?,
            Func::Index => builtins::index(&arg(0), args.get(1..).unwrap_or_default())?,
            Func::Slice => builtins::slice(&arg(0), args.get(1..).unwrap_or_default())?,
            Func::Call => builtins::call(&arg(0))?,
            Func::Print | Func::Println | Func::Printf => {
                // Their strings alone may already be too long: say so before copying them.
                confd::check_len(args.iter().map(|a| a.as_str().map_or(0, str::len)).sum())?;
                let mut s = String::new();
                match f {
                    Func::Print => fmt::sprint(&mut s, args),
                    Func::Println => fmt::sprintln(&mut s, args),
                    _ => fmt::sprintf(&mut s, str_arg(args, 0), args.get(1..).unwrap_or_default()),
                }
                Value::string(s)
            }
            Func::Html => Value::string(escape::html(args)),
            Func::Js => Value::string(escape::js(args)),
            Func::Urlquery => Value::string(escape::urlquery(args)),
            Func::Eq => Value::Bool(builtins::eq(&arg(0), args.get(1..).unwrap_or_default())?),
            Func::Ne => Value::Bool(!builtins::eq(&arg(0), args.get(1..).unwrap_or_default())?),
            Func::Lt => Value::Bool(builtins::lt(&arg(0), &arg(1))?),
            Func::Le => Value::Bool(builtins::le(&arg(0), &arg(1))?),
            Func::Gt => Value::Bool(!builtins::le(&arg(0), &arg(1))?),
            Func::Ge => Value::Bool(!builtins::lt(&arg(0), &arg(1))?),
            Func::Exists => Value::Bool(store.get(str_arg(args, 0)).is_some()),
            Func::Ls => confd::names(store.ls(str_arg(args, 0))),
            Func::Lsdir => confd::names(store.lsdir(str_arg(args, 0))),
            Func::Get => confd::get(store, str_arg(args, 0))?,
            Func::Gets => confd::gets(store, str_arg(args, 0))?,
            Func::Getv => confd::getv(store, args)?,
            Func::Getvs => confd::getvs(store, str_arg(args, 0))?,
            Func::Base => {
                // Unlike confd: a key name with whitespace or control characters could
                // write a directive of its own.
                let v = confd::base(args);
                crate::template::safe::base_name(v.as_str().unwrap_or(""))?;
                v
            }
            Func::Dir => confd::dir(args),
            Func::Split => confd::split(args)?,
            Func::Json => confd::json(str_arg(args, 0))?,
            Func::JsonArray => confd::json_array(str_arg(args, 0))?,
            Func::Map => confd::create_map(args)?,
            Func::Getenv => confd::getenv(args)?,
            Func::Join => confd::join(args)?,
            Func::Datetime => confd::datetime(),
            Func::ToUpper => confd::change_case(args, true),
            Func::ToLower => confd::change_case(args, false),
            Func::Contains => Value::Bool(str_arg(args, 0).contains(str_arg(args, 1))),
            Func::Replace => confd::replace(args)?,
            Func::TrimSuffix => confd::trim_suffix(args),
            Func::LookupIp => confd::lookup_ip(str_arg(args, 0), |_| true),
            Func::LookupIpv4 => confd::lookup_ip(str_arg(args, 0), |ip| ip.contains('.')),
            Func::LookupIpv6 => confd::lookup_ip(str_arg(args, 0), |ip| ip.contains(':')),
            Func::LookupSrv => {
                confd::lookup_srv(str_arg(args, 0), str_arg(args, 1), str_arg(args, 2))
            }
            Func::LookupIfaceIpv4 => confd::lookup_iface(str_arg(args, 0), false),
            Func::LookupIfaceIpv6 => confd::lookup_iface(str_arg(args, 0), true),
            Func::FileExists => Value::Bool(confd::file_exists(str_arg(args, 0))),
            Func::Base64Encode => Value::string(super::base64::encode(str_arg(args, 0))),
            Func::Base64Decode => Value::string(super::base64::decode(str_arg(args, 0))?),
            Func::ParseBool => Value::Bool(confd::parse_bool(str_arg(args, 0))?),
            Func::Reverse => confd::reverse(&arg(0)),
            Func::SortByLength => confd::sort_by_length(&arg(0), false),
            Func::SortKvByLength => confd::sort_by_length(&arg(0), true),
            Func::Add | Func::Sub | Func::Mul | Func::Div | Func::Mod => {
                Value::Int(confd::arith(f.name(), int_arg(args, 0), int_arg(args, 1))?)
            }
            Func::Seq => confd::seq(int_arg(args, 0), int_arg(args, 1))?,
            Func::Atoi => Value::Int(confd::atoi(str_arg(args, 0))?),
            Func::Addr | Func::Ident | Func::Token => {
                let check = match f {
                    Func::Addr => crate::template::safe::addr,
                    Func::Ident => crate::template::safe::ident,
                    _ => crate::template::safe::token,
                };
                check(str_arg(args, 0))?;
                arg(0)
            }
        };
        // What printf, html, ... made, bounded as replace and join check before they make it.
        if let Value::Str(Str::Rc(s)) = &v {
            confd::check_len(s.len())?;
        }
        Ok(v)
    }
}
