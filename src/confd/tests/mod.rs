//! Unit tests: the flag parser, confd.toml and confd's precedence, the mapping onto
//! confsync's settings, and resource files read by confd's rules.

mod args;
mod config;
mod resources;
