//! Recorder failures in words for people.
//!
//! GStreamer reports a lost camera as an error message from an element (`rtspsrc3: Could not
//! open resource for reading and writing.`) with a debug text that holds the real cause
//! (`Failed to connect. (Generic error)`, `Unauthorized (401)`). [`explain`] turns the error's
//! domain and code plus that text into what went wrong at the camera: "cannot connect to
//! 192.0.2.10:554: connection refused", "the camera refused the user name or password", "no
//! such stream on the camera (404)", "timed out waiting for the camera". [`explain_ffmpeg`]
//! does the same for the last lines ffmpeg printed. Reasons name the camera by host and port,
//! never an element, and never contain credentials.

use std::time::Duration;

use gstreamer as gst;

use super::RecorderConfig;
use crate::probe::{connect_reason, host_and_port, io_reason, strip_userinfo};

/// What a reason may say about the camera.
#[derive(Debug, Clone)]
pub(crate) struct CameraTarget {
    /// `host:port` (the RTSP default port filled in).
    pub(crate) host: String,
    /// The host alone, for a direct connection attempt.
    connect_host: String,
    port: u16,
    /// The URL's path, without query.
    path: String,
    /// A user name is configured.
    credentials: bool,
    /// Text that must never appear in a reason.
    secrets: Vec<String>,
}

impl CameraTarget {
    /// The camera `config` records.
    pub(crate) fn of(config: &RecorderConfig) -> CameraTarget {
        let mut t = CameraTarget::new(&config.url, config.username.is_some());
        if let Some(p) = config.password.as_deref().filter(|p| !p.is_empty()) {
            t.secrets.push(p.to_owned());
        }
        t
    }

    /// The camera at `url` (credentials inside it count as configured).
    pub(crate) fn new(url: &str, credentials: bool) -> CameraTarget {
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let mut secrets = Vec::new();
        if let Some((_, pass)) = userinfo.and_then(|u| u.split_once(':'))
            && !pass.is_empty()
        {
            secrets.push(pass.to_owned());
        }
        let tls = url.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("rtsps://"));
        let (connect_host, port) = host_and_port(hostport, if tls { 322 } else { 554 });
        let host = if connect_host.contains(':') {
            format!("[{connect_host}]:{port}")
        } else {
            format!("{connect_host}:{port}")
        };
        let mut t = CameraTarget {
            host,
            connect_host,
            port,
            path: String::new(),
            credentials: credentials || userinfo.is_some(),
            secrets,
        };
        t.path = t.scrub(path.split(['?', '#']).next().unwrap_or("/"));
        t
    }

    /// `text` without URL user info or any secret.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = strip_userinfo(text);
        for secret in &self.secrets {
            out = out.replace(secret.as_str(), "<hidden>");
        }
        out
    }
}

/// What GStreamer said, as plain data (so the mapping is testable without a pipeline).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Domain {
    /// `GST_RESOURCE_ERROR`: the network, the camera's answers.
    Resource(gst::ResourceError),
    /// `GST_STREAM_ERROR`: the data (format, decoding, negotiation).
    Stream(gst::StreamError),
    /// Core or library errors.
    Other,
}

/// How to find the operating system's reason when rtspsrc only says "Generic error": a direct
/// TCP connection attempt (`Err(reason)`; `Ok(())` it connects; None: no answer in time).
pub(crate) type Diagnose<'a> = &'a dyn Fn(&CameraTarget) -> Option<Result<(), String>>;

/// A pipeline error message in words for people. `answered`: the camera answered the RTSP
/// request (it described its streams).
pub(crate) fn explain_gst(
    target: &CameraTarget,
    err: &gst::message::Error,
    answered: bool,
) -> String {
    let error = err.error();
    let domain = if let Some(k) = error.kind::<gst::ResourceError>() {
        Domain::Resource(k)
    } else if let Some(k) = error.kind::<gst::StreamError>() {
        Domain::Stream(k)
    } else {
        Domain::Other
    };
    let text = err.debug().map(|d| d.to_string()).unwrap_or_default();
    let reason = explain(target, domain, error.message(), &text, answered, &connect_once);
    let (message, text) = (target.scrub(error.message()), target.scrub(&text));
    tracing::debug!(host = %target.host, %message, %text, reason, "recorder error explained");
    reason
}

