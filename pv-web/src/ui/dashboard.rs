//! What the overview page tells an owner: each camera and its state (recording, failing and
//! why, off), and the disk outlook: how much footage there is, how much room is left and how
//! many days of footage fit at the rate footage was written in the last hour. The footage total
//! reads every segment row, so it is counted at most once a minute.

use std::path::Path;

use chrono::{DateTime, Utc};
use pv_core::ids::CameraId;
use pv_core::{cameras, recordings};
use pv_media::RecordingMode;
use pv_security::rbac::{self, Permission};

use crate::auth::Principal;
use crate::state::AppState;

/// The window over which the write rate is measured.
const RATE_WINDOW_SECONDS: i64 = 3600;

/// One camera on the overview.
#[derive(Debug, Clone)]
pub struct CameraRow {
    /// The camera's id (for links).
    pub id: i64,
    /// Its name.
    pub name: String,
    /// In words: "Recording", "Reconnecting", "Error", "Off", …
    pub state: &'static str,
    /// The badge class: `ok`, `warn`, `bad` or `off`.
    pub badge: &'static str,
    /// Why it is not recording, in words, when there is a reason.
    pub reason: Option<String>,
    /// End of its newest footage (RFC 3339), when it has any.
    pub latest: Option<String>,
}

/// The disk outlook.
#[derive(Debug, Clone, Default)]
pub struct DiskOutlook {
    /// The recordings directory (the data directory).
    pub dir: String,
    /// Bytes of indexed footage.
    pub footage_bytes: u64,
    /// Free bytes on its file system (for unprivileged users), when known.
    pub free_bytes: Option<u64>,
    /// Size of its file system, when known.
    pub total_bytes: Option<u64>,
    /// Bytes of footage written per day at the last hour's rate; None: nothing written lately.
    pub bytes_per_day: Option<u64>,
    /// Days of footage that fit (footage kept plus free space above the disk guard's reserve).
    pub days_fit: Option<f64>,
    /// `recording.retention_days` (0: kept until space is needed).
    pub retention_days: u32,
    /// `recording.min_free_bytes`.
    pub reserve_bytes: u64,
}

impl DiskOutlook {
    /// Percentage of the file system in use (0–100), when known.
    pub fn used_percent(&self) -> Option<u8> {
        let (free, total) = (self.free_bytes?, self.total_bytes?);
        if total == 0 {
            return None;
        }
        Some((100 - (free.saturating_mul(100) / total).min(100)) as u8)
    }
}

/// The cameras the caller may see, with their recorder state.
pub async fn camera_rows(state: &AppState, principal: &Principal) -> Vec<CameraRow> {
    let now = state.clock().now();
    let Ok(all) = cameras::list(&state.dbs().records).await else { return Vec::new() };
    let mut rows = Vec::new();
    for cam in all {
        let resource = crate::rest::cameras::resource(&cam);
        if rbac::authorize(&principal.subject, Permission::CamerasView, &resource, now).is_err() {
            continue;
        }
        let latest = recordings::newest_segment(&state.dbs().records, CameraId(cam.id))
            .await
            .ok()
            .flatten()
            .map(|s| s.ended_at.to_rfc3339());
        let (label, badge, reason) = if !cam.enabled {
            ("Off", "off", Some("This camera is disabled.".to_string()))
        } else if !state.config().recording.enabled {
            ("Not recording", "off", Some("Recording is turned off for this server.".into()))
        } else {
            let mode = state.nvr().mode_now(&cam).await.ok().map(|m| m.mode);
            match state.nvr().status(CameraId(cam.id)).await {
                None if mode == Some(RecordingMode::Off) => {
                    ("Not recording", "off", Some("Its schedule says not to record now.".into()))
                }
                None => ("Offline", "bad", Some("No recorder is running for it.".into())),
                Some(s) => match s.state.as_str() {
                    "streaming" if mode == Some(RecordingMode::Motion) => {
                        ("Recording on motion", "ok", None)
                    }
                    "streaming" => ("Recording", "ok", None),
                    "new" => ("Starting", "warn", None),
                    "reconnecting" => ("Reconnecting", "warn", s.reason),
                    "disabled" => ("Off", "off", None),
                    _ => {
                        ("Error", "bad", s.reason.or_else(|| Some("The recorder stopped.".into())))
                    }
                },
            }
        };
        rows.push(CameraRow { id: cam.id, name: cam.name, state: label, badge, reason, latest });
    }
    rows
}

/// How long a count of the footage bytes is reused: counting reads every segment row.
const FOOTAGE_COUNT_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// The last count of footage bytes per recordings directory, and when it was made.
static FOOTAGE_COUNTS: std::sync::Mutex<Vec<(std::path::PathBuf, std::time::Instant, u64)>> =
    std::sync::Mutex::new(Vec::new());

