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
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};

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
    text.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
        let text = pv_core::input::quote(text);
        Error::InvalidInput(format!("{text} is not an IP address or CIDR network"))
    })
}

/// The built-in never-block networks.
pub fn built_in_exemptions() -> Vec<IpNet> {
    BUILT_IN_NEVER_BLOCK.iter().filter_map(|s| s.parse().ok()).collect()
}

/// Build the published list: `blocked` minus `exempt` and the built-in exemptions, as the
/// smallest set of CIDR networks that covers exactly the remaining addresses (adjacent networks
/// merged, contained ones dropped, a blocked network split around an exemption), sorted IPv4
/// before IPv6 and numerically.
///
/// Works on address intervals: both sides are merged into sorted disjoint intervals, the
/// exemptions are swept out of the blocks, and each remaining interval is cut into the largest
/// aligned CIDR blocks. `O(n log n)` in the number of rules.
pub fn generate(blocked: &[IpNet], exempt: &[IpNet]) -> Vec<IpNet> {
    let mut never: Vec<IpNet> = built_in_exemptions();
    never.extend_from_slice(exempt);
    let mut out = Vec::new();
    for family in [Family::V4, Family::V6] {
        let keep = merge(family.ranges(blocked));
        let drop = merge(family.ranges(&never));
        for range in subtract_ranges(&keep, &drop) {
            family.cidrs(range, &mut out);
        }
    }
    out
}

/// An inclusive address interval, `start..=end`, of one family (IPv4 addresses widened).
type Range = (u128, u128);

#[derive(Clone, Copy)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn bits(self) -> u32 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// The intervals of the networks of this family.
    fn ranges(self, nets: &[IpNet]) -> Vec<Range> {
        nets.iter()
            .filter_map(|net| match (self, net.trunc()) {
                (Family::V4, IpNet::V4(n)) => {
                    Some((u128::from(u32::from(n.network())), u128::from(u32::from(n.broadcast()))))
                }
                (Family::V6, IpNet::V6(n)) => {
                    Some((u128::from(n.network()), u128::from(n.broadcast())))
                }
                _ => None,
            })
            .collect()
    }

    /// Append the largest aligned CIDR blocks that exactly cover `range`, in address order.
    fn cidrs(self, (mut start, end): Range, out: &mut Vec<IpNet>) {
        let bits = self.bits();
        loop {
            // The largest block that starts at `start` (alignment) and ends by `end`.
            let mut size = start.trailing_zeros().min(bits);
            while size > 0 && start | low_mask(size) > end {
                size -= 1;
            }
            let prefix = u8::try_from(bits - size).unwrap_or(0);
            let net = match self {
                Family::V4 => u32::try_from(start)
                    .ok()
                    .and_then(|a| ipnet::Ipv4Net::new(a.into(), prefix).ok())
                    .map(IpNet::V4),
                Family::V6 => ipnet::Ipv6Net::new(start.into(), prefix).ok().map(IpNet::V6),
            };
            out.extend(net);
            let last = start | low_mask(size);
            if last >= end {
                return;
            }
            start = last + 1;
        }
    }
}

/// The lowest `size` bits set (`size` ≤ 128).
fn low_mask(size: u32) -> u128 {
    if size >= 128 { u128::MAX } else { (1u128 << size) - 1 }
}

/// Sort and merge overlapping or adjacent intervals.
fn merge(mut ranges: Vec<Range>) -> Vec<Range> {
    ranges.sort_unstable();
    let mut out: Vec<Range> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match out.last_mut() {
            Some(last) if last.1 == u128::MAX || start <= last.1 + 1 => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

/// `keep` without `drop`; both sorted, disjoint and merged.
fn subtract_ranges(keep: &[Range], drop: &[Range]) -> Vec<Range> {
    let mut out = Vec::with_capacity(keep.len());
    let mut first = 0;
    for &(start, end) in keep {
        while first < drop.len() && drop[first].1 < start {
            first += 1;
        }
        let mut cur = Some(start);
        for &(hole_start, hole_end) in drop[first..].iter().take_while(|h| h.0 <= end) {
            let Some(from) = cur else { break };
            if hole_start > from {
                out.push((from, hole_start - 1));
            }
            cur = if hole_end >= end { None } else { Some(hole_end + 1) };
        }
        if let Some(from) = cur {
            out.push((from, end));
        }
    }
    out
}

/// Render one entry: a single host as a bare address, a network as CIDR.
pub fn entry_text(net: &IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() { net.addr().to_string() } else { net.to_string() }
}

/// The optional header line of the CSV.
pub const CSV_HEADER: &str = "network\r\n";

/// The list as RFC 4180 CSV: one entry per line, CRLF line ends, no header unless asked.
pub fn to_csv(entries: &[IpNet], header: bool) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(entries.len() * 20 + CSV_HEADER.len());
    if header {
        out.push_str(CSV_HEADER);
    }
    for e in entries {
        // Writing to a String cannot fail.
        let _ = if e.prefix_len() == e.max_prefix_len() {
            write!(out, "{}\r\n", e.addr())
        } else {
            write!(out, "{e}\r\n")
        };
    }
    out
}

/// A cheap fingerprint of the rules in force: if it is unchanged, so is the list.
///
/// Taken over the rules not expired at `now`: their count (falls when a rule is removed or
/// lapses), the highest id (rises with every insert; ids are never reused) and the latest
/// `created_at` (re-saving a rule, as `access::add_rule` does, sets it to the time of the save).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesMarker {
    /// Rules in force.
    pub live: i64,
    /// Highest id among them.
    pub max_id: Option<i64>,
    /// Latest creation or update time among them.
    pub latest_change: Option<DateTime<Utc>>,
}

