//! Reading roles and changing who holds them, with the last-administrator guard. The caller
//! writes the audit event for every change.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use pv_core::db::users::{permission, property, role, role_permission, user, user_role};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, JoinType,
    QueryFilter, QueryOrder, QuerySelect, RelationTrait, Set, TransactionTrait,
};

use super::{AccountStatus, BuiltInRole, Permission, RoleScope};
use crate::{Error, Result};

/// A role named by id or by exact name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleRef {
    /// `roles.id`.
    Id(i64),
    /// `roles.name`.
    Name(String),
}

impl From<i64> for RoleRef {
    fn from(id: i64) -> Self {
        RoleRef::Id(id)
    }
}

impl From<&str> for RoleRef {
    fn from(name: &str) -> Self {
        RoleRef::Name(name.to_string())
    }
}

impl From<String> for RoleRef {
    fn from(name: String) -> Self {
        RoleRef::Name(name)
    }
}

impl From<BuiltInRole> for RoleRef {
    fn from(role: BuiltInRole) -> Self {
        RoleRef::Name(role.name().to_string())
    }
}

/// A role and what it grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleInfo {
    /// `roles.id`.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Global or property; None for a scope this version does not know.
    pub scope: Option<RoleScope>,
    /// For administrators.
    pub description: Option<String>,
    /// Shipped with the product.
    pub built_in: bool,
    /// The permissions it grants (keys this version does not know are left out).
    pub permissions: BTreeSet<Permission>,
}

/// A role held by a user, as returned by [`assign_role`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// `user_roles.id`.
    pub id: i64,
    /// The user.
    pub user_id: i64,
    /// The role.
    pub role_id: i64,
    /// The role's name.
    pub role_name: String,
    /// The property, or None for a global grant.
    pub property_id: Option<i64>,
    /// False when the user already held the role there (nothing was written).
    pub created: bool,
}

async fn find_role(db: &impl ConnectionTrait, role: &RoleRef) -> Result<role::Model> {
    let found = match role {
        RoleRef::Id(id) => role::Entity::find_by_id(*id).one(db).await?,
        RoleRef::Name(name) => {
            role::Entity::find().filter(role::Column::Name.eq(name.as_str())).one(db).await?
        }
    };
    found.ok_or_else(|| match role {
        RoleRef::Id(id) => Error::NotFound(format!("no role with id {id}")),
        RoleRef::Name(name) => {
            Error::NotFound(format!("no role named {}", pv_core::input::quote(name)))
        }
    })
}

async fn permissions_of(
    db: &impl ConnectionTrait,
    role_ids: impl IntoIterator<Item = i64>,
) -> Result<BTreeMap<i64, BTreeSet<Permission>>> {
    let rows: Vec<(i64, String)> = role_permission::Entity::find()
        .select_only()
        .column(role_permission::Column::RoleId)
        .column(permission::Column::Key)
        .join(JoinType::InnerJoin, role_permission::Relation::Permission.def())
        .filter(role_permission::Column::RoleId.is_in(role_ids))
        .into_tuple()
        .all(db)
        .await?;
    let mut out: BTreeMap<i64, BTreeSet<Permission>> = BTreeMap::new();
    for (role_id, key) in rows {
        if let Some(p) = Permission::from_key(&key) {
            out.entry(role_id).or_default().insert(p);
        }
    }
    Ok(out)
}

/// Every role with its permissions: global roles first, then by name.
pub async fn list_roles(db: &impl ConnectionTrait) -> Result<Vec<RoleInfo>> {
    let roles = role::Entity::find()
        .order_by_asc(role::Column::Scope)
        .order_by_asc(role::Column::Name)
        .all(db)
        .await?;
    let mut perms = permissions_of(db, roles.iter().map(|r| r.id)).await?;
    Ok(roles
        .into_iter()
        .map(|r| RoleInfo {
            permissions: perms.remove(&r.id).unwrap_or_default(),
            scope: RoleScope::from_stored(&r.scope),
            id: r.id,
            name: r.name,
            description: r.description,
            built_in: r.built_in,
        })
        .collect())
}

/// The permissions `role` grants.
pub async fn role_permissions(
    db: &impl ConnectionTrait,
    role: impl Into<RoleRef>,
) -> Result<BTreeSet<Permission>> {
    let role = find_role(db, &role.into()).await?;
    Ok(permissions_of(db, [role.id]).await?.remove(&role.id).unwrap_or_default())
}