/// Bytes of indexed footage of every camera, counted at most once a minute per directory.
async fn footage_bytes(state: &AppState, dir: &Path) -> u64 {
    let now = std::time::Instant::now();
    if let Ok(counts) = FOOTAGE_COUNTS.lock()
        && let Some((_, at, bytes)) = counts.iter().find(|(d, _, _)| d == dir)
        && now.duration_since(*at) < FOOTAGE_COUNT_TTL
    {
        return *bytes;
    }
    let mut total: u64 = 0;
    if let Ok(all) = cameras::list(&state.dbs().records).await {
        for cam in all {
            total += recordings::camera_bytes(&state.dbs().records, CameraId(cam.id))
                .await
                .map(|b| u64::try_from(b).unwrap_or(0))
                .unwrap_or(0);
        }
    }
    if let Ok(mut counts) = FOOTAGE_COUNTS.lock() {
        counts.retain(|(d, _, _)| d != dir);
        counts.push((dir.to_path_buf(), now, total));
    }
    total
}

/// The disk outlook of the recordings directory.
pub async fn disk_outlook(state: &AppState) -> DiskOutlook {
    let config = state.config();
    let dir = state.nvr().data_dir().to_path_buf();
    let now = state.clock().now();
    let from = now - chrono::Duration::seconds(RATE_WINDOW_SECONDS);
    let footage = footage_bytes(state, &dir).await;
    let mut window_bytes: u64 = 0;
    let mut earliest: Option<DateTime<Utc>> = None;
    if let Ok(all) = cameras::list(&state.dbs().records).await {
        for cam in all {
            let id = CameraId(cam.id);
            for seg in recordings::segments_in_range(&state.dbs().records, id, from, now)
                .await
                .unwrap_or_default()
            {
                if seg.ended_at < from {
                    continue;
                }
                window_bytes += u64::try_from(seg.size_bytes).unwrap_or(0);
                let start = seg.started_at.max(from);
                earliest = Some(earliest.map_or(start, |e| e.min(start)));
            }
        }
    }
    let (free_bytes, total_bytes) = fs_space(&dir).unzip();
    let bytes_per_day = earliest.and_then(|e| {
        let seconds = (now - e).num_seconds().max(60) as u64;
        (window_bytes > 0).then(|| window_bytes.saturating_mul(86_400) / seconds)
    });
    let reserve = config.recording.min_free_bytes;
    let days_fit = match (bytes_per_day, free_bytes) {
        (Some(rate), Some(free)) if rate > 0 => {
            Some((footage + free.saturating_sub(reserve)) as f64 / rate as f64)
        }
        _ => None,
    };
    DiskOutlook {
        dir: std::fs::canonicalize(&dir).unwrap_or(dir).display().to_string(),
        footage_bytes: footage,
        free_bytes,
        total_bytes,
        bytes_per_day,
        days_fit,
        retention_days: config.recording.retention_days,
        reserve_bytes: reserve,
    }
}

/// Free (for unprivileged users) and total bytes of the file system holding `dir`.
fn fs_space(dir: &Path) -> Option<(u64, u64)> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some((st.f_bavail.saturating_mul(st.f_frsize), st.f_blocks.saturating_mul(st.f_frsize)))
}

/// `1.4 GiB`, `512 MiB`, `3 KiB`, `12 bytes`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// "about 24 days", "about 5 hours", "more than 10 years".
pub fn human_days(days: f64) -> String {
    if days >= 3650.0 {
        "more than 10 years".into()
    } else if days >= 2.0 {
        format!("about {} days", days.round() as u64)
    } else if days * 24.0 >= 2.0 {
        format!("about {} hours", (days * 24.0).round() as u64)
    } else {
        "less than 2 hours".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_naturally() {
        assert_eq!(human_bytes(12), "12 bytes");
        assert_eq!(human_bytes(3 * 1024), "3.0 KiB");
        assert_eq!(human_bytes(1536 * 1024 * 1024), "1.5 GiB");
        assert_eq!(human_bytes(500 * 1024 * 1024 * 1024), "500 GiB");
        assert_eq!(human_days(24.4), "about 24 days");
        assert_eq!(human_days(0.25), "about 6 hours");
        assert_eq!(human_days(0.05), "less than 2 hours");
        assert_eq!(human_days(5000.0), "more than 10 years");
    }

    #[test]
    fn used_percent_is_bounded() {
        let d = DiskOutlook { free_bytes: Some(25), total_bytes: Some(100), ..Default::default() };
        assert_eq!(d.used_percent(), Some(75));
        let d = DiskOutlook { free_bytes: Some(0), total_bytes: Some(0), ..Default::default() };
        assert_eq!(d.used_percent(), None);
    }
}
