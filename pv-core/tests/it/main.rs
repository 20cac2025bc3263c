//! pv-core integration tests: the three databases on SQLite, PostgreSQL and MariaDB.
//!
//! Each test creates its own databases (see `pv_core::testkit`) and drops them at the end.

mod db;
