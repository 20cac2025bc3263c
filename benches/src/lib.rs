//! PentaVision's benchmarks.
//!
//! - `cargo bench -p pv-benches --bench segments`: criterion benches of the segment-index hot
//!   path (inserting and range-querying segment rows) on SQLite.
//! - `cargo run --release -p pv-benches --bin coldstart -- --runs 5`: starts the real
//!   `pentavision` binary repeatedly and reports cold-start time (spawn → `/readyz` 200) and
//!   idle resident memory. Build the server first (`cargo build --release -p pentavision`).
