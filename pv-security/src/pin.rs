//! The alarm disarm PIN: exactly eight digits, Argon2id-hashed with [`crate::password`], one
//! current PIN per user (`disarm_pins.retired_at` NULL) and the history that forbids reuse.
//!
//! # Rules
//!
//! - A PIN is exactly [`PIN_DIGITS`] ASCII digits; anything else is refused with a message that
//!   says so (and never repeats the input).
//! - **No reuse:** a new PIN may equal none of the last [`REMEMBERED`] PINs, that is the
//!   current PIN and the four retired before it (compared against their stored hashes). Older
//!   history is deleted when a PIN is set, so at most five hashes per user are kept.
//! - Setting or changing a PIN needs proof: the account password, or the current PIN. An
//!   account that has neither (a passkey-only account setting its first PIN) proves itself by
//!   its signed-in session alone. A wrong password counts as a failed sign-in (the password is
//!   guessed through here too), a wrong current PIN as a failed PIN attempt.
//! - Every use is recorded in `pin_uses`: success or failure, when, from which client address,
//!   how ([`PinMethod`]: `api`, `ui`, `keypad`) and, optionally, where (a panel name);
//!   [`status`] returns the last one.
//! - Failed attempts count in the [`crate::throttle`] with scope `pin` and subject
//!   `user:<id>`: after `security.lockout_free_attempts` failures each further failure locks the
//!   PIN with exponential back-off. Clients in 192.168.250.0/24 and on the IP exemption list are
//!   never locked out (they still need the right PIN).
//! - Every set and every verification, successful or not, is an audit event (`pin.set`,
//!   `pin.verify`, and `pin.lockout` when a lock-out starts). No PIN, hash or password ever
//!   reaches an event or a log line.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use pv_core::config::SecurityConfig;
use pv_core::db::users::{disarm_pin, pin_use, user};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};

use crate::access::RuleSet;
use crate::audit::{AuditLog, Event, Outcome};
use crate::throttle::{Scope, Throttle, Verdict, lockout_exempt};
use crate::{Error, Result, password};

/// Digits in a disarm PIN.
pub const PIN_DIGITS: usize = 8;
/// PINs remembered against reuse: the current one and the four retired before it.
pub const REMEMBERED: usize = 5;
/// Longest accepted `location` (a panel or station name).
pub const MAX_LOCATION_CHARS: usize = 64;

/// How a PIN was entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinMethod {
    /// An integration over the REST API (bearer token).
    Api,
    /// The web interface (browser session).
    Ui,
    /// A physical keypad or alarm panel.
    Keypad,
}

impl PinMethod {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            PinMethod::Api => "api",
            PinMethod::Ui => "ui",
            PinMethod::Keypad => "keypad",
        }
    }

    /// Parse `api`, `ui` or `keypad`.
    pub fn parse(text: &str) -> Result<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "api" => Ok(PinMethod::Api),
            "ui" => Ok(PinMethod::Ui),
            "keypad" => Ok(PinMethod::Keypad),
            _ => Err(Error::InvalidInput("the PIN entry method must be api, ui or keypad".into())),
        }
    }
}

/// Refuse anything but exactly [`PIN_DIGITS`] ASCII digits.
pub fn check_format(pin: &str) -> Result<()> {
    if pin.len() == PIN_DIGITS && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "a disarm PIN is exactly {PIN_DIGITS} digits (0-9), with no spaces or other characters"
        )))
    }
}

/// Where and how an attempt came in.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// Client address.
    pub ip: Option<IpAddr>,
    /// `User-Agent`, for the audit event.
    pub user_agent: Option<String>,
    /// How the PIN was entered.
    pub method: PinMethod,
    /// Panel or station name, if any (at most [`MAX_LOCATION_CHARS`] characters are kept).
    pub location: Option<String>,
}

impl Attempt {
    /// An attempt by `method` from `ip`.
    pub fn new(method: PinMethod, ip: Option<IpAddr>) -> Self {
        Self { ip, user_agent: None, method, location: None }
    }
}

