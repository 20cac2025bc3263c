//! [`Key`]: a validated object key, the one naming scheme every storage backend accepts.
//!
//! Rules (checked by [`Key::new`]):
//! - not empty, at most [`Key::MAX_LEN`] bytes (S3's limit);
//! - relative: no leading `/`;
//! - `/`-separated segments, none empty (no `//`, no trailing `/`), none `.` or `..`, each at
//!   most [`Key::MAX_SEGMENT_LEN`] bytes (the common file-name limit);
//! - no backslash and no control characters (including NUL);
//! - no segment starting with [`Key::RESERVED_PREFIX`], which the local store uses for files
//!   being written.
//!
//! The rules are the same for every backend so that an object can move between backends, and
//! they guarantee that joining a key to a root directory stays inside it.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// A validated object key such as `cameras/id-42/20261123T101500Z-42.mp4`.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Key(String);

impl Key {
    /// Longest key, in bytes.
    pub const MAX_LEN: usize = 1024;
    /// Longest segment, in bytes.
    pub const MAX_SEGMENT_LEN: usize = 255;
    /// Segments may not start with this: the local store names its temporary files so.
    pub const RESERVED_PREFIX: &'static str = ".pvtmp.";

    /// Validate `key` against the rules in the [module docs](self).
    pub fn new(key: impl Into<String>) -> Result<Self> {
        let key = key.into();
        match violation(&key) {
            Some(reason) => Err(Error::InvalidKey { key, reason }),
            None => Ok(Self(key)),
        }
    }

    /// The key text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `/`-separated segments, each non-empty.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The directory part and the last segment: `("a/b", "c")` for `a/b/c`, `("", "c")` for `c`.
    pub fn split_last(&self) -> (&str, &str) {
        self.0.rsplit_once('/').unwrap_or(("", &self.0))
    }
}

/// The first rule `key` breaks, if any.
fn violation(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        return Some("a key may not be empty");
    }
    if key.len() > Key::MAX_LEN {
        return Some("a key may be at most 1024 bytes");
    }
    if key.starts_with('/') {
        return Some("a key is relative and may not start with '/'");
    }
    if key.contains('\\') {
        return Some("a key may not contain a backslash; use '/' between segments");
    }
    if key.chars().any(char::is_control) {
        return Some("a key may not contain control characters");
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return Some("a key may not have empty segments ('//' or a trailing '/')");
        }
        if segment == "." || segment == ".." {
            return Some("a key may not have '.' or '..' segments");
        }
        if segment.len() > Key::MAX_SEGMENT_LEN {
            return Some("a key segment may be at most 255 bytes");
        }
        if segment.starts_with(Key::RESERVED_PREFIX) {
            return Some(
                "key segments starting with '.pvtmp.' are reserved for files being written",
            );
        }
    }
    None
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Key {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for Key {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Key::new(s)
    }
}

impl TryFrom<String> for Key {
    type Error = Error;

    fn try_from(s: String) -> Result<Self> {
        Key::new(s)
    }
}

impl From<Key> for String {
    fn from(key: Key) -> String {
        key.0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn good_keys_are_accepted() {
        for good in [
            "a",
            "cameras/id-42/20261123T101500Z-42.mp4",
            ".hidden",
            "..dots",
            "a/.../b",
            "with space/ünïcode",
            "x.pvtmp.", // reserved only as a segment prefix
        ] {
            assert_eq!(Key::new(good).unwrap().as_str(), good);
        }
        let long = format!("{}/{}", "a".repeat(255), "b".repeat(255));
        assert!(Key::new(long).is_ok());
    }

    #[test]
    fn bad_keys_are_rejected_with_a_reason() {
        for bad in [
            "",
            "/abs",
            "../x",
            "a/../x",
            "a/..",
            "./a",
            "a/./b",
            "a//b",
            "a/",
            "/",
            "a\\b",
            "..\\x",
            "nul\0byte",
            "new\nline",
            ".pvtmp.123",
            "a/.pvtmp.x/b",
        ] {
            let err = Key::new(bad).unwrap_err();
            match &err {
                Error::InvalidKey { key, reason } => {
                    assert_eq!(key, bad);
                    assert!(!reason.is_empty());
                }
                other => panic!("{bad:?}: unexpected {other:?}"),
            }
            assert_eq!(err.kind(), pv_core::ErrorKind::InvalidInput);
        }
        assert!(Key::new("a".repeat(256)).is_err());
        assert!(Key::new(vec!["abc"; 300].join("/")).is_err()); // 1199 bytes
    }

    #[test]
    fn key_error_message_names_the_key_and_rule() {
        let msg = Key::new("../x").unwrap_err().to_string();
        assert_eq!(msg, "invalid storage key \"../x\": a key may not have '.' or '..' segments");
    }

    #[test]
    fn split_last_and_segments() {
        let key = Key::new("a/b/c").unwrap();
        assert_eq!(key.split_last(), ("a/b", "c"));
        assert_eq!(key.segments().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(Key::new("c").unwrap().split_last(), ("", "c"));
    }

    #[test]
    fn serde_validates() {
        let key: Key = serde_json::from_str("\"a/b\"").unwrap();
        assert_eq!(serde_json::to_string(&key).unwrap(), "\"a/b\"");
        assert!(serde_json::from_str::<Key>("\"../b\"").is_err());
    }
}
