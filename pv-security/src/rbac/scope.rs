//! What a property membership limits: which cameras ([`CameraScope`]), which alarm zones
//! ([`AlarmZones`]) and when ([`AccessSchedule`]). Each is parsed from its JSON column in
//! `user_properties`.
//!
//! Two parsers per type: `parse` validates input (the web layer calls it before saving and shows
//! the error), `from_stored` reads a stored value and *fails closed* — data that cannot be read
//! grants nothing (no cameras, no zones, never) and is logged, so a corrupted row can never
//! widen access.
//!
//! Access windows use the same rules as recording schedules: `start` inclusive, `end` exclusive,
//! minute resolution, `end` may be `24:00`, an `end` before `start` runs past midnight into the
//! next day (the window belongs to the day it starts on), `start == end` is refused. They are
//! evaluated in the property's IANA time zone by converting the UTC instant, so they follow
//! daylight-saving changes (13:00 local is 18:00 UTC in winter and 17:00 UTC in summer in New
//! York).

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde_json::Value;

use crate::{Error, Result};

/// Which cameras of a property a member may use (`user_properties.camera_scope`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraScope {
    /// Every camera of the property (the column is NULL).
    All,
    /// Only these cameras, and the cameras in these zones. Both empty: none.
    Only {
        /// Camera ids (records database).
        camera_ids: BTreeSet<i64>,
        /// Zone names, lower-cased (matched against the camera's `zone`, ignoring ASCII case).
        zones: BTreeSet<String>,
    },
}

impl CameraScope {
    /// No camera at all.
    pub fn none() -> CameraScope {
        CameraScope::Only { camera_ids: BTreeSet::new(), zones: BTreeSet::new() }
    }

    /// Parse the column: NULL for all cameras; a JSON list whose numbers are camera ids and
    /// whose strings are zone names (`[12, 15, "garage"]`); or `{"cameras": [..], "zones":
    /// [..]}`.
    pub fn parse(value: Option<&Value>) -> Result<CameraScope> {
        let bad = |why: &str| Error::InvalidInput(format!("camera scope: {why}"));
        let mut camera_ids = BTreeSet::new();
        let mut zones = BTreeSet::new();
        let mut add = |v: &Value| -> Result<()> {
            match v {
                Value::Number(n) => {
                    camera_ids
                        .insert(n.as_i64().ok_or_else(|| bad("a camera id is not an integer"))?);
                }
                Value::String(s) => {
                    zones.insert(zone_name(s).ok_or_else(|| bad("an empty zone name"))?);
                }
                _ => return Err(bad("expected camera ids (numbers) and zone names (strings)")),
            }
            Ok(())
        };
        match value {
            None | Some(Value::Null) => return Ok(CameraScope::All),
            Some(Value::Array(items)) => items.iter().try_for_each(&mut add)?,
            Some(Value::Object(map)) => {
                for (key, list) in map {
                    let Value::Array(items) = list else {
                        return Err(bad(&format!("'{key}' must be a list")));
                    };
                    match key.as_str() {
                        "cameras" if items.iter().all(Value::is_number) => {}
                        "zones" if items.iter().all(Value::is_string) => {}
                        "cameras" | "zones" => {
                            return Err(bad("cameras are numbers, zones are strings"));
                        }
                        _ => return Err(bad(&format!("unknown key '{key}'"))),
                    }
                    items.iter().try_for_each(&mut add)?;
                }
            }
            Some(_) => return Err(bad("expected a list of camera ids and zone names")),
        }
        Ok(CameraScope::Only { camera_ids, zones })
    }

    /// Read a stored value; unreadable data gives [`CameraScope::none`].
    pub fn from_stored(value: Option<&Value>) -> CameraScope {
        CameraScope::parse(value).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "unreadable camera scope: no cameras granted");
            CameraScope::none()
        })
    }

    /// Whether the camera `camera_id`, in zone `zone`, is in scope.
    pub fn allows(&self, camera_id: i64, zone: Option<&str>) -> bool {
        match self {
            CameraScope::All => true,
            CameraScope::Only { camera_ids, zones } => {
                camera_ids.contains(&camera_id)
                    || zone.and_then(zone_name).is_some_and(|z| zones.contains(&z))
            }
        }
    }

    /// Whether this is [`CameraScope::All`].
    pub fn is_all(&self) -> bool {
        matches!(self, CameraScope::All)
    }
}

/// Which alarm zones a member may control (`user_properties.authorized_zones`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlarmZones {
    /// Every zone (the stored list is empty).
    All,
    /// Only these zones, lower-cased. Empty: none (only what unreadable data becomes).
    Only(BTreeSet<String>),
}

impl AlarmZones {
    /// Parse the column: a JSON list of zone names or ids (`["perimeter", "garage", 3]`); the
    /// empty list means every zone.
    pub fn parse(value: &Value) -> Result<AlarmZones> {
        let bad = || Error::InvalidInput("authorized zones: expected a list of zone names".into());
        let Value::Array(items) = value else {
            return Err(bad());
        };
        if items.is_empty() {
            return Ok(AlarmZones::All);
        }
        let mut zones = BTreeSet::new();
        for item in items {
            let name = match item {
                Value::String(s) => zone_name(s),
                Value::Number(n) => n.as_i64().map(|n| n.to_string()),
                _ => None,
            };
            zones.insert(name.ok_or_else(bad)?);
        }
        Ok(AlarmZones::Only(zones))
    }

