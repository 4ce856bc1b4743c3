//! l2sw as a Docker network plugin (`l2ctl plugin docker`): Docker's remote network driver
//! protocol — HTTP and JSON on a unix socket Docker finds in `/run/docker/plugins/` — mapped
//! onto the operations `l2ctl` runs, so Docker-made networks and endpoints live in the same
//! state, with the same undo, as l2ctl's own.
//!
//! - [`api`]: the requests and answers, as Docker writes and reads them.
//! - [`mapping`]: pure translation, names included: Docker network ID → l2ctl network
//!   `docker-<first 12 hex>` (origin `docker:<ID>`), endpoint ID → workload `d-<first 12 hex>`,
//!   `-o` options and Docker's IPAM → `network create`, the addresses Docker handed out →
//!   the endpoint's.
//! - [`driver`]: each call's operations (`create_network`, `remove_network`,
//!   `attach_engine`, `engine_joined`, `detach`).
//! - [`server`]: the socket.

pub mod api;
pub mod driver;
pub mod mapping;
pub mod server;

pub use driver::{Answer, DockerDriver};
pub use server::{ServeError, serve, socket_path};
