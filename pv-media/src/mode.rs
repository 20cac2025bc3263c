//! [`RecordingMode`]: whether a camera records all the time, only around motion, or not at all.
//!
//! The text form (`continuous`, `motion`, `off`) is what the `cameras.recording_mode` and
//! `recording_schedules.mode` columns, the configuration and the API use; parsing is strict
//! (lowercase only) so every layer agrees on one spelling.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// How a camera records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingMode {
    /// Record every frame.
    Continuous,
    /// Record around motion (with pre- and post-roll).
    Motion,
    /// Do not record.
    Off,
}

impl RecordingMode {
    /// Every mode, in order from most to least footage kept.
    pub const ALL: [RecordingMode; 3] =
        [RecordingMode::Continuous, RecordingMode::Motion, RecordingMode::Off];

    /// The lowercase text form.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingMode::Continuous => "continuous",
            RecordingMode::Motion => "motion",
            RecordingMode::Off => "off",
        }
    }

    /// How much footage the mode keeps: `Continuous` > `Motion` > `Off`. Used to break ties
    /// between overlapping schedule windows in favour of keeping footage.
    pub fn retention_rank(self) -> u8 {
        match self {
            RecordingMode::Continuous => 2,
            RecordingMode::Motion => 1,
            RecordingMode::Off => 0,
        }
    }
}

impl fmt::Display for RecordingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RecordingMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        RecordingMode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| Error::InvalidRecordingMode(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn text_form_round_trips() {
        for mode in RecordingMode::ALL {
            assert_eq!(mode.to_string().parse::<RecordingMode>().unwrap(), mode);
        }
        assert_eq!(RecordingMode::Continuous.to_string(), "continuous");
        assert_eq!("motion".parse::<RecordingMode>().unwrap(), RecordingMode::Motion);
        assert_eq!("off".parse::<RecordingMode>().unwrap(), RecordingMode::Off);
    }

    #[test]
    fn parsing_is_strict() {
        for bad in ["", "Motion", "OFF", " off", "always", "continous"] {
            let err = bad.parse::<RecordingMode>().unwrap_err();
            assert!(matches!(err, Error::InvalidRecordingMode(ref s) if s == bad), "{bad:?}");
            assert_eq!(err.kind(), pv_core::ErrorKind::InvalidInput);
        }
    }

    #[test]
    fn serde_uses_the_same_lowercase_form() {
        assert_eq!(serde_json::to_string(&RecordingMode::Motion).unwrap(), "\"motion\"");
        let mode: RecordingMode = serde_json::from_str("\"continuous\"").unwrap();
        assert_eq!(mode, RecordingMode::Continuous);
        assert!(serde_json::from_str::<RecordingMode>("\"Continuous\"").is_err());
    }
}
