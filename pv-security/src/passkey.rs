//! Passkeys (WebAuthn) with webauthn-rs: registration, discoverable sign-in (no user name
//! typed), list, rename, revoke.
//!
//! Each ceremony's state (with its challenge) is kept server-side in `webauthn_ceremonies` and
//! consumed by the first finish attempt, so a replayed or reused challenge always fails.
//! Ceremonies expire after five minutes. Credentials are created as discoverable (resident)
//! keys with user verification required.
//!
//! Dependency: `webauthn-rs` (kanidm's, audited, the reference Rust relying party) with
//! `danger-allow-state-serialisation` so ceremony state can live in the database between the
//! two HTTP calls, and `conditional-ui` for discoverable authentication.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use pv_core::db::users::{passkey, user, webauthn_ceremony};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, RequestChallengeResponse, Url, Uuid,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

use crate::{Error, Result};

/// How long a ceremony may take.
pub const CEREMONY_TTL_SECONDS: i64 = 300;
const KIND_REGISTER: &str = "register";
const KIND_AUTHENTICATE: &str = "authenticate";

/// The relying party: this server as browsers reach it.
#[derive(Debug, Clone)]
pub struct RelyingParty {
    webauthn: std::sync::Arc<Webauthn>,
}

/// The WebAuthn user handle of a user id (stable; carries no secret).
pub fn user_handle(user_id: i64) -> Uuid {
    Uuid::from_u64_pair(0x5045_4e54_4156_4953, u64::from_ne_bytes(user_id.to_ne_bytes()))
}

fn user_id_of(handle: Uuid) -> Option<i64> {
    let (hi, lo) = handle.as_u64_pair();
    (hi == 0x5045_4e54_4156_4953).then(|| i64::from_ne_bytes(lo.to_ne_bytes()))
}

fn bad(what: &str, e: impl std::fmt::Display) -> Error {
    Error::InvalidInput(format!("{what}: {e}"))
}

impl RelyingParty {
    /// A relying party for `origin` (`http://localhost:8080`, `https://nvr.example.com`); the
    /// passkeys are bound to its host name.
    pub fn new(origin: &str) -> Result<Self> {
        let url = Url::parse(origin).map_err(|e| bad("public origin", e))?;
        let host = url
            .host_str()
            .ok_or_else(|| Error::InvalidInput(format!("public origin {origin} has no host")))?
            .to_string();
        let webauthn = WebauthnBuilder::new(&host, &url)
            .map_err(|e| bad("public origin", e))?
            .rp_name("PentaVision")
            .allow_any_port(host == "localhost" || host == "127.0.0.1")
            .build()
            .map_err(|e| bad("public origin", e))?;
        Ok(Self { webauthn: std::sync::Arc::new(webauthn) })
    }

    /// Start registering a passkey for `user`. Returns the ceremony id and the options for
    /// `navigator.credentials.create()` (a `CreationChallengeResponse` as JSON).
    pub async fn start_registration(
        &self,
        db: &DatabaseConnection,
        user: &user::Model,
        now: DateTime<Utc>,
    ) -> Result<(i64, serde_json::Value)> {
        let existing = list(db, user.id).await?;
        let exclude: Vec<_> = existing
            .iter()
            .filter_map(|p| serde_json::from_str::<Passkey>(&p.passkey).ok())
            .map(|p| p.cred_id().clone())
            .collect();
        let (ccr, state) = self
            .webauthn
            .start_passkey_registration(
                user_handle(user.id),
                &user.username,
                &user.display_name,
                Some(exclude),
            )
            .map_err(|e| bad("passkey registration", e))?;
        // Passkeys are discoverable credentials: sign-in needs no user name. (The
        // registration state does not depend on this request option.)
        let mut ccr = serde_json::to_value(&ccr).map_err(|e| bad("passkey registration", e))?;
        if let Some(sel) = ccr.pointer_mut("/publicKey/authenticatorSelection")
            && let Some(sel) = sel.as_object_mut()
        {
            sel.insert("residentKey".into(), "required".into());
            sel.insert("requireResidentKey".into(), true.into());
        }
        let id = store(db, Some(user.id), KIND_REGISTER, &state, now).await?;
        Ok((id, ccr))
    }

