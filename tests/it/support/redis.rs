//! A real redis-server / redis-sentinel (Debian) for tests.
