//! `users`: a person's account: identity, contact details, alert targets, password and
//! sign-in state.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Sign-in name, unique.
    #[sea_orm(unique)]
    pub username: String,
    /// Name shown in the interface.
    pub display_name: String,
    /// Full legal name, for records that need it.
    pub legal_name: Option<String>,
    /// What the person likes to be called, when not the display name.
    pub preferred_name: Option<String>,
    pub date_of_birth: Option<Date>,
    pub email: Option<String>,
    pub phone_primary: Option<String>,
    pub phone_secondary: Option<String>,
    pub emergency_contact_name: Option<String>,
    pub emergency_contact_phone: Option<String>,
    /// Phone number that receives SMS alerts (None: no SMS alerts).
    pub sms_alert_target: Option<String>,
    /// Address that receives e-mail alerts (None: no e-mail alerts).
    pub email_alert_target: Option<String>,
    /// Postal address, free text.
    pub primary_address: Option<String>,
    pub zip_code: Option<String>,
    /// IANA time zone name (e.g. `Europe/Paris`), used to show times to this user.
    pub timezone: String,
    /// Password hash in PHC string format (Argon2id); None for passkey-only accounts.
    #[seaography(ignore)]
    pub password_hash: Option<String>,
    /// `active`, `suspended` or `disabled`.
    pub account_status: String,
    /// Why the account was suspended or disabled, for administrators.
    pub status_reason: Option<String>,
    /// Preferred second factor: `passkey`, `totp` or `none`.
    pub mfa_preference: String,
    /// Consecutive failed sign-ins since the last success.
    pub failed_login_count: i32,
    /// Sign-in refused until this time after too many failures.
    pub locked_until: Option<DateTimeUtc>,
    pub last_login_at: Option<DateTimeUtc>,
    /// Address of the last successful sign-in.
    pub last_login_ip: Option<String>,
    /// The administrator created at first start-up (cannot be deleted while the only admin).
    pub is_seed_admin: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::passkey::Entity")]
    Passkey,
    #[sea_orm(has_one = "super::totp_credential::Entity")]
    TotpCredential,
    #[sea_orm(has_many = "super::recovery_code::Entity")]
    RecoveryCode,
    #[sea_orm(has_many = "super::session::Entity")]
    Session,
    #[sea_orm(has_many = "super::api_token::Entity")]
    ApiToken,
    #[sea_orm(has_many = "super::webauthn_ceremony::Entity")]
    WebauthnCeremony,
    #[sea_orm(has_many = "super::disarm_pin::Entity")]
    DisarmPin,
    #[sea_orm(has_many = "super::pin_use::Entity")]
    PinUse,
    #[sea_orm(has_many = "super::user_role::Entity")]
    UserRole,
    #[sea_orm(has_many = "super::user_property::Entity")]
    UserProperty,
    #[sea_orm(has_one = "super::notification_setting::Entity")]
    NotificationSetting,
}

impl Related<super::passkey::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Passkey.def()
    }
}

impl Related<super::totp_credential::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::TotpCredential.def()
    }
}

impl Related<super::recovery_code::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::RecoveryCode.def()
    }
}

impl Related<super::session::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Session.def()
    }
}

impl Related<super::api_token::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::ApiToken.def()
    }
}

impl Related<super::webauthn_ceremony::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::WebauthnCeremony.def()
    }
}

impl Related<super::disarm_pin::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::DisarmPin.def()
    }
}

impl Related<super::pin_use::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::PinUse.def()
    }
}

impl Related<super::user_role::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::UserRole.def()
    }
}

impl Related<super::user_property::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::UserProperty.def()
    }
}

impl Related<super::notification_setting::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::NotificationSetting.def()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelatedEntity)]
pub enum RelatedEntity {
    #[sea_orm(entity = "super::passkey::Entity")]
    Passkey,
    #[sea_orm(entity = "super::totp_credential::Entity")]
    TotpCredential,
    #[sea_orm(entity = "super::recovery_code::Entity")]
    RecoveryCode,
    #[sea_orm(entity = "super::session::Entity")]
    Session,
    #[sea_orm(entity = "super::api_token::Entity")]
    ApiToken,
    #[sea_orm(entity = "super::webauthn_ceremony::Entity")]
    WebauthnCeremony,
    #[sea_orm(entity = "super::disarm_pin::Entity")]
    DisarmPin,
    #[sea_orm(entity = "super::pin_use::Entity")]
    PinUse,
    #[sea_orm(entity = "super::user_role::Entity")]
    UserRole,
    #[sea_orm(entity = "super::user_property::Entity")]
    UserProperty,
    #[sea_orm(entity = "super::notification_setting::Entity")]
    NotificationSetting,
}

impl ActiveModelBehavior for ActiveModel {}
