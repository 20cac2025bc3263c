//! ONVIF WS-Discovery: find cameras on the LAN when the user asks.
//!
//! [`discover`] sends one WS-Discovery `Probe` for `dn:NetworkVideoTransmitter` devices (SOAP
//! over UDP, to the multicast group `239.255.255.250:3702` by default) and collects the
//! `ProbeMatch` answers that arrive before the timeout: each device's endpoint reference, its
//! service addresses (`XAddrs`, the ONVIF device service URLs, whose host is the camera) and
//! its scopes (name, hardware, location as the vendor sets them). The target is a parameter so
//! the tests answer from a responder on loopback. quick-xml reads the answers (namespace
//! prefixes differ between vendors, so elements are matched by local name).
//!
//! ```no_run
//! # fn main() -> pv_media::Result<()> {
//! use std::time::Duration;
//! for cam in pv_media::onvif::discover(pv_media::onvif::MULTICAST, Duration::from_secs(3))? {
//!     println!("{} {:?} {:?}", cam.endpoint, cam.xaddrs, cam.name());
//! }
//! # Ok(()) }
//! ```

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use quick_xml::events::Event;

use crate::{Error, Result};

/// The WS-Discovery multicast group and port.
pub const MULTICAST: SocketAddr =
    SocketAddr::V4(std::net::SocketAddrV4::new(std::net::Ipv4Addr::new(239, 255, 255, 250), 3702));

/// A device that answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Its endpoint reference (`urn:uuid:…`), stable per device.
    pub endpoint: String,
    /// Service addresses (ONVIF device service URLs).
    pub xaddrs: Vec<String>,
    /// Scope URIs (`onvif://www.onvif.org/name/…`, `…/hardware/…`).
    pub scopes: Vec<String>,
    /// Where the answer came from.
    pub from: SocketAddr,
}

impl Device {
    /// The `onvif://www.onvif.org/name/…` scope, percent-decoded, if the device sets one.
    pub fn name(&self) -> Option<String> {
        self.scope("name")
    }

    /// The `onvif://www.onvif.org/hardware/…` scope (the model), if set.
    pub fn hardware(&self) -> Option<String> {
        self.scope("hardware")
    }

