//! The database layer: three logical databases, each with its own URL, entities and migrations.
//!
//! - [`users`]: accounts, credentials, sessions, roles, properties, audit, IP rules, blocklist
//!   settings.
//! - [`faces`]: identities, embeddings, privacy policy, recognition matches.
//! - [`records`]: cameras, segments, motion, schedules, storage modules, upload queue.
//!
//! Invariants:
//! - No query joins across two databases; an entity's relations stay inside its database, and
//!   values that point into another database (a face identity's `user_id`) are plain columns
//!   without a foreign key.
//! - Table names are unique across the three databases, so one GraphQL schema can name them all.
//! - Each database keeps its migration history in its own table (`pv_users_migrations`, …), so the
//!   three may even share one physical database.
//! - A database that has a migration this binary does not know is refused
//!   ([`crate::Error::SchemaTooNew`]), never written to.
//! - The same migrations run on SQLite, PostgreSQL and MariaDB/MySQL.

use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend};
use sea_orm_migration::MigratorTrait;

use crate::config::{Config, DbKind};
use crate::error::{Error, Result};

pub mod faces;
pub mod records;
pub mod users;

mod schema_util;

/// Connections to the three databases.
#[derive(Debug, Clone)]
pub struct Databases {
    /// The `users` database.
    pub users: DatabaseConnection,
    /// The `faces` database.
    pub faces: DatabaseConnection,
    /// The `records` database.
    pub records: DatabaseConnection,
}

/// The state of one database as reported by [`Databases::status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbStatus {
    /// Which database.
    pub kind: DbKind,
    /// `sqlite`, `postgres` or `mysql`.
    pub backend: &'static str,
    /// Whether it answered a ping.
    pub reachable: bool,
    /// The newest applied migration, when reachable.
    pub schema_version: Option<String>,
    /// Why it is not reachable.
    pub error: Option<String>,
}

impl Databases {
    /// Connect to all three databases as configured (creating SQLite files and the data dir as
    /// needed). Does not migrate.
    pub async fn connect(config: &Config) -> Result<Self> {
        Ok(Self {
            users: connect(config, DbKind::Users).await?,
            faces: connect(config, DbKind::Faces).await?,
            records: connect(config, DbKind::Records).await?,
        })
    }

    /// The connection of one database.
    pub fn get(&self, kind: DbKind) -> &DatabaseConnection {
        match kind {
            DbKind::Users => &self.users,
            DbKind::Faces => &self.faces,
            DbKind::Records => &self.records,
        }
    }

    /// Apply pending migrations to all three, after checking none is newer than this binary.
    pub async fn migrate(&self) -> Result<()> {
        for kind in DbKind::ALL {
            migrate(kind, self.get(kind)).await?;
        }
        Ok(())
    }

    /// Ping all three; `Ok` only when every one answers.
    pub async fn ping(&self) -> Result<()> {
        for kind in DbKind::ALL {
            self.get(kind)
                .ping()
                .await
                .map_err(|source| Error::Database { db: kind.name(), source })?;
        }
        Ok(())
    }

    /// Reachability, backend and schema version of each database.
    pub async fn status(&self) -> Vec<DbStatus> {
        let mut out = Vec::with_capacity(3);
        for kind in DbKind::ALL {
            let db = self.get(kind);
            let backend = backend_name(db.get_database_backend());
            let ping = db.ping().await;
            let (reachable, error) = match ping {
                Ok(()) => (true, None),
                Err(e) => (false, Some(e.to_string())),
            };
            let schema_version = if reachable {
                applied_migrations(kind, db).await.ok().and_then(|v| v.last().cloned())
            } else {
                None
            };
            out.push(DbStatus { kind, backend, reachable, schema_version, error });
        }
        out
    }

    /// Close every pool.
    pub async fn close(self) {
        for db in [self.users, self.faces, self.records] {
            let _ = db.close().await;
        }
    }
}

/// `sqlite`, `postgres` or `mysql`.
pub fn backend_name(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Sqlite => "sqlite",
        DbBackend::Postgres => "postgres",
        DbBackend::MySql => "mysql",
        _ => "other",
    }
}

/// Connect to one database.
pub async fn connect(config: &Config, kind: DbKind) -> Result<DatabaseConnection> {
    let url = config.database_url(kind);
    connect_url(kind, &url, config).await
}

