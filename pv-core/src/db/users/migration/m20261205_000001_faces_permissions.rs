//! Face permissions split (issue 12): `faces.manage` becomes `faces.enroll` (enrol people, add
//! face images, name recognised faces) and `faces.delete` (delete people and their images).
//! Every role that had `faces.manage`, built-in or not, gets both; an API token whose scope
//! named `faces.manage` names both instead (a scope left with no known key would otherwise
//! stop restricting the token). Idempotent, like the seed it follows.

use sea_orm::ConnectionTrait;
use sea_orm_migration::prelude::*;

use crate::db::schema_util::c;

const OLD: &str = "faces.manage";
const NEW: [(&str, &str, &str); 2] = [
    ("faces.enroll", "system", "Enroll people, add face images and name recognised faces"),
    ("faces.delete", "system", "Delete enrolled people and their face images"),
];

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// Give every role and API token holding one of `from` all of `to` instead.
async fn replace(
    m: &SchemaManager<'_>,
    from: &[&str],
    to: &[(&str, &str, &str)],
) -> Result<(), DbErr> {
    let mut permissions = Query::insert();
    permissions
        .into_table(c("permissions"))
        .columns([c("key"), c("category"), c("description")])
        .on_conflict(OnConflict::column(c("key")).do_nothing_on([c("key")]).to_owned());
    for (key, category, description) in to {
        permissions.values_panic([(*key).into(), (*category).into(), (*description).into()]);
    }
    m.exec_stmt(permissions).await?;

    let to_keys: Vec<&str> = to.iter().map(|p| p.0).collect();
    // Every role holding one of `from`, crossed with the new permissions' ids (the roles come
    // from a subquery: MySQL's upsert would find `role_id` ambiguous with `role_permissions` in
    // the outer FROM).
    let holders = Query::select()
        .column((c("rp"), c("role_id")))
        .from_as(c("role_permissions"), c("rp"))
        .from_as(c("permissions"), c("old"))
        .and_where(Expr::col((c("old"), c("id"))).equals((c("rp"), c("permission_id"))))
        .and_where(Expr::col((c("old"), c("key"))).is_in(from.iter().copied()))
        .to_owned();
    let select = Query::select()
        .column((c("r"), c("id")))
        .column((c("p"), c("id")))
        .from_as(c("roles"), c("r"))
        .from_as(c("permissions"), c("p"))
        .and_where(Expr::col((c("r"), c("id"))).in_subquery(holders))
        .and_where(Expr::col((c("p"), c("key"))).is_in(to_keys.clone()))
        .to_owned();
    let insert = Query::insert()
        .into_table(c("role_permissions"))
        .columns([c("role_id"), c("permission_id")])
        .select_from(select)
        .map_err(|e| DbErr::Migration(e.to_string()))?
        .on_conflict(
            OnConflict::columns([c("role_id"), c("permission_id")])
                .do_nothing_on([c("role_id")])
                .to_owned(),
        )
        .to_owned();
    m.exec_stmt(insert).await?;

    let old_ids = Query::select()
        .column(c("id"))
        .from(c("permissions"))
        .and_where(Expr::col(c("key")).is_in(from.iter().copied()))
        .to_owned();
    m.exec_stmt(
        Query::delete()
            .from_table(c("role_permissions"))
            .and_where(Expr::col(c("permission_id")).in_subquery(old_ids))
            .to_owned(),
    )
    .await?;
    m.exec_stmt(
        Query::delete()
            .from_table(c("permissions"))
            .and_where(Expr::col(c("key")).is_in(from.iter().copied()))
            .to_owned(),
    )
    .await?;

    // API token scopes (a JSON list of keys).
    let db = m.get_connection();
    let rows = db
        .query_all(
            &Query::select().columns([c("id"), c("scopes")]).from(c("api_tokens")).to_owned(),
        )
        .await?;
    for row in rows {
        let id: i64 = row.try_get("", "id")?;
        let scopes: serde_json::Value = row.try_get("", "scopes")?;
        let Some(list) = scopes.as_array() else { continue };
        if !list.iter().any(|k| k.as_str().is_some_and(|k| from.contains(&k))) {
            continue;
        }
        let mut keys: Vec<serde_json::Value> = Vec::with_capacity(list.len() + 1);
        for k in list {
            if k.as_str().is_some_and(|k| from.contains(&k)) {
                for new in &to_keys {
                    let new = serde_json::Value::String((*new).to_owned());
                    if !keys.contains(&new) {
                        keys.push(new);
                    }
                }
            } else if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
        db.execute(
            &Query::update()
                .table(c("api_tokens"))
                .value(c("scopes"), serde_json::Value::Array(keys))
                .and_where(Expr::col(c("id")).eq(id))
                .to_owned(),
        )
        .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        replace(m, &[OLD], &NEW).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let keys: Vec<&str> = NEW.iter().map(|p| p.0).collect();
        replace(m, &keys, &[(OLD, "system", "Enroll, edit and delete face identities")]).await
    }
}
