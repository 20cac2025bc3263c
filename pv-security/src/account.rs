//! Accounts: creation, status (active / suspended / disabled, enforced on every request by
//! the web layer), passwords, the seeded system administrator `Thalia` and her one-time setup
//! code, and the stored second factors (TOTP secrets sealed with the server key, hashed
//! recovery codes).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use pv_core::config::SecurityConfig;
use pv_core::db::users::{
    passkey, recovery_code, role, setup_code, totp_credential, user, user_role,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, Set, TransactionTrait,
};

use crate::seal::ServerKey;
use crate::secret::{constant_time_eq, hash_token};
use crate::{Error, Result, password, totp};

/// The seeded system administrator's user name.
pub const SEED_ADMIN: &str = "Thalia";
/// The built-in global role every administrator holds.
pub const ADMIN_ROLE: &str = "System Administrator";
/// The setup code's file name in the data dir (0600, removed once used).
pub const SETUP_CODE_FILE: &str = "setup-code.txt";
/// Shortest accepted password.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Recovery codes issued with a TOTP enrolment.
pub const RECOVERY_CODES: usize = 10;

/// Account status, checked on every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    /// May sign in and act.
    Active,
    /// Temporarily barred (sessions revoked); an administrator may reactivate.
    Suspended,
    /// Permanently barred.
    Disabled,
}

impl AccountStatus {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Suspended => "suspended",
            AccountStatus::Disabled => "disabled",
        }
    }

    /// Parse a stored or submitted value.
    pub fn parse(text: &str) -> Result<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "active" => Ok(Self::Active),
            "suspended" => Ok(Self::Suspended),
            "disabled" => Ok(Self::Disabled),
            other => Err(Error::InvalidInput(format!(
                "unknown account status {} (expected active, suspended or disabled)",
                pv_core::input::quote(other)
            ))),
        }
    }
}

/// A user to create.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    /// Sign-in name: 1–64 of `A-Z a-z 0-9 . _ -`.
    pub username: String,
    /// Shown name (defaults to the username).
    pub display_name: Option<String>,
    /// Initial password (None: passkey or setup only).
    pub password: Option<String>,
    /// IANA time zone (default UTC).
    pub timezone: Option<String>,
}

fn check_username(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        // Quoted short: the name may be a megabyte of anything.
        Err(Error::InvalidInput(format!(
            "the user name {} must be 1 to 64 letters, digits, dots, dashes or underscores",
            pv_core::input::quote(name)
        )))
    }
}

/// A display name: 1 to 128 characters without control characters.
fn check_display_name(name: &str) -> Result<()> {
    pv_core::input::check_name("a display name", name, 128)
        .map_err(|e| Error::InvalidInput(e.to_string()))
}

