//! IP access rules: blocked networks and the exemption list (the one allow-list: it exempts
//! from lockout, from IP/country blocks and from blocklist publication). Rules live in the users
//! database (`ip_rules`); the command line (`pentavision ip …`), the admin UI and fail2ban actions
//! all change them through this module.

use chrono::{DateTime, Duration, Utc};
use ipnet::IpNet;
use pv_core::db::users::ip_rule;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, Set,
};

use crate::blocklist::{entry_text, parse_network};
use crate::{Error, Result};

/// What a rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    /// Refuse the network (and publish it on the blocklist).
    Block,
    /// Exempt the network from lockout, blocks and publication.
    Exempt,
}

impl RuleAction {
    /// The stored value (`block`, `exempt`).
    pub fn as_str(self) -> &'static str {
        match self {
            RuleAction::Block => "block",
            RuleAction::Exempt => "exempt",
        }
    }
}

/// Who made a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleSource {
    /// An administrator in the UI or API.
    Admin,
    /// The command line.
    Cli,
    /// A fail2ban action (the command line with `--source fail2ban`).
    Fail2ban,
}

impl RuleSource {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleSource::Admin => "admin",
            RuleSource::Cli => "cli",
            RuleSource::Fail2ban => "fail2ban",
        }
    }
}

/// A rule to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRule {
    /// The address or network (host bits cleared).
    pub network: IpNet,
    /// Block or exempt.
    pub action: RuleAction,
    /// Why, for the list and the audit log.
    pub reason: Option<String>,
    /// Who.
    pub source: RuleSource,
    /// The acting user, when a user.
    pub created_by: Option<i64>,
    /// When the rule lapses; None: permanent.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Parse a duration such as `90s`, `30m`, `1h`, `7d`, `2w`.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let text = text.trim();
    let quoted = pv_core::input::quote(text);
    let bad = || Error::InvalidInput(format!("{quoted} is not a duration like 30m, 1h, 7d or 2w"));
    let unit_at = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(unit_at);
    let n: i64 = number.parse().map_err(|_| bad())?;
    if n <= 0 {
        return Err(bad());
    }
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad()),
    };
    n.checked_mul(seconds)
        .filter(|s| *s <= 100 * 365 * 86_400)
        .map(Duration::seconds)
        .ok_or_else(|| Error::InvalidInput(format!("{quoted} is longer than 100 years")))
}

/// Add a rule, or update the reason/expiry of the same network and action. Returns the row.
pub async fn add_rule(
    db: &DatabaseConnection,
    rule: NewRule,
    now: DateTime<Utc>,
) -> Result<ip_rule::Model> {
    if let Some(expires) = rule.expires_at
        && expires <= now
    {
        return Err(Error::InvalidInput("the expiry time is in the past".into()));
    }
    // Stored canonically: a host as a bare address, a network as CIDR with host bits cleared.
    let network = entry_text(&rule.network.trunc());
    let existing = ip_rule::Entity::find()
        .filter(ip_rule::Column::Network.eq(network.clone()))
        .filter(ip_rule::Column::Action.eq(rule.action.as_str()))
        .one(db)
        .await?;
    let model = match existing {
        Some(row) => {
            let mut active: ip_rule::ActiveModel = row.into();
            active.reason = Set(rule.reason);
            active.source = Set(rule.source.as_str().into());
            active.created_by = Set(rule.created_by);
            active.created_at = Set(now);
            active.expires_at = Set(rule.expires_at);
            active.update(db).await?
        }
        None => {
            ip_rule::ActiveModel {
                network: Set(network),
                action: Set(rule.action.as_str().into()),
                reason: Set(rule.reason),
                source: Set(rule.source.as_str().into()),
                created_by: Set(rule.created_by),
                created_at: Set(now),
                expires_at: Set(rule.expires_at),
                ..Default::default()
            }
            .insert(db)
            .await?
        }
    };
    tracing::info!(network = %model.network, action = %model.action, source = %model.source, "ip rule saved");
    Ok(model)
}

/// Remove every rule (block and exempt) for exactly this address or network. Returns how many
/// were removed; removing nothing is an error naming the network.
pub async fn remove_rules(db: &DatabaseConnection, network: &str) -> Result<u64> {
    remove_matching(db, network, None).await
}

/// Remove only the rules with `action` for exactly this address or network: `Block` lifts a
/// block and never touches an exemption (what a fail2ban unban does). Removing nothing is an
/// error naming the network.
pub async fn remove_action_rules(
    db: &DatabaseConnection,
    network: &str,
    action: RuleAction,
) -> Result<u64> {
    remove_matching(db, network, Some(action)).await
}

