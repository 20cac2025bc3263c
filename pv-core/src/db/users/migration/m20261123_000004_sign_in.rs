//! Sign-in additions: the one-time setup codes of seeded administrators, and a session stage
//! (a session created from a setup code or a password without a second factor may only enrol
//! a passkey or TOTP until it is upgraded).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::db::schema_util::{c, fk_cascade, ts, ts_null};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let b = m.get_database_backend();
        m.create_table(
            Table::create()
                .table(c("setup_codes"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(big_integer(c("user_id")))
                .col(string_len(c("code_hash"), 128))
                .col(ts(b, c("created_at")))
                .col(ts_null(b, c("used_at")))
                .foreign_key(&mut fk_cascade("setup_codes", "user_id", "users"))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(c("sessions"))
                .add_column(string_len(c("stage"), 16).default("full"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(c("sessions")).drop_column(c("stage")).to_owned())
            .await?;
        m.drop_table(Table::drop().table(c("setup_codes")).to_owned()).await
    }
}