fn check_password(pw: &str) -> Result<()> {
    if pw.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Error::InvalidInput(format!(
            "passwords need at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if pw.len() > 1024 {
        return Err(Error::InvalidInput("passwords may be at most 1024 bytes".into()));
    }
    Ok(())
}

/// Create a user.
pub async fn create_user(
    db: &DatabaseConnection,
    params: &SecurityConfig,
    new: &NewUser,
    now: DateTime<Utc>,
) -> Result<user::Model> {
    check_username(&new.username)?;
    if let Some(display_name) = &new.display_name {
        check_display_name(display_name)?;
    }
    if find_by_username(db, &new.username).await?.is_some() {
        return Err(Error::Conflict(format!(
            "the user name {} is taken",
            pv_core::input::quote(&new.username)
        )));
    }
    let password_hash = match &new.password {
        Some(pw) => {
            check_password(pw)?;
            Some(password::hash(pw, params)?)
        }
        None => None,
    };
    Ok(user::ActiveModel {
        username: Set(new.username.clone()),
        display_name: Set(new.display_name.clone().unwrap_or_else(|| new.username.clone())),
        timezone: Set(new.timezone.clone().unwrap_or_else(|| "UTC".into())),
        password_hash: Set(password_hash),
        account_status: Set(AccountStatus::Active.as_str().into()),
        mfa_preference: Set("passkey".into()),
        failed_login_count: Set(0),
        is_seed_admin: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?)
}

/// The user called `name` (case-insensitive).
pub async fn find_by_username(db: &DatabaseConnection, name: &str) -> Result<Option<user::Model>> {
    use sea_orm::sea_query::{Expr, ExprTrait, Func};
    if name.is_empty() || name.len() > 64 {
        return Ok(None);
    }
    Ok(user::Entity::find()
        .filter(Expr::expr(Func::lower(Expr::col(user::Column::Username))).eq(name.to_lowercase()))
        .one(db)
        .await?)
}

/// The user with `id`.
pub async fn get(db: &DatabaseConnection, id: i64) -> Result<user::Model> {
    user::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no user {id}")))
}

/// Set a user's password.
pub async fn set_password(
    db: &DatabaseConnection,
    params: &SecurityConfig,
    user_id: i64,
    new_password: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    check_password(new_password)?;
    let mut u: user::ActiveModel = get(db, user_id).await?.into();
    u.password_hash = Set(Some(password::hash(new_password, params)?));
    u.updated_at = Set(now);
    u.update(db).await?;
    Ok(())
}

/// Change a user's status; anything but active revokes their sessions. Suspending or
/// disabling the last active System Administrator is [`Error::Conflict`]: the guard
/// ([`crate::rbac::ensure_not_last_admin`]) runs in the same transaction as the change, so two
/// concurrent changes cannot both remove an administrator.
pub async fn set_status(
    db: &DatabaseConnection,
    user_id: i64,
    status: AccountStatus,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<user::Model> {
    let txn = db.begin().await?;
    // Roll back explicitly on failure: a dropped transaction keeps its locks until its
    // connection next reaches the pool.
    match set_status_in(&txn, user_id, status, reason, now).await {
        Ok(u) => {
            txn.commit().await?;
            Ok(u)
        }
        Err(e) => {
            txn.rollback().await?;
            Err(e)
        }
    }
}

async fn set_status_in(
    txn: &impl ConnectionTrait,
    user_id: i64,
    status: AccountStatus,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<user::Model> {
    if status != AccountStatus::Active {
        // First: it takes the lock before anything is read.
        crate::rbac::ensure_not_last_admin(txn, user_id).await.map_err(|e| match e {
            Error::Conflict(_) => Error::Conflict(format!(
                "the last active System Administrator cannot be {}; make another user \
                 administrator first",
                status.as_str()
            )),
            other => other,
        })?;
    }
    let found = user::Entity::find_by_id(user_id)
        .one(txn)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no user {user_id}")))?;
    let mut u: user::ActiveModel = found.into();
    u.account_status = Set(status.as_str().into());
    u.status_reason = Set(reason.map(str::to_string));
    u.updated_at = Set(now);
    let u = u.update(txn).await?;
    if status != AccountStatus::Active {
        crate::session::revoke_all(txn, user_id, None, now).await?;
    }
    Ok(u)
}

/// What first start did about the system administrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seed {
    /// `Thalia` was created; this is her one-time setup code (also written to `file`).
    Created {
        /// The code (show it once).
        code: String,
        /// Where it was written (0600).
        file: PathBuf,
    },
    /// `Thalia` exists and has not enrolled yet; her code is still in `file`.
    Pending {
        /// The setup code file.
        file: PathBuf,
    },
    /// Nothing to do.
    Done,
}

/// On first start (no users at all), create `Thalia` with the System Administrator role and a
/// one-time setup code, printed by the caller and written to `DATA_DIR/setup-code.txt` (0600).
pub async fn seed_admin(
    db: &DatabaseConnection,
    data_dir: &Path,
    now: DateTime<Utc>,
) -> Result<Seed> {
    let file = data_dir.join(SETUP_CODE_FILE);
    if user::Entity::find().count(db).await? > 0 {
        let pending = setup_code::Entity::find()
            .filter(setup_code::Column::UsedAt.is_null())
            .one(db)
            .await?
            .is_some();
        return Ok(if pending && file.exists() { Seed::Pending { file } } else { Seed::Done });
    }
    let admin_role = role::Entity::find()
        .filter(role::Column::Name.eq(ADMIN_ROLE))
        .one(db)
        .await?
        .ok_or_else(|| Error::NotFound(format!("built-in role {ADMIN_ROLE:?} is missing")))?;
    let code = setup_code_text();
    let txn = db.begin().await?;
    let thalia = user::ActiveModel {
        username: Set(SEED_ADMIN.into()),
        display_name: Set(SEED_ADMIN.into()),
        timezone: Set("UTC".into()),
        password_hash: Set(None),
        account_status: Set(AccountStatus::Active.as_str().into()),
        mfa_preference: Set("passkey".into()),
        failed_login_count: Set(0),
        is_seed_admin: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    user_role::ActiveModel {
        user_id: Set(thalia.id),
        role_id: Set(admin_role.id),
        property_id: Set(None),
        granted_by: Set(None),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    setup_code::ActiveModel {
        user_id: Set(thalia.id),
        code_hash: Set(hash_token(&normalise_code(&code))),
        created_at: Set(now),
        used_at: Set(None),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let text = format!(
        "PentaVision one-time setup code for {SEED_ADMIN}: {code}\n\
         Sign in as {SEED_ADMIN} with this code, then enrol a passkey or TOTP; the code then \
         stops working and this file is removed.\n"
    );
    pv_core::config::write_private_file(&file, &text)
        .map_err(|e| Error::InvalidInput(format!("{}: {e}", file.display())))?;
    txn.commit().await?;
    Ok(Seed::Created { code, file })
}

/// `XXXX-XXXX-XXXX-XXXX` from an unambiguous alphabet (80 bits).
fn setup_code_text() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    let chars: Vec<char> =
        (0..16).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect();
    chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-")
}

fn normalise_code(code: &str) -> String {
    code.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_uppercase()).collect()
}

/// Whether `code` is a live setup code of `user_id` (it stays live until an enrolment
/// retires it).
pub async fn check_setup_code(db: &DatabaseConnection, user_id: i64, code: &str) -> Result<bool> {
    let hash = hash_token(&normalise_code(code));
    let live = setup_code::Entity::find()
        .filter(setup_code::Column::UserId.eq(user_id))
        .filter(setup_code::Column::UsedAt.is_null())
        .all(db)
        .await?;
    Ok(live.iter().any(|row| constant_time_eq(row.code_hash.as_bytes(), hash.as_bytes())))
}

/// Whether any setup code is still live, i.e. the first administrator has not enrolled yet
/// (the sign-in page then explains how the first sign-in works).
pub async fn setup_pending(db: &DatabaseConnection) -> Result<bool> {
    Ok(setup_code::Entity::find()
        .filter(setup_code::Column::UsedAt.is_null())
        .one(db)
        .await?
        .is_some())
}

/// Kill `user_id`'s setup codes and remove the code file (after a passkey or TOTP enrolment).
pub async fn retire_setup_codes(
    db: &DatabaseConnection,
    data_dir: &Path,
    user_id: i64,
    now: DateTime<Utc>,
) -> Result<u64> {
    let res = setup_code::Entity::update_many()
        .col_expr(setup_code::Column::UsedAt, Some(now).into())
        .filter(setup_code::Column::UserId.eq(user_id))
        .filter(setup_code::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    if res.rows_affected > 0 {
        let _ = std::fs::remove_file(data_dir.join(SETUP_CODE_FILE));
    }
    Ok(res.rows_affected)
}

/// Which second factors a user has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Factors {
    /// Registered passkeys.
    pub passkeys: u64,
    /// A confirmed TOTP credential.
    pub totp: bool,
}

impl Factors {
    /// Whether any strong factor is enrolled.
    pub fn any(&self) -> bool {
        self.passkeys > 0 || self.totp
    }
}

/// The factors `user_id` has enrolled.
pub async fn factors(db: &DatabaseConnection, user_id: i64) -> Result<Factors> {
    let passkeys =
        passkey::Entity::find().filter(passkey::Column::UserId.eq(user_id)).count(db).await?;
    let totp = totp_credential::Entity::find()
        .filter(totp_credential::Column::UserId.eq(user_id))
        .filter(totp_credential::Column::ConfirmedAt.is_not_null())
        .count(db)
        .await?
        > 0;
    Ok(Factors { passkeys, totp })
}

/// Start a TOTP enrolment: a fresh secret (sealed in the database, unconfirmed until
/// [`totp_confirm`]) and its QR code.
pub async fn totp_begin(
    db: &DatabaseConnection,
    key: &ServerKey,
    user: &user::Model,
    now: DateTime<Utc>,
) -> Result<totp::Enrollment> {
    let enrollment = totp::enroll(&user.username, "PentaVision")?;
    totp_credential::Entity::delete_many()
        .filter(totp_credential::Column::UserId.eq(user.id))
        .filter(totp_credential::Column::ConfirmedAt.is_null())
        .exec(db)
        .await?;
    totp_credential::ActiveModel {
        user_id: Set(user.id),
        secret: Set(key.seal(&enrollment.secret_base32)?),
        confirmed_at: Set(None),
        last_used_step: Set(None),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(enrollment)
}

/// Confirm the pending enrolment with a code from the app. Replaces any earlier TOTP and
/// returns fresh recovery codes (show once). `None`: wrong code or nothing pending.
pub async fn totp_confirm(
    db: &DatabaseConnection,
    key: &ServerKey,
    user_id: i64,
    code: &str,
    now: DateTime<Utc>,
) -> Result<Option<Vec<String>>> {
    let Some(pending) = totp_credential::Entity::find()
        .filter(totp_credential::Column::UserId.eq(user_id))
        .filter(totp_credential::Column::ConfirmedAt.is_null())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let secret = key.open(&pending.secret)?;
    let Some(step) = totp::verify(&secret, code, now, None)? else { return Ok(None) };
    let codes = totp::generate_recovery_codes(RECOVERY_CODES);
    let txn = db.begin().await?;
    totp_credential::Entity::delete_many()
        .filter(totp_credential::Column::UserId.eq(user_id))
        .filter(totp_credential::Column::Id.ne(pending.id))
        .exec(&txn)
        .await?;
    let mut active: totp_credential::ActiveModel = pending.into();
    active.confirmed_at = Set(Some(now));
    active.last_used_step = Set(i64::try_from(step).ok());
    active.update(&txn).await?;
    store_recovery_codes(&txn, user_id, &codes, now).await?;
    txn.commit().await?;
    Ok(Some(codes))
}

/// Replace `user_id`'s recovery codes with [`RECOVERY_CODES`] fresh ones (show them once).
/// Each works once in place of a TOTP code, or with the password of a passkey account that
/// lost its passkey.
pub async fn new_recovery_codes(
    db: &DatabaseConnection,
    user_id: i64,
    now: DateTime<Utc>,
) -> Result<Vec<String>> {
    let codes = totp::generate_recovery_codes(RECOVERY_CODES);
    let txn = db.begin().await?;
    store_recovery_codes(&txn, user_id, &codes, now).await?;
    txn.commit().await?;
    Ok(codes)
}

async fn store_recovery_codes(
    txn: &impl ConnectionTrait,
    user_id: i64,
    codes: &[String],
    now: DateTime<Utc>,
) -> Result<()> {
    recovery_code::Entity::delete_many()
        .filter(recovery_code::Column::UserId.eq(user_id))
        .exec(txn)
        .await?;
    for c in codes {
        recovery_code::ActiveModel {
            user_id: Set(user_id),
            code_hash: Set(totp::hash_recovery_code(c)),
            used_at: Set(None),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(txn)
        .await?;
    }
    Ok(())
}

/// Check a TOTP code of `user_id`'s confirmed credential (a step is accepted once).
pub async fn totp_check(
    db: &DatabaseConnection,
    key: &ServerKey,
    user_id: i64,
    code: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let Some(cred) = totp_credential::Entity::find()
        .filter(totp_credential::Column::UserId.eq(user_id))
        .filter(totp_credential::Column::ConfirmedAt.is_not_null())
        .one(db)
        .await?
    else {
        return Ok(false);
    };
    let secret = key.open(&cred.secret)?;
    let last = cred.last_used_step.and_then(|s| u64::try_from(s).ok());
    let Some(step) = totp::verify(&secret, code, now, last)? else { return Ok(false) };
    // Only move the step forward if nobody else used it meanwhile (a concurrent replay).
    let res = totp_credential::Entity::update_many()
        .col_expr(totp_credential::Column::LastUsedStep, i64::try_from(step).ok().into())
        .filter(totp_credential::Column::Id.eq(cred.id))
        .filter(match cred.last_used_step {
            Some(prev) => totp_credential::Column::LastUsedStep.eq(prev),
            None => totp_credential::Column::LastUsedStep.is_null(),
        })
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Use one of `user_id`'s recovery codes (each works once).
pub async fn use_recovery_code(
    db: &DatabaseConnection,
    user_id: i64,
    code: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let hash = totp::hash_recovery_code(code);
    let res = recovery_code::Entity::update_many()
        .col_expr(recovery_code::Column::UsedAt, Some(now).into())
        .filter(recovery_code::Column::UserId.eq(user_id))
        .filter(recovery_code::Column::CodeHash.eq(hash))
        .filter(recovery_code::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Remove `user_id`'s TOTP credential and recovery codes.
pub async fn totp_remove(db: &DatabaseConnection, user_id: i64) -> Result<bool> {
    let res = totp_credential::Entity::delete_many()
        .filter(totp_credential::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    recovery_code::Entity::delete_many()
        .filter(recovery_code::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(res.rows_affected > 0)
}