    /// Finish a registration with the browser's answer; stores the passkey under `name`.
    pub async fn finish_registration(
        &self,
        db: &DatabaseConnection,
        user_id: i64,
        ceremony_id: i64,
        credential: &RegisterPublicKeyCredential,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<passkey::Model> {
        let state: PasskeyRegistration =
            take(db, ceremony_id, Some(user_id), KIND_REGISTER, now).await?;
        let key = self
            .webauthn
            .finish_passkey_registration(credential, &state)
            .map_err(|e| bad("passkey registration failed", e))?;
        let name = clean_name(name)?;
        Ok(passkey::ActiveModel {
            user_id: Set(user_id),
            credential_id: Set(URL_SAFE_NO_PAD.encode(key.cred_id().as_slice())),
            name: Set(name),
            passkey: Set(serde_json::to_string(&key).map_err(|e| bad("passkey", e))?),
            sign_count: Set(0),
            created_at: Set(now),
            last_used_at: Set(None),
            ..Default::default()
        }
        .insert(db)
        .await?)
    }

    /// Start a discoverable sign-in. Returns the ceremony id and the options for
    /// `navigator.credentials.get()`.
    pub async fn start_authentication(
        &self,
        db: &DatabaseConnection,
        now: DateTime<Utc>,
    ) -> Result<(i64, RequestChallengeResponse)> {
        let (mut rcr, state) = self
            .webauthn
            .start_discoverable_authentication()
            .map_err(|e| bad("passkey sign-in", e))?;
        // A button-started sign-in, not form autofill.
        rcr.mediation = None;
        let id = store(db, None, KIND_AUTHENTICATE, &state, now).await?;
        Ok((id, rcr))
    }

    /// Finish a sign-in; returns the user id whose passkey signed the challenge.
    pub async fn finish_authentication(
        &self,
        db: &DatabaseConnection,
        ceremony_id: i64,
        credential: &PublicKeyCredential,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        let state: DiscoverableAuthentication =
            take(db, ceremony_id, None, KIND_AUTHENTICATE, now).await?;
        let (handle, cred_id) = self
            .webauthn
            .identify_discoverable_authentication(credential)
            .map_err(|e| bad("passkey sign-in failed", e))?;
        let user_id = user_id_of(handle)
            .ok_or_else(|| Error::InvalidInput("passkey sign-in failed: unknown user".into()))?;
        let row = passkey::Entity::find()
            .filter(passkey::Column::CredentialId.eq(URL_SAFE_NO_PAD.encode(cred_id)))
            .filter(passkey::Column::UserId.eq(user_id))
            .one(db)
            .await?
            .ok_or_else(|| Error::InvalidInput("passkey sign-in failed: unknown passkey".into()))?;
        let mut key: Passkey = serde_json::from_str(&row.passkey).map_err(|e| bad("passkey", e))?;
        let result = self
            .webauthn
            .finish_discoverable_authentication_v2(credential, state, &key)
            .map_err(|e| bad("passkey sign-in failed", e))?;
        key.update_credential(&result);
        let mut active: passkey::ActiveModel = row.into();
        active.passkey = Set(serde_json::to_string(&key).map_err(|e| bad("passkey", e))?);
        active.sign_count = Set(i64::from(result.counter()));
        active.last_used_at = Set(Some(now));
        active.update(db).await?;
        Ok(user_id)
    }
}

fn clean_name(name: &str) -> Result<String> {
    pv_core::input::check_name("a passkey name", name, 64)
        .map_err(|e| Error::InvalidInput(e.to_string()))?;
    let name = name.trim();
    Ok(name.into())
}

async fn store<T: serde::Serialize>(
    db: &DatabaseConnection,
    user_id: Option<i64>,
    kind: &str,
    state: &T,
    now: DateTime<Utc>,
) -> Result<i64> {
    // Expired ceremonies are garbage.
    webauthn_ceremony::Entity::delete_many()
        .filter(webauthn_ceremony::Column::ExpiresAt.lt(now))
        .exec(db)
        .await?;
    let row = webauthn_ceremony::ActiveModel {
        user_id: Set(user_id),
        kind: Set(kind.into()),
        state: Set(serde_json::to_string(state).map_err(|e| bad("ceremony", e))?),
        created_at: Set(now),
        expires_at: Set(now + Duration::seconds(CEREMONY_TTL_SECONDS)),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(row.id)
}

/// Remove and return a live ceremony's state. Whatever happens next, the challenge is spent.
async fn take<T: serde::de::DeserializeOwned>(
    db: &DatabaseConnection,
    id: i64,
    user_id: Option<i64>,
    kind: &str,
    now: DateTime<Utc>,
) -> Result<T> {
    let gone = || {
        Error::InvalidInput(
            "this passkey challenge is unknown, expired or already used; start again".into(),
        )
    };
    let row = webauthn_ceremony::Entity::find_by_id(id).one(db).await?.ok_or_else(gone)?;
    let deleted = webauthn_ceremony::Entity::delete_many()
        .filter(webauthn_ceremony::Column::Id.eq(id))
        .exec(db)
        .await?;
    if deleted.rows_affected != 1
        || row.kind != kind
        || row.user_id != user_id
        || row.expires_at <= now
    {
        return Err(gone());
    }
    serde_json::from_str(&row.state).map_err(|e| bad("ceremony", e))
}

/// The passkeys of `user_id`, oldest first.
pub async fn list(db: &DatabaseConnection, user_id: i64) -> Result<Vec<passkey::Model>> {
    Ok(passkey::Entity::find()
        .filter(passkey::Column::UserId.eq(user_id))
        .order_by_asc(passkey::Column::Id)
        .all(db)
        .await?)
}

/// Rename passkey `id` of `user_id`.
pub async fn rename(db: &DatabaseConnection, user_id: i64, id: i64, name: &str) -> Result<()> {
    let name = clean_name(name)?;
    let res = passkey::Entity::update_many()
        .col_expr(passkey::Column::Name, name.into())
        .filter(passkey::Column::Id.eq(id))
        .filter(passkey::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    if res.rows_affected == 0 {
        return Err(Error::NotFound(format!("no passkey {id}")));
    }
    Ok(())
}

/// Revoke (delete) passkey `id` of `user_id`.
pub async fn revoke(db: &DatabaseConnection, user_id: i64, id: i64) -> Result<()> {
    let res = passkey::Entity::delete_many()
        .filter(passkey::Column::Id.eq(id))
        .filter(passkey::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    if res.rows_affected == 0 {
        return Err(Error::NotFound(format!("no passkey {id}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_handles_round_trip() {
        for id in [1, 42, i64::MAX] {
            assert_eq!(user_id_of(user_handle(id)), Some(id));
        }
        assert_eq!(user_id_of(Uuid::nil()), None);
    }
}
