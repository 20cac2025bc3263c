//! Weekly recording schedules: windows of local time in which a camera records in a given mode.
//!
//! An entry applies on a set of weekdays (bitmask, Monday = 1, Tuesday = 2, … Sunday = 64) from
//! `start_minute` (inclusive) to `end_minute` (exclusive), in minutes after local midnight.
//! `end_minute` may be 1440 (the end of the day), so `0..1440` is a whole day. A window whose
//! end is before its start runs past midnight into the next day: a Monday `22:00–06:00` entry is
//! active Monday 22:00 to Tuesday 06:00, and on Monday before 06:00 only if Sunday is set too. An
//! empty window (`start == end`) is rejected because it is ambiguous (nothing, or all day?).
//!
//! Callers pass local time (the schedule's or the camera's time zone, converted with the
//! [`Clock`](pv_core::Clock)'s "now"); this module does no time-zone conversion. Resolution is
//! one minute: seconds are ignored. Entries that are disabled should not be passed in.
//!
//! When several entries are active [`mode_at`] picks the highest `priority`; on a tie the mode
//! that keeps more footage wins (`continuous` > `motion` > `off`), since losing footage is worse
//! than keeping too much. Outside all windows it returns `None` and the camera's own
//! `recording_mode` applies.

use chrono::{Datelike, NaiveDateTime, Timelike, Weekday};

use crate::{Error, RecordingMode, Result};

/// Minutes in a day; the largest valid `end_minute`.
pub const MINUTES_PER_DAY: u16 = 1440;

/// All seven weekday bits (Monday = 1 … Sunday = 64).
pub const ALL_DAYS: u8 = 0x7f;

/// The bit of `day` in a `days_of_week` mask (Monday = 1 … Sunday = 64).
pub fn day_bit(day: Weekday) -> u8 {
    1 << day.num_days_from_monday()
}

/// One validated weekly schedule window. Build it with [`ScheduleEntry::new`] or deserialize it
/// (deserializing validates too, and rejects unknown fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "RawEntry")]
pub struct ScheduleEntry {
    mode: RecordingMode,
    days_of_week: u8,
    start_minute: u16,
    end_minute: u16,
    priority: i32,
}

impl ScheduleEntry {
    /// A window recording in `mode` on `days_of_week` (1..=127) from `start_minute` (0..1440) to
    /// `end_minute` (0..=1440, before `start_minute` to run past midnight, never equal to it).
    pub fn new(
        mode: RecordingMode,
        days_of_week: u8,
        start_minute: u16,
        end_minute: u16,
        priority: i32,
    ) -> Result<Self> {
        if days_of_week == 0 || days_of_week > ALL_DAYS {
            return Err(Error::InvalidSchedule(format!(
                "days_of_week {days_of_week} must set at least one of the bits Monday = 1 … Sunday = 64 and no others"
            )));
        }
        if start_minute >= MINUTES_PER_DAY {
            return Err(Error::InvalidSchedule(format!(
                "start_minute {start_minute} must be 0..1440"
            )));
        }
        if end_minute > MINUTES_PER_DAY {
            return Err(Error::InvalidSchedule(format!(
                "end_minute {end_minute} must be 0..=1440"
            )));
        }
        if start_minute == end_minute {
            return Err(Error::InvalidSchedule(format!(
                "start_minute and end_minute are both {start_minute}; use 0 and 1440 for a whole day"
            )));
        }
        Ok(Self { mode, days_of_week, start_minute, end_minute, priority })
    }

    /// The mode recorded while the window is active.
    pub fn mode(&self) -> RecordingMode {
        self.mode
    }

    /// The weekdays the window starts on (Monday = 1 … Sunday = 64).
    pub fn days_of_week(&self) -> u8 {
        self.days_of_week
    }

    /// Window start, minutes after local midnight (inclusive).
    pub fn start_minute(&self) -> u16 {
        self.start_minute
    }

    /// Window end, minutes after local midnight (exclusive); before the start: the next day.
    pub fn end_minute(&self) -> u16 {
        self.end_minute
    }

    /// Higher wins when windows overlap.
    pub fn priority(&self) -> i32 {
        self.priority
    }

    /// Whether the window runs past midnight into the next day.
    pub fn wraps_midnight(&self) -> bool {
        self.end_minute < self.start_minute
    }
}