/// The element's own explanation: the debug text after GStreamer's `file(line): function ():
/// /element/path:` prefix.
fn detail_of(debug: &str) -> &str {
    debug.rsplit(":\n").next().unwrap_or_default().trim()
}

/// The mapping behind [`explain_gst`] (see the module documentation).
pub(crate) fn explain(
    target: &CameraTarget,
    domain: Domain,
    message: &str,
    debug: &str,
    answered: bool,
    diagnose: Diagnose<'_>,
) -> String {
    let host = &target.host;
    let detail = target.scrub(detail_of(debug));
    let message = target.scrub(message.trim().trim_end_matches('.'));
    let lower = format!("{} {}", message, detail).to_lowercase();
    let timeout = lower.contains("timeout") || lower.contains("timed out");
    match domain {
        Domain::Resource(gst::ResourceError::NotAuthorized) => {
            return if target.credentials {
                format!("the camera at {host} refused the user name or password")
            } else {
                format!("the camera at {host} asks for a user name and password; none is set")
            };
        }
        Domain::Resource(gst::ResourceError::NotFound) => {
            return if lower.contains("redirect") {
                format!(
                    "the camera at {host} redirects {} elsewhere; use the stream's real address",
                    target.path
                )
            } else {
                format!(
                    "no such stream on the camera at {host} (404): check the path {}",
                    target.path
                )
            };
        }
        Domain::Resource(
            gst::ResourceError::OpenRead
            | gst::ResourceError::OpenWrite
            | gst::ResourceError::OpenReadWrite,
        ) if !answered => {
            if timeout {
                return format!("timed out waiting for the camera at {host}");
            }
            let reason = match diagnose(target) {
                Some(Err(reason)) => reason,
                _ => connect_reason(&detail),
            };
            return format!("cannot connect to {host}: {reason}");
        }
        _ => {}
    }
    if let Some(status) = rtsp_status(&detail) {
        return match status.0 {
            401 => format!("the camera at {host} refused the user name or password"),
            403 => format!("the camera at {host} forbids this stream (403 Forbidden)"),
            404 => format!(
                "no such stream on the camera at {host} (404): check the path {}",
                target.path
            ),
            454 => format!("the camera at {host} ended the session (454 Session Not Found)"),
            461 => format!(
                "the camera at {host} does not support this transport (461); try the other one (TCP or UDP)"
            ),
            503 => {
                format!("the camera at {host} is busy (503 Service Unavailable); too many viewers?")
            }
            code => format!("the camera at {host} answered with an error ({code} {})", status.1),
        };
    }
    if lower.contains("udp packets") {
        return format!("no video arrived over UDP from {host}; a firewall may block it, try TCP");
    }
    if timeout {
        return format!("timed out waiting for the camera at {host}");
    }
    if lower.contains("no supported stream") {
        return format!(
            "the camera at {host} offers no stream that can be received; try the other transport (TCP or UDP)"
        );
    }
    if lower.contains("parse error") {
        return format!(
            "the server at {host} does not answer in RTSP; is this the camera's RTSP port?"
        );
    }
    if lower.contains("connection reset")
        || lower.contains("end-of-file")
        || lower.contains("eof")
        || lower.contains("connection closed")
    {
        return format!("the camera at {host} closed the connection");
    }
    match domain {
        Domain::Stream(
            gst::StreamError::Format
            | gst::StreamError::CodecNotFound
            | gst::StreamError::TypeNotFound
            | gst::StreamError::WrongType,
        ) => {
            format!("the camera at {host} sends a stream in a format that cannot be recorded")
        }
        Domain::Stream(_) if lower.contains("not-negotiated") => {
            format!("the camera at {host} sends a stream in a format that cannot be recorded")
        }
        Domain::Stream(_) => {
            format!("the stream from {host} could not be read ({})", plain(&message, &detail))
        }
        Domain::Resource(
            gst::ResourceError::Read | gst::ResourceError::Write | gst::ResourceError::Busy,
        ) => {
            format!("the connection to the camera at {host} failed ({})", plain(&message, &detail))
        }
        _ => format!("recording from {host} failed ({})", plain(&message, &detail)),
    }
}