    /// Read a stored value; unreadable data gives no zone.
    pub fn from_stored(value: &Value) -> AlarmZones {
        AlarmZones::parse(value).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "unreadable authorized zones: no zone granted");
            AlarmZones::Only(BTreeSet::new())
        })
    }

    /// Whether `zone` may be controlled; `None` (the whole panel) only with [`AlarmZones::All`].
    pub fn allows(&self, zone: Option<&str>) -> bool {
        match self {
            AlarmZones::All => true,
            AlarmZones::Only(zones) => zone.and_then(zone_name).is_some_and(|z| zones.contains(&z)),
        }
    }
}

fn zone_name(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_ascii_lowercase())
}

/// Minutes in a day.
const DAY: u16 = 1440;

/// One weekly window: `{"days": ["tue", "thu"], "start": "13:00", "end": "16:00"}`. Without
/// `days` it applies every day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessWindow {
    /// Weekday bits, Monday = 1 … Sunday = 64.
    pub days: u8,
    /// Minutes after local midnight, inclusive (0..1440).
    pub start_minute: u16,
    /// Minutes after local midnight, exclusive (0..=1440); before `start_minute` to run past
    /// midnight.
    pub end_minute: u16,
}

impl AccessWindow {
    /// Whether the local weekday `day` at `minute` after midnight falls in this window.
    pub fn contains(&self, day: Weekday, minute: u16) -> bool {
        let on = |d: Weekday| self.days & (1 << d.num_days_from_monday()) != 0;
        if self.start_minute < self.end_minute {
            on(day) && (self.start_minute..self.end_minute).contains(&minute)
        } else {
            (on(day) && minute >= self.start_minute) || (on(day.pred()) && minute < self.end_minute)
        }
    }

    fn parse(value: &Value) -> Result<AccessWindow> {
        let bad = |why: String| Error::InvalidInput(format!("access window: {why}"));
        let Value::Object(map) = value else {
            return Err(bad(
                "expected {\"days\": [...], \"start\": \"HH:MM\", \"end\": \"HH:MM\"}".into(),
            ));
        };
        if let Some(key) = map.keys().find(|k| !matches!(k.as_str(), "days" | "start" | "end")) {
            return Err(bad(format!("unknown key '{key}'")));
        }
        let days = match map.get("days") {
            None => 0x7f,
            Some(Value::Array(list)) => {
                let mut bits = 0u8;
                for d in list {
                    let day = d
                        .as_str()
                        .and_then(|s| s.trim().parse::<Weekday>().ok())
                        .ok_or_else(|| bad(format!("{d} is not a weekday like \"tue\"")))?;
                    bits |= 1 << day.num_days_from_monday();
                }
                if bits == 0 {
                    return Err(bad("'days' is empty; leave it out for every day".into()));
                }
                bits
            }
            Some(_) => return Err(bad("'days' must be a list".into())),
        };
        let time = |key: &str| -> Result<u16> {
            let text = map
                .get(key)
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("'{key}' must be a time like \"13:00\"")))?;
            parse_hhmm(text)
                .ok_or_else(|| bad(format!("'{text}' is not a time from 00:00 to 24:00")))
        };
        let (start_minute, end_minute) = (time("start")?, time("end")?);
        if start_minute >= DAY {
            return Err(bad("'start' must be before 24:00".into()));
        }
        if start_minute == end_minute {
            return Err(bad("'start' equals 'end'; use 00:00 to 24:00 for a whole day".into()));
        }
        Ok(AccessWindow { days, start_minute, end_minute })
    }
}

fn parse_hhmm(text: &str) -> Option<u16> {
    let (h, m) = text.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    let minute = h.checked_mul(60)?.checked_add(m)?;
    (m < 60 && minute <= DAY).then_some(minute)
}

/// When a member has access to a property (`user_properties.access_windows`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessSchedule {
    /// At any time (the stored list is empty).
    Always,
    /// Only inside one of these windows, in the property's time zone. An empty list never
    /// matches (what unreadable data becomes).
    Windows(Vec<AccessWindow>),
}

impl AccessSchedule {
    /// Parse the column: a JSON list of windows; the empty list means at any time.
    pub fn parse(value: &Value) -> Result<AccessSchedule> {
        let Value::Array(items) = value else {
            return Err(Error::InvalidInput("access windows: expected a list".into()));
        };
        if items.is_empty() {
            return Ok(AccessSchedule::Always);
        }
        items.iter().map(AccessWindow::parse).collect::<Result<_>>().map(AccessSchedule::Windows)
    }