/// Read the [`RulesMarker`] at `now` (one aggregate query).
pub async fn rules_marker(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<RulesMarker> {
    let row: Option<(i64, Option<i64>, Option<DateTime<Utc>>)> = ip_rule::Entity::find()
        .select_only()
        .column_as(Expr::from(Func::count(Expr::col(ip_rule::Column::Id))), "live")
        .column_as(Expr::from(Func::max(Expr::col(ip_rule::Column::Id))), "max_id")
        .column_as(Expr::from(Func::max(Expr::col(ip_rule::Column::CreatedAt))), "latest_change")
        .filter(in_force(now))
        .into_tuple()
        .one(db)
        .await?;
    let (live, max_id, latest_change) = row.unwrap_or((0, None, None));
    Ok(RulesMarker { live, max_id, latest_change })
}

fn in_force(now: DateTime<Utc>) -> Condition {
    Condition::any()
        .add(ip_rule::Column::ExpiresAt.is_null())
        .add(ip_rule::Column::ExpiresAt.gt(now))
}

/// Read the current `block` and `exempt` rules (not expired at `now`) from the users database.
/// Rules whose network does not parse are skipped with a warning.
pub async fn load_rules(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
) -> Result<(Vec<IpNet>, Vec<IpNet>)> {
    let rules = ip_rule::Entity::find().filter(in_force(now)).all(db).await?;
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
    fn a_blocked_16_minus_an_exempt_24_is_the_minimal_cover() {
        let out = generate(&nets(&["198.18.0.0/16"]), &nets(&["198.18.77.0/24"]));
        assert_eq!(
            texts(&out),
            [
                "198.18.0.0/18",
                "198.18.64.0/21",
                "198.18.72.0/22",
                "198.18.76.0/24",
                "198.18.78.0/23",
                "198.18.80.0/20",
                "198.18.96.0/19",
                "198.18.128.0/17",
            ]
        );
        let v6 = generate(&nets(&["2001:db8::/32"]), &nets(&["2001:db8:8000::/33"]));
        assert_eq!(texts(&v6), ["2001:db8::/33"]);
    }

    #[test]
    fn whole_address_spaces_and_the_last_address() {
        assert_eq!(texts(&generate(&nets(&["::/0"]), &[])), ["::/0"]);
        assert!(generate(&nets(&["::/0", "0.0.0.0/0"]), &nets(&["::/0", "0.0.0.0/0"])).is_empty());
        let all_v4 = generate(&nets(&["0.0.0.0/0"]), &[]);
        // Everything but the built-in ranges: 2^32 − 256 − 7 addresses.
        let total: u64 = all_v4.iter().map(|n| 1u64 << (32 - n.prefix_len())).sum();
        assert_eq!(total, (1u64 << 32) - 256 - 7);
        assert_eq!(all_v4.first().map(entry_text).as_deref(), Some("0.0.0.0/2"));
        let last = ["255.255.255.255", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"];
        assert_eq!(texts(&generate(&nets(&last), &nets(&["255.255.255.254/31"]))), [last[1]]);
        assert_eq!(texts(&generate(&nets(&last), &[])), last);
    }

    #[test]
    fn overlapping_and_adjacent_blocks_merge() {
        let out =
            generate(&nets(&["10.0.0.0/25", "10.0.0.128/25", "10.0.0.7", "10.0.1.0/24"]), &[]);
        assert_eq!(texts(&out), ["10.0.0.0/23"]);
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
