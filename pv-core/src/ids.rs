//! Newtype identifiers, so a camera id can never be passed where a user id is expected.
//!
//! Database rows use `i64` primary keys; these types wrap them at the API boundary of every
//! crate. They serialise as plain integers.

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl From<i64> for $name {
            fn from(v: i64) -> Self {
                Self(v)
            }
        }

        impl From<$name> for i64 {
            fn from(v: $name) -> i64 {
                v.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }
    };
}

id_type!(
    /// A user account (users database).
    UserId
);
id_type!(
    /// A property (a site: a house, an office) (users database).
    PropertyId
);
id_type!(
    /// A role (users database).
    RoleId
);
id_type!(
    /// An audit event (users database).
    AuditEventId
);
id_type!(
    /// A camera (records database).
    CameraId
);
id_type!(
    /// A recorded segment (records database).
    SegmentId
);
id_type!(
    /// A configured storage module instance (records database).
    StorageModuleId
);
id_type!(
    /// An enrolled face identity (faces database).
    IdentityId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_strings_and_json() {
        let id: CameraId = "42".parse().unwrap();
        assert_eq!(id, CameraId(42));
        assert_eq!(id.to_string(), "42");
        assert_eq!(serde_json::to_string(&id).unwrap(), "42");
        let back: CameraId = serde_json::from_str("42").unwrap();
        assert_eq!(i64::from(back), 42);
        assert!("x".parse::<UserId>().is_err());
    }
}
