//! The Docker engine as a source of containers: `client` connects from a node string,
//! `model` turns one inspect into a [`Container`] with its service-view rules and holds
//! the `--docker-label` filter, `events` streams container events and lists the running
//! containers. Used by the docker backend and by `register --from-docker`.

pub mod client;
pub mod events;
pub mod model;

pub use client::{ConnectOptions, DockerClient, DockerError};
pub use events::{ContainerEvent, container_events, inspect, list_running};
pub use model::{Container, Health, HostAddr, LabelFilter, PortKey, ServiceAddr};
