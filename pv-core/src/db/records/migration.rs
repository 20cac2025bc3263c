//! Migrations of the `records` database. Migrations are frozen once released: a schema change is
//! a new migration file, never an edit of an old one.

use sea_orm_migration::prelude::*;

mod m20261123_000001_initial;
mod m20261205_000001_storage;
mod m20261205_000002_segment_faces;

/// The `records` migrator.
#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_initial::Migration),
            Box::new(m20261205_000001_storage::Migration),
            Box::new(m20261205_000002_segment_faces::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new(crate::db::migration_table(crate::config::DbKind::Records)).into_iden()
    }
}
