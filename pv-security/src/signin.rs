//! The sign-in flows, with lock-out, audit events and log lines.
//!
//! - **Password + second factor** (the fallback to passkeys): the password, then a TOTP code
//!   or a recovery code when the account has TOTP. An account with passkeys and no TOTP signs
//!   in with its passkey only. An account with no second factor yet gets an `enrol` session
//!   that can do nothing but enrol one.
//! - **Setup code**: the seeded administrator has no password; her one-time code gives an
//!   `enrol` session until she enrols a passkey or TOTP.
//! - **Passkey**: see [`crate::passkey`]; [`SignIn::passkey_succeeded`] applies the account
//!   checks and writes the audit event.
//!
//! Failures count against the user name ([`crate::throttle`]): after
//! `security.lockout_free_attempts` failures the name is locked with exponential back-off;
//! clients in 192.168.250.0/24 or on the exemption list are never locked out (they still need
//! the right credentials). Every attempt is an audit event, and every failure is a
//! `pentavision::auth` log line `sign-in failed client_ip=… user=… method=… reason=…` that
//! the shipped fail2ban filter reads. No secret ever reaches a log or an event.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use pv_core::config::SecurityConfig;
use pv_core::db::users::user;
use sea_orm::DatabaseConnection;

use crate::access::RuleSet;
use crate::account::{self, AccountStatus};
use crate::audit::{AuditLog, Event, Outcome};
use crate::seal::ServerKey;
use crate::session::{ClientInfo, Stage};
use crate::throttle::{Scope, Throttle, Verdict};
use crate::{Result, password};

/// An Argon2id hash (with the configured parameters) of nothing useful, verified when the
/// user does not exist or has no password, so that every attempt costs the same time.
fn dummy_hash(config: &SecurityConfig) -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| password::hash("not a password", config).unwrap_or_default())
}

/// Why a sign-in was refused (safe to show: it never says whether a user exists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Wrong name, password, code or setup code.
    BadCredentials,
    /// Right password; a TOTP or recovery code is needed too.
    SecondFactorRequired,
    /// Too many failures; try after this time.
    Locked(DateTime<Utc>),
    /// The account is suspended or disabled.
    Inactive(AccountStatus),
    /// The account signs in with a passkey (it has no TOTP).
    PasskeyOnly,
}

impl Refused {
    /// A message for the person signing in.
    pub fn message(&self) -> String {
        match self {
            Refused::BadCredentials => "wrong user name, password or code".into(),
            Refused::SecondFactorRequired => "enter the code from your authenticator app".into(),
            Refused::Locked(until) => format!(
                "too many failed attempts; try again after {}",
                until.format("%Y-%m-%d %H:%M:%S UTC")
            ),
            Refused::Inactive(status) => format!("this account is {}", status.as_str()),
            Refused::PasskeyOnly => {
                "this account signs in with its passkey (or its password and a recovery code)"
                    .into()
            }
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Refused::BadCredentials => "bad-credentials",
            Refused::SecondFactorRequired => "second-factor-required",
            Refused::Locked(_) => "locked",
            Refused::Inactive(_) => "inactive",
            Refused::PasskeyOnly => "passkey-only",
        }
    }
}

/// A successful sign-in: who, and what the new session may do.
#[derive(Debug, Clone)]
pub struct Granted {
    /// The user.
    pub user: user::Model,
    /// `Full`, or `Enrol` when a second factor must be enrolled first.
    pub stage: Stage,
}

/// What the client sent.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password, or the setup code for an account without a password.
    pub secret: String,
    /// TOTP code or recovery code.
    pub code: Option<String>,
}

/// The sign-in service over the users database.
#[derive(Debug, Clone, Copy)]
pub struct SignIn<'a> {
    /// The users database.
    pub db: &'a DatabaseConnection,
    /// `[security]`.
    pub config: &'a SecurityConfig,
    /// The server key (opens TOTP secrets).
    pub key: &'a ServerKey,
    /// The IP rules in force (exemptions bypass lock-out).
    pub rules: &'a RuleSet,
    /// The audit log.
    pub audit: &'a AuditLog,
}

