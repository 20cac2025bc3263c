//! Seed the permission catalogue and the built-in roles with their permissions. Idempotent:
//! rows that exist (same permission key, role name, or role/permission pair) are left alone.
//!
//! This is a frozen snapshot of `pv_security::rbac::{Permission, BuiltInRole}` as released; the
//! pv-security test `rbac::seeded_catalogue_matches_the_code` checks the two agree. A later
//! change to the catalogue is a new migration.

use sea_orm_migration::prelude::*;

use crate::db::schema_util::c;

/// `(key, category, description)` of every permission.
const PERMISSIONS: [(&str, &str, &str); 41] = [
    ("system.view", "system", "See system status, versions and health"),
    ("system.configure", "system", "Change system settings"),
    ("users.view", "system", "List users and see their profiles"),
    ("users.manage", "system", "Create, edit, suspend and remove users and their property access"),
    ("roles.manage", "system", "Define roles and grant or revoke them"),
    ("audit.view", "system", "Read the audit log"),
    ("audit.export", "system", "Export the audit log"),
    ("security.view", "system", "See IP rules, country policy and blocklist settings"),
    ("security.manage", "system", "Change IP rules, country policy and blocklist settings"),
    ("services.restart", "system", "Restart PentaVision services"),
    ("properties.view", "system", "See properties, their zones and members"),
    ("properties.manage", "system", "Create and edit properties, zones and alarm panels"),
    ("storage.view", "system", "See storage modules, usage and health"),
    ("storage.manage", "system", "Configure storage modules and destinations"),
    ("faces.view", "system", "See enrolled face identities and matches"),
    ("faces.manage", "system", "Enroll, edit and delete face identities"),
    ("cameras.view", "cameras", "See cameras, their status and snapshots"),
    ("cameras.live", "cameras", "Watch live video"),
    ("cameras.playback", "cameras", "Play back recordings"),
    ("cameras.export", "cameras", "Export footage"),
    ("cameras.manage", "cameras", "Add, edit and remove cameras"),
    ("cameras.ptz", "cameras", "Pan, tilt and zoom cameras"),
    ("cameras.retention", "cameras", "Configure recording retention"),
    ("recordings.delete", "cameras", "Delete recordings"),
    ("alarms.view", "alarms", "See alarm state and the alarm log"),
    ("alarms.arm", "alarms", "Arm the alarm"),
    ("alarms.disarm", "alarms", "Disarm the alarm"),
    ("alarms.silence", "alarms", "Silence a sounding alarm"),
    ("alarms.acknowledge", "alarms", "Acknowledge alerts"),
    ("alarms.bypass", "alarms", "Bypass alarm zones"),
    ("alarms.manage", "alarms", "Configure alarm panels and zones"),
    ("alarms.diagnostics", "alarms", "Run fire-panel and alarm diagnostics"),
    ("automation.view", "automation", "See automation devices and their state"),
    ("automation.run", "automation", "Run scenes and routines"),
    ("automation.locks", "automation", "Lock and unlock doors"),
    ("automation.garage", "automation", "Open and close garage doors and gates"),
    ("automation.hvac", "automation", "Change heating and cooling"),
    ("automation.lighting", "automation", "Switch lights"),
    ("automation.intercom", "automation", "Use the intercom"),
    ("automation.integrations", "automation", "Configure external integrations"),
    ("automation.manage", "automation", "Configure automation devices, scenes and rules"),
];

/// What a role grants.
enum Grants {
    /// Every permission.
    All,
    /// Every permission of these categories, plus these keys.
    Categories(&'static [&'static str], &'static [&'static str]),
    /// Exactly these keys.
    Keys(&'static [&'static str]),
}

