//! [`load_subject`]: read a user's account, grants, memberships, role permissions and property
//! time zones from the users database.

use std::collections::{BTreeMap, BTreeSet};

use pv_core::db::users::{
    permission, property, role, role_permission, user, user_property, user_role,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, JoinType, QueryFilter, QuerySelect, RelationTrait,
};

use super::scope::{AccessSchedule, AlarmZones, CameraScope};
use super::{AccountStatus, Permission, PropertyGrant, RoleScope, Subject};
use crate::{Error, Result};

/// The [`Subject`] for user `user_id`: status, global permissions (union of their global role
/// grants) and one [`PropertyGrant`] per property they have a grant or a membership on. Five
/// queries. Permission keys the code does not know are ignored; a property-scope role granted
/// without a property is ignored. An unknown user is [`Error::NotFound`].
pub async fn load_subject(db: &impl ConnectionTrait, user_id: i64) -> Result<Subject> {
    let account = user::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no user with id {user_id}")))?;
    let mut subject = Subject::user(
        account.id,
        &account.username,
        // An unknown status is treated as disabled (fail closed).
        AccountStatus::parse(&account.account_status).unwrap_or(AccountStatus::Disabled),
    );

    let grants: Vec<(user_role::Model, Option<role::Model>)> = user_role::Entity::find()
        .find_also_related(role::Entity)
        .filter(user_role::Column::UserId.eq(user_id))
        .all(db)
        .await?;
    let memberships = user_property::Entity::find()
        .filter(user_property::Column::UserId.eq(user_id))
        .all(db)
        .await?;

    let role_ids: BTreeSet<i64> = grants
        .iter()
        .map(|(g, _)| g.role_id)
        .chain(memberships.iter().filter_map(|m| m.role_override_id))
        .collect();
    let mut perms_of: BTreeMap<i64, BTreeSet<Permission>> = BTreeMap::new();
    if !role_ids.is_empty() {
        let rows: Vec<(i64, String)> = role_permission::Entity::find()
            .select_only()
            .column(role_permission::Column::RoleId)
            .column(permission::Column::Key)
            .join(JoinType::InnerJoin, role_permission::Relation::Permission.def())
            .filter(role_permission::Column::RoleId.is_in(role_ids))
            .into_tuple()
            .all(db)
            .await?;
        for (role_id, key) in rows {
            if let Some(p) = Permission::from_key(&key) {
                perms_of.entry(role_id).or_default().insert(p);
            }
        }
    }
    let perms = |role_id: i64| perms_of.get(&role_id).into_iter().flatten().copied();

    // Property grants by property, before overrides.
    let mut by_property: BTreeMap<i64, BTreeSet<Permission>> = BTreeMap::new();
    for (grant, role) in &grants {
        let Some(role) = role else { continue };
        match (grant.property_id, RoleScope::from_stored(&role.scope)) {
            (None, Some(RoleScope::Global)) => subject.global.extend(perms(role.id)),
            (Some(p), Some(_)) => by_property.entry(p).or_default().extend(perms(role.id)),
            (None, _) | (Some(_), None) => {
                tracing::warn!(user_id, role = %role.name, scope = %role.scope, "role grant ignored: its scope does not fit");
            }
        }
    }
    let memberships: BTreeMap<i64, user_property::Model> =
        memberships.into_iter().map(|m| (m.property_id, m)).collect();
    let property_ids: BTreeSet<i64> =
        by_property.keys().chain(memberships.keys()).copied().collect();
    if property_ids.is_empty() {
        return Ok(subject);
    }
    let zones: BTreeMap<i64, String> = property::Entity::find()
        .select_only()
        .column(property::Column::Id)
        .column(property::Column::Timezone)
        .filter(property::Column::Id.is_in(property_ids.iter().copied()))
        .into_tuple::<(i64, String)>()
        .all(db)
        .await?
        .into_iter()
        .collect();

    for property_id in property_ids {
        let timezone = zones.get(&property_id).and_then(|name| {
            name.parse::<chrono_tz::Tz>()
                .inspect_err(|_| {
                    tracing::warn!(property_id, timezone = %name, "property time zone is not an IANA zone");
                })
                .ok()
        });
        let mut grant = PropertyGrant::new(
            property_id,
            timezone,
            by_property.remove(&property_id).unwrap_or_default(),
        );
        if let Some(m) = memberships.get(&property_id) {
            if let Some(role_id) = m.role_override_id {
                grant.permissions = perms(role_id).collect();
            }
            grant.cameras = CameraScope::from_stored(m.camera_scope.as_ref());
            grant.alarm_zones = AlarmZones::from_stored(&m.authorized_zones);
            grant.schedule = AccessSchedule::from_stored(&m.access_windows);
        }
        subject = subject.with_property(grant);
    }
    Ok(subject)
}
