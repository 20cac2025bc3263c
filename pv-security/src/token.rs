//! API tokens for integrations: `Authorization: Bearer pvt_…`. A token acts as its user,
//! narrowed to the permission keys it was created with (none listed: all of the user's), until
//! it expires or is revoked. Only its SHA-256 is stored, plus a short public prefix that
//! identifies it in lists and logs.

use chrono::{DateTime, Utc};
use pv_core::db::users::api_token;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
};

use crate::secret::{constant_time_eq, hash_token, random_token};
use crate::{Error, Result};

/// Characters of the token body kept as its public prefix.
const PREFIX_LEN: usize = 8;

/// A token to create.
#[derive(Debug, Clone, Default)]
pub struct NewToken {
    /// A label ("home-assistant").
    pub name: String,
    /// Permission keys the token is limited to (empty: all of its user's).
    pub scopes: Vec<String>,
    /// When it stops working (None: until revoked).
    pub expires_at: Option<DateTime<Utc>>,
}

/// Create a token for `user_id`. Returns the secret (shown once) and the row.
pub async fn create(
    db: &DatabaseConnection,
    user_id: i64,
    new: &NewToken,
    now: DateTime<Utc>,
) -> Result<(String, api_token::Model)> {
    pv_core::input::check_name("a token name", &new.name, 64)
        .map_err(|e| Error::InvalidInput(e.to_string()))?;
    let name = new.name.trim();
    if new.expires_at.is_some_and(|t| t <= now) {
        return Err(Error::InvalidInput("a token's expiry must be in the future".into()));
    }
    let secret = random_token("pvt");
    let prefix: String = secret.chars().skip(4).take(PREFIX_LEN).collect();
    let row = api_token::ActiveModel {
        user_id: Set(user_id),
        name: Set(name.into()),
        prefix: Set(prefix),
        token_hash: Set(hash_token(&secret)),
        scopes: Set(serde_json::json!(new.scopes)),
        created_at: Set(now),
        expires_at: Set(new.expires_at),
        last_used_at: Set(None),
        revoked_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok((secret, row))
}

/// The live token row for a bearer secret (`None`: unknown, revoked or expired). Marks it
/// used.
pub async fn validate(
    db: &DatabaseConnection,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<Option<api_token::Model>> {
    let Some(body) = secret.strip_prefix("pvt_") else { return Ok(None) };
    if body.len() < PREFIX_LEN || secret.len() > 128 {
        return Ok(None);
    }
    let prefix: String = body.chars().take(PREFIX_LEN).collect();
    let hash = hash_token(secret);
    let candidates =
        api_token::Entity::find().filter(api_token::Column::Prefix.eq(prefix)).all(db).await?;
    let Some(row) =
        candidates.into_iter().find(|r| constant_time_eq(r.token_hash.as_bytes(), hash.as_bytes()))
    else {
        return Ok(None);
    };
    if row.revoked_at.is_some() || row.expires_at.is_some_and(|t| t <= now) {
        return Ok(None);
    }
    if row.last_used_at.is_none_or(|t| now - t >= chrono::Duration::minutes(1)) {
        api_token::Entity::update_many()
            .col_expr(api_token::Column::LastUsedAt, Some(now).into())
            .filter(api_token::Column::Id.eq(row.id))
            .exec(db)
            .await?;
    }
    Ok(Some(row))
}

/// The permission keys a token row is limited to (empty: not limited).
pub fn scopes(row: &api_token::Model) -> Vec<String> {
    serde_json::from_value(row.scopes.clone()).unwrap_or_default()
}

/// Revoke token `id` (of `user_id` when given). Errors when there is no live token.
pub async fn revoke(
    db: &DatabaseConnection,
    id: i64,
    user_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<api_token::Model> {
    let mut q = api_token::Entity::find_by_id(id).filter(api_token::Column::RevokedAt.is_null());
    if let Some(user) = user_id {
        q = q.filter(api_token::Column::UserId.eq(user));
    }
    let row = q.one(db).await?.ok_or_else(|| Error::NotFound(format!("no live API token {id}")))?;
    let mut active: api_token::ActiveModel = row.into();
    active.revoked_at = Set(Some(now));
    Ok(active.update(db).await?)
}

/// The tokens of `user_id` (all users when None), newest first.
pub async fn list(db: &DatabaseConnection, user_id: Option<i64>) -> Result<Vec<api_token::Model>> {
    let mut q = api_token::Entity::find().order_by_desc(api_token::Column::CreatedAt);
    if let Some(user) = user_id {
        q = q.filter(api_token::Column::UserId.eq(user));
    }
    Ok(q.all(db).await?)
}