/// The detail text when it says more than the message, else the message (in lower case,
/// without GStreamer's internal phrasing such as "Internal data stream error").
fn plain(message: &str, detail: &str) -> String {
    let text = if !detail.is_empty() && !detail.contains("gst") { detail } else { message };
    let text = text.trim().trim_end_matches('.');
    if text.is_empty() { "unknown error".into() } else { first_lower(text) }
}

fn first_lower(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) if c.clone().next().is_some_and(char::is_lowercase) => {
            f.to_lowercase().chain(c).collect()
        }
        Some(f) => std::iter::once(f).chain(c).collect(),
        None => String::new(),
    }
}

/// An RTSP status `(code, text)` in rtspsrc's debug text (`Forbidden (403)`, `Got error
/// response: 403 (Forbidden).`).
fn rtsp_status(detail: &str) -> Option<(u16, String)> {
    // "TEXT (CODE)"
    if let Some((text, rest)) = detail.rsplit_once('(')
        && let Some(code) = rest.strip_suffix(')').or_else(|| rest.strip_suffix(")."))
        && let Ok(code) = code.trim().parse::<u16>()
        && (300..600).contains(&code)
    {
        return Some((code, text.trim().to_owned()));
    }
    // "…response: CODE (TEXT)."
    let after = detail.split("response:").nth(1)?.trim();
    let (code, text) = after.split_once(' ')?;
    let code = code.parse::<u16>().ok().filter(|c| (300..600).contains(c))?;
    let text = text.trim().trim_end_matches('.').trim_start_matches('(').trim_end_matches(')');
    Some((code, text.to_owned()))
}

/// Connect to the camera's port once, directly, within 1 s, for the operating system's
/// reason.
fn connect_once(target: &CameraTarget) -> Option<Result<(), String>> {
    use std::net::ToSocketAddrs;
    let budget = Duration::from_secs(1);
    let addr = match (target.connect_host.as_str(), target.port).to_socket_addrs() {
        Err(_) => return Some(Err("the host name could not be resolved".into())),
        Ok(mut a) => match a.next() {
            Some(a) => a,
            None => return Some(Err("the host name could not be resolved".into())),
        },
    };
    Some(std::net::TcpStream::connect_timeout(&addr, budget).map(drop).map_err(|e| io_reason(&e)))
}

/// What stopped the built-in recorder's RTSP client, in words for people: the same phrases
/// as GStreamer's and ffmpeg's failures (so a camera's status reads the same whichever backend
/// records it), else the client's own message without the URL.
pub(crate) fn explain_native(
    target: &CameraTarget,
    url: &str,
    err: &crate::ingest::rtsp::SourceError,
) -> String {
    use crate::ingest::rtsp::SourceError;
    let text = match err {
        SourceError::Auth(t) | SourceError::Lost(t) | SourceError::Unsupported(t) => t,
    };
    let redacted = crate::record::redact_url(url);
    let text = target.scrub(text.strip_prefix(&format!("{redacted}: ")).unwrap_or(text));
    let host = &target.host;
    let lower = text.to_lowercase();
    if matches!(err, SourceError::Unsupported(_)) {
        return text;
    }
    if let Some(reason) = explain_ffmpeg(target, &text) {
        return reason;
    }
    if lower.contains("parse") || lower.contains("framing") || lower.contains("not rtsp") {
        return format!(
            "the server at {host} does not answer in RTSP; is this the camera's RTSP port?"
        );
    }
    if lower.contains("no key frame") {
        return format!("the camera at {host} sends no recordable video ({})", first_lower(&text));
    }
    if lower.contains("eof") || lower.contains("closed") || lower.contains("reset") {
        return format!("the camera at {host} closed the connection");
    }
    format!("recording from {host} failed ({})", first_lower(&text))
}