async fn remove_matching(
    db: &DatabaseConnection,
    network: &str,
    action: Option<RuleAction>,
) -> Result<u64> {
    let net = entry_text(&parse_network(network)?);
    let mut delete =
        ip_rule::Entity::delete_many().filter(ip_rule::Column::Network.eq(net.clone()));
    if let Some(action) = action {
        delete = delete.filter(ip_rule::Column::Action.eq(action.as_str()));
    }
    let removed = delete.exec(db).await?.rows_affected;
    if removed == 0 {
        return Err(Error::NotFound(match action {
            Some(a) => format!("no {} rule for {net}", a.as_str()),
            None => format!("no rule for {net}"),
        }));
    }
    tracing::info!(network = %net, action = action.map(RuleAction::as_str), removed, "ip rules removed");
    Ok(removed)
}

/// The rules in force at `now` (expired ones left out), exemptions first, then by network.
pub async fn list_rules(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
) -> Result<Vec<ip_rule::Model>> {
    let mut rows = ip_rule::Entity::find()
        .filter(
            Condition::any()
                .add(ip_rule::Column::ExpiresAt.is_null())
                .add(ip_rule::Column::ExpiresAt.gt(now)),
        )
        .order_by_asc(ip_rule::Column::Id)
        .all(db)
        .await?;
    rows.sort_by_key(|r| {
        let net = parse_network(&r.network).ok();
        (r.action != "exempt", net.map(|n| (matches!(n, IpNet::V6(_)), n)), r.id)
    });
    Ok(rows)
}

/// The rules in force, ready to decide about a client address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSet {
    blocked: Vec<IpNet>,
    exempt: Vec<IpNet>,
}

/// What [`RuleSet::decide`] says about a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// On the exemption list: never blocked, never locked out.
    Exempt,
    /// On the blocklist (and not exempt).
    Blocked,
    /// Neither.
    Neutral,
}

impl RuleSet {
    /// A rule set from blocked and exempt networks.
    pub fn new(blocked: Vec<IpNet>, exempt: Vec<IpNet>) -> Self {
        Self { blocked: IpNet::aggregate(&blocked), exempt: IpNet::aggregate(&exempt) }
    }

    /// Load the rules in force at `now`.
    pub async fn load(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<Self> {
        let (blocked, exempt) = crate::blocklist::load_rules(db, now).await?;
        Ok(Self::new(blocked, exempt))
    }

    /// Decide about `ip`. The exemption list wins over any block; IPv4-mapped IPv6 addresses
    /// are judged as the IPv4 address they carry.
    pub fn decide(&self, ip: std::net::IpAddr) -> Decision {
        let ip = ip.to_canonical();
        if self.exempt.iter().any(|n| n.contains(&ip)) {
            Decision::Exempt
        } else if self.blocked.iter().any(|n| n.contains(&ip)) {
            Decision::Blocked
        } else {
            Decision::Neutral
        }
    }
}

/// Delete rules that expired before `now`; returns how many.
pub async fn purge_expired(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<u64> {
    Ok(ip_rule::Entity::delete_many()
        .filter(ip_rule::Column::ExpiresAt.lte(now))
        .exec(db)
        .await?
        .rows_affected)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn exemptions_win_and_both_families_work() {
        let nets = |l: &[&str]| l.iter().map(|s| parse_network(s).unwrap()).collect::<Vec<_>>();
        let rules = RuleSet::new(
            nets(&["203.0.113.0/24", "2001:db8::/32"]),
            nets(&["203.0.113.9", "2001:db8:1::/48"]),
        );
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert_eq!(rules.decide(ip("203.0.113.8")), Decision::Blocked);
        assert_eq!(rules.decide(ip("203.0.113.9")), Decision::Exempt);
        assert_eq!(rules.decide(ip("::ffff:203.0.113.8")), Decision::Blocked, "v4-mapped");
        assert_eq!(rules.decide(ip("2001:db8::5")), Decision::Blocked);
        assert_eq!(rules.decide(ip("2001:db8:1::5")), Decision::Exempt);
        assert_eq!(rules.decide(ip("198.51.100.1")), Decision::Neutral);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::seconds(90));
        assert_eq!(parse_duration("1h").unwrap(), Duration::hours(1));
        assert_eq!(parse_duration("7d").unwrap(), Duration::days(7));
        assert_eq!(parse_duration("2w").unwrap(), Duration::weeks(2));
        for bad in ["", "h", "1", "0h", "-1h", "1y", "1.5h", "99999999999999w"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
