//! The first `users` schema.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::db::schema_util::{c, fk_cascade, fk_set_null, index, ts, ts_null};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// Tables in creation (dependency) order; `down` drops them in reverse.
const TABLES: [&str; 21] = [
    "users",
    "passkeys",
    "totp_credentials",
    "recovery_codes",
    "sessions",
    "api_tokens",
    "webauthn_ceremonies",
    "disarm_pins",
    "pin_uses",
    "properties",
    "roles",
    "permissions",
    "role_permissions",
    "user_roles",
    "user_properties",
    "notification_settings",
    "audit_events",
    "ip_rules",
    "country_policies",
    "blocklist_settings",
    "auth_throttles",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let b = m.get_database_backend();

        m.create_table(
            Table::create()
                .table(c("users"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(string_len_uniq(c("username"), 64))
                .col(string(c("display_name")))
                .col(string_null(c("legal_name")))
                .col(string_null(c("preferred_name")))
                .col(date_null(c("date_of_birth")))
                .col(string_len_null(c("email"), 255))
                .col(string_len_null(c("phone_primary"), 64))
                .col(string_len_null(c("phone_secondary"), 64))
                .col(string_null(c("emergency_contact_name")))
                .col(string_len_null(c("emergency_contact_phone"), 64))
                .col(string_len_null(c("sms_alert_target"), 64))
                .col(string_len_null(c("email_alert_target"), 255))
                .col(text_null(c("primary_address")))
                .col(string_len_null(c("zip_code"), 16))
                .col(string_len(c("timezone"), 64).default("UTC"))
                .col(string_null(c("password_hash")))
                .col(string_len(c("account_status"), 32).default("active"))
                .col(text_null(c("status_reason")))
                .col(string_len(c("mfa_preference"), 32).default("passkey"))
                .col(integer(c("failed_login_count")).default(0))
                .col(ts_null(b, c("locked_until")))
                .col(ts_null(b, c("last_login_at")))
                .col(string_len_null(c("last_login_ip"), 64))
                .col(boolean(c("is_seed_admin")).default(false))
                .col(ts(b, c("created_at")))
                .col(ts(b, c("updated_at")))
                .to_owned(),
        )
        .await?;
        m.create_index(index("users", &["email"], false)).await?;

        m.create_table(
            Table::create()
                .table(c("passkeys"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(big_integer(c("user_id")))
                .col(string_len_uniq(c("credential_id"), 255))
                .col(string(c("name")))
                .col(text(c("passkey")))
                .col(big_integer(c("sign_count")).default(0))
                .col(ts(b, c("created_at")))
                .col(ts_null(b, c("last_used_at")))
                .foreign_key(&mut fk_cascade("passkeys", "user_id", "users"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("passkeys", &["user_id"], false)).await?;

        m.create_table(
            Table::create()
                .table(c("totp_credentials"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(big_integer_uniq(c("user_id")))
                .col(text(c("secret")))
                .col(ts_null(b, c("confirmed_at")))
                .col(big_integer_null(c("last_used_step")))
                .col(ts(b, c("created_at")))
                .foreign_key(&mut fk_cascade("totp_credentials", "user_id", "users"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(c("recovery_codes"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(big_integer(c("user_id")))
                .col(string_len(c("code_hash"), 255))
                .col(ts_null(b, c("used_at")))
                .col(ts(b, c("created_at")))
                .foreign_key(&mut fk_cascade("recovery_codes", "user_id", "users"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("recovery_codes", &["user_id"], false)).await?;

        m.create_table(
            Table::create()
                .table(c("sessions"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(big_integer(c("user_id")))
                .col(string_len_uniq(c("token_hash"), 128))
                .col(ts(b, c("created_at")))
                .col(ts(b, c("last_seen_at")))
                .col(ts(b, c("idle_expires_at")))
                .col(ts(b, c("absolute_expires_at")))
                .col(string_len_null(c("ip"), 64))
                .col(text_null(c("user_agent")))
                .col(ts_null(b, c("revoked_at")))
                .foreign_key(&mut fk_cascade("sessions", "user_id", "users"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("sessions", &["user_id"], false)).await?;

        m.create_table(
            Table::create()
                .table(c("api_tokens"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(big_integer(c("user_id")))
                .col(string(c("name")))
                .col(string_len(c("prefix"), 16))
                .col(string_len_uniq(c("token_hash"), 128))
                .col(json(c("scopes")))
                .col(ts(b, c("created_at")))
                .col(ts_null(b, c("expires_at")))
                .col(ts_null(b, c("last_used_at")))
                .col(ts_null(b, c("revoked_at")))
                .foreign_key(&mut fk_cascade("api_tokens", "user_id", "users"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("api_tokens", &["user_id"], false)).await?;

        m.create_table(
            Table::create()
                .table(c("webauthn_ceremonies"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(big_integer_null(c("user_id")))
                .col(string_len(c("kind"), 32))
                .col(text(c("state")))
                .col(ts(b, c("created_at")))
                .col(ts(b, c("expires_at")))
                .foreign_key(&mut fk_cascade("webauthn_ceremonies", "user_id", "users"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("webauthn_ceremonies", &["user_id"], false)).await?;
        m.create_index(index("webauthn_ceremonies", &["expires_at"], false)).await?;

        m.create_table(
            Table::create()
                .table(c("disarm_pins"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(big_integer(c("user_id")))
                .col(string_len(c("pin_hash"), 255))
                .col(ts(b, c("created_at")))
                .col(ts_null(b, c("retired_at")))
                .foreign_key(&mut fk_cascade("disarm_pins", "user_id", "users"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("disarm_pins", &["user_id"], false)).await?;

        m.create_table(
            Table::create()
                .table(c("pin_uses"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(big_integer(c("user_id")))
                .col(ts(b, c("used_at")))
                .col(string_null(c("location")))
                .col(string_len_null(c("method"), 32))
                .col(string_len_null(c("ip"), 64))
                .col(boolean(c("success")))
                .foreign_key(&mut fk_cascade("pin_uses", "user_id", "users"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("pin_uses", &["user_id", "used_at"], false)).await?;

        m.create_table(
            Table::create()
                .table(c("properties"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(string(c("name")))
                .col(text_null(c("address")))
                .col(string_len_null(c("zip_code"), 16))
                .col(string_len(c("timezone"), 64).default("UTC"))
                .col(text_null(c("description")))
                .col(json_null(c("metadata")))
                .col(ts(b, c("created_at")))
                .col(ts(b, c("updated_at")))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(c("roles"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(string_len_uniq(c("name"), 64))
                .col(string_len(c("scope"), 32))
                .col(text_null(c("description")))
                .col(boolean(c("built_in")).default(false))
                .col(ts(b, c("created_at")))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(c("permissions"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(string_len_uniq(c("key"), 64))
                .col(string_len(c("category"), 32))
                .col(text_null(c("description")))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(c("role_permissions"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(big_integer(c("role_id")))
                .col(big_integer(c("permission_id")))
                .foreign_key(&mut fk_cascade("role_permissions", "role_id", "roles"))
                .foreign_key(&mut fk_cascade("role_permissions", "permission_id", "permissions"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("role_permissions", &["role_id", "permission_id"], true)).await?;
        m.create_index(index("role_permissions", &["permission_id"], false)).await?;

        m.create_table(
            Table::create()
                .table(c("user_roles"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(big_integer(c("user_id")))
                .col(big_integer(c("role_id")))
                .col(big_integer_null(c("property_id")))
                .col(big_integer_null(c("granted_by")))
                .col(ts(b, c("created_at")))
                .foreign_key(&mut fk_cascade("user_roles", "user_id", "users"))
                .foreign_key(&mut fk_cascade("user_roles", "role_id", "roles"))
                .foreign_key(&mut fk_cascade("user_roles", "property_id", "properties"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("user_roles", &["user_id"], false)).await?;
        m.create_index(index("user_roles", &["role_id"], false)).await?;
        m.create_index(index("user_roles", &["property_id"], false)).await?;

        m.create_table(
            Table::create()
                .table(c("user_properties"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(big_integer(c("user_id")))
                .col(big_integer(c("property_id")))
                .col(string_len(c("residency_status"), 32))
                .col(json(c("authorized_zones")))
                .col(json_null(c("camera_scope")))
                .col(json(c("access_windows")))
                .col(big_integer_null(c("role_override_id")))
                .col(ts(b, c("created_at")))
                .col(ts(b, c("updated_at")))
                .foreign_key(&mut fk_cascade("user_properties", "user_id", "users"))
                .foreign_key(&mut fk_cascade("user_properties", "property_id", "properties"))
                .foreign_key(&mut fk_set_null("user_properties", "role_override_id", "roles"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("user_properties", &["user_id", "property_id"], true)).await?;
        m.create_index(index("user_properties", &["property_id"], false)).await?;

        m.create_table(
            Table::create()
                .table(c("notification_settings"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(big_integer_uniq(c("user_id")))
                .col(boolean(c("intrusion")).default(true))
                .col(boolean(c("fire")).default(true))
                .col(boolean(c("system_faults")).default(true))
                .col(boolean(c("camera_motion")).default(true))
                .col(boolean(c("door_window")).default(true))
                .col(boolean(c("environmental")).default(true))
                .col(integer(c("escalation_tier")).default(1))
                .col(boolean(c("suppress_outside_access_windows")).default(false))
                .col(ts(b, c("updated_at")))
                .foreign_key(&mut fk_cascade("notification_settings", "user_id", "users"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(c("audit_events"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(ts(b, c("occurred_at")))
                .col(big_integer_null(c("actor_user_id")))
                .col(string_null(c("actor_name")))
                .col(string_len(c("action"), 64))
                .col(string_len_null(c("target_kind"), 64))
                .col(string_len_null(c("target_id"), 128))
                .col(string_len_null(c("ip"), 64))
                .col(text_null(c("user_agent")))
                .col(string_len(c("outcome"), 32))
                .col(json_null(c("details")))
                .col(string_len(c("prev_hash"), 64))
                .col(string_len_uniq(c("hash"), 64))
                .to_owned(),
        )
        .await?;
        m.create_index(index("audit_events", &["occurred_at"], false)).await?;
        m.create_index(index("audit_events", &["actor_user_id"], false)).await?;
        m.create_index(index("audit_events", &["action"], false)).await?;

        m.create_table(
            Table::create()
                .table(c("ip_rules"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(string_len(c("network"), 64))
                .col(string_len(c("action"), 32))
                .col(text_null(c("reason")))
                .col(string_len(c("source"), 32))
                .col(big_integer_null(c("created_by")))
                .col(ts(b, c("created_at")))
                .col(ts_null(b, c("expires_at")))
                .to_owned(),
        )
        .await?;
        m.create_index(index("ip_rules", &["network", "action"], true)).await?;

        m.create_table(
            Table::create()
                .table(c("country_policies"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(string_len(c("mode"), 32).default("off"))
                .col(json(c("countries")))
                .col(text_null(c("mmdb_path")))
                .col(ts(b, c("updated_at")))
                .col(big_integer_null(c("updated_by")))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(c("blocklist_settings"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(boolean(c("enabled")).default(false))
                .col(string_len_null(c("token_hash"), 128))
                .col(integer(c("requests_per_minute")).default(60))
                .col(ts(b, c("updated_at")))
                .col(big_integer_null(c("updated_by")))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(c("auth_throttles"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(string_len(c("scope"), 32))
                .col(string_len(c("subject"), 255))
                .col(integer(c("failures")).default(0))
                .col(ts_null(b, c("first_failure_at")))
                .col(ts_null(b, c("last_failure_at")))
                .col(ts_null(b, c("locked_until")))
                .to_owned(),
        )
        .await?;
        m.create_index(index("auth_throttles", &["scope", "subject"], true)).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in TABLES.iter().rev() {
            m.drop_table(Table::drop().table(c(t)).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