/// Connect to one database by URL, with the pool settings from `config`.
pub async fn connect_url(kind: DbKind, url: &str, config: &Config) -> Result<DatabaseConnection> {
    let is_sqlite = url.starts_with("sqlite:");
    if is_sqlite && config.database.url_setting(kind).is_none() {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| Error::io(&config.data_dir, e))?;
    }
    let mut options = ConnectOptions::new(url.to_string());
    let max = config.database.max_connections.unwrap_or(8);
    options
        .max_connections(if is_sqlite { max.min(4) } else { max })
        .min_connections(if is_sqlite { 1 } else { 0 })
        .connect_timeout(Duration::from_secs(config.database.connect_timeout_seconds.unwrap_or(5)))
        .acquire_timeout(Duration::from_secs(config.database.connect_timeout_seconds.unwrap_or(5)))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
        });
    let conn = Database::connect(options)
        .await
        .map_err(|source| Error::Database { db: kind.name(), source })?;
    if is_sqlite {
        make_sqlite_files_private(url);
    }
    Ok(conn)
}

/// SQLite files hold credentials and biometric data: owner-only (0600), like config files.
fn make_sqlite_files_private(url: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
        let path = path.split('?').next().unwrap_or_default();
        if path.is_empty() || path == ":memory:" {
            return;
        }
        for suffix in ["", "-wal", "-shm"] {
            let file = format!("{path}{suffix}");
            if std::path::Path::new(&file).is_file()
                && let Err(e) =
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
            {
                tracing::warn!(file, error = %e, "cannot make database file private");
            }
        }
    }
}

/// Names of the migrations this binary knows for `kind`, oldest first.
pub fn known_migrations(kind: DbKind) -> Vec<String> {
    let list = match kind {
        DbKind::Users => users::migration::Migrator::migrations(),
        DbKind::Faces => faces::migration::Migrator::migrations(),
        DbKind::Records => records::migration::Migrator::migrations(),
    };
    list.iter().map(|m| m.name().to_string()).collect()
}

/// Names of the migrations applied to `db`, oldest first (empty for a new database).
///
/// Read-only: unlike sea-orm-migration's own listing it never creates the history table, so
/// status pages and `migrate --status` issue no DDL.
pub async fn applied_migrations(kind: DbKind, db: &DatabaseConnection) -> Result<Vec<String>> {
    use sea_orm::ConnectionTrait;
    use sea_orm::sea_query::{Alias, Order, Query};
    let wrap = |source| Error::Database { db: kind.name(), source };
    let table = migration_table(kind);
    if !sea_orm_migration::SchemaManager::new(db).has_table(table).await.map_err(wrap)? {
        return Ok(Vec::new());
    }
    let select = Query::select()
        .column(Alias::new("version"))
        .from(Alias::new(table))
        .order_by(Alias::new("version"), Order::Asc)
        .to_owned();
    let rows = db.query_all(&select).await.map_err(wrap)?;
    rows.iter().map(|row| row.try_get::<String>("", "version").map_err(wrap)).collect()
}

/// The table in which `kind` keeps its migration history.
pub fn migration_table(kind: DbKind) -> &'static str {
    match kind {
        DbKind::Users => "pv_users_migrations",
        DbKind::Faces => "pv_faces_migrations",
        DbKind::Records => "pv_records_migrations",
    }
}

/// Refuse a database that carries a migration this binary does not know.
pub async fn check_not_newer(kind: DbKind, db: &DatabaseConnection) -> Result<()> {
    let known = known_migrations(kind);
    for applied in applied_migrations(kind, db).await? {
        if !known.contains(&applied) {
            return Err(Error::SchemaTooNew {
                db: kind.name(),
                migration: applied,
                version: crate::VERSION,
            });
        }
    }
    Ok(())
}

/// Check, then apply pending migrations to one database.
pub async fn migrate(kind: DbKind, db: &DatabaseConnection) -> Result<()> {
    use tracing::Instrument;
    let span = tracing::info_span!("migrate", db = kind.name());
    migrate_inner(kind, db).instrument(span).await
}

async fn migrate_inner(kind: DbKind, db: &DatabaseConnection) -> Result<()> {
    check_not_newer(kind, db).await?;
    let wrap = |source| Error::Database { db: kind.name(), source };
    match kind {
        DbKind::Users => users::migration::Migrator::up(db, None).await,
        DbKind::Faces => faces::migration::Migrator::up(db, None).await,
        DbKind::Records => records::migration::Migrator::up(db, None).await,
    }
    .map_err(wrap)?;
    Ok(())
}
