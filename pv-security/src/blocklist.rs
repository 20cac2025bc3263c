//! The firewall blocklist: blocked networks minus everything that must never be blocked,
//! aggregated, in a deterministic order, as strict CSV (RFC 4180, CRLF line ends).
//!
//! Never-block exclusions are applied when the list is generated, so no rule, however broad,
//! can put them on a firewall: the built-in 192.168.250.0/24 and 96.45.17.168–96.45.17.174,
//! plus every `exempt` rule in the users database. An exemption inside a blocked subnet
//! supersedes the block: the subnet is split around it.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use pv_core::db::users::ip_rule;
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter};

use crate::{Error, Result};

/// Networks that are never published, whatever the rules say.
pub const BUILT_IN_NEVER_BLOCK: [&str; 4] = [
    "192.168.250.0/24",
    // 96.45.17.168–96.45.17.174 as CIDRs.
    "96.45.17.168/30",
    "96.45.17.172/31",
    "96.45.17.174/32",
];

/// Parse an address or CIDR (`203.0.113.7`, `2001:db8::/32`). Host bits are cleared.
pub fn parse_network(text: &str) -> Result<IpNet> {
    let text = text.trim();
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    text.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| Error::InvalidInput(format!("'{text}' is not an IP address or CIDR network")))
}

/// The built-in never-block networks.
pub fn built_in_exemptions() -> Vec<IpNet> {
    BUILT_IN_NEVER_BLOCK.iter().filter_map(|s| s.parse().ok()).collect()
}

/// Build the published list: `blocked` minus `exempt` and the built-in exemptions, merged
/// where adjacent, sorted IPv4 before IPv6 and numerically.
pub fn generate(blocked: &[IpNet], exempt: &[IpNet]) -> Vec<IpNet> {
    let mut never: Vec<IpNet> = built_in_exemptions();
    never.extend(exempt.iter().map(IpNet::trunc));
    let never = IpNet::aggregate(&never);

    let mut out = Vec::new();
    for net in blocked {
        let mut pieces = vec![net.trunc()];
        for ex in &never {
            pieces = pieces.into_iter().flat_map(|p| subtract(p, *ex)).collect();
        }
        out.extend(pieces);
    }
    let mut out = IpNet::aggregate(&out);
    out.sort_by_key(sort_key);
    out
}

/// `net` without `hole`. CIDR networks either nest or are disjoint, so this splits `net` in
/// halves until no piece overlaps `hole`.
fn subtract(net: IpNet, hole: IpNet) -> Vec<IpNet> {
    let overlaps = net.contains(&hole.network()) || hole.contains(&net.network());
    if !overlaps || !same_family(&net, &hole) {
        return vec![net];
    }
    if hole.contains(&net) {
        return Vec::new();
    }
    match net.subnets(net.prefix_len() + 1) {
        Ok(halves) => halves.flat_map(|half| subtract(half, hole)).collect(),
        Err(_) => vec![net],
    }
}

fn same_family(a: &IpNet, b: &IpNet) -> bool {
    matches!((a, b), (IpNet::V4(_), IpNet::V4(_)) | (IpNet::V6(_), IpNet::V6(_)))
}

fn sort_key(net: &IpNet) -> (u8, u128, u8) {
    match net {
        IpNet::V4(n) => (4, u128::from(u32::from(n.network())), n.prefix_len()),
        IpNet::V6(n) => (6, u128::from(n.network()), n.prefix_len()),
    }
}

/// Render one entry: a single host as a bare address, a network as CIDR.
pub fn entry_text(net: &IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() { net.addr().to_string() } else { net.to_string() }
}

/// The list as RFC 4180 CSV: one entry per line, CRLF line ends, no header unless asked.
pub fn to_csv(entries: &[IpNet], header: bool) -> String {
    let mut out = String::with_capacity(entries.len() * 20 + 10);
    if header {
        out.push_str("network\r\n");
    }
    for e in entries {
        out.push_str(&entry_text(e));
        out.push_str("\r\n");
    }
    out
}

/// Read the current `block` and `exempt` rules (not expired at `now`) from the users database.
/// Rules whose network does not parse are skipped with a warning.
pub async fn load_rules(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
) -> Result<(Vec<IpNet>, Vec<IpNet>)> {
    let rules = ip_rule::Entity::find()
        .filter(
            Condition::any()
                .add(ip_rule::Column::ExpiresAt.is_null())
                .add(ip_rule::Column::ExpiresAt.gt(now)),
        )
        .all(db)
        .await?;
    let (mut blocked, mut exempt) = (Vec::new(), Vec::new());
    for rule in rules {
        match parse_network(&rule.network) {
            Ok(net) if rule.action == "block" => blocked.push(net),
            Ok(net) if rule.action == "exempt" => exempt.push(net),
            Ok(_) => {
                tracing::warn!(id = rule.id, action = %rule.action, "ip rule with unknown action skipped")
            }
            Err(e) => tracing::warn!(id = rule.id, error = %e, "ip rule skipped"),
        }
    }
    Ok((blocked, exempt))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| parse_network(s).unwrap()).collect()
    }

    fn texts(list: &[IpNet]) -> Vec<String> {
        list.iter().map(entry_text).collect()
    }

    #[test]
    fn order_is_ipv4_first_then_numeric() {
        let out = generate(&nets(&["2001:db8::1", "10.0.0.9", "9.9.9.9", "10.0.0.10/31"]), &[]);
        assert_eq!(texts(&out), ["9.9.9.9", "10.0.0.9", "10.0.0.10/31", "2001:db8::1"]);
    }

    #[test]
    fn built_in_exemptions_are_never_published() {
        let out = generate(&nets(&["192.168.250.17", "96.45.17.170", "96.45.17.175"]), &[]);
        assert_eq!(texts(&out), ["96.45.17.175"]);
    }

    #[test]
    fn exemption_inside_a_blocked_subnet_splits_it() {
        let out = generate(&nets(&["203.0.113.0/24"]), &nets(&["203.0.113.5"]));
        // 256 addresses minus one, as the smallest set of CIDRs.
        assert_eq!(out.len(), 8);
        let total: u64 = out.iter().map(|n| 1u64 << (32 - n.prefix_len())).sum();
        assert_eq!(total, 255);
        assert!(out.iter().all(|n| !n.contains(&"203.0.113.5".parse::<IpAddr>().unwrap())));
    }

    #[test]
    fn a_subnet_block_around_the_built_in_range_keeps_the_rest() {
        let out = generate(&nets(&["96.45.17.160/28"]), &[]);
        let listed: Vec<u8> = (160u8..176)
            .filter(|i| {
                out.iter().any(|n| n.contains(&format!("96.45.17.{i}").parse::<IpAddr>().unwrap()))
            })
            .collect();
        assert_eq!(listed, [160, 161, 162, 163, 164, 165, 166, 167, 175]);
    }

    #[test]
    fn csv_is_strict() {
        let out = generate(&nets(&["198.51.100.0/24", "198.51.100.7"]), &[]);
        assert_eq!(to_csv(&out, false), "198.51.100.0/24\r\n");
        assert_eq!(to_csv(&out, true), "network\r\n198.51.100.0/24\r\n");
        assert_eq!(to_csv(&[], false), "");
    }

    #[test]
    fn bad_input_is_rejected() {
        assert!(parse_network("300.1.1.1").is_err());
        assert!(parse_network("example.com").is_err());
        assert_eq!(entry_text(&parse_network("10.1.2.3/8").unwrap()), "10.0.0.0/8");
    }
}