/// Grant `role` to `user_id`, globally (`property_id` None) or on one property. A
/// property-scope role needs a property; a global-scope role granted on a property applies only
/// there. Granting a role the user already holds there changes nothing (`created` false).
pub async fn assign_role(
    db: &DatabaseConnection,
    user_id: i64,
    role: impl Into<RoleRef>,
    property_id: Option<i64>,
    granted_by: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Grant> {
    let role = find_role(db, &role.into()).await?;
    if user::Entity::find_by_id(user_id).one(db).await?.is_none() {
        return Err(Error::NotFound(format!("no user with id {user_id}")));
    }
    match (RoleScope::from_stored(&role.scope), property_id) {
        (Some(RoleScope::Property), None) => {
            return Err(Error::InvalidInput(format!(
                "the role '{}' is granted on a property: name the property",
                role.name
            )));
        }
        (None, _) => {
            return Err(Error::InvalidInput(format!(
                "the role '{}' has an unknown scope '{}'",
                role.name, role.scope
            )));
        }
        _ => {}
    }
    if let Some(p) = property_id
        && property::Entity::find_by_id(p).one(db).await?.is_none()
    {
        return Err(Error::NotFound(format!("no property with id {p}")));
    }
    let existing = user_role::Entity::find()
        .filter(user_role::Column::UserId.eq(user_id))
        .filter(user_role::Column::RoleId.eq(role.id))
        .filter(match property_id {
            Some(p) => user_role::Column::PropertyId.eq(p),
            None => user_role::Column::PropertyId.is_null(),
        })
        .one(db)
        .await?;
    let (row, created) = match existing {
        Some(row) => (row, false),
        None => {
            let row = user_role::ActiveModel {
                user_id: Set(user_id),
                role_id: Set(role.id),
                property_id: Set(property_id),
                granted_by: Set(granted_by),
                created_at: Set(now),
                ..Default::default()
            }
            .insert(db)
            .await?;
            tracing::info!(user_id, role = %role.name, property_id, granted_by, "role granted");
            (row, true)
        }
    };
    Ok(Grant { id: row.id, user_id, role_id: role.id, role_name: role.name, property_id, created })
}

/// Take `role` on `property_id` (None: the global grant) away from `user_id`. Returns how many
/// grants were removed; none is [`Error::NotFound`]. Removing the global System Administrator
/// role from the last active administrator is [`Error::Conflict`].
pub async fn revoke_role(
    db: &DatabaseConnection,
    user_id: i64,
    role: impl Into<RoleRef>,
    property_id: Option<i64>,
) -> Result<u64> {
    let role = find_role(db, &role.into()).await?;
    let txn = db.begin().await?;
    // Roll back explicitly on failure: a dropped transaction is only rolled back when its
    // connection next reaches the pool, and until then it holds its locks.
    let removed = match revoke_in(&txn, user_id, &role, property_id).await {
        Ok(removed) => {
            txn.commit().await?;
            removed
        }
        Err(e) => {
            txn.rollback().await?;
            return Err(e);
        }
    };
    tracing::info!(user_id, role = %role.name, property_id, removed, "role revoked");
    Ok(removed)
}

async fn revoke_in(
    txn: &impl ConnectionTrait,
    user_id: i64,
    role: &role::Model,
    property_id: Option<i64>,
) -> Result<u64> {
    if property_id.is_none() && is_admin_role(role) {
        ensure_not_last_admin(txn, user_id).await?;
    }
    let removed = user_role::Entity::delete_many()
        .filter(user_role::Column::UserId.eq(user_id))
        .filter(user_role::Column::RoleId.eq(role.id))
        .filter(match property_id {
            Some(p) => user_role::Column::PropertyId.eq(p),
            None => user_role::Column::PropertyId.is_null(),
        })
        .exec(txn)
        .await?
        .rows_affected;
    if removed == 0 {
        return Err(Error::NotFound(format!(
            "user {user_id} does not hold the role '{}' {}",
            role.name,
            property_id.map_or("globally".to_string(), |p| format!("on property {p}"))
        )));
    }
    Ok(removed)
}

/// Make `user_id` a System Administrator (global grant) or stop them being one. Returns whether
/// anything changed. Demoting the last active administrator is [`Error::Conflict`].
pub async fn set_admin(
    db: &DatabaseConnection,
    user_id: i64,
    admin: bool,
    by: Option<i64>,
    now: DateTime<Utc>,
) -> Result<bool> {
    if admin {
        return Ok(assign_role(db, user_id, BuiltInRole::SystemAdministrator, None, by, now)
            .await?
            .created);
    }
    match revoke_role(db, user_id, BuiltInRole::SystemAdministrator, None).await {
        Ok(_) => Ok(true),
        Err(Error::NotFound(_)) if user::Entity::find_by_id(user_id).one(db).await?.is_some() => {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

fn is_admin_role(role: &role::Model) -> bool {
    role.built_in && role.name == BuiltInRole::SystemAdministrator.name()
}

/// Refuse ([`Error::Conflict`]) when `user_id` is the only active user holding the global
/// System Administrator role, so that demoting, suspending, disabling or deleting them would
/// leave no administrator. Call it inside the transaction that makes that change: it first
/// locks the System Administrator role row, so two such changes cannot both pass the check.
/// On failure roll that transaction back explicitly rather than dropping it (a dropped
/// transaction keeps its locks until its connection is next returned to the pool).
pub async fn ensure_not_last_admin(db: &impl ConnectionTrait, user_id: i64) -> Result<()> {
    let admin_role = || {
        role::Column::Name
            .eq(BuiltInRole::SystemAdministrator.name())
            .and(role::Column::BuiltIn.eq(true))
    };
    // First a no-op write: a row lock on PostgreSQL and MariaDB, the write lock on SQLite. It
    // comes before any read so that MariaDB's repeatable-read snapshot starts after the lock.
    role::Entity::update_many()
        .col_expr(role::Column::BuiltIn, Expr::col(role::Column::BuiltIn))
        .filter(admin_role())
        .exec(db)
        .await?;
    let Some(admin) = role::Entity::find().filter(admin_role()).one(db).await? else {
        return Ok(());
    };
    // A locking read sees the latest committed grants even in a transaction that read before.
    let holders: BTreeSet<i64> = user_role::Entity::find()
        .select_only()
        .column(user_role::Column::UserId)
        .join(JoinType::InnerJoin, user_role::Relation::User.def())
        .filter(user_role::Column::RoleId.eq(admin.id))
        .filter(user_role::Column::PropertyId.is_null())
        .filter(user::Column::AccountStatus.eq(AccountStatus::Active.as_str()))
        .lock_shared()
        .into_tuple::<i64>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    if holders.len() == 1 && holders.contains(&user_id) {
        return Err(Error::Conflict(
            "this is the last active System Administrator; make another user administrator first"
                .into(),
        ));
    }
    Ok(())
}