/// The last lines ffmpeg printed in words for people (None: nothing recognised).
pub(crate) fn explain_ffmpeg(target: &CameraTarget, tail: &str) -> Option<String> {
    let host = &target.host;
    let lower = tail.to_lowercase();
    let reason = if lower.contains("401") || lower.contains("unauthorized") {
        if target.credentials {
            format!("the camera at {host} refused the user name or password")
        } else {
            format!("the camera at {host} asks for a user name and password; none is set")
        }
    } else if lower.contains("404") || lower.contains("not found") {
        format!("no such stream on the camera at {host} (404): check the path {}", target.path)
    } else if lower.contains("403") || lower.contains("forbidden") {
        format!("the camera at {host} forbids this stream (403 Forbidden)")
    } else if lower.contains("connection refused") {
        format!("cannot connect to {host}: connection refused")
    } else if lower.contains("no route to host") || lower.contains("host unreachable") {
        format!("cannot connect to {host}: host unreachable")
    } else if lower.contains("network is unreachable") {
        format!("cannot connect to {host}: network unreachable")
    } else if lower.contains("name or service not known") || lower.contains("resolve") {
        format!("cannot connect to {host}: the host name could not be resolved")
    } else if lower.contains("timed out") || lower.contains("timeout") {
        format!("timed out waiting for the camera at {host}")
    } else if lower.contains("connection reset") || lower.contains("end of file") {
        format!("the camera at {host} closed the connection")
    } else {
        return None;
    };
    Some(reason)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const PREFIX: &str = "../gst/rtsp/gstrtspsrc.c(8336): gst_rtspsrc_retrieve_sdp (): /GstPipeline:record-1/GstRTSPSrc:rtspsrc19:\n";

    fn target(url: &str) -> CameraTarget {
        CameraTarget::new(url, false)
    }

    /// One case: the reason for (domain, message, detail), with a connection attempt that
    /// reports `diagnosed`.
    fn check(
        t: &CameraTarget,
        domain: Domain,
        message: &str,
        detail: &str,
        answered: bool,
        diagnosed: Option<Result<(), String>>,
        want: &str,
    ) {
        let debug = format!("{PREFIX}{detail}");
        let got = explain(t, domain, message, &debug, answered, &|_| diagnosed.clone());
        assert_eq!(got, want);
        for leak in ["rtspsrc", "GstRTSPSrc", "gst_", "splitmux", "Could not open resource"] {
            assert!(!got.contains(leak), "{got}");
        }
    }

    #[test]
    fn connection_failures_name_the_host_port_and_the_network_reason() {
        let t = target("rtsp://192.0.2.10/stream1");
        let open = Domain::Resource(gst::ResourceError::OpenReadWrite);
        let msg = "Could not open resource for reading and writing.";
        check(
            &t,
            open,
            msg,
            "Failed to connect. (Generic error)",
            false,
            Some(Err("connection refused".into())),
            "cannot connect to 192.0.2.10:554: connection refused",
        );
        check(
            &t,
            open,
            msg,
            "Failed to connect. (Generic error)",
            false,
            None,
            "cannot connect to 192.0.2.10:554: the connection failed",
        );
        check(
            &t,
            open,
            msg,
            "Failed to connect. (Timeout while waiting for server response)",
            false,
            None,
            "timed out waiting for the camera at 192.0.2.10:554",
        );
        let t = target("rtsp://[2001:db8::1]:8554/x");
        check(
            &t,
            open,
            msg,
            "Failed to connect. (Generic error)",
            false,
            Some(Err("host unreachable".into())),
            "cannot connect to [2001:db8::1]:8554: host unreachable",
        );
    }

    #[test]
    fn rtsp_answers_become_what_to_fix() {
        let t = target("rtsp://cam.local:8554/live?x=1");
        let read = Domain::Resource(gst::ResourceError::Read);
        check(
            &t,
            Domain::Resource(gst::ResourceError::NotFound),
            "Not found",
            "Not Found (404)",
            true,
            None,
            "no such stream on the camera at cam.local:8554 (404): check the path /live",
        );
        check(
            &t,
            Domain::Resource(gst::ResourceError::NotAuthorized),
            "Unauthorized",
            "Unauthorized (401)",
            true,
            None,
            "the camera at cam.local:8554 asks for a user name and password; none is set",
        );
        let with_login = CameraTarget::new("rtsp://cam.local:8554/live", true);
        check(
            &with_login,
            Domain::Resource(gst::ResourceError::NotAuthorized),
            "Unauthorized",
            "Unauthorized (401)",
            true,
            None,
            "the camera at cam.local:8554 refused the user name or password",
        );
        check(
            &t,
            read,
            "Unhandled error",
            "Forbidden (403)",
            true,
            None,
            "the camera at cam.local:8554 forbids this stream (403 Forbidden)",
        );
        check(
            &t,
            read,
            "Unhandled error",
            "Got error response: 503 (Service Unavailable).",
            true,
            None,
            "the camera at cam.local:8554 is busy (503 Service Unavailable); too many viewers?",
        );
        check(
            &t,
            read,
            "Could not read from resource.",
            "Could not receive message. (Timeout while waiting for server response)",
            true,
            None,
            "timed out waiting for the camera at cam.local:8554",
        );
        check(
            &t,
            read,
            "Could not read from resource.",
            "Could not receive any UDP packets for 5.0000 seconds, maybe your firewall is blocking it. Retrying using a tcp connection.",
            true,
            None,
            "no video arrived over UDP from cam.local:8554; a firewall may block it, try TCP",
        );
        check(
            &t,
            read,
            "Could not read from resource.",
            "Could not receive message. (Parse error)",
            false,
            None,
            "the server at cam.local:8554 does not answer in RTSP; is this the camera's RTSP port?",
        );
        check(
            &t,
            Domain::Stream(gst::StreamError::Failed),
            "Internal data stream error.",
            "streaming stopped, reason not-negotiated (-4)",
            true,
            None,
            "the camera at cam.local:8554 sends a stream in a format that cannot be recorded",
        );
    }

    #[test]
    fn credentials_never_appear() {
        let mut t = CameraTarget::new("rtsp://admin:s3cret@cam.local/a", false);
        t.secrets.push("hunter2".into());
        assert!(t.credentials);
        let got = explain(
            &t,
            Domain::Other,
            "x",
            "failed for rtsp://admin:s3cret@cam.local/a with hunter2",
            true,
            &|_| None,
        );
        assert!(
            !got.contains("s3cret") && !got.contains("hunter2") && !got.contains("admin"),
            "{got}"
        );
        assert_eq!(
            explain_ffmpeg(&t, "[rtsp @ 0x5] method DESCRIBE failed: 401 Unauthorized").unwrap(),
            "the camera at cam.local:554 refused the user name or password"
        );
        assert_eq!(
            explain_ffmpeg(&t, "rtsp://admin:s3cret@cam.local/a: Connection refused").unwrap(),
            "cannot connect to cam.local:554: connection refused"
        );
        assert_eq!(explain_ffmpeg(&t, "something odd"), None);
    }

    #[test]
    fn a_real_refused_port_is_diagnosed() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let t = target(&format!("rtsp://127.0.0.1:{port}/x"));
        assert_eq!(connect_once(&t), Some(Err("connection refused".into())));
    }
}