impl SignIn<'_> {
    /// Sign in with a password (or setup code) and, when needed, a second factor.
    pub async fn password(
        &self,
        creds: &Credentials,
        ip: Option<IpAddr>,
        client: &ClientInfo,
        now: DateTime<Utc>,
    ) -> Result<std::result::Result<Granted, Refused>> {
        let throttle = Throttle::new(self.db.clone(), self.config.clone());
        let subject = format!("user:{}", creds.username.to_lowercase());
        let method = if creds.code.is_some() { "password+code" } else { "password" };
        if let Verdict::LockedUntil(until) =
            throttle.check(Scope::Login, &subject, ip.map(|ip| (ip, self.rules)), now).await?
        {
            return self.refuse(creds, None, method, Refused::Locked(until), ip, client, now).await;
        }
        let user = account::find_by_username(self.db, &creds.username).await?;
        let Some(user) = user else {
            // Same work as for a real user, then the same answer.
            let _ = password::verify(&creds.secret, dummy_hash(self.config));
            return self.fail(&throttle, &subject, creds, None, method, ip, client, now).await;
        };
        let (first_ok, via_setup_code) = match &user.password_hash {
            Some(hash) => (password::verify(&creds.secret, hash).unwrap_or(false), false),
            None => {
                let _ = password::verify(&creds.secret, dummy_hash(self.config));
                (account::check_setup_code(self.db, user.id, &creds.secret).await?, true)
            }
        };
        if !first_ok {
            return self
                .fail(&throttle, &subject, creds, Some(&user), method, ip, client, now)
                .await;
        }
        let status = AccountStatus::parse(&user.account_status).unwrap_or(AccountStatus::Disabled);
        if status != AccountStatus::Active {
            return self
                .refuse(creds, Some(&user), method, Refused::Inactive(status), ip, client, now)
                .await;
        }
        let factors = account::factors(self.db, user.id).await?;
        let stage = if via_setup_code {
            Stage::Enrol
        } else if factors.totp {
            let Some(code) = creds.code.as_deref().filter(|c| !c.trim().is_empty()) else {
                return Ok(Err(Refused::SecondFactorRequired));
            };
            let ok = account::totp_check(self.db, self.key, user.id, code, now).await?
                || account::use_recovery_code(self.db, user.id, code, now).await?;
            if !ok {
                return self
                    .fail(&throttle, &subject, creds, Some(&user), method, ip, client, now)
                    .await;
            }
            Stage::Full
        } else if factors.passkeys > 0 {
            // A passkey account signs in with its passkey; password + recovery code is the way
            // back in when the passkey is lost.
            let Some(code) = creds.code.as_deref().filter(|c| !c.trim().is_empty()) else {
                return self
                    .refuse(creds, Some(&user), method, Refused::PasskeyOnly, ip, client, now)
                    .await;
            };
            if !account::use_recovery_code(self.db, user.id, code, now).await? {
                return self
                    .fail(&throttle, &subject, creds, Some(&user), method, ip, client, now)
                    .await;
            }
            Stage::Full
        } else {
            Stage::Enrol
        };
        throttle.record_success(Scope::Login, &subject).await?;
        let method = if via_setup_code { "setup-code" } else { method };
        self.succeeded(&user, method, stage, ip, client, now).await?;
        Ok(Ok(Granted { user, stage }))
    }

    /// A passkey ceremony proved `user_id`: apply the account checks and audit it.
    pub async fn passkey_succeeded(
        &self,
        user_id: i64,
        ip: Option<IpAddr>,
        client: &ClientInfo,
        now: DateTime<Utc>,
    ) -> Result<std::result::Result<Granted, Refused>> {
        let user = account::get(self.db, user_id).await?;
        let status = AccountStatus::parse(&user.account_status).unwrap_or(AccountStatus::Disabled);
        let creds = Credentials { username: user.username.clone(), ..Default::default() };
        if status != AccountStatus::Active {
            return self
                .refuse(&creds, Some(&user), "passkey", Refused::Inactive(status), ip, client, now)
                .await;
        }
        self.succeeded(&user, "passkey", Stage::Full, ip, client, now).await?;
        Ok(Ok(Granted { user, stage: Stage::Full }))
    }

    /// A passkey ceremony failed (bad signature, replayed challenge, unknown key).
    pub async fn passkey_failed(
        &self,
        reason: &str,
        ip: Option<IpAddr>,
        client: &ClientInfo,
        now: DateTime<Utc>,
    ) -> Result<()> {
        log_failure(ip, "", "passkey", "bad-passkey");
        let mut event = Event::new("", "auth.login", "user", "");
        event.actor_name = None;
        event.target_id = None;
        event.outcome = Outcome::Failure;
        event.ip = ip.map(|ip| ip.to_string());
        event.user_agent = client.user_agent.clone();
        event = event.details(serde_json::json!({ "method": "passkey", "reason": reason }));
        self.audit.append(event, now).await?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn fail(
        &self,
        throttle: &Throttle,
        subject: &str,
        creds: &Credentials,
        user: Option<&user::Model>,
        method: &str,
        ip: Option<IpAddr>,
        client: &ClientInfo,
        now: DateTime<Utc>,
    ) -> Result<std::result::Result<Granted, Refused>> {
        let verdict = throttle.record_failure(Scope::Login, subject, now).await?;
        let refused = Refused::BadCredentials;
        let out = self.refuse(creds, user, method, refused, ip, client, now).await;
        if let Verdict::LockedUntil(until) = verdict {
            let exempt = ip.is_some_and(|ip| crate::throttle::lockout_exempt(ip, self.rules));
            if !exempt {
                let mut event =
                    Event::new(&creds.username, "auth.lockout", "user", &creds.username);
                event.actor_user_id = user.map(|u| u.id);
                event.outcome = Outcome::Denied;
                event.ip = ip.map(|ip| ip.to_string());
                event = event.details(serde_json::json!({ "locked_until": until.to_rfc3339() }));
                self.audit.append(event, now).await?;
            }
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    async fn refuse(
        &self,
        creds: &Credentials,
        user: Option<&user::Model>,
        method: &str,
        refused: Refused,
        ip: Option<IpAddr>,
        client: &ClientInfo,
        now: DateTime<Utc>,
    ) -> Result<std::result::Result<Granted, Refused>> {
        log_failure(ip, &creds.username, method, refused.reason());
        let name = safe_name(&creds.username);
        let mut event = Event::new(&name, "auth.login", "user", &name);
        event.actor_user_id = user.map(|u| u.id);
        event.outcome = if matches!(refused, Refused::BadCredentials) {
            Outcome::Failure
        } else {
            Outcome::Denied
        };
        event.ip = ip.map(|ip| ip.to_string());
        event.user_agent = client.user_agent.clone();
        event = event.details(serde_json::json!({ "method": method, "reason": refused.reason() }));
        self.audit.append(event, now).await?;
        Ok(Err(refused))
    }

    async fn succeeded(
        &self,
        user: &user::Model,
        method: &str,
        stage: Stage,
        ip: Option<IpAddr>,
        client: &ClientInfo,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let client_ip = ip.map(|ip| ip.to_string()).unwrap_or_default();
        tracing::info!(target: "pentavision::auth", client_ip, user = ?user.username, method,
            stage = stage.as_str(), "sign-in succeeded");
        let mut event = Event::new(&user.username, "auth.login", "user", &user.id.to_string());
        event.actor_user_id = Some(user.id);
        event.ip = ip.map(|ip| ip.to_string());
        event.user_agent = client.user_agent.clone();
        event = event.details(serde_json::json!({ "method": method, "stage": stage.as_str() }));
        self.audit.append(event, now).await?;
        record_last_login(self.db, user.id, ip, now).await
    }
}

/// A submitted user name as it may appear in logs and events: bounded, printable.
fn safe_name(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(64).collect()
}

fn log_failure(ip: Option<IpAddr>, username: &str, method: &str, reason: &str) {
    let client_ip = ip.map(|ip| ip.to_string()).unwrap_or_else(|| "unknown".into());
    tracing::warn!(target: "pentavision::auth", client_ip, user = ?safe_name(username), method,
        reason, "sign-in failed");
}

async fn record_last_login(
    db: &DatabaseConnection,
    user_id: i64,
    ip: Option<IpAddr>,
    now: DateTime<Utc>,
) -> Result<()> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    user::Entity::update_many()
        .col_expr(user::Column::LastLoginAt, Some(now).into())
        .col_expr(user::Column::LastLoginIp, ip.map(|ip| ip.to_string()).into())
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}
