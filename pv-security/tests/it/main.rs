//! pv-security integration tests on SQLite, PostgreSQL and MariaDB.

mod audit;
mod blocklist;
mod country;
mod pin;
mod rbac;
mod throttle;
