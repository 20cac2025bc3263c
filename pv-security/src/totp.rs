//! TOTP second factor (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps — what every
//! authenticator app speaks), with a one-step drift window, replay protection and one-time
//! recovery codes.
//!
//! Enrollment produces the base32 secret, the `otpauth://` URI and that URI as an SVG QR code.
//! Verification takes the time from the caller (a [`pv_core::Clock`]), accepts the codes of the
//! previous, current and next step, and refuses a step at or before the last one accepted, so a
//! code works once. Recovery codes are 80-bit random strings shown once and stored as SHA-256
//! hashes (high-entropy secrets need no slow hash).

use chrono::{DateTime, Utc};
use qrcode::QrCode;
use qrcode::render::svg;
use sha2::{Digest, Sha256};
use totp_rs::{Builder, Secret, Totp};

use crate::{Error, Result};

/// Seconds per step.
pub const STEP_SECONDS: u64 = 30;
/// Digits per code.
pub const DIGITS: u8 = 6;

/// What a user needs to add PentaVision to an authenticator app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrollment {
    /// The shared secret, base32 (store it encrypted; never log it).
    pub secret_base32: String,
    /// `otpauth://totp/…` for the QR code or a manual entry link.
    pub otpauth_uri: String,
    /// The URI as an SVG QR code.
    pub qr_svg: String,
}

fn totp(secret_base32: &str, account: &str, issuer: &str) -> Result<Totp> {
    let secret = Secret::try_from_base32(secret_base32)
        .map_err(|e| Error::InvalidInput(format!("TOTP secret: {e:?}")))?;
    Builder::new()
        .with_secret(secret)
        .with_digits(DIGITS)
        .with_step_duration(STEP_SECONDS)
        .with_skew(1)
        .with_account_name(account)
        .with_issuer(Some(issuer))
        .build()
        .map_err(|e| Error::InvalidInput(format!("TOTP: {e:?}")))
}

/// Start an enrollment for `account` (a username) shown under `issuer` in the app.
pub fn enroll(account: &str, issuer: &str) -> Result<Enrollment> {
    let secret_base32 = Secret::generate().to_base32();
    let t = totp(&secret_base32, account, issuer)?;
    let otpauth_uri = t.to_url().map_err(|e| Error::InvalidInput(format!("TOTP URI: {e:?}")))?;
    let qr = QrCode::new(otpauth_uri.as_bytes())
        .map_err(|e| Error::InvalidInput(format!("QR code: {e}")))?;
    let qr_svg = qr.render::<svg::Color<'_>>().min_dimensions(200, 200).build();
    Ok(Enrollment { secret_base32, otpauth_uri, qr_svg })
}

fn unix(now: DateTime<Utc>) -> Result<u64> {
    u64::try_from(now.timestamp()).map_err(|_| Error::InvalidInput("time before 1970".into()))
}

/// The code for `secret_base32` at `now` (what the authenticator app shows).
pub fn code_at(secret_base32: &str, now: DateTime<Utc>) -> Result<String> {
    Ok(totp(secret_base32, "x", "PentaVision")?.generate(unix(now)?).to_string())
}

/// Check `code` at `now`. Returns the accepted step (store it as the last used step), or
/// `None` for a wrong code, a code outside the ±1-step window, or a replayed step
/// (`step <= last_used_step`).
pub fn verify(
    secret_base32: &str,
    code: &str,
    now: DateTime<Utc>,
    last_used_step: Option<u64>,
) -> Result<Option<u64>> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != usize::from(DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let step = totp(secret_base32, "x", "PentaVision")?.check(&code, unix(now)?);
    Ok(step.filter(|s| last_used_step.is_none_or(|last| *s > last)))
}

/// `n` fresh recovery codes, `xxxx-xxxx-xxxx-xxxx` (base32, 80 bits each). Show them once.
pub fn generate_recovery_codes(n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let raw = Secret::generate().to_base32().to_ascii_lowercase();
            let chars: Vec<char> =
                raw.chars().filter(char::is_ascii_alphanumeric).take(16).collect();
            chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-")
        })
        .collect()
}

/// The stored form of a recovery code: SHA-256 hex of the code without dashes, spaces or case.
pub fn hash_recovery_code(code: &str) -> String {
    let normal: String =
        code.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect();
    hex::encode(Sha256::digest(normal.as_bytes()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use chrono::TimeZone;

    use super::*;

    // RFC 6238 appendix B: SHA1 key "12345678901234567890".
    const RFC_KEY_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).unwrap()
    }

    #[test]
    fn rfc_6238_vectors() {
        // The 8-digit vectors' last six digits.
        assert_eq!(code_at(RFC_KEY_B32, at(59)).unwrap(), "287082");
        assert_eq!(code_at(RFC_KEY_B32, at(1_111_111_109)).unwrap(), "081804");
        assert_eq!(code_at(RFC_KEY_B32, at(2_000_000_000)).unwrap(), "279037");
    }

    #[test]
    fn one_step_drift_and_no_replay() {
        let t = at(1_111_111_109);
        let code = code_at(RFC_KEY_B32, t).unwrap();
        let step = verify(RFC_KEY_B32, &code, t, None).unwrap().unwrap();
        assert_eq!(step, 1_111_111_109 / 30);
        assert_eq!(
            verify(RFC_KEY_B32, &code, t + chrono::Duration::seconds(30), None).unwrap(),
            Some(step)
        );
        assert_eq!(
            verify(RFC_KEY_B32, &code, t - chrono::Duration::seconds(30), None).unwrap(),
            Some(step)
        );
        assert_eq!(
            verify(RFC_KEY_B32, &code, t + chrono::Duration::seconds(61), None).unwrap(),
            None
        );
        assert_eq!(verify(RFC_KEY_B32, &code, t, Some(step)).unwrap(), None, "replay refused");
        assert_eq!(verify(RFC_KEY_B32, "000000x", t, None).unwrap(), None);
        assert_eq!(verify(RFC_KEY_B32, "12345", t, None).unwrap(), None);
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(verify(RFC_KEY_B32, &spaced, t, None).unwrap(), Some(step));
    }

    #[test]
    fn enrollment_gives_a_working_secret_uri_and_qr() {
        let e = enroll("thalia", "PentaVision").unwrap();
        assert!(
            e.otpauth_uri.starts_with("otpauth://totp/PentaVision:thalia?"),
            "{}",
            e.otpauth_uri
        );
        assert!(e.otpauth_uri.contains(&format!("secret={}", e.secret_base32)));
        assert!(e.qr_svg.contains("<svg") && e.qr_svg.contains("</svg>"));
        let now = Utc::now();
        let code = code_at(&e.secret_base32, now).unwrap();
        assert!(verify(&e.secret_base32, &code, now, None).unwrap().is_some());
        assert!(enroll("bad:name", "PentaVision").is_err());
        assert!(verify("not base32!", "123456", now, None).is_err());
    }

    #[test]
    fn recovery_codes_are_random_and_hash_normalised() {
        let codes = generate_recovery_codes(10);
        assert_eq!(codes.len(), 10);
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), 10);
        for c in &codes {
            assert_eq!(c.len(), 19, "{c}");
            assert_eq!(c.matches('-').count(), 3);
        }
        let h = hash_recovery_code(&codes[0]);
        assert_eq!(h, hash_recovery_code(&codes[0].to_uppercase().replace('-', " ")));
        assert_ne!(h, hash_recovery_code(&codes[1]));
        assert_eq!(h.len(), 64);
    }
}
