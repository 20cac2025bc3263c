//! Preload the private and loopback ranges as IP exemptions (source `builtin`). They are
//! ordinary rows: an administrator may remove them.

use sea_orm_migration::prelude::*;

use crate::db::schema_util::c;

/// The ranges exempted on a new installation.
pub(crate) const LAN_RANGES: [&str; 6] =
    ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "::1", "fc00::/7"];

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let now = chrono::Utc::now();
        let mut insert = Query::insert();
        insert.into_table(c("ip_rules")).columns([
            c("network"),
            c("action"),
            c("reason"),
            c("source"),
            c("created_at"),
        ]);
        for range in LAN_RANGES {
            insert.values_panic([
                range.into(),
                "exempt".into(),
                "private or loopback network (preloaded)".into(),
                "builtin".into(),
                now.into(),
            ]);
        }
        m.exec_stmt(insert).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let delete = Query::delete()
            .from_table(c("ip_rules"))
            .and_where(Expr::col(c("source")).eq("builtin"))
            .to_owned();
        m.exec_stmt(delete).await
    }
}
