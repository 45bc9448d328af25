//! The one integration-test binary: it starts real servers (etcd, Redis, HAProxy, nginx)
//! on free loopback ports in temp dirs, shared per binary where it can, and runs the
//! `confsync` binary against them. Each test uses its own random key prefix.

mod support;

mod bind_mounts;
mod bounds;
mod cli;
mod confd_cli;
mod container;
mod convert;
mod daemon;
mod destinations;
mod docker;
mod etcd;
mod exec;
mod faults;
mod file_backend;
mod go_templates;
mod grafana;
mod haproxy_runtime;
mod hostile_resources;
mod injection;
mod input_quirks;
mod metadata;
mod package;
mod redis;
mod register;
mod register_docker;
mod reliability;
mod resync;
mod rounds;
mod saved_state;
mod status_page;
mod zookeeper;
