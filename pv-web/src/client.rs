//! Who is asking: the client's IP address as every security decision sees it (IP rules,
//! country policy, lockout exemptions, rate limits, audit events).
//!
//! The socket's peer address is the client, unless the peer is one of `server.trusted_proxies`;
//! then the right-most address of `X-Forwarded-For` that is not itself a trusted proxy is the
//! client (the left part of that header is whatever the client claimed and is never believed).

use std::net::IpAddr;

use ipnet::IpNet;
use poem::Request;
use pv_core::config::ServerConfig;

/// The parsed `server.trusted_proxies`.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// Parse the configured entries (validated by the config loader; unparsable ones are
    /// skipped, which trusts less, never more).
    pub fn from_config(server: &ServerConfig) -> Self {
        let nets = server
            .trusted_proxies
            .iter()
            .filter_map(|entry| {
                entry
                    .parse::<IpNet>()
                    .ok()
                    .or_else(|| entry.parse::<IpAddr>().ok().map(IpNet::from))
            })
            .collect();
        Self { nets }
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client address of a request whose socket peer is `peer` (None for in-process test
    /// clients and Unix sockets) carrying `forwarded_for` (the `X-Forwarded-For` value).
    pub fn resolve(&self, peer: Option<IpAddr>, forwarded_for: Option<&str>) -> Option<IpAddr> {
        let peer = peer.map(|ip| ip.to_canonical());
        let trusted_peer = match peer {
            Some(ip) => self.contains(ip),
            // An in-process client is as trusted as the process itself.
            None => true,
        };
        if trusted_peer && let Some(header) = forwarded_for {
            for hop in header.rsplit(',') {
                let Ok(ip) = hop.trim().parse::<IpAddr>() else { break };
                let ip = ip.to_canonical();
                if !self.contains(ip) {
                    return Some(ip);
                }
            }
        }
        peer
    }
}

/// The client address of `req` (None only for an in-process request without
/// `X-Forwarded-For`).
pub fn client_ip(req: &Request, proxies: &TrustedProxies) -> Option<IpAddr> {
    let peer = req.remote_addr().as_socket_addr().map(|addr| addr.ip());
    proxies.resolve(peer, req.header("x-forwarded-for"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(entries: &[&str]) -> TrustedProxies {
        let server = ServerConfig {
            trusted_proxies: entries.iter().map(|s| s.to_string()).collect(),
            ..ServerConfig::default()
        };
        TrustedProxies::from_config(&server)
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_claims() {
        let p = proxies(&["10.0.0.1"]);
        assert_eq!(
            p.resolve(Some(ip("203.0.113.5")), Some("192.168.250.7")),
            Some(ip("203.0.113.5"))
        );
    }

    #[test]
    fn trusted_proxy_hands_over_the_rightmost_untrusted_hop() {
        let p = proxies(&["10.0.0.0/8"]);
        let got = p.resolve(Some(ip("10.0.0.1")), Some("6.6.6.6, 198.51.100.4, 10.0.0.2"));
        assert_eq!(got, Some(ip("198.51.100.4")));
    }

    #[test]
    fn mapped_ipv6_peers_are_canonical() {
        let p = proxies(&["127.0.0.1"]);
        assert_eq!(
            p.resolve(Some(ip("::ffff:127.0.0.1")), Some("2001:db8::1")),
            Some(ip("2001:db8::1"))
        );
    }

    #[test]
    fn garbage_header_falls_back_to_peer() {
        let p = proxies(&["127.0.0.1"]);
        assert_eq!(p.resolve(Some(ip("127.0.0.1")), Some("not-an-ip")), Some(ip("127.0.0.1")));
        assert_eq!(p.resolve(None, None), None);
    }
}
