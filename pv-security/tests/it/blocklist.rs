//! Property test of the blocklist generator against a naive model: for random block and
//! exemption sets (IPv4 and IPv6, drawn around the built-in never-block ranges so they overlap
//! often), the published list covers exactly the blocked addresses that are neither exempt nor
//! built-in never-block ones, and it is sorted, disjoint and minimal.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;
use pv_security::blocklist::{built_in_exemptions, generate};

/// An inclusive interval of one family: (is IPv6, first, last).
type Interval = (bool, u128, u128);

fn interval(net: &IpNet) -> Interval {
    match net {
        IpNet::V4(n) => {
            (false, u128::from(u32::from(n.network())), u128::from(u32::from(n.broadcast())))
        }
        IpNet::V6(n) => (true, u128::from(n.network()), u128::from(n.broadcast())),
    }
}

fn addr(v6: bool, a: u128) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(a))
    } else {
        IpAddr::V4(Ipv4Addr::from(u32::try_from(a).expect("IPv4 address")))
    }
}

/// Sorted, merged (overlapping and adjacent joined) intervals.
fn merged(mut v: Vec<Interval>) -> Vec<Interval> {
    v.sort();
    let mut out: Vec<Interval> = Vec::new();
    for (f, s, e) in v {
        match out.last_mut() {
            Some(last) if last.0 == f && (last.2 == u128::MAX || s <= last.2 + 1) => {
                last.2 = last.2.max(e)
            }
            _ => out.push((f, s, e)),
        }
    }
    out
}

/// The model: cut the address line at every rule boundary and decide each elementary piece by
/// asking the rules directly (`IpNet::contains`) whether its first address is blocked and not
/// never-blocked.
fn expected(blocked: &[IpNet], never: &[IpNet]) -> Vec<Interval> {
    let mut cuts: Vec<(bool, u128)> = Vec::new();
    for net in blocked.iter().chain(never) {
        let (f, s, e) = interval(net);
        cuts.push((f, s));
        if let Some(next) = e.checked_add(1)
            && (f || next <= u128::from(u32::MAX))
        {
            cuts.push((f, next));
        }
    }
    cuts.sort();
    cuts.dedup();
    let mut pieces = Vec::new();
    for (i, &(f, s)) in cuts.iter().enumerate() {
        let family_max = if f { u128::MAX } else { u128::from(u32::MAX) };
        let e = match cuts.get(i + 1) {
            Some(&(g, next)) if g == f => next - 1,
            _ => family_max,
        };
        let a = addr(f, s);
        if blocked.iter().any(|n| n.contains(&a)) && !never.iter().any(|n| n.contains(&a)) {
            pieces.push((f, s, e));
        }
    }
    merged(pieces)
}

/// A network near one of a few anchors (so rules overlap, nest and touch) or anywhere.
fn v4_net() -> impl Strategy<Value = IpNet> {
    let near = |base: u32, span: u32| (0..span, 20u8..=32).prop_map(move |(o, p)| (base + o, p));
    prop_oneof![
        near(0x602D_1000, 0x200), // 96.45.16.0 – 96.45.17.255, around 96.45.17.168–174
        near(0xC0A8_F800, 0x400), // 192.168.248.0 – 192.168.251.255, around 192.168.250.0/24
        near(0xCB00_7000, 0x400), // 203.0.112.0 – 203.0.115.255
        (any::<u32>(), 0u8..=32),
    ]
    .prop_map(|(a, p)| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(a), p).expect("prefix").trunc()))
}

fn v6_net() -> impl Strategy<Value = IpNet> {
    let base = u128::from("2001:db8::".parse::<Ipv6Addr>().expect("address"));
    prop_oneof![
        (0u128..0x1000, 112u8..=128).prop_map(move |(o, p)| (base + o, p)),
        (any::<u128>(), 0u8..=128),
        Just((u128::MAX, 128)),
    ]
    .prop_map(|(a, p)| IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a), p).expect("prefix").trunc()))
}