/// What proves a PIN change is wanted by the account's owner.
#[derive(Debug, Clone, Copy)]
pub enum Proof<'a> {
    /// The account password.
    Password(&'a str),
    /// The current PIN.
    CurrentPin(&'a str),
    /// Nothing but the signed-in session: accepted only when the account has neither a
    /// password nor a PIN.
    Session,
}

impl Proof<'_> {
    fn as_str(&self) -> &'static str {
        match self {
            Proof::Password(_) => "password",
            Proof::CurrentPin(_) => "pin",
            Proof::Session => "session",
        }
    }
}

/// Why a PIN operation was refused (safe to show).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The PIN is wrong.
    WrongPin,
    /// The PIN given is not [`PIN_DIGITS`] digits (counted as a wrong PIN).
    Malformed,
    /// The password given as proof is wrong.
    WrongPassword,
    /// Proof is needed: the account password or the current PIN.
    ProofRequired,
    /// The user has no PIN.
    NoPin,
    /// Too many failures; try again after this time.
    Locked(DateTime<Utc>),
}

impl Refused {
    /// A message for the person entering the PIN.
    pub fn message(&self) -> String {
        match self {
            Refused::WrongPin => "wrong PIN".into(),
            Refused::Malformed => format!("a disarm PIN is exactly {PIN_DIGITS} digits"),
            Refused::WrongPassword => "the password is not right".into(),
            Refused::ProofRequired => {
                "confirm the change with your account password or your current PIN".into()
            }
            Refused::NoPin => "you have no disarm PIN yet; set one first".into(),
            Refused::Locked(until) => format!(
                "too many wrong PINs; try again after {}",
                until.format("%Y-%m-%d %H:%M:%S UTC")
            ),
        }
    }

    /// A stable machine name for logs and audit events.
    pub fn reason(&self) -> &'static str {
        match self {
            Refused::WrongPin => "wrong-pin",
            Refused::Malformed => "malformed",
            Refused::WrongPassword => "wrong-password",
            Refused::ProofRequired => "proof-required",
            Refused::NoPin => "no-pin",
            Refused::Locked(_) => "locked",
        }
    }
}

/// A user's PIN as shown to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinStatus {
    /// When the current PIN was set (None: no PIN).
    pub set_at: Option<DateTime<Utc>>,
    /// The most recent attempt to use it.
    pub last_use: Option<pin_use::Model>,
}

impl PinStatus {
    /// Whether the user has a PIN.
    pub fn has_pin(&self) -> bool {
        self.set_at.is_some()
    }
}

async fn current(db: &impl ConnectionTrait, user_id: i64) -> Result<Option<disarm_pin::Model>> {
    Ok(disarm_pin::Entity::find()
        .filter(disarm_pin::Column::UserId.eq(user_id))
        .filter(disarm_pin::Column::RetiredAt.is_null())
        .order_by_desc(disarm_pin::Column::Id)
        .one(db)
        .await?)
}

/// `user_id`'s PIN: whether there is one, since when, and its last use.
pub async fn status(db: &DatabaseConnection, user_id: i64) -> Result<PinStatus> {
    let set_at = current(db, user_id).await?.map(|p| p.created_at);
    let last_use = pin_use::Entity::find()
        .filter(pin_use::Column::UserId.eq(user_id))
        .order_by_desc(pin_use::Column::UsedAt)
        .order_by_desc(pin_use::Column::Id)
        .one(db)
        .await?;
    Ok(PinStatus { set_at, last_use })
}

