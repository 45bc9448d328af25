//! confsync keeps HAProxy and nginx configuration in step with a key/value store.
pub mod backend;