fn net() -> impl Strategy<Value = IpNet> {
    prop_oneof![3 => v4_net(), 1 => v6_net()]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn published_list_is_exactly_blocked_minus_never_block_and_minimal(
        blocked in prop::collection::vec(net(), 0..24),
        exempt in prop::collection::vec(net(), 0..12),
    ) {
        let out = generate(&blocked, &exempt);
        let mut never = built_in_exemptions();
        never.extend_from_slice(&exempt);

        // Exactly the right addresses.
        let published: Vec<Interval> = out.iter().map(interval).collect();
        prop_assert_eq!(merged(published.clone()), expected(&blocked, &never));

        // Spot checks straight against the rules: the ends of every rule and their neighbours.
        for net in blocked.iter().chain(&never) {
            let (f, s, e) = interval(net);
            let max = if f { u128::MAX } else { u128::from(u32::MAX) };
            for a in [Some(s), Some(e), s.checked_sub(1), e.checked_add(1).filter(|a| *a <= max)]
                .into_iter()
                .flatten()
            {
                let a = addr(f, a);
                let want = blocked.iter().any(|n| n.contains(&a))
                    && !never.iter().any(|n| n.contains(&a));
                prop_assert_eq!(out.iter().any(|n| n.contains(&a)), want, "address {}", a);
            }
        }

        // Sorted IPv4 before IPv6 and numerically, disjoint (so none contains another), canonical
        // (host bits clear) and minimal: no two entries are the halves of one larger network.
        for w in published.windows(2) {
            let (a, b) = (w[0], w[1]);
            prop_assert!((a.0, a.2) < (b.0, b.1), "{:?}", out);
        }
        for n in &out {
            prop_assert_eq!(*n, n.trunc());
        }
        for w in out.windows(2) {
            let siblings = w[0].prefix_len() == w[1].prefix_len()
                && w[0].prefix_len() > 0
                && w[0].supernet() == w[1].supernet();
            prop_assert!(!siblings, "{} and {} should be one network", w[0], w[1]);
        }
    }
}

mod marker {
    //! The rules fingerprint the daemon re-validates against: it must change whenever the list
    //! can, on every engine.

    use chrono::{Duration, Utc};
    use pv_core::config::DbKind;
    use pv_core::testkit::{Engine, TestEnv};
    use pv_security::access::{self, NewRule, RuleAction, RuleSource};
    use pv_security::blocklist::{parse_network, rules_marker};

    fn rule(network: &str, expires_at: Option<chrono::DateTime<Utc>>) -> NewRule {
        NewRule {
            network: parse_network(network).expect("network"),
            action: RuleAction::Block,
            reason: None,
            source: RuleSource::Cli,
            created_by: None,
            expires_at,
        }
    }

    async fn changes_whenever_the_rules_in_force_change(engine: Engine) {
        let env = TestEnv::new(engine).await;
        let db = pv_core::db::connect(&env.config, DbKind::Users).await.expect("connect");
        pv_core::db::migrate(DbKind::Users, &db).await.expect("migrate");
        let t0 = Utc::now();
        let m0 = rules_marker(&db, t0).await.expect("marker");
        assert_eq!(m0, rules_marker(&db, t0).await.expect("marker"), "stable when unchanged");

        // Insert.
        let expiring = t0 + Duration::hours(1);
        access::add_rule(&db, rule("203.0.113.7", Some(expiring)), t0).await.expect("add");
        let m1 = rules_marker(&db, t0).await.expect("marker");
        assert_ne!(m1, m0);
        assert_eq!(m1.live, m0.live + 1);

        // Re-saving the same rule with another expiry (a fail2ban re-ban).
        let t1 = t0 + Duration::seconds(5);
        access::add_rule(&db, rule("203.0.113.7", Some(t1 + Duration::hours(2))), t1)
            .await
            .expect("update");
        let m2 = rules_marker(&db, t1).await.expect("marker");
        assert_ne!(m2, m1);

        // Lapse: the same database seen after the expiry.
        let later = t1 + Duration::hours(3);
        let m3 = rules_marker(&db, later).await.expect("marker");
        assert_eq!(m3.live, m2.live - 1);

        // Removal, and removal plus an insert (same count).
        access::add_rule(&db, rule("198.51.100.0/24", None), t1).await.expect("add");
        let m4 = rules_marker(&db, t1).await.expect("marker");
        access::remove_rules(&db, "198.51.100.0/24").await.expect("remove");
        let m5 = rules_marker(&db, t1).await.expect("marker");
        assert_ne!(m5, m4);
        access::add_rule(&db, rule("198.51.100.1", None), t1).await.expect("add");
        let m6 = rules_marker(&db, t1).await.expect("marker");
        assert_eq!(m6.live, m4.live);
        assert_ne!(m6, m4, "ids are never reused");
    }

    macro_rules! on_every_engine {
        ($($name:ident),+ $(,)?) => {
            mod sqlite { $(#[tokio::test] async fn $name() { super::$name(pv_core::testkit::Engine::Sqlite).await })+ }
            mod postgres { $(#[tokio::test] async fn $name() { super::$name(pv_core::testkit::Engine::Postgres).await })+ }
            mod mariadb { $(#[tokio::test] async fn $name() { super::$name(pv_core::testkit::Engine::MySql).await })+ }
        };
    }

    on_every_engine!(changes_whenever_the_rules_in_force_change);
}
