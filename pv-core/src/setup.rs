//! First-time set-up, as the `pentavision-installer` wizard drives it: choose the data dir,
//! listen address and the three database URLs, prove each database answers and migrate it,
//! then write the configuration file readable by its owner only (0600).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::config::{Config, DbKind, write_private_file};
use crate::error::{Error, Result};

/// What the administrator chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupPlan {
    /// Data directory.
    pub data_dir: PathBuf,
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// `users`, `faces`, `records` URLs; `None` keeps the SQLite default in the data dir.
    pub urls: [Option<String>; 3],
}

/// The outcome for one database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbCheck {
    /// Which database.
    pub kind: DbKind,
    /// `sqlite`, `postgres` or `mysql`.
    pub backend: &'static str,
    /// Migrations applied by this run.
    pub applied_now: usize,
}

impl SetupPlan {
    /// The configuration this plan produces (validated).
    pub fn config(&self) -> Result<Config> {
        let mut config = Config { data_dir: self.data_dir.clone(), ..Config::default() };
        config.server.listen = self.listen;
        let [users, faces, records] = self.urls.clone();
        config.database.users_url = users;
        config.database.faces_url = faces;
        config.database.records_url = records;
        config.validate()?;
        Ok(config)
    }

    /// The TOML text of the configuration file (only what differs from the defaults, plus
    /// the data dir and listen address, with a header comment).
    pub fn render(&self) -> Result<String> {
        let config = self.config()?;
        let mut out = String::from(
            "# PentaVision configuration, written by pentavision-installer.\n\
             # Every key is documented in docs/ref/config.md. This file may hold database\n\
             # passwords: keep it readable by the PentaVision user only (mode 0600).\n",
        );
        let mut top = toml::Table::new();
        top.insert("data_dir".into(), toml::Value::String(config.data_dir.display().to_string()));
        let mut server = toml::Table::new();
        server.insert("listen".into(), toml::Value::String(config.server.listen.to_string()));
        top.insert("server".into(), toml::Value::Table(server));
        let mut database = toml::Table::new();
        for (kind, url) in DbKind::ALL.iter().zip(&self.urls) {
            if let Some(url) = url {
                database.insert(format!("{}_url", kind.name()), toml::Value::String(url.clone()));
            }
        }
        if !database.is_empty() {
            top.insert("database".into(), toml::Value::Table(database));
        }
        out.push_str(&toml::to_string(&top).map_err(|e| Error::Config(e.to_string()))?);
        Ok(out)
    }

    /// Connect to each database, refuse one that is newer than this binary, and migrate it.
    pub async fn check_and_migrate(&self) -> Result<Vec<DbCheck>> {
        let config = self.config()?;
        let mut out = Vec::new();
        for kind in DbKind::ALL {
            let db = crate::db::connect(&config, kind).await?;
            db.ping().await.map_err(|source| Error::Database { db: kind.name(), source })?;
            let before = crate::db::applied_migrations(kind, &db).await?.len();
            crate::db::migrate(kind, &db).await?;
            let after = crate::db::applied_migrations(kind, &db).await?.len();
            out.push(DbCheck {
                kind,
                backend: crate::db::backend_name(db.get_database_backend()),
                applied_now: after - before,
            });
            let _ = db.close().await;
        }
        Ok(out)
    }

    /// Write the configuration to `path` with mode 0600. An existing file is kept unless
    /// `overwrite`.
    pub fn write(&self, path: &Path, overwrite: bool) -> Result<()> {
        if path.exists() && !overwrite {
            return Err(Error::Config(format!(
                "{} already exists; pass --force to replace it",
                path.display()
            )));
        }
        let text = self.render()?;
        write_private_file(path, &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(dir: &Path) -> SetupPlan {
        SetupPlan {
            data_dir: dir.to_path_buf(),
            listen: "127.0.0.1:8088".parse().unwrap(),
            urls: [None, Some(format!("sqlite://{}/f.db?mode=rwc", dir.display())), None],
        }
    }

    #[tokio::test]
    async fn written_config_loads_back_to_the_same_plan() {
        let dir = tempfile::tempdir().unwrap();
        let plan = plan(dir.path());
        let checks = plan.check_and_migrate().await.unwrap();
        assert_eq!(checks.len(), 3);
        assert!(
            checks.iter().all(|c| c.backend == "sqlite"
                && c.applied_now == crate::db::known_migrations(c.kind).len())
        );
        assert!(dir.path().join("f.db").is_file() && dir.path().join("users.sqlite").is_file());
        // Running again applies nothing.
        assert!(plan.check_and_migrate().await.unwrap().iter().all(|c| c.applied_now == 0));

        let path = dir.path().join("pentavision.toml");
        plan.write(&path, false).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let loaded =
            Config::from_sources(Some((&path, &text)), Vec::new(), &Default::default()).unwrap();
        assert_eq!(loaded, plan.config().unwrap());
        assert!(plan.write(&path, false).unwrap_err().to_string().contains("--force"));
        plan.write(&path, true).unwrap();
    }

    #[test]
    fn bad_url_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = plan(dir.path());
        p.urls[0] = Some("ftp://nope".into());
        assert!(p.render().is_err());
        assert!(p.write(&dir.path().join("x.toml"), false).is_err());
        assert!(!dir.path().join("x.toml").exists());
    }
}
