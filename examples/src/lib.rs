//! Example programs for integrators embedding PentaVision crates. They are compiled (and
//! type-checked against the public APIs) by every test run:
//!
//! - `embed_server`: run the PentaVision web server inside your own tokio application.
//! - `list_segments`: open the records database described by a config and list recent
//!   segments per camera.
//!
//! Run one with `cargo run -p pv-examples --example embed_server -- /tmp/pv-data 127.0.0.1:8090`.
