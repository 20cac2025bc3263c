//! Migrations of the `users` database. Migrations are frozen once released: a schema change is
//! a new migration file, never an edit of an old one.

use sea_orm_migration::prelude::*;

mod m20261123_000001_initial;
mod m20261123_000002_seed_lan_exemptions;
mod m20261123_000003_seed_roles;
mod m20261123_000004_sign_in;
mod m20261205_000001_faces_permissions;

/// The `users` migrator.
#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_initial::Migration),
            Box::new(m20261123_000002_seed_lan_exemptions::Migration),
            Box::new(m20261123_000003_seed_roles::Migration),
            Box::new(m20261123_000004_sign_in::Migration),
            Box::new(m20261205_000001_faces_permissions::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new(crate::db::migration_table(crate::config::DbKind::Users)).into_iden()
    }
}
