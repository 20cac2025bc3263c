//! The subcommands, one per file.

pub mod audit;
pub mod config;
pub mod export_schema;
pub mod ip;
pub mod migrate;
pub mod run;
