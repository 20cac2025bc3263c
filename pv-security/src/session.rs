//! Server-side sessions. The browser holds only a random token (in an `HttpOnly`,
//! `SameSite=Strict` cookie); the database holds its SHA-256. A session ends when unused for
//! `security.session_idle_minutes`, `session_absolute_hours` after sign-in, or when revoked.
//!
//! A session has a stage: `full`, or `enrol` — created from a one-time setup code or a
//! password without a second factor, it may only enrol a passkey or TOTP, which upgrades it.

use chrono::{DateTime, Duration, Utc};
use pv_core::config::SecurityConfig;
use pv_core::db::users::session;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, Set,
};

use crate::Result;
use crate::secret::{hash_token, random_token};

/// How long sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Unused for this long: ended.
    pub idle: Duration,
    /// This long after sign-in: ended.
    pub absolute: Duration,
}

impl SessionPolicy {
    /// The policy of `[security]`.
    pub fn from_config(config: &SecurityConfig) -> Self {
        Self {
            idle: Duration::minutes(i64::from(config.session_idle_minutes)),
            absolute: Duration::hours(i64::from(config.session_absolute_hours)),
        }
    }
}

/// What a session may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Everything the user's roles allow.
    Full,
    /// Only enrol a passkey or TOTP (and sign out).
    Enrol,
}

impl Stage {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Full => "full",
            Stage::Enrol => "enrol",
        }
    }

    /// Parse a stored value (anything unknown is the restricted stage).
    pub fn parse(text: &str) -> Self {
        if text == "full" { Stage::Full } else { Stage::Enrol }
    }
}

/// Where a session was created from.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// Client address.
    pub ip: Option<String>,
    /// `User-Agent`, truncated.
    pub user_agent: Option<String>,
}

/// Start a session for `user_id`. Returns the cookie token (shown once) and the row.
pub async fn create(
    db: &DatabaseConnection,
    user_id: i64,
    stage: Stage,
    client: &ClientInfo,
    policy: SessionPolicy,
    now: DateTime<Utc>,
) -> Result<(String, session::Model)> {
    let token = random_token("pvs");
    let row = session::ActiveModel {
        user_id: Set(user_id),
        token_hash: Set(hash_token(&token)),
        created_at: Set(now),
        last_seen_at: Set(now),
        idle_expires_at: Set((now + policy.idle).min(now + policy.absolute)),
        absolute_expires_at: Set(now + policy.absolute),
        ip: Set(client.ip.clone()),
        user_agent: Set(client.user_agent.as_ref().map(|ua| ua.chars().take(255).collect())),
        revoked_at: Set(None),
        stage: Set(stage.as_str().into()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok((token, row))
}

/// The live session for `token`, with its idle expiry pushed forward (written at most once a
/// minute). `None` for unknown, revoked or expired tokens.
pub async fn validate(
    db: &DatabaseConnection,
    token: &str,
    policy: SessionPolicy,
    now: DateTime<Utc>,
) -> Result<Option<session::Model>> {
    if !token.starts_with("pvs_") || token.len() > 128 {
        return Ok(None);
    }
    let Some(row) = session::Entity::find()
        .filter(session::Column::TokenHash.eq(hash_token(token)))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    if row.revoked_at.is_some() || row.idle_expires_at <= now || row.absolute_expires_at <= now {
        return Ok(None);
    }
    if now - row.last_seen_at >= Duration::minutes(1) {
        let mut active: session::ActiveModel = row.clone().into();
        active.last_seen_at = Set(now);
        active.idle_expires_at = Set((now + policy.idle).min(row.absolute_expires_at));
        return Ok(Some(active.update(db).await?));
    }
    Ok(Some(row))
}

/// Upgrade an `enrol` session to `full` (after a passkey or TOTP was enrolled).
pub async fn upgrade(db: &DatabaseConnection, session_id: i64) -> Result<()> {
    session::Entity::update_many()
        .col_expr(session::Column::Stage, Stage::Full.as_str().into())
        .filter(session::Column::Id.eq(session_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Revoke one session of `user_id` (sign-out, or "revoke" in the sessions list). Returns
/// whether a live session was revoked.
pub async fn revoke(
    db: &DatabaseConnection,
    user_id: i64,
    session_id: i64,
    now: DateTime<Utc>,
) -> Result<bool> {
    let res = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Some(now).into())
        .filter(session::Column::Id.eq(session_id))
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected > 0)
}

/// Revoke every session of `user_id` but `except` (password change, suspension).
pub async fn revoke_all(
    db: &impl ConnectionTrait,
    user_id: i64,
    except: Option<i64>,
    now: DateTime<Utc>,
) -> Result<u64> {
    let mut q = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Some(now).into())
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null());
    if let Some(id) = except {
        q = q.filter(session::Column::Id.ne(id));
    }
    Ok(q.exec(db).await?.rows_affected)
}

/// The live sessions of `user_id`, newest first.
pub async fn list(
    db: &DatabaseConnection,
    user_id: i64,
    now: DateTime<Utc>,
) -> Result<Vec<session::Model>> {
    Ok(session::Entity::find()
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::IdleExpiresAt.gt(now))
        .filter(session::Column::AbsoluteExpiresAt.gt(now))
        .order_by_desc(session::Column::CreatedAt)
        .all(db)
        .await?)
}
