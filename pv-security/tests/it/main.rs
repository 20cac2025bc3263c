//! pv-security integration tests on SQLite, PostgreSQL and MariaDB.

mod audit;
mod rbac;
mod blocklist;
mod country;
mod throttle;