/// `(name, scope, description, grants)` of every built-in role.
const ROLES: [(&str, &str, &str, Grants); 11] = [
    ("System Administrator", "global", "Full control of the system", Grants::All),
    (
        "Property Manager",
        "global",
        "Runs properties: cameras, alarms and automation everywhere, property settings; no system or security settings, no role definitions",
        Grants::Categories(
            &["cameras", "alarms", "automation"],
            &["users.view", "properties.view", "properties.manage", "audit.view", "system.view"],
        ),
    ),
    (
        "Technician",
        "global",
        "Installs and maintains cameras and panels: live view, camera settings, PTZ, diagnostics; no recorded footage, no alarm control",
        Grants::Keys(&[
            "system.view",
            "services.restart",
            "properties.view",
            "storage.view",
            "cameras.view",
            "cameras.live",
            "cameras.manage",
            "cameras.ptz",
            "alarms.view",
            "alarms.diagnostics",
            "automation.view",
        ]),
    ),
    (
        "Auditor",
        "global",
        "Read-only: settings, users, properties and the audit log (with export); no video, no face data",
        Grants::Keys(&[
            "system.view",
            "users.view",
            "audit.view",
            "audit.export",
            "security.view",
            "properties.view",
            "storage.view",
            "cameras.view",
            "alarms.view",
            "automation.view",
        ]),
    ),
    (
        "Homeowner",
        "property",
        "Everything on the property, including its members",
        Grants::Categories(
            &["cameras", "alarms", "automation"],
            &[
                "users.view",
                "users.manage",
                "properties.view",
                "properties.manage",
                "audit.view",
                "faces.view",
                "faces.manage",
            ],
        ),
    ),
    (
        "Adult Resident",
        "property",
        "Cameras (live, playback, export, PTZ), alarm control and automation; configures nothing",
        Grants::Keys(&[
            "users.view",
            "properties.view",
            "faces.view",
            "cameras.view",
            "cameras.live",
            "cameras.playback",
            "cameras.export",
            "cameras.ptz",
            "alarms.view",
            "alarms.arm",
            "alarms.disarm",
            "alarms.silence",
            "alarms.acknowledge",
            "alarms.bypass",
            "automation.view",
            "automation.run",
            "automation.locks",
            "automation.garage",
            "automation.hvac",
            "automation.lighting",
            "automation.intercom",
        ]),
    ),
    (
        "Child Resident",
        "property",
        "Live view, arm and disarm, lights and intercom",
        Grants::Keys(&[
            "properties.view",
            "cameras.view",
            "cameras.live",
            "alarms.view",
            "alarms.arm",
            "alarms.disarm",
            "automation.view",
            "automation.lighting",
            "automation.intercom",
        ]),
    ),
    (
        "Guest",
        "property",
        "Arm and disarm, locks and comfort controls; no cameras",
        Grants::Keys(&[
            "properties.view",
            "alarms.view",
            "alarms.arm",
            "alarms.disarm",
            "automation.view",
            "automation.locks",
            "automation.hvac",
            "automation.lighting",
            "automation.intercom",
        ]),
    ),
    (
        "Housekeeper",
        "property",
        "Housekeeper or staff: arm, disarm, locks and lights, usually within access windows",
        Grants::Keys(&[
            "properties.view",
            "alarms.view",
            "alarms.arm",
            "alarms.disarm",
            "automation.view",
            "automation.locks",
            "automation.lighting",
        ]),
    ),
    (
        "Temporary Contractor",
        "property",
        "Arm, disarm, locks and garage, usually within access windows and zones",
        Grants::Keys(&[
            "properties.view",
            "alarms.view",
            "alarms.arm",
            "alarms.disarm",
            "automation.view",
            "automation.locks",
            "automation.garage",
        ]),
    ),
    (
        "Monitoring Center Viewer",
        "property",
        "Alarm verification: alarm state, acknowledge, live view and playback",
        Grants::Keys(&[
            "properties.view",
            "cameras.view",
            "cameras.live",
            "cameras.playback",
            "alarms.view",
            "alarms.acknowledge",
        ]),
    ),
];

