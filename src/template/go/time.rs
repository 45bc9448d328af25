//! Go's `time.Time` (placeholder until the full implementation lands).

use super::value::Value;

/// A point in time as Go's `time.Now()` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoTime {
    secs: i64,
    nanos: u32,
}

impl GoTime {
    /// Now.
    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            secs: d.as_secs() as i64,
            nanos: d.subsec_nanos(),
        }
    }

    /// `Time.String()`.
    pub fn string(&self) -> String {
        format!("{}.{:09}", self.secs, self.nanos)
    }

    /// A method call.
    pub fn method(&self, name: &str, _args: &[Value]) -> Option<Result<Value<'static>, String>> {
        match name {
            "Unix" => Some(Ok(Value::Int(self.secs))),
            _ => None,
        }
    }
}
