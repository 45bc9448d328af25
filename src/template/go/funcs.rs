//! Every function a confd Go template can call: text/template's builtins and confd's
//! function map (its own helpers and memkv's store functions), each with the Go
//! signature that decides how its arguments are checked.

/// A Go parameter type, as far as argument checking needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// `reflect.Value`: anything, including no value at all (the builtins).
    Value,
    /// `interface {}`: anything; no value becomes nil.
    Any,
    /// `string`
    Str,
    /// `int`
    Int,
    /// `[]string`
    Strings,
    /// `[]memkv.KVPair`
    Kvs,
}

impl Ty {
    /// The Go spelling, for error messages.
    pub fn go_name(self) -> &'static str {
        match self {
            Ty::Value => "reflect.Value",
            Ty::Any => "interface {}",
            Ty::Str => "string",
            Ty::Int => "int",
            Ty::Strings => "[]string",
            Ty::Kvs => "[]memkv.KVPair",
        }
    }
}

/// A function's parameters: fixed ones, then optionally a variadic tail.
#[derive(Debug, Clone, Copy)]
pub struct Sig {
    /// Fixed parameters.
    pub fixed: &'static [Ty],
    /// The type of each extra argument, for a variadic function.
    pub variadic: Option<Ty>,
}

macro_rules! funcs {
    ($($variant:ident $name:literal ($($fixed:ident),*) $(... $var:ident)?;)*) => {
        /// A function a template can call.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Func {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        impl Func {
            /// The function called `name`, if there is one.
            pub fn lookup(name: &str) -> Option<Func> {
                match name {
                    $($name => Some(Func::$variant),)*
                    _ => None,
                }
            }

            /// The name templates call it by.
            pub fn name(self) -> &'static str {
                match self {
                    $(Func::$variant => $name,)*
                }
            }

            /// Its Go signature.
            pub fn sig(self) -> Sig {
                match self {
                    $(Func::$variant => Sig {
                        fixed: &[$(Ty::$fixed),*],
                        variadic: funcs!(@var $($var)?),
                    },)*
                }
            }

            /// Every function, for documentation and tests.
            pub const ALL: &'static [Func] = &[$(Func::$variant),*];
        }
    };
    (@var) => { None };
    (@var $t:ident) => { Some(Ty::$t) };
}

funcs! {
    // text/template's builtins.
    And "and" (Value) ...Value;
    Or "or" (Value) ...Value;
    Not "not" (Value);
    Len "len" (Value);
    Index "index" (Value) ...Value;
    Slice "slice" (Value) ...Value;
    Call "call" (Value) ...Value;
    Print "print" () ...Any;
    Printf "printf" (Str) ...Any;
    Println "println" () ...Any;
    Html "html" () ...Any;
    Js "js" () ...Any;
    Urlquery "urlquery" () ...Any;
    Eq "eq" (Value) ...Value;
    Ne "ne" (Value, Value);
    Lt "lt" (Value, Value);
    Le "le" (Value, Value);
    Gt "gt" (Value, Value);
    Ge "ge" (Value, Value);
    // memkv's store functions.
    Exists "exists" (Str);
    Ls "ls" (Str);
    Lsdir "lsdir" (Str);
    Get "get" (Str);
    Gets "gets" (Str);
    Getv "getv" (Str) ...Str;
    Getvs "getvs" (Str);
    // confd's helpers.
    Base "base" (Str);
    Split "split" (Str, Str);
    Json "json" (Str);
    JsonArray "jsonArray" (Str);
    Dir "dir" (Str);
    Map "map" () ...Any;
    Getenv "getenv" (Str) ...Str;
    Join "join" (Strings, Str);
    Datetime "datetime" ();
    ToUpper "toUpper" (Str);
    ToLower "toLower" (Str);
    Contains "contains" (Str, Str);
    Replace "replace" (Str, Str, Str, Int);
    TrimSuffix "trimSuffix" (Str, Str);
    LookupIp "lookupIP" (Str);
    LookupIpv4 "lookupIPV4" (Str);
    LookupIpv6 "lookupIPV6" (Str);
    LookupSrv "lookupSRV" (Str, Str, Str);
    LookupIfaceIpv4 "lookupIfaceIPV4" (Str);
    LookupIfaceIpv6 "lookupIfaceIPV6" (Str);
    FileExists "fileExists" (Str);
    Base64Encode "base64Encode" (Str);
    Base64Decode "base64Decode" (Str);
    ParseBool "parseBool" (Str);
    Reverse "reverse" (Any);
    SortByLength "sortByLength" (Strings);
    SortKvByLength "sortKVByLength" (Kvs);
    Add "add" (Int, Int);
    Sub "sub" (Int, Int);
    Mul "mul" (Int, Int);
    Div "div" (Int, Int);
    Mod "mod" (Int, Int);
    Seq "seq" (Int, Int);
    Atoi "atoi" (Str);
    // confsync's extensions (confd has none of these): a value checked for the place
    // it goes in a proxy config, unchanged or an error (see `template::safe`).
    Addr "addr" (Str);
    Ident "ident" (Str);
    Token "token" (Str);
}
