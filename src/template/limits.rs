//! Bounds on one render: how many bytes it may write and a flag that abandons it.
//! Templates are trusted configuration but the keys they loop over are not, so a loop
//! over a million keys written by an instance must stop at a size, not when memory ends.

use std::cell::RefCell;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tera::{Error, Kwargs, State, TeraResult};

thread_local! {
    /// The cancel flag of the Tera render running on this thread. Tera functions are
    /// shared `'static` closures, so the per-render flag travels here; it is set only for
    /// the duration of one synchronous render.
    static CANCEL: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// A resource's `max_render_size` when it sets none: 64 MiB.
pub const DEFAULT_MAX_RENDER_SIZE: usize = 64 << 20;

/// What one render may do; the engines check it as they write.
#[derive(Debug, Clone)]
pub struct RenderLimits {
    /// Most bytes the render may write: one that reaches it is stopped.
    pub max_size: usize,
    /// Set when the render is to be abandoned (it ran past its time limit).
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for RenderLimits {
    fn default() -> Self {
        Self {
            max_size: DEFAULT_MAX_RENDER_SIZE,
            cancel: None,
        }
    }
}

impl RenderLimits {
    /// Limits of `max_size` bytes and no cancel flag.
    pub fn sized(max_size: usize) -> Self {
        Self {
            max_size,
            cancel: None,
        }
    }

    /// True once the render has been abandoned.
    pub fn cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
    }

    /// The message of a render stopped at `max_size`.
    pub fn too_large(&self) -> String {
        format!(
            "the rendered output reached max_render_size ({}) and the render was stopped",
            human_size(self.max_size)
        )
    }

    /// The message of an abandoned render.
    pub fn cancelled_message() -> String {
        "the render was abandoned after its render_timeout".to_string()
    }
}

/// Runs `f` with `cancel` as the flag [`check_cancelled`] reads on this thread.
pub fn with_cancel<T>(cancel: Option<Arc<AtomicBool>>, f: impl FnOnce() -> T) -> T {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            CANCEL.with(|c| c.borrow_mut().take());
        }
    }
    CANCEL.with(|c| *c.borrow_mut() = cancel);
    let _reset = Reset;
    f()
}

/// An error once the render on this thread has been abandoned. The functions templates
/// call check it, so a loop that writes nothing still stops: the output writer only sees
/// the flag at the next write.
pub fn check_cancelled() -> TeraResult<()> {
    let cancelled = CANCEL.with(|c| {
        c.borrow()
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    });
    if cancelled {
        Err(Error::message(RenderLimits::cancelled_message()))
    } else {
        Ok(())
    }
}

/// The most numbers one `range` makes (Tera's own limit).
const MAX_RANGE_LEN: i128 = 100_000;

/// Tera's `range(end, start=0, step_by=1)`, same arguments and limit, that first checks
/// [`check_cancelled`]: nested `range` loops that write nothing stop within one inner
/// loop of the render being abandoned.
pub fn range(kwargs: Kwargs, _: &State) -> TeraResult<Vec<i128>> {
    check_cancelled()?;
    let start = kwargs.get::<i128>("start")?.unwrap_or_default();
    let end = kwargs.must_get::<i128>("end")?;
    let step = kwargs.get::<i128>("step_by")?.unwrap_or(1);
    if step == 0 {
        return Err(Error::message("range: step_by is 0"));
    }
    if start > end && step > 0 {
        return Err(Error::message("range: start is greater than end"));
    }
    let overflow = || Error::message("range: the arguments overflow");
    // Elements: the span divided by the step, rounded up; none when the step points away.
    let (span, by) = if step > 0 {
        (end.checked_sub(start), step)
    } else {
        (
            start.checked_sub(end),
            step.checked_neg().ok_or_else(overflow)?,
        )
    };
    let span = span.ok_or_else(overflow)?.max(0);
    let len = span.checked_add(by - 1).ok_or_else(overflow)? / by;
    if len > MAX_RANGE_LEN {
        return Err(Error::message(format!(
            "range: {len} numbers is more than the limit of {MAX_RANGE_LEN}"
        )));
    }
    Ok((0..len).map(|i| start + i * step).collect())
}

/// `n` bytes as people write it: `64 MiB`, `4 KiB` or `1000 bytes`.
pub fn human_size(n: usize) -> String {
    const MIB: usize = 1 << 20;
    const KIB: usize = 1 << 10;
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= KIB && n.is_multiple_of(KIB) {
        format!("{} KiB", n / KIB)
    } else {
        format!("{n} bytes")
    }
}

/// An output buffer that refuses writes past the size limit or after the render was
/// abandoned, remembering why (Tera keeps only an I/O error's kind).
pub struct LimitedWriter<'a> {
    pub out: Vec<u8>,
    limits: &'a RenderLimits,
    /// Why a write was refused.
    pub stopped: Option<String>,
}

impl<'a> LimitedWriter<'a> {
    pub fn new(limits: &'a RenderLimits) -> Self {
        Self {
            out: Vec::new(),
            limits,
            stopped: None,
        }
    }
}

impl Write for LimitedWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.limits.cancelled() {
            self.stopped = Some(RenderLimits::cancelled_message());
        } else if self.out.len().saturating_add(buf.len()) >= self.limits.max_size {
            self.stopped = Some(self.limits.too_large());
        }
        if let Some(why) = &self.stopped {
            return Err(std::io::Error::other(why.clone()));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_stops_at_the_limit_and_says_why() {
        let limits = RenderLimits::sized(10);
        let mut w = LimitedWriter::new(&limits);
        w.write_all(b"12345").unwrap();
        assert!(w.write_all(b"67890").is_err());
        assert_eq!(w.out, b"12345");
        assert!(w.stopped.unwrap().contains("max_render_size (10 bytes)"));
    }

    #[test]
    fn the_writer_stops_once_cancelled() {
        let flag = Arc::new(AtomicBool::new(false));
        let limits = RenderLimits {
            max_size: 1 << 20,
            cancel: Some(flag.clone()),
        };
        let mut w = LimitedWriter::new(&limits);
        w.write_all(b"a").unwrap();
        flag.store(true, Ordering::Relaxed);
        assert!(w.write_all(b"b").is_err());
        assert!(w.stopped.unwrap().contains("render_timeout"));
    }

    #[test]
    fn sizes_read_as_written() {
        assert_eq!(human_size(64 << 20), "64 MiB");
        assert_eq!(human_size(4096), "4 KiB");
        assert_eq!(human_size(1000), "1000 bytes");
    }
}
