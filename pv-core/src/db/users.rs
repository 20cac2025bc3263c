//! The `users` database: accounts and everything needed to authenticate and authorise them
//! (passwords, passkeys, TOTP, recovery codes, sessions, API tokens, disarm PINs), the
//! properties they belong to with their roles and permissions, notification preferences, and
//! the security machinery around sign-in: a hash-chained audit log, IP block/exempt rules, the
//! country policy, the public blocklist feed settings and login/PIN throttling.
//!
//! Secrets (hashes, TOTP secrets, serialized passkeys, ceremony state) are marked
//! `#[seaography(ignore)]` so the GraphQL API never exposes them.

#[allow(missing_docs)]
pub mod api_token;
#[allow(missing_docs)]
pub mod audit_event;
#[allow(missing_docs)]
pub mod auth_throttle;
#[allow(missing_docs)]
pub mod blocklist_setting;
#[allow(missing_docs)]
pub mod country_policy;
#[allow(missing_docs)]
pub mod disarm_pin;
#[allow(missing_docs)]
pub mod ip_rule;
pub mod migration;
#[allow(missing_docs)]
pub mod notification_setting;
#[allow(missing_docs)]
pub mod passkey;
#[allow(missing_docs)]
pub mod permission;
#[allow(missing_docs)]
pub mod pin_use;
#[allow(missing_docs)]
pub mod property;
#[allow(missing_docs)]
pub mod recovery_code;
#[allow(missing_docs)]
pub mod role;
#[allow(missing_docs)]
pub mod role_permission;
#[allow(missing_docs)]
pub mod session;
#[allow(missing_docs)]
pub mod setup_code;
#[allow(missing_docs)]
pub mod totp_credential;
#[allow(missing_docs)]
pub mod user;
#[allow(missing_docs)]
pub mod user_property;
#[allow(missing_docs)]
pub mod user_role;
#[allow(missing_docs)]
pub mod webauthn_ceremony;
