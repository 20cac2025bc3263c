//! The `records` database: cameras and how they are recorded (schedules, motion zones, RTMP
//! restreams), what was recorded (segments, gaps, motion events), and where recordings go
//! (storage providers and modules, per-camera targets, the upload queue, module statistics and
//! logs). `property_id` points into the users database by value only (no foreign key, no joins).
//!
//! Invariant: a segment row exists only for a file that was fully written and fsynced (file,
//! then directory, then row). A crash can leave a file without a row (recovered at start-up), never
//! a row without its file.
//!
//! Enumerations are short strings (at most 32 characters) whose allowed values are listed on
//! each field; secrets (camera password, RTMP target URL, storage module secrets) are encrypted at
//! rest and never exposed over GraphQL.

#[allow(missing_docs)]
pub mod camera;
#[allow(missing_docs)]
pub mod camera_mac_change;
#[allow(missing_docs)]
pub mod camera_storage_target;
pub mod migration;
#[allow(missing_docs)]
pub mod motion_event;
#[allow(missing_docs)]
pub mod motion_zone;
#[allow(missing_docs)]
pub mod recording_gap;
#[allow(missing_docs)]
pub mod recording_schedule;
#[allow(missing_docs)]
pub mod rtmp_output;
#[allow(missing_docs)]
pub mod segment;
#[allow(missing_docs)]
pub mod storage_module;
#[allow(missing_docs)]
pub mod storage_module_health_check;
#[allow(missing_docs)]
pub mod storage_module_log;
#[allow(missing_docs)]
pub mod storage_module_write_stat;
#[allow(missing_docs)]
pub mod storage_provider;
#[allow(missing_docs)]
pub mod upload_queue;
