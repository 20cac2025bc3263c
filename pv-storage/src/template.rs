//! Object key templates: where a segment goes inside a storage module.
//!
//! A template is text with placeholders in braces, for example the default
//! `{provider}/{camera}/{year}/{month}/{day}/{segment}.mp4`. [`KeyTemplate::parse`] checks it
//! once (unknown placeholders, unclosed braces, a template that would give every segment the same
//! key); [`KeyTemplate::render`] fills it from a [`KeyContext`] and returns a validated [`Key`].
//!
//! Placeholders:
//!
//! | placeholder | value |
//! |---|---|
//! | `{provider}` | the provider id (`s3`, `wasabi`) |
//! | `{module}` | the module's name, sanitised |
//! | `{camera}` | the camera's name, sanitised (`Front door` → `Front_door`) |
//! | `{camera_id}` | the camera's numeric id |
//! | `{year}` `{month}` `{day}` `{hour}` `{minute}` `{second}` | the segment start, UTC, zero-padded |
//! | `{date}` | `YYYY-MM-DD` of the segment start, UTC |
//! | `{segment}` | the segment file's stem |
//! | `{segment_id}` | the segment's numeric id |
//! | `{stream_id}` | `<camera_id>-<segment_id>`, the id used in logs |
//! | `{ext}` | the file extension without the dot (`mp4`) |
//!
//! Sanitising keeps letters, digits, `-`, `_` and `.`, turns anything else into `_`, and never
//! yields an empty, `.` or `..` segment, so a camera name can never add a level or escape a root.
//! Keys are deterministic: the same segment always renders to the same key, so a retried upload
//! overwrites the same object.

use std::fmt;

use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::{Error, Key, Result};

/// Every placeholder a template may use.
pub const PLACEHOLDERS: &[&str] = &[
    "provider",
    "module",
    "camera",
    "camera_id",
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "date",
    "segment",
    "segment_id",
    "stream_id",
    "ext",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Placeholder(&'static str),
}

/// A checked object key template.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyTemplate {
    source: String,
    parts: Vec<Part>,
}

impl fmt::Debug for KeyTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("KeyTemplate").field(&self.source).finish()
    }
}

impl fmt::Display for KeyTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Default for KeyTemplate {
    fn default() -> Self {
        // The default template is known to be valid; parse it without the error path.
        KeyTemplate::parse(Self::DEFAULT).unwrap_or_else(|_| KeyTemplate {
            source: Self::DEFAULT.to_owned(),
            parts: vec![Part::Placeholder("segment")],
        })
    }
}

/// What a template is filled from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyContext {
    /// Provider id.
    pub provider: String,
    /// Module name.
    pub module: String,
    /// Camera name.
    pub camera: String,
    /// Camera id.
    pub camera_id: i64,
    /// Segment file stem.
    pub segment: String,
    /// Segment id.
    pub segment_id: i64,
    /// When the segment starts.
    pub started_at: DateTime<Utc>,
    /// File extension without the dot.
    pub ext: String,
}

fn known_list() -> String {
    PLACEHOLDERS.iter().map(|p| format!("{{{p}}}")).collect::<Vec<_>>().join(" ")
}

impl KeyTemplate {
    /// The template used when a module sets none.
    pub const DEFAULT: &str = "{provider}/{camera}/{year}/{month}/{day}/{segment}.mp4";

