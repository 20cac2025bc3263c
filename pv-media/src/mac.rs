//! A camera's MAC address from the kernel neighbour table, so a camera keeps its ingest
//! directory when its IP address changes and a swapped device is noticed.
//!
//! The table is `/proc/net/arp` (IPv4; Linux lists a neighbour there once it has been
//! contacted, which the recorder does). Incomplete entries (flags `0x0`) and the all-zero
//! address are not answers. IPv6 neighbours and cameras behind a router have no entry: the
//! lookup says "unknown" and the camera is keyed by its id.
//!
//! ```
//! use pv_media::mac::parse_arp_table;
//! let table = "IP address       HW type     Flags       HW address            Mask     Device\n\
//!              192.0.2.10       0x1         0x2         aa:bb:cc:00:11:22     *        eth0\n";
//! let mac = parse_arp_table(table, "192.0.2.10".parse().unwrap()).unwrap();
//! assert_eq!(mac.to_string(), "aa:bb:cc:00:11:22");
//! ```

use std::net::{IpAddr, ToSocketAddrs};
use std::path::Path;

use crate::layout::MacAddress;

/// The kernel's IPv4 neighbour table.
pub const ARP_TABLE: &str = "/proc/net/arp";

/// The MAC address `table` (the text of `/proc/net/arp`) lists for `ip`, if a complete entry
/// exists.
pub fn parse_arp_table(table: &str, ip: IpAddr) -> Option<MacAddress> {
    let want = ip.to_string();
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (addr, flags, hw) = (cols.first()?, cols.get(2)?, cols.get(3)?);
        if *addr != want || *flags == "0x0" {
            return None;
        }
        let mac: MacAddress = hw.parse().ok()?;
        (mac.octets() != [0; 6]).then_some(mac)
    })
}

/// The MAC address of `ip` from the neighbour table at `table_path` (normally [`ARP_TABLE`]);
/// None when the table cannot be read or has no complete entry.
pub fn lookup_in(table_path: &Path, ip: IpAddr) -> Option<MacAddress> {
    let table = std::fs::read_to_string(table_path).ok()?;
    parse_arp_table(&table, ip)
}

/// [`lookup_in`] the kernel's table.
pub fn lookup(ip: IpAddr) -> Option<MacAddress> {
    lookup_in(Path::new(ARP_TABLE), ip)
}

/// The host of a URL (`rtsp://u:p@host:554/x` → `host`; IPv6 without brackets), lowercase.
pub fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let hostport = authority.rsplit('@').next()?;
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        hostport.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// The IP address a stream URL's host resolves to (the first one; a literal address as is).
/// Blocking when the host is a name.
pub fn url_host_ip(url: &str) -> Option<IpAddr> {
    let host = url_host(url)?;
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(ip);
    }
    (host.as_str(), 554).to_socket_addrs().ok()?.next().map(|a| a.ip())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const TABLE: &str =
        "IP address       HW type     Flags       HW address            Mask     Device
192.0.2.10       0x1         0x2         aa:bb:cc:00:11:22     *        eth0
192.0.2.11       0x1         0x0         00:00:00:00:00:00     *        eth0
192.0.2.12       0x1         0x2         00:00:00:00:00:00     *        eth0
";

    #[test]
    fn complete_entries_only() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            parse_arp_table(TABLE, ip("192.0.2.10")).unwrap().to_string(),
            "aa:bb:cc:00:11:22"
        );
        assert_eq!(parse_arp_table(TABLE, ip("192.0.2.11")), None, "incomplete");
        assert_eq!(parse_arp_table(TABLE, ip("192.0.2.12")), None, "all zero");
        assert_eq!(parse_arp_table(TABLE, ip("192.0.2.1")), None, "absent");
        assert_eq!(parse_arp_table("", ip("192.0.2.10")), None);
    }

    #[test]
    fn hosts_come_from_urls() {
        assert_eq!(url_host_ip("rtsp://u:p@192.0.2.10:554/x"), Some("192.0.2.10".parse().unwrap()));
        assert_eq!(url_host_ip("rtsp://[2001:db8::1]:554/x"), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(url_host_ip("rtsp://127.0.0.1/x"), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(url_host_ip("not a url"), None);
    }
}