/// `user_id`'s recorded PIN uses, newest first (at most `limit`).
pub async fn uses(
    db: &DatabaseConnection,
    user_id: i64,
    limit: u64,
) -> Result<Vec<pin_use::Model>> {
    Ok(pin_use::Entity::find()
        .filter(pin_use::Column::UserId.eq(user_id))
        .order_by_desc(pin_use::Column::UsedAt)
        .order_by_desc(pin_use::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

fn throttle_subject(user_id: i64) -> String {
    format!("user:{user_id}")
}

/// The PIN service over the users database.
#[derive(Debug, Clone, Copy)]
pub struct Pins<'a> {
    /// The users database.
    pub db: &'a DatabaseConnection,
    /// `[security]` (hash parameters, lock-out policy).
    pub config: &'a SecurityConfig,
    /// The IP rules in force (exemptions bypass lock-out).
    pub rules: &'a RuleSet,
    /// The audit log.
    pub audit: &'a AuditLog,
}

impl Pins<'_> {
    fn throttle(&self) -> Throttle {
        Throttle::new(self.db.clone(), self.config.clone())
    }

    /// Set or change `user`'s PIN to `new_pin`, proven by `proof`. A malformed or recently
    /// used PIN is [`Error::InvalidInput`]; a refused proof is `Ok(Err(_))`.
    pub async fn set(
        &self,
        user: &user::Model,
        new_pin: &str,
        proof: Proof<'_>,
        attempt: &Attempt,
        now: DateTime<Utc>,
    ) -> Result<std::result::Result<(), Refused>> {
        if let Err(e) = check_format(new_pin) {
            self.audit_set(user, attempt, &proof, Some("malformed"), now).await?;
            return Err(e);
        }
        let existing = current(self.db, user.id).await?;
        if let Err(refused) = self.check_proof(user, existing.as_ref(), proof, attempt, now).await?
        {
            self.audit_set(user, attempt, &proof, Some(refused.reason()), now).await?;
            return Ok(Err(refused));
        }
        let history = disarm_pin::Entity::find()
            .filter(disarm_pin::Column::UserId.eq(user.id))
            .order_by_desc(disarm_pin::Column::Id)
            .limit(REMEMBERED as u64)
            .all(self.db)
            .await?;
        if history.iter().any(|old| password::verify(new_pin, &old.pin_hash).unwrap_or(false)) {
            self.audit_set(user, attempt, &proof, Some("reused"), now).await?;
            return Err(Error::InvalidInput(format!(
                "choose a PIN you have not used before: it may not be one of your last \
                 {REMEMBERED} PINs"
            )));
        }
        let hash = password::hash(new_pin, self.config)?;
        let txn = self.db.begin().await?;
        match replace_in(&txn, user.id, hash, now).await {
            Ok(()) => txn.commit().await?,
            Err(e) => {
                txn.rollback().await?;
                return Err(e);
            }
        }
        tracing::info!(user_id = user.id, first = existing.is_none(), "disarm PIN set");
        self.audit_set(user, attempt, &proof, None, now).await?;
        Ok(Ok(()))
    }

    async fn check_proof(
        &self,
        user: &user::Model,
        existing: Option<&disarm_pin::Model>,
        proof: Proof<'_>,
        attempt: &Attempt,
        now: DateTime<Utc>,
    ) -> Result<std::result::Result<(), Refused>> {
        match proof {
            Proof::CurrentPin(pin) => self.check(user, existing, pin, attempt, now).await,
            Proof::Password(pw) => {
                let throttle = self.throttle();
                let subject = format!("user:{}", user.username.to_lowercase());
                let client = attempt.ip.map(|ip| (ip, self.rules));
                if let Verdict::LockedUntil(until) =
                    throttle.check(Scope::Login, &subject, client, now).await?
                {
                    return Ok(Err(Refused::Locked(until)));
                }
                let ok = match &user.password_hash {
                    Some(hash) => password::verify(pw, hash).unwrap_or(false),
                    None => false,
                };
                if ok {
                    Ok(Ok(()))
                } else {
                    throttle.record_failure(Scope::Login, &subject, now).await?;
                    Ok(Err(Refused::WrongPassword))
                }
            }
            Proof::Session if user.password_hash.is_none() && existing.is_none() => Ok(Ok(())),
            Proof::Session => Ok(Err(Refused::ProofRequired)),
        }
    }

    /// Check `pin` against `user`'s current PIN, recording the use and the audit event, and
    /// counting a failure against the lock-out.
    pub async fn verify(
        &self,
        user: &user::Model,
        pin: &str,
        attempt: &Attempt,
        now: DateTime<Utc>,
    ) -> Result<std::result::Result<(), Refused>> {
        let existing = current(self.db, user.id).await?;
        let outcome = self.check(user, existing.as_ref(), pin, attempt, now).await?;
        let mut event = self.event(user, "pin.verify", attempt);
        event.outcome = match &outcome {
            Ok(()) => Outcome::Success,
            Err(Refused::Locked(_)) => Outcome::Denied,
            Err(_) => Outcome::Failure,
        };
        let mut details = serde_json::json!({ "method": attempt.method.as_str() });
        if let Some(location) = location(attempt) {
            details["location"] = location.into();
        }
        if let Err(r) = &outcome {
            details["reason"] = r.reason().into();
        }
        self.audit.append(event.details(details), now).await?;
        Ok(outcome)
    }

    /// The PIN check shared by [`Pins::verify`] and [`Proof::CurrentPin`]: throttle, hash,
    /// use record, lock-out event. Writes no `pin.verify` event itself.
    async fn check(
        &self,
        user: &user::Model,
        existing: Option<&disarm_pin::Model>,
        pin: &str,
        attempt: &Attempt,
        now: DateTime<Utc>,
    ) -> Result<std::result::Result<(), Refused>> {
        let Some(existing) = existing else { return Ok(Err(Refused::NoPin)) };
        let throttle = self.throttle();
        let subject = throttle_subject(user.id);
        let client = attempt.ip.map(|ip| (ip, self.rules));
        if let Verdict::LockedUntil(until) =
            throttle.check(Scope::Pin, &subject, client, now).await?
        {
            self.record_use(user.id, attempt, false, now).await?;
            log_failure(user, attempt, "locked");
            return Ok(Err(Refused::Locked(until)));
        }
        let refused = if check_format(pin).is_err() {
            Some(Refused::Malformed)
        } else if password::verify(pin, &existing.pin_hash).unwrap_or(false) {
            None
        } else {
            Some(Refused::WrongPin)
        };
        let Some(refused) = refused else {
            throttle.record_success(Scope::Pin, &subject).await?;
            self.record_use(user.id, attempt, true, now).await?;
            return Ok(Ok(()));
        };
        let verdict = throttle.record_failure(Scope::Pin, &subject, now).await?;
        self.record_use(user.id, attempt, false, now).await?;
        log_failure(user, attempt, refused.reason());
        if let Verdict::LockedUntil(until) = verdict
            && !attempt.ip.is_some_and(|ip| lockout_exempt(ip, self.rules))
        {
            let mut event = self.event(user, "pin.lockout", attempt);
            event.outcome = Outcome::Denied;
            let event = event.details(serde_json::json!({ "locked_until": until.to_rfc3339() }));
            self.audit.append(event, now).await?;
        }
        Ok(Err(refused))
    }

    async fn record_use(
        &self,
        user_id: i64,
        attempt: &Attempt,
        success: bool,
        now: DateTime<Utc>,
    ) -> Result<()> {
        pin_use::ActiveModel {
            user_id: Set(user_id),
            used_at: Set(now),
            location: Set(location(attempt)),
            method: Set(Some(attempt.method.as_str().into())),
            ip: Set(attempt.ip.map(|ip| ip.to_canonical().to_string())),
            success: Set(success),
            ..Default::default()
        }
        .insert(self.db)
        .await?;
        Ok(())
    }

    fn event(&self, user: &user::Model, action: &str, attempt: &Attempt) -> Event {
        let mut event = Event::new(&user.username, action, "user", &user.id.to_string());
        event.actor_user_id = Some(user.id);
        event.ip = attempt.ip.map(|ip| ip.to_canonical().to_string());
        event.user_agent = attempt.user_agent.clone();
        event
    }

    async fn audit_set(
        &self,
        user: &user::Model,
        attempt: &Attempt,
        proof: &Proof<'_>,
        refused: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut event = self.event(user, "pin.set", attempt);
        let mut details =
            serde_json::json!({ "method": attempt.method.as_str(), "proof": proof.as_str() });
        if let Some(reason) = refused {
            event.outcome = if reason == "locked" { Outcome::Denied } else { Outcome::Failure };
            details["reason"] = reason.into();
        }
        self.audit.append(event.details(details), now).await?;
        Ok(())
    }
}

fn location(attempt: &Attempt) -> Option<String> {
    attempt
        .location
        .as_deref()
        .map(|l| l.chars().filter(|c| !c.is_control()).take(MAX_LOCATION_CHARS).collect::<String>())
        .filter(|l| !l.trim().is_empty())
}

fn log_failure(user: &user::Model, attempt: &Attempt, reason: &str) {
    let client_ip =
        attempt.ip.map(|ip| ip.to_canonical().to_string()).unwrap_or_else(|| "unknown".into());
    tracing::warn!(target: "pentavision::auth", client_ip, user = ?user.username,
        method = attempt.method.as_str(), reason, "disarm PIN refused");
}

/// Retire the current PIN, store `hash` as the new one and forget history beyond
/// [`REMEMBERED`]. Runs in one transaction that first locks the user's row, so concurrent
/// changes of one user's PIN never leave two current PINs.
async fn replace_in(
    txn: &impl ConnectionTrait,
    user_id: i64,
    hash: String,
    now: DateTime<Utc>,
) -> Result<()> {
    // A no-op write as the first statement: the row lock (the write lock on SQLite).
    user::Entity::update_many()
        .col_expr(user::Column::FailedLoginCount, Expr::col(user::Column::FailedLoginCount))
        .filter(user::Column::Id.eq(user_id))
        .exec(txn)
        .await?;
    disarm_pin::Entity::update_many()
        .col_expr(disarm_pin::Column::RetiredAt, Some(now).into())
        .filter(disarm_pin::Column::UserId.eq(user_id))
        .filter(disarm_pin::Column::RetiredAt.is_null())
        .exec(txn)
        .await?;
    disarm_pin::ActiveModel {
        user_id: Set(user_id),
        pin_hash: Set(hash),
        created_at: Set(now),
        retired_at: Set(None),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    let stale: Vec<i64> = disarm_pin::Entity::find()
        .select_only()
        .column(disarm_pin::Column::Id)
        .filter(disarm_pin::Column::UserId.eq(user_id))
        .order_by_desc(disarm_pin::Column::Id)
        .offset(REMEMBERED as u64)
        .limit(1_000)
        .into_tuple()
        .all(txn)
        .await?;
    if !stale.is_empty() {
        disarm_pin::Entity::delete_many()
            .filter(disarm_pin::Column::Id.is_in(stale))
            .exec(txn)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_eight_ascii_digits_are_a_pin() {
        assert!(check_format("01234567").is_ok());
        for bad in ["", "1234567", "123456789", "1234 5678", "1234567a", "١٢٣٤٥٦٧٨", "+1234567"]
        {
            let err = check_format(bad).unwrap_err().to_string();
            assert!(err.contains("exactly 8 digits"), "{bad:?}: {err}");
            if !bad.is_empty() {
                assert!(!err.contains(bad), "the message never repeats the input");
            }
        }
    }

    #[test]
    fn methods_round_trip() {
        for m in [PinMethod::Api, PinMethod::Ui, PinMethod::Keypad] {
            assert_eq!(PinMethod::parse(m.as_str()).unwrap(), m);
        }
        assert!(PinMethod::parse("phone").is_err());
    }
}
