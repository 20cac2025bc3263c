//! Schedules: what a camera records at this moment, in its time zone, and the motion zones
//! its detector uses.
//!
//! Owns no mutable state and no lock: every answer is read from the database and the clock
//! (the schedule loop in [`super::Nvr::run_background`] asks again every 20 s).
//!
//! Invariants:
//! - The mode now is the highest-priority weekly window active at this moment (ties keep more
//!   footage: continuous over motion over off), each window in its own time zone, else the
//!   camera's; outside every window, the camera's own mode.
//! - A camera's time zone is its own, else its property's, else UTC.
//! - A malformed stored window or zone is skipped, never an error for the whole camera.

use std::sync::Arc;

use pv_core::Clock;
use pv_core::cameras;
use pv_core::db::Databases;
use pv_core::db::records::{camera, motion_zone, recording_schedule};
use pv_media::RecordingMode;
use pv_media::motion::ZoneSpec;
use pv_media::schedule::ScheduleEntry;

/// Reads schedules and zones (see the module documentation).
pub(super) struct Schedules {
    dbs: Databases,
    clock: Arc<dyn Clock>,
}

/// What a camera records at this moment, and its local time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeNow {
    /// What it records now.
    pub mode: RecordingMode,
    /// A schedule window decided it (else the camera's own mode).
    pub from_schedule: bool,
    /// The camera's IANA time zone.
    pub timezone: String,
    /// The camera's local time now.
    pub local_time: chrono::NaiveDateTime,
}

impl Schedules {
    pub(super) fn new(dbs: Databases, clock: Arc<dyn Clock>) -> Self {
        Self { dbs, clock }
    }

    /// The camera's time zone: its own, else its property's, else UTC.
    pub(super) async fn timezone(&self, cam: &camera::Model) -> chrono_tz::Tz {
        if let Some(tz) = cam.timezone.as_deref().and_then(|t| t.parse().ok()) {
            return tz;
        }
        if let Some(pid) = cam.property_id {
            use sea_orm::EntityTrait;
            if let Ok(Some(p)) =
                pv_core::db::users::property::Entity::find_by_id(pid).one(&self.dbs.users).await
                && let Ok(tz) = p.timezone.parse()
            {
                return tz;
            }
        }
        chrono_tz::UTC
    }

    /// What the camera records now: the highest-priority schedule window active at this
    /// moment (each window in its own time zone, else the camera's), else its own mode.
    pub(super) async fn mode_now(&self, cam: &camera::Model) -> pv_core::Result<ModeNow> {
        let tz = self.timezone(cam).await;
        let now = self.clock.now();
        let windows = cameras::schedules(&self.dbs.records, cam.id).await?;
        let active = windows
            .iter()
            .filter_map(|w| {
                let entry = schedule_entry(w).ok()?;
                let wtz: chrono_tz::Tz =
                    w.timezone.as_deref().and_then(|t| t.parse().ok()).unwrap_or(tz);
                pv_media::schedule::is_active(&entry, now.with_timezone(&wtz).naive_local())
                    .then_some(entry)
            })
            .max_by_key(|e| (e.priority(), e.mode().retention_rank()));
        Ok(ModeNow {
            mode: active.map_or_else(|| own_mode(cam), |e| e.mode()),
            from_schedule: active.is_some(),
            timezone: tz.name().to_owned(),
            local_time: now.with_timezone(&tz).naive_local(),
        })
    }

    /// The camera's enabled motion zones as the detector's (none when they cannot be read:
    /// the whole frame).
    pub(super) async fn zones(&self, cam: &camera::Model) -> Vec<ZoneSpec> {
        match cameras::motion_zones(&self.dbs.records, cam.id).await {
            Ok(rows) => rows.iter().filter_map(zone_spec).collect(),
            Err(e) => {
                tracing::error!(camera = cam.id, error = %e, "cannot read the camera's motion zones");
                Vec::new()
            }
        }
    }
}

/// The camera's own recording mode (outside every schedule window). The column is checked on
/// every write; a value that still does not parse records continuously, as before the mode
/// was typed.
pub(super) fn own_mode(cam: &camera::Model) -> RecordingMode {
    cam.recording_mode.parse().unwrap_or_else(|e| {
        tracing::warn!(camera = cam.id, error = %e, "unknown stored recording mode; recording continuously");
        RecordingMode::Continuous
    })
}

/// A stored motion zone as the detector's zone (None: a malformed polygon, skipped).
pub fn zone_spec(z: &motion_zone::Model) -> Option<ZoneSpec> {
    let polygon = parse_polygon(&z.polygon)?;
    Some(ZoneSpec {
        id: Some(z.id),
        polygon,
        sensitivity: z.sensitivity.clamp(0.0, 1.0),
        is_mask: z.is_mask,
    })
}

/// `[[x, y], …]` with at least three corners, each in 0..=1.
pub fn parse_polygon(v: &serde_json::Value) -> Option<Vec<(f64, f64)>> {
    let points: Vec<(f64, f64)> = v
        .as_array()?
        .iter()
        .map(|p| {
            let p = p.as_array()?;
            let (x, y) = (p.first()?.as_f64()?, p.get(1)?.as_f64()?);
            (p.len() == 2 && (0.0..=1.0).contains(&x) && (0.0..=1.0).contains(&y)).then_some((x, y))
        })
        .collect::<Option<_>>()?;
    (points.len() >= 3).then_some(points)
}

/// A stored window as a checked schedule entry.
pub fn schedule_entry(w: &recording_schedule::Model) -> pv_media::Result<ScheduleEntry> {
    let mode: RecordingMode = w.mode.parse()?;
    let days = u8::try_from(w.days_of_week).unwrap_or(0);
    let start = u16::try_from(w.start_minute).unwrap_or(u16::MAX);
    let end = u16::try_from(w.end_minute).unwrap_or(u16::MAX);
    ScheduleEntry::new(mode, days, start, end, w.priority)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn polygons_need_three_corners_inside_the_frame() {
        let ok = serde_json::json!([[0.0, 0.0], [1.0, 0.0], [0.5, 1.0]]);
        assert_eq!(parse_polygon(&ok).unwrap(), vec![(0.0, 0.0), (1.0, 0.0), (0.5, 1.0)]);
        for bad in [
            serde_json::json!([[0.0, 0.0], [1.0, 0.0]]),
            serde_json::json!([[0.0, 0.0], [1.5, 0.0], [0.5, 1.0]]),
            serde_json::json!([[0.0, 0.0, 0.0], [1.0, 0.0], [0.5, 1.0]]),
            serde_json::json!({ "x": 1 }),
        ] {
            assert_eq!(parse_polygon(&bad), None, "{bad}");
        }
    }
}
