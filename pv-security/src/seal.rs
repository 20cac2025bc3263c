//! Secrets at rest: a per-installation server key (`DATA_DIR/server.key`, 32 random bytes,
//! hex, mode 0600, created on first start) seals TOTP secrets and camera credentials with
//! XChaCha20-Poly1305 before they reach a database, and keys the HMAC of per-page CSRF
//! tokens. A database dump alone therefore reveals no usable second factor.
//!
//! Sealed text is `v1:` + base64url(nonce ‖ ciphertext). Dependency: `chacha20poly1305`
//! (RustCrypto, audited, pure Rust; XChaCha's 192-bit nonces may be random).

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::Sha256;

use crate::{Error, Result};

/// The server key's file name in the data dir.
pub const KEY_FILE: &str = "server.key";
const PREFIX: &str = "v1:";
/// First byte of data sealed by [`ServerKey::seal_bytes`].
const BYTES_VERSION: u8 = 1;

/// The server key. Its bytes never leave this type (Debug prints nothing).
#[derive(Clone)]
pub struct ServerKey {
    bytes: [u8; 32],
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKey(…)")
    }
}

impl ServerKey {
    /// Read `DATA_DIR/server.key`, creating it (0600) when absent.
    pub fn load_or_create(data_dir: &Path) -> Result<Self> {
        let path = data_dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let bytes: [u8; 32] = hex::decode(text.trim())
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| {
                        Error::InvalidInput(format!("{} is not a 32-byte hex key", path.display()))
                    })?;
                Ok(Self { bytes })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::random();
                pv_core::config::write_private_file(&path, &hex::encode(key.bytes))
                    .map_err(|e| Error::InvalidInput(format!("{}: {e}", path.display())))?;
                Ok(key)
            }
            Err(e) => Err(Error::InvalidInput(format!("{}: {e}", path.display()))),
        }
    }

    /// A fresh random key (tests, ephemeral servers).
    pub fn random() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self { bytes }
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.bytes).into())
    }

    /// Seal `plain` (a secret) into storable text.
    pub fn seal(&self, plain: &str) -> Result<String> {
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(&XNonce::from(nonce), plain.as_bytes())
            .map_err(|_| Error::InvalidInput("cannot seal secret".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(out)))
    }

    /// Open text made by [`ServerKey::seal`] with this key.
    pub fn open(&self, sealed: &str) -> Result<String> {
        let bad = || Error::InvalidInput("sealed secret is damaged or from another key".into());
        let body = sealed.strip_prefix(PREFIX).ok_or_else(bad)?;
        let raw = URL_SAFE_NO_PAD.decode(body).map_err(|_| bad())?;
        if raw.len() < 24 {
            return Err(bad());
        }
        let (nonce, ct) = raw.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().map_err(|_| bad())?;
        let plain = self.cipher().decrypt(&XNonce::from(nonce), ct).map_err(|_| bad())?;
        String::from_utf8(plain).map_err(|_| bad())
    }

    /// Seal binary data (face embeddings and crops): a version byte, the 24-byte nonce, then
    /// the ciphertext with its tag. `purpose` is bound as associated data, so a sealed crop
    /// cannot be passed off as a sealed embedding.
    pub fn seal_bytes(&self, purpose: &str, plain: &[u8]) -> Result<Vec<u8>> {
        use chacha20poly1305::aead::Payload;
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(&XNonce::from(nonce), Payload { msg: plain, aad: purpose.as_bytes() })
            .map_err(|_| Error::InvalidInput("cannot seal data".into()))?;
        let mut out = Vec::with_capacity(1 + 24 + sealed.len());
        out.push(BYTES_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Open data made by [`ServerKey::seal_bytes`] with this key and the same `purpose`.
    pub fn open_bytes(&self, purpose: &str, sealed: &[u8]) -> Result<Vec<u8>> {
        use chacha20poly1305::aead::Payload;
        let bad = || Error::InvalidInput("sealed data is damaged or from another key".into());
        if sealed.len() < 1 + 24 + 16 || sealed[0] != BYTES_VERSION {
            return Err(bad());
        }
        let (nonce, ct) = sealed[1..].split_at(24);
        let nonce: [u8; 24] = nonce.try_into().map_err(|_| bad())?;
        self.cipher()
            .decrypt(&XNonce::from(nonce), Payload { msg: ct, aad: purpose.as_bytes() })
            .map_err(|_| bad())
    }

    /// HMAC-SHA-256 of `message` under a key derived from this one for `purpose`.
    pub fn mac(&self, purpose: &str, message: &[u8]) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut derived = <Hmac<Sha256> as Mac>::new_from_slice(&self.bytes)
            .unwrap_or_else(|_| unreachable_hmac());
        derived.update(purpose.as_bytes());
        let sub = derived.finalize().into_bytes();
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&sub).unwrap_or_else(|_| unreachable_hmac());
        mac.update(message);
        mac.finalize().into_bytes().into()
    }
}

/// HMAC accepts keys of any length; this is never reached.
fn unreachable_hmac() -> hmac::Hmac<Sha256> {
    use hmac::Mac;
    #[allow(clippy::unwrap_used)]
    <hmac::Hmac<Sha256> as Mac>::new_from_slice(&[0u8; 32]).unwrap()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sealed_bytes_round_trip_and_refuse_other_keys_purposes_and_tampering() {
        let key = ServerKey::random();
        let plain = [1u8, 2, 3, 250, 0, 7];
        let sealed = key.seal_bytes("face-embedding", &plain).unwrap();
        assert!(!sealed.windows(plain.len()).any(|w| w == plain));
        assert_eq!(key.open_bytes("face-embedding", &sealed).unwrap(), plain);
        assert!(key.open_bytes("face-crop", &sealed).is_err());
        assert!(ServerKey::random().open_bytes("face-embedding", &sealed).is_err());
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(key.open_bytes("face-embedding", &tampered).is_err());
        assert!(key.open_bytes("face-embedding", &sealed[..10]).is_err());
    }

    #[test]
    fn seal_round_trips_and_refuses_other_keys_and_tampering() {
        let key = ServerKey::random();
        let sealed = key.seal("JBSWY3DPEHPK3PXP").unwrap();
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("JBSWY3DPEHPK3PXP"));
        assert_eq!(key.open(&sealed).unwrap(), "JBSWY3DPEHPK3PXP");
        assert!(ServerKey::random().open(&sealed).is_err());
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(key.open(&tampered).is_err());
        assert!(key.open("plain").is_err());
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = ServerKey::load_or_create(dir.path()).unwrap();
        let b = ServerKey::load_or_create(dir.path()).unwrap();
        assert_eq!(a.bytes, b.bytes);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_ne!(a.mac("csrf", b"x"), a.mac("other", b"x"));
    }
}