    /// Check a template.
    pub fn parse(s: &str) -> Result<Self> {
        let text = s.trim();
        if text.is_empty() {
            return Err(Error::InvalidTemplate("the key template is empty".to_owned()));
        }
        if text.starts_with('/') {
            return Err(Error::InvalidTemplate(
                "the key template may not start with '/': keys are relative to the module's root"
                    .to_owned(),
            ));
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                None => {
                    parts.push(Part::Literal(rest.to_owned()));
                    break;
                }
                Some(i) => {
                    if i > 0 {
                        parts.push(Part::Literal(rest[..i].to_owned()));
                    }
                    if rest[i..].starts_with('}') {
                        return Err(Error::InvalidTemplate(format!(
                            "the key template has a '}}' without a matching '{{' at position {}",
                            text.len() - rest.len() + i + 1
                        )));
                    }
                    let after = &rest[i + 1..];
                    let Some(end) = after.find('}') else {
                        return Err(Error::InvalidTemplate(format!(
                            "the key template has a '{{' that is never closed at position {}",
                            text.len() - rest.len() + i + 1
                        )));
                    };
                    let name = &after[..end];
                    let Some(known) = PLACEHOLDERS.iter().find(|p| **p == name) else {
                        return Err(Error::InvalidTemplate(format!(
                            "the key template uses {{{name}}}, which is not a known placeholder; use one of {}",
                            known_list()
                        )));
                    };
                    parts.push(Part::Placeholder(known));
                    rest = &after[end + 1..];
                }
            }
        }
        if !parts
            .iter()
            .any(|p| matches!(p, Part::Placeholder("segment" | "segment_id" | "stream_id")))
        {
            return Err(Error::InvalidTemplate(
                "the key template must contain {segment}, {segment_id} or {stream_id}, or every segment would get the same key"
                    .to_owned(),
            ));
        }
        Ok(KeyTemplate { source: text.to_owned(), parts })
    }

    /// The template text.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Fill the template; the result is a checked [`Key`].
    pub fn render(&self, ctx: &KeyContext) -> Result<Key> {
        let mut out = String::with_capacity(self.source.len() + 32);
        let t = ctx.started_at;
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Placeholder(name) => {
                    let value = match *name {
                        "provider" => sanitize(&ctx.provider),
                        "module" => sanitize(&ctx.module),
                        "camera" => sanitize(&ctx.camera),
                        "camera_id" => ctx.camera_id.to_string(),
                        "year" => format!("{:04}", t.year()),
                        "month" => format!("{:02}", t.month()),
                        "day" => format!("{:02}", t.day()),
                        "hour" => format!("{:02}", t.hour()),
                        "minute" => format!("{:02}", t.minute()),
                        "second" => format!("{:02}", t.second()),
                        "date" => t.format("%Y-%m-%d").to_string(),
                        "segment" => sanitize(&ctx.segment),
                        "segment_id" => ctx.segment_id.to_string(),
                        "stream_id" => format!("{}-{}", ctx.camera_id, ctx.segment_id),
                        "ext" => sanitize(ctx.ext.trim_start_matches('.')),
                        _ => String::new(),
                    };
                    out.push_str(&value);
                }
            }
        }
        Key::new(out).map_err(|e| match e {
            Error::InvalidKey { key, reason } => Error::InvalidTemplate(format!(
                "the key template \"{}\" gives the key \"{key}\", which cannot be used: {reason}",
                self.source
            )),
            other => other,
        })
    }
}

/// Make a name safe as one key segment.
pub fn sanitize(name: &str) -> String {
    let mut out: String = name
        .trim()
        .chars()
        .map(|c| if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
        .collect();
    if out.trim_matches('.').is_empty() {
        out = out.replace('.', "_");
    }
    if out.is_empty() {
        out.push('_');
    }
    if out.starts_with(Key::RESERVED_PREFIX) {
        out.replace_range(0..1, "_");
    }
    // Keep well under a key segment's 255 bytes.
    while out.len() > 120 {
        out.pop();
    }
    out
}

impl serde::Serialize for KeyTemplate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> serde::Deserialize<'de> for KeyTemplate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        KeyTemplate::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use chrono::TimeZone;

    fn ctx() -> KeyContext {
        KeyContext {
            provider: "s3".into(),
            module: "Main archive".into(),
            camera: "Front door/../x".into(),
            camera_id: 7,
            segment: "20261205T101500Z-7".into(),
            segment_id: 42,
            started_at: Utc.with_ymd_and_hms(2026, 12, 5, 9, 3, 4).unwrap(),
            ext: "mp4".into(),
        }
    }

    #[test]
    fn default_template_renders() {
        let key = KeyTemplate::default().render(&ctx()).unwrap();
        assert_eq!(key.as_str(), "s3/Front_door_.._x/2026/12/05/20261205T101500Z-7.mp4");
    }

    #[test]
    fn all_placeholders_render() {
        let t = KeyTemplate::parse(
            "{module}/{camera_id}/{date}T{hour}{minute}{second}/{stream_id}_{segment_id}.{ext}",
        )
        .unwrap();
        assert_eq!(
            t.render(&ctx()).unwrap().as_str(),
            "Main_archive/7/2026-12-05T090304/7-42_42.mp4"
        );
    }

    #[test]
    fn unknown_placeholder_is_named() {
        let err = KeyTemplate::parse("{provider}/{cam}/{segment}").unwrap_err();
        assert!(matches!(err, Error::InvalidTemplate(_)));
        let msg = err.to_string();
        assert!(msg.starts_with("the key template uses {cam}, which is not a known placeholder; use one of {provider} {module} {camera}"), "{msg}");
    }

    #[test]
    fn bad_templates_are_refused() {
        for (bad, needle) in [
            ("", "empty"),
            ("/a/{segment}", "may not start with '/'"),
            ("a/{segment", "never closed"),
            ("a/segment}", "without a matching"),
            ("{camera}/{year}.mp4", "every segment would get the same key"),
        ] {
            let msg = KeyTemplate::parse(bad).unwrap_err().to_string();
            assert!(msg.contains(needle), "{bad}: {msg}");
        }
        // Renders that break the key rules are refused at render time.
        let t = KeyTemplate::parse("a//{segment}").unwrap();
        assert!(t.render(&ctx()).unwrap_err().to_string().contains("empty segments"));
    }

    #[test]
    fn sanitize_never_escapes() {
        assert_eq!(sanitize(".."), "__");
        assert_eq!(sanitize(""), "_");
        assert_eq!(sanitize("Caméra 1"), "Caméra_1");
        assert_eq!(sanitize(".pvtmp.x"), "_pvtmp.x");
    }
}
