//! Argon2id password hashing. Hashes are PHC strings (`$argon2id$v=19$m=…`), so parameters can
//! be raised later and old hashes still verify.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use pv_core::config::SecurityConfig;

use crate::{Error, Result};

fn hasher(params: &SecurityConfig) -> Result<Argon2<'static>> {
    let p = Params::new(
        params.argon2_memory_kib,
        params.argon2_iterations,
        params.argon2_parallelism,
        None,
    )
    .map_err(|e| Error::InvalidInput(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, p))
}

/// Hash `password` with Argon2id and a fresh random salt.
pub fn hash(password: &str, params: &SecurityConfig) -> Result<String> {
    let hash = hasher(params)?
        .hash_password(password.as_bytes())
        .map_err(|e| Error::InvalidInput(format!("cannot hash password: {e}")))?;
    Ok(hash.to_string())
}

/// Check `password` against a stored PHC hash. `Ok(false)` for a wrong password; `Err` only
/// when the stored hash is malformed.
pub fn verify(password: &str, stored: &str) -> Result<bool> {
    let parsed = argon2::password_hash::phc::PasswordHash::new(stored)
        .map_err(|e| Error::InvalidInput(format!("stored password hash is malformed: {e}")))?;
    Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn fast() -> SecurityConfig {
        SecurityConfig {
            argon2_memory_kib: 1024,
            argon2_iterations: 1,
            argon2_parallelism: 1,
            ..SecurityConfig::default()
        }
    }

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let a = hash("s3cret pass", &fast()).unwrap();
        let b = hash("s3cret pass", &fast()).unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(verify("s3cret pass", &a).unwrap());
        assert!(!verify("s3cret pasS", &a).unwrap());
    }

    #[test]
    fn default_parameters_are_owasp_strength() {
        let h = hash("x", &SecurityConfig::default()).unwrap();
        assert!(h.contains("m=19456,t=2,p=1"), "{h}");
    }

    #[test]
    fn malformed_hash_is_an_error_not_a_panic() {
        assert!(verify("x", "not-a-hash").is_err());
        let bad = SecurityConfig { argon2_memory_kib: 1, ..fast() };
        assert!(hash("x", &bad).is_err());
    }
}
