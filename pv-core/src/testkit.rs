//! Test helpers shared by every crate's tests (feature `testkit`): throw-away databases on all
//! three engines and ready-made configurations.
//!
//! PostgreSQL and MariaDB are expected on `127.0.0.1:5432` (trust auth) and `127.0.0.1:3306`
//! (root, no password); override with `PV_TEST_POSTGRES_URL` / `PV_TEST_MYSQL_URL` (admin URLs
//! without a database name). Each [`TestDb`] creates its own uniquely named database and drops
//! it when dropped, so parallel test runs never share state.

use std::path::PathBuf;

use rand::Rng;
use sea_orm::{ConnectionTrait, Database};

use crate::config::{Config, DbKind};

/// A database engine PentaVision supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// SQLite files in a temporary directory.
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MariaDB / MySQL.
    MySql,
}

impl Engine {
    /// Every engine, SQLite first.
    pub const ALL: [Engine; 3] = [Engine::Sqlite, Engine::Postgres, Engine::MySql];

    /// The server admin URL (no database name) for server engines.
    pub fn admin_url(self) -> Option<String> {
        match self {
            Engine::Sqlite => None,
            Engine::Postgres => Some(
                std::env::var("PV_TEST_POSTGRES_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into()),
            ),
            Engine::MySql => Some(
                std::env::var("PV_TEST_MYSQL_URL")
                    .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into()),
            ),
        }
    }
}

/// One throw-away database; dropped (with its data) when this value is dropped.
#[derive(Debug)]
pub struct TestDb {
    /// The engine.
    pub engine: Engine,
    /// Connection URL of the new database.
    pub url: String,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// Create an empty database on `engine`. Panics with a clear message when the server is
    /// not reachable: the database tests are meant to run on every machine.
    pub async fn create(engine: Engine) -> TestDb {
        let name = format!("pv_test_{:016x}", rand::rng().random::<u64>());
        match engine.admin_url() {
            None => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join(&name).display());
                TestDb { engine, url, name, _dir: Some(dir) }
            }
            Some(admin) => {
                let db =
                    Database::connect(admin_db_url(engine, &admin)).await.unwrap_or_else(|e| {
                        panic!("{engine:?} test server at {admin} is not reachable: {e}")
                    });
                db.execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
                let _ = db.close().await;
                TestDb { engine, url: format!("{admin}/{name}"), name, _dir: None }
            }
        }
    }
}

fn admin_db_url(engine: Engine, admin: &str) -> String {
    match engine {
        Engine::Postgres => format!("{admin}/postgres"),
        _ => admin.to_string(),
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(admin) = self.engine.admin_url() else {
            return;
        };
        let engine = self.engine;
        let name = self.name.clone();
        // Dropping must not depend on the test's runtime still running: use a private one.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
            if let Ok(rt) = rt {
                rt.block_on(async move {
                    if let Ok(db) = Database::connect(admin_db_url(engine, &admin)).await {
                        let sql = match engine {
                            Engine::Postgres => {
                                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                            }
                            _ => format!("DROP DATABASE IF EXISTS {name}"),
                        };
                        let _ = db.execute_unprepared(&sql).await;
                        let _ = db.close().await;
                    }
                });
            }
        })
        .join();
    }
}

/// A configuration whose three databases are fresh databases on `engine`, ONVIF discovery
/// aimed at loopback, no service manager (`/bin/false`), and a temporary
/// data dir. Keep the returned value alive for as long as the databases are used.
#[derive(Debug)]
pub struct TestEnv {
    /// The configuration (file logging off).
    pub config: Config,
    /// The temporary data dir.
    pub data_dir: tempfile::TempDir,
    dbs: Vec<TestDb>,
}

impl TestEnv {
    /// Three fresh databases on `engine` (SQLite: the default files in the data dir).
    pub async fn new(engine: Engine) -> TestEnv {
        let data_dir = tempfile::tempdir().expect("temporary directory");
        let mut config = Config { data_dir: data_dir.path().to_path_buf(), ..Config::default() };
        config.logging.file_enabled = false;
        // Tests never send ONVIF discovery to the LAN's multicast group: port 9 (discard) on
        // loopback answers nothing.
        config.recording.discovery_target = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
        // Nor do they restart the host's services.
        config.services.systemctl = "/bin/false".into();
        let mut dbs = Vec::new();
        if engine != Engine::Sqlite {
            for kind in DbKind::ALL {
                let db = TestDb::create(engine).await;
                let url = Some(db.url.clone());
                match kind {
                    DbKind::Users => config.database.users_url = url,
                    DbKind::Faces => config.database.faces_url = url,
                    DbKind::Records => config.database.records_url = url,
                }
                dbs.push(db);
            }
        }
        TestEnv { config, data_dir, dbs }
    }

    /// The data dir's path.
    pub fn data_path(&self) -> PathBuf {
        self.data_dir.path().to_path_buf()
    }

    /// How many server databases this environment created.
    pub fn server_databases(&self) -> usize {
        self.dbs.len()
    }
}
