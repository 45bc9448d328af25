//! A real etcd server (Debian etcd-server) for tests.
