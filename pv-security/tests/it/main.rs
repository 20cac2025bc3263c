//! pv-security integration tests on SQLite, PostgreSQL and MariaDB.

mod audit;
mod throttle;