    fn scope(&self, kind: &str) -> Option<String> {
        let prefix = format!("onvif://www.onvif.org/{kind}/");
        self.scopes.iter().find_map(|s| s.strip_prefix(&prefix)).map(percent_decode)
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A message id unique enough for one probe.
fn message_id() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let n = nanos ^ (u128::from(std::process::id()) << 64);
    let h = format!("{:032x}", n);
    format!("urn:uuid:{}-{}-4{}-8{}-{}", &h[0..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
}

/// The SOAP `Probe` message for video transmitters, with `id` as its MessageID.
pub fn probe_message(id: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl"><s:Header><a:Action s:mustUnderstand="1">http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action><a:MessageID>{id}</a:MessageID><a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To></s:Header><s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></s:Body></s:Envelope>"#
    )
}

/// The devices in one `ProbeMatches` answer (none when it is not one, or answers another
/// probe than `relates_to`).
pub fn parse_probe_matches(xml: &str, relates_to: &str, from: SocketAddr) -> Vec<Device> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut devices = Vec::new();
    let mut current: Option<Device> = None;
    let mut related = None;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if name == "ProbeMatch" {
                    current = Some(Device {
                        endpoint: String::new(),
                        xaddrs: Vec::new(),
                        scopes: Vec::new(),
                        from,
                    });
                }
                path.push(name);
            }
            Ok(Event::End(_)) => {
                if path.pop().as_deref() == Some("ProbeMatch")
                    && let Some(d) = current.take()
                {
                    devices.push(d);
                }
            }
            Ok(Event::Text(t)) => {
                let text = t.unescape().map(|c| c.trim().to_owned()).unwrap_or_default();
                match path.last().map(String::as_str) {
                    Some("RelatesTo") => related = Some(text),
                    Some("Address") if path.iter().any(|p| p == "EndpointReference") => {
                        if let Some(d) = current.as_mut() {
                            d.endpoint = text;
                        }
                    }
                    Some("XAddrs") => {
                        if let Some(d) = current.as_mut() {
                            d.xaddrs = text.split_whitespace().map(str::to_owned).collect();
                        }
                    }
                    Some("Scopes") => {
                        if let Some(d) = current.as_mut() {
                            d.scopes = text.split_whitespace().map(str::to_owned).collect();
                        }
                    }
                    _ => {}
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
    }
    if related.as_deref().is_some_and(|r| r != relates_to) {
        return Vec::new();
    }
    devices
}

/// Probe `target` (normally [`MULTICAST`]) and collect the devices that answer within
/// `timeout`, one entry per endpoint. Blocking.
pub fn discover(target: SocketAddr, timeout: Duration) -> Result<Vec<Device>> {
    let io = |e: std::io::Error| Error::Process { program: "ws-discovery", reason: e.to_string() };
    let bind: SocketAddr = if target.ip().is_loopback() {
        "127.0.0.1:0".parse().map_err(|_| io(std::io::Error::other("bad bind address")))?
    } else {
        "0.0.0.0:0".parse().map_err(|_| io(std::io::Error::other("bad bind address")))?
    };
    let socket = UdpSocket::bind(bind).map_err(io)?;
    if target.ip().is_multicast() {
        socket.set_multicast_ttl_v4(1).map_err(io)?;
    }
    let id = message_id();
    socket.send_to(probe_message(&id).as_bytes(), target).map_err(io)?;
    let deadline = Instant::now() + timeout;
    let mut found: Vec<Device> = Vec::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        socket.set_read_timeout(Some(left)).map_err(io)?;
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                let text = String::from_utf8_lossy(&buf[..n]);
                for d in parse_probe_matches(&text, &id, from) {
                    if !found.iter().any(|f| f.endpoint == d.endpoint) {
                        found.push(d);
                    }
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            Err(e) => return Err(io(e)),
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A ProbeMatches answer as a Hikvision-style camera sends it (other prefixes).
    pub(crate) fn answer(relates_to: &str, uuid: &str, host: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:wsdd="http://schemas.xmlsoap.org/ws/2005/04/discovery"><env:Header><wsa:MessageID>urn:uuid:1</wsa:MessageID><wsa:RelatesTo>{relates_to}</wsa:RelatesTo></env:Header><env:Body><wsdd:ProbeMatches><wsdd:ProbeMatch><wsa:EndpointReference><wsa:Address>urn:uuid:{uuid}</wsa:Address></wsa:EndpointReference><wsdd:Types>dn:NetworkVideoTransmitter</wsdd:Types><wsdd:Scopes>onvif://www.onvif.org/type/video_encoder onvif://www.onvif.org/name/Front%20Door onvif://www.onvif.org/hardware/DS-2CD2043</wsdd:Scopes><wsdd:XAddrs>http://{host}/onvif/device_service</wsdd:XAddrs><wsdd:MetadataVersion>1</wsdd:MetadataVersion></wsdd:ProbeMatch></wsdd:ProbeMatches></env:Body></env:Envelope>"#
        )
    }

    #[test]
    fn answers_are_read_whatever_the_prefixes() {
        let from: SocketAddr = "127.0.0.1:3702".parse().unwrap();
        let d =
            parse_probe_matches(&answer("urn:uuid:me", "abc", "192.0.2.10"), "urn:uuid:me", from);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].endpoint, "urn:uuid:abc");
        assert_eq!(d[0].xaddrs, ["http://192.0.2.10/onvif/device_service"]);
        assert_eq!(d[0].name().as_deref(), Some("Front Door"));
        assert_eq!(d[0].hardware().as_deref(), Some("DS-2CD2043"));
        assert!(
            parse_probe_matches(&answer("urn:uuid:other", "abc", "h"), "urn:uuid:me", from)
                .is_empty()
        );
        assert!(parse_probe_matches("not xml <", "x", from).is_empty());
        assert!(probe_message("urn:uuid:x").contains("NetworkVideoTransmitter"));
    }

    #[test]
    fn discovery_collects_the_answers_of_a_responder_on_loopback() {
        let responder = UdpSocket::bind("127.0.0.1:0").unwrap();
        let target = responder.local_addr().unwrap();
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            let (n, from) = responder.recv_from(&mut buf).unwrap();
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            assert!(text.contains("<d:Probe>"), "{text}");
            let id =
                text.split("<a:MessageID>").nth(1).unwrap().split('<').next().unwrap().to_owned();
            for (uuid, host) in
                [("cam-1", "192.0.2.10"), ("cam-2", "192.0.2.11"), ("cam-1", "192.0.2.10")]
            {
                responder.send_to(answer(&id, uuid, host).as_bytes(), from).unwrap();
            }
        });
        let found = discover(target, Duration::from_millis(800)).unwrap();
        thread.join().unwrap();
        let endpoints: Vec<&str> = found.iter().map(|d| d.endpoint.as_str()).collect();
        assert_eq!(endpoints, ["urn:uuid:cam-1", "urn:uuid:cam-2"], "one entry per device");
        assert_eq!(found[1].xaddrs, ["http://192.0.2.11/onvif/device_service"]);
    }
}