impl Grants {
    fn keys(&self) -> Vec<&'static str> {
        match self {
            Grants::All => PERMISSIONS.iter().map(|p| p.0).collect(),
            Grants::Categories(categories, extra) => PERMISSIONS
                .iter()
                .filter(|p| categories.contains(&p.1))
                .map(|p| p.0)
                .chain(extra.iter().copied())
                .collect(),
            Grants::Keys(keys) => keys.to_vec(),
        }
    }
}

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let now = chrono::Utc::now();

        let mut permissions = Query::insert();
        permissions
            .into_table(c("permissions"))
            .columns([c("key"), c("category"), c("description")])
            .on_conflict(OnConflict::column(c("key")).do_nothing_on([c("key")]).to_owned());
        for (key, category, description) in PERMISSIONS {
            permissions.values_panic([key.into(), category.into(), description.into()]);
        }
        m.exec_stmt(permissions).await?;

        let mut roles = Query::insert();
        roles
            .into_table(c("roles"))
            .columns([c("name"), c("scope"), c("description"), c("built_in"), c("created_at")])
            .on_conflict(OnConflict::column(c("name")).do_nothing_on([c("name")]).to_owned());
        for (name, scope, description, _) in &ROLES {
            roles.values_panic([
                (*name).into(),
                (*scope).into(),
                (*description).into(),
                true.into(),
                now.into(),
            ]);
        }
        m.exec_stmt(roles).await?;

        // One INSERT … SELECT per role: its id crossed with its permissions' ids.
        for (name, _, _, grants) in &ROLES {
            let select = Query::select()
                .column((c("r"), c("id")))
                .column((c("p"), c("id")))
                .from_as(c("roles"), c("r"))
                .from_as(c("permissions"), c("p"))
                .and_where(Expr::col((c("r"), c("name"))).eq(*name))
                .and_where(Expr::col((c("p"), c("key"))).is_in(grants.keys()))
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
        }

        // An administrator seeded before this migration keeps administering.
        let admins = Query::select()
            .column((c("u"), c("id")))
            .column((c("r"), c("id")))
            .expr(Expr::val(now))
            .from_as(c("users"), c("u"))
            .from_as(c("roles"), c("r"))
            .and_where(Expr::col((c("u"), c("is_seed_admin"))).eq(true))
            .and_where(Expr::col((c("r"), c("name"))).eq("System Administrator"))
            .and_where(
                Expr::exists(
                    Query::select()
                        .expr(Expr::val(1))
                        .from_as(c("user_roles"), c("g"))
                        .and_where(Expr::col((c("g"), c("user_id"))).equals((c("u"), c("id"))))
                        .and_where(Expr::col((c("g"), c("role_id"))).equals((c("r"), c("id"))))
                        .and_where(Expr::col((c("g"), c("property_id"))).is_null())
                        .to_owned(),
                )
                .not(),
            )
            .to_owned();
        let grant = Query::insert()
            .into_table(c("user_roles"))
            .columns([c("user_id"), c("role_id"), c("created_at")])
            .select_from(admins)
            .map_err(|e| DbErr::Migration(e.to_string()))?
            .to_owned();
        m.exec_stmt(grant).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let names: Vec<&str> = ROLES.iter().map(|r| r.0).collect();
        let role_ids = Query::select()
            .column(c("id"))
            .from(c("roles"))
            .and_where(Expr::col(c("built_in")).eq(true))
            .and_where(Expr::col(c("name")).is_in(names.clone()))
            .to_owned();
        for table in ["user_roles", "role_permissions"] {
            let delete = Query::delete()
                .from_table(c(table))
                .and_where(Expr::col(c("role_id")).in_subquery(role_ids.clone()))
                .to_owned();
            m.exec_stmt(delete).await?;
        }
        let keys: Vec<&str> = PERMISSIONS.iter().map(|p| p.0).collect();
        let unused =
            Query::select().column(c("permission_id")).from(c("role_permissions")).to_owned();
        let delete_permissions = Query::delete()
            .from_table(c("permissions"))
            .and_where(Expr::col(c("key")).is_in(keys))
            .and_where(Expr::col(c("id")).not_in_subquery(unused))
            .to_owned();
        m.exec_stmt(delete_permissions).await?;
        let delete_roles = Query::delete()
            .from_table(c("roles"))
            .and_where(Expr::col(c("built_in")).eq(true))
            .and_where(Expr::col(c("name")).is_in(names))
            .to_owned();
        m.exec_stmt(delete_roles).await
    }
}
