//! What a sync tells whoever watches it closely (the daemon's status page), beyond its
//! result: the keys a render saw and the bytes a change replaced.

/// Told about one resource's sync as it goes; both calls run on a blocking section.
pub trait Observer: Send + Sync {
    /// A render saw `keys` keys and its file is to have `mode` (checked against the
    /// destination, before any check command).
    fn rendered(&self, keys: usize, mode: u32);
    /// The destination was replaced: `old` (`None`: there was none; still open, so it
    /// can be read) by `new`, handed over (the sync is done with them, so no copy of a
    /// large file is made). Called on the sync's way to its reload: it must be cheap
    /// (heavy work, reading `old` among it, goes elsewhere).
    fn replaced(&self, old: Option<super::stage::Old>, new: Vec<u8>);
}