/// The serialized form, validated into a [`ScheduleEntry`].
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    mode: RecordingMode,
    days_of_week: u8,
    start_minute: u16,
    end_minute: u16,
    #[serde(default)]
    priority: i32,
}

impl TryFrom<RawEntry> for ScheduleEntry {
    type Error = Error;

    fn try_from(raw: RawEntry) -> Result<Self> {
        ScheduleEntry::new(
            raw.mode,
            raw.days_of_week,
            raw.start_minute,
            raw.end_minute,
            raw.priority,
        )
    }
}

/// Whether `entry` is active at the local time `local` (minute resolution).
pub fn is_active(entry: &ScheduleEntry, local: NaiveDateTime) -> bool {
    // hour() < 24 and minute() < 60, so this is < 1440 and fits.
    let minute = (local.hour() * 60 + local.minute()) as u16;
    let today = entry.days_of_week & day_bit(local.weekday()) != 0;
    if entry.wraps_midnight() {
        let yesterday = entry.days_of_week & day_bit(local.weekday().pred()) != 0;
        (today && minute >= entry.start_minute) || (yesterday && minute < entry.end_minute)
    } else {
        today && entry.start_minute <= minute && minute < entry.end_minute
    }
}

/// The mode the schedule asks for at local time `local`: the active entry with the highest
/// priority (ties go to the mode keeping more footage), or `None` when no entry is active.
pub fn mode_at(entries: &[ScheduleEntry], local: NaiveDateTime) -> Option<RecordingMode> {
    entries
        .iter()
        .filter(|e| is_active(e, local))
        .max_by_key(|e| (e.priority, e.mode.retention_rank()))
        .map(|e| e.mode)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use chrono::NaiveDate;

    use super::*;
    use RecordingMode::{Continuous, Motion, Off};

    const MON: u8 = 1;
    const TUE: u8 = 2;
    const SAT: u8 = 32;
    const SUN: u8 = 64;

    /// 2026-11-23 is a Monday; `day` 0 = that Monday, 6 = the following Sunday, 7 = next Monday.
    fn at(day: u32, hour: u32, minute: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 23 + day).unwrap().and_hms_opt(hour, minute, 0).unwrap()
    }

    fn entry(mode: RecordingMode, days: u8, start: u16, end: u16, priority: i32) -> ScheduleEntry {
        ScheduleEntry::new(mode, days, start, end, priority).unwrap()
    }

    #[test]
    fn test_dates_are_the_weekdays_assumed() {
        assert_eq!(at(0, 0, 0).weekday(), Weekday::Mon);
        assert_eq!(at(6, 0, 0).weekday(), Weekday::Sun);
        assert_eq!(day_bit(Weekday::Mon), MON);
        assert_eq!(day_bit(Weekday::Sun), SUN);
    }

    #[test]
    fn same_day_window_is_start_inclusive_end_exclusive() {
        let e = entry(Continuous, MON | TUE, 9 * 60, 17 * 60, 0);
        assert!(!is_active(&e, at(0, 8, 59)));
        assert!(is_active(&e, at(0, 9, 0)));
        assert!(is_active(&e, at(1, 16, 59)));
        assert!(is_active(&e, at(1, 16, 59) + chrono::Duration::seconds(59)));
        assert!(!is_active(&e, at(1, 17, 0)));
        assert!(!is_active(&e, at(2, 12, 0)), "Wednesday is not set");
        assert!(!e.wraps_midnight());
    }

    #[test]
    fn wrapping_window_runs_into_the_next_day() {
        let e = entry(Motion, MON, 22 * 60, 6 * 60, 0);
        assert!(e.wraps_midnight());
        assert!(!is_active(&e, at(0, 21, 59)));
        assert!(is_active(&e, at(0, 22, 0)));
        assert!(is_active(&e, at(0, 23, 59)));
        assert!(is_active(&e, at(1, 0, 0)), "Tuesday after midnight belongs to Monday's window");
        assert!(is_active(&e, at(1, 5, 59)));
        assert!(!is_active(&e, at(1, 6, 0)));
        assert!(!is_active(&e, at(0, 5, 0)), "Monday morning would need Sunday's window");
        assert!(!is_active(&e, at(1, 22, 30)), "Tuesday evening is not set");
    }

    #[test]
    fn wrapping_from_sunday_reaches_monday() {
        let e = entry(Continuous, SUN, 23 * 60, 60, 0);
        assert!(is_active(&e, at(6, 23, 30)));
        assert!(is_active(&e, at(7, 0, 30)));
        assert!(is_active(&e, at(0, 0, 30)), "the Monday before is after the Sunday before it");
        assert!(!is_active(&e, at(7, 1, 0)));
        assert!(!is_active(&e, at(5, 23, 30)), "Saturday is not set");
    }

    #[test]
    fn whole_day_and_until_midnight_windows() {
        let all_day = entry(Continuous, SAT, 0, MINUTES_PER_DAY, 0);
        assert!(is_active(&all_day, at(5, 0, 0)));
        assert!(is_active(&all_day, at(5, 23, 59)));
        assert!(!is_active(&all_day, at(6, 0, 0)));

        // End 0 is "until midnight": it wraps, but covers no minute of the next day.
        let evening = entry(Motion, SAT, 18 * 60, 0, 0);
        assert!(is_active(&evening, at(5, 23, 59)));
        assert!(!is_active(&evening, at(6, 0, 0)));
    }

    #[test]
    fn invalid_entries_are_rejected() {
        for (days, start, end) in [
            (0, 0, 60),
            (128, 0, 60),
            (255, 0, 60),
            (MON, 1440, 60),
            (MON, 0, 1441),
            (MON, 600, 600),
            (MON, 0, 0),
        ] {
            let err = ScheduleEntry::new(Motion, days, start, end, 0).unwrap_err();
            assert!(matches!(err, Error::InvalidSchedule(_)), "{days} {start} {end}");
            assert_eq!(err.kind(), pv_core::ErrorKind::InvalidInput);
        }
        assert!(ScheduleEntry::new(Motion, ALL_DAYS, 1439, 1440, 0).is_ok());
    }

    #[test]
    fn deserializing_validates() {
        let e: ScheduleEntry = serde_json::from_str(
            r#"{"mode":"motion","days_of_week":3,"start_minute":1320,"end_minute":360}"#,
        )
        .unwrap();
        assert_eq!(e, entry(Motion, MON | TUE, 1320, 360, 0));
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<ScheduleEntry>(&json).unwrap(), e);

        for bad in [
            r#"{"mode":"motion","days_of_week":0,"start_minute":0,"end_minute":60}"#,
            r#"{"mode":"motion","days_of_week":1,"start_minute":60,"end_minute":60}"#,
            r#"{"mode":"motion","days_of_week":1,"start_minute":0,"end_minute":60,"tz":"UTC"}"#,
            r#"{"mode":"sometimes","days_of_week":1,"start_minute":0,"end_minute":60}"#,
        ] {
            assert!(serde_json::from_str::<ScheduleEntry>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn highest_priority_active_entry_wins() {
        let entries = [
            entry(Motion, ALL_DAYS, 0, MINUTES_PER_DAY, 0),
            entry(Continuous, MON, 9 * 60, 17 * 60, 10),
            entry(Off, MON, 12 * 60, 13 * 60, 20),
        ];
        assert_eq!(mode_at(&entries, at(0, 8, 0)), Some(Motion));
        assert_eq!(mode_at(&entries, at(0, 9, 0)), Some(Continuous));
        assert_eq!(mode_at(&entries, at(0, 12, 30)), Some(Off));
        assert_eq!(mode_at(&entries, at(0, 13, 0)), Some(Continuous));
        assert_eq!(mode_at(&entries, at(1, 12, 30)), Some(Motion));
    }

    #[test]
    fn ties_keep_more_footage_and_no_window_means_none() {
        let entries = [
            entry(Off, MON, 0, 600, 5),
            entry(Continuous, MON, 0, 600, 5),
            entry(Motion, MON, 0, 600, 5),
        ];
        assert_eq!(mode_at(&entries, at(0, 1, 0)), Some(Continuous));
        assert_eq!(mode_at(&entries[..1], at(0, 1, 0)), Some(Off));
        assert_eq!(mode_at(&[entries[0], entries[2]], at(0, 1, 0)), Some(Motion));
        assert_eq!(mode_at(&entries, at(0, 10, 0)), None);
        assert_eq!(mode_at(&[], at(0, 1, 0)), None);
    }
}
