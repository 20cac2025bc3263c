//! PentaVision's benchmarks.
//!
//! - `cargo bench -p pv-benches --bench segments`: criterion benches of the segment-index hot
//!   path (inserting and range-querying segment rows) on SQLite.
//! - `cargo bench -p pv-benches --bench motion`: the motion kernel on 640x360 luma frames
//!   (the motion watcher's analysis input).
//! - `cargo bench -p pv-benches --bench watcher_cpu -- --cameras 4 --seconds 60`: CPU
//!   per camera of whole motion watchers (RTSP, decode, 5 fps, 640 wide, kernel) on a
//!   simulated camera in a child process, from `/proc/self/stat`.
//! - `cargo run --release -p pv-benches --bin record_cpu -- --cameras 1,8,32 --seconds 60`: CPU
//!   per stream of recording N simulated 1080p H.264 cameras (in a child process) with
//!   PentaVision's recorders and with one `ffmpeg -c copy -f segment` per camera, side by side,
//!   and whether every recorder wrote all its segments.
//! - `cargo run --release -p pv-benches --bin coldstart -- --runs 5`: starts the real
//!   `pentavision` binary repeatedly and reports cold-start time (spawn → `/readyz` 200) and
//!   idle resident memory. Build the server first (`cargo build --release -p pentavision`).
//! - `benches/blocklist-load.sh`: builds both in release mode and runs the `blocklist_load` bin,
//!   which serves a 100 000-rule blocklist from the real `pentavision-blocklist` and the same
//!   CSV from nginx, loads both with `wrk` and prints requests/s and p99 latency side by side.