    /// Read a stored value; unreadable data gives a schedule that never matches.
    pub fn from_stored(value: &Value) -> AccessSchedule {
        AccessSchedule::parse(value).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "unreadable access windows: no access granted");
            AccessSchedule::Windows(Vec::new())
        })
    }

    /// Whether `now` falls in the schedule, in time zone `tz`. Without a time zone (the
    /// property's name is not an IANA zone) only [`AccessSchedule::Always`] matches.
    pub fn is_open(&self, tz: Option<Tz>, now: DateTime<Utc>) -> bool {
        match self {
            AccessSchedule::Always => true,
            AccessSchedule::Windows(windows) => {
                let Some(tz) = tz else {
                    return false;
                };
                let local = now.with_timezone(&tz);
                // `hour() * 60 + minute()` is at most 1439.
                let minute = (local.hour() * 60 + local.minute()) as u16;
                windows.iter().any(|w| w.contains(local.weekday(), minute))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    #[test]
    fn camera_scope_forms() {
        assert_eq!(CameraScope::parse(None).unwrap(), CameraScope::All);
        assert_eq!(CameraScope::parse(Some(&Value::Null)).unwrap(), CameraScope::All);
        let s = CameraScope::parse(Some(&json!([12, " Garage "]))).unwrap();
        assert!(s.allows(12, None));
        assert!(s.allows(99, Some("garage")) && s.allows(99, Some("GARAGE")));
        assert!(!s.allows(99, Some("kitchen")) && !s.allows(99, None));
        let o = CameraScope::parse(Some(&json!({"cameras": [12], "zones": ["garage"]}))).unwrap();
        assert_eq!(o, s);
        for bad in [json!("x"), json!([1.5]), json!([true]), json!({"floors": []}), json!([""])] {
            assert!(CameraScope::parse(Some(&bad)).is_err(), "{bad}");
            assert_eq!(CameraScope::from_stored(Some(&bad)), CameraScope::none());
        }
        assert!(!CameraScope::none().allows(1, Some("garage")));
    }

    #[test]
    fn alarm_zones() {
        assert_eq!(AlarmZones::parse(&json!([])).unwrap(), AlarmZones::All);
        assert!(AlarmZones::All.allows(None));
        let z = AlarmZones::parse(&json!(["Perimeter", 3])).unwrap();
        assert!(z.allows(Some("perimeter")) && z.allows(Some("3")));
        assert!(!z.allows(Some("interior")) && !z.allows(None));
        assert!(!AlarmZones::from_stored(&json!({})).allows(Some("perimeter")));
    }

    #[test]
    fn windows_parse_and_refuse() {
        assert_eq!(AccessSchedule::parse(&json!([])).unwrap(), AccessSchedule::Always);
        let s = AccessSchedule::parse(
            &json!([{"days": ["tue", "Thursday"], "start": "13:00", "end": "16:00"}]),
        )
        .unwrap();
        assert_eq!(
            s,
            AccessSchedule::Windows(vec![AccessWindow {
                days: 2 | 8,
                start_minute: 780,
                end_minute: 960
            }])
        );
        let all_day = AccessSchedule::parse(&json!([{"start": "00:00", "end": "24:00"}])).unwrap();
        assert_eq!(
            all_day,
            AccessSchedule::Windows(vec![AccessWindow {
                days: 0x7f,
                start_minute: 0,
                end_minute: 1440
            }])
        );
        for bad in [
            json!({}),
            json!([{"days": [], "start": "13:00", "end": "16:00"}]),
            json!([{"days": ["tue"], "start": "13:00", "end": "13:00"}]),
            json!([{"days": ["tue"], "start": "24:00", "end": "01:00"}]),
            json!([{"days": ["tue"], "start": "13:60", "end": "16:00"}]),
            json!([{"days": ["tue"], "start": "1300", "end": "16:00"}]),
            json!([{"days": ["someday"], "start": "13:00", "end": "16:00"}]),
            json!([{"days": ["tue"], "start": "13:00", "end": "16:00", "tz": "UTC"}]),
        ] {
            assert!(AccessSchedule::parse(&bad).is_err(), "{bad}");
            assert_eq!(AccessSchedule::from_stored(&bad), AccessSchedule::Windows(vec![]));
        }
        assert!(!AccessSchedule::Windows(vec![]).is_open(Some(Tz::UTC), Utc::now()));
    }

    #[test]
    fn overnight_window_belongs_to_its_start_day() {
        // Friday 22:00 to Saturday 06:00.
        let s =
            AccessSchedule::parse(&json!([{"days": ["fri"], "start": "22:00", "end": "06:00"}]))
                .unwrap();
        let at = |d, h, m| Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap();
        // 2026-11-20 is a Friday.
        assert!(!s.is_open(Some(Tz::UTC), at(20, 21, 59)));
        assert!(s.is_open(Some(Tz::UTC), at(20, 22, 0)));
        assert!(s.is_open(Some(Tz::UTC), at(21, 5, 59)));
        assert!(!s.is_open(Some(Tz::UTC), at(21, 6, 0)));
        assert!(!s.is_open(Some(Tz::UTC), at(21, 22, 30)), "Saturday evening is not in it");
        assert!(!s.is_open(None, at(20, 23, 0)), "no time zone: closed");
        assert!(AccessSchedule::Always.is_open(None, at(20, 23, 0)));
    }
}
