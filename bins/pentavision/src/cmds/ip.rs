//! `pentavision ip block|allow|remove|list|country`: IP rules and the country policy from the
//! command line, for scripts and fail2ban actions. Changes apply to the running server and the
//! blocklist daemon at once (both read the users database). Every change is an audit event
//! (actor `cli` or `fail2ban`).

use std::path::{Path, PathBuf};

use pv_core::config::CliOverrides;
use pv_core::{Clock, SystemClock};
use pv_security::access::{self, NewRule, RuleAction, RuleSource};
use pv_security::audit::{AuditLog, Event};
use pv_security::country::{self, CountryPolicy, GeoDb, PolicyMode};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: IpCommand,
}

#[derive(Debug, clap::Subcommand)]
enum IpCommand {
    /// Block an address or CIDR network.
    Block(RuleArgs),
    /// Exempt an address or CIDR network from lockout, blocks and blocklist publication.
    Allow(RuleArgs),
    /// Remove the block and exemption rules of exactly this address or network.
    Remove {
        /// Address or CIDR, as given when it was added.
        network: String,
        /// Remove only block rules; an exemption of the address stays (what a fail2ban unban
        /// uses, so it can never lift an administrator's exemption).
        #[arg(long)]
        block_only: bool,
    },
    /// List the rules in force (exemptions first).
    List,
    /// Show or set the country policy (allow-list or deny-list of countries, looked up in a
    /// MaxMind-format .mmdb database). The exemption list wins over it.
    #[command(subcommand)]
    Country(CountryCommand),
}

#[derive(Debug, clap::Subcommand)]
enum CountryCommand {
    /// Show the country policy and whether its database opens.
    Show,
    /// Change the country policy; options not given keep their current value.
    Set {
        /// off (no filtering), allow (only the listed countries may connect) or deny (the
        /// listed countries are refused).
        #[arg(long, value_parser = ["off", "allow", "deny"])]
        mode: Option<String>,
        /// ISO 3166-1 alpha-2 codes, comma-separated, e.g. DE,FR (empty to clear).
        #[arg(long, value_name = "CODES")]
        countries: Option<String>,
        /// The MaxMind-format country database (GeoLite2-Country, DB-IP or ip-location-db
        /// .mmdb); required unless the mode is off.
        #[arg(long, value_name = "PATH")]
        mmdb: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
struct RuleArgs {
    /// IPv4/IPv6 address or CIDR network.
    network: String,
    /// Why (shown in lists and the admin UI).
    #[arg(long)]
    reason: Option<String>,
    /// Lapse after this long: 90s, 30m, 1h, 7d, 2w. Default: permanent.
    #[arg(long, value_name = "DURATION")]
    expires: Option<String>,
    /// Record the rule as made by fail2ban rather than by hand.
    #[arg(long)]
    fail2ban: bool,
}

pub async fn run(
    config_path: Option<&Path>,
    overrides: &CliOverrides,
    args: Args,
) -> anyhow::Result<()> {
    let db = super::open_users_db(config_path, overrides, true).await?;
    let now = SystemClock::new().now();
    let audit = AuditLog::new(db.clone());
    match args.command {
        IpCommand::Block(a) => add(&db, &audit, a, RuleAction::Block, now).await?,
        IpCommand::Allow(a) => add(&db, &audit, a, RuleAction::Exempt, now).await?,
        IpCommand::Remove { network, block_only } => {
            let n = if block_only {
                access::remove_action_rules(&db, &network, RuleAction::Block).await?
            } else {
                access::remove_rules(&db, &network).await?
            };
            let event = Event::new("cli", "ip_rule.remove", "ip_rule", &network)
                .details(serde_json::json!({ "removed": n, "block_only": block_only }));
            audit.append(event, now).await?;
            let kind = if block_only { "block rule" } else { "rule" };
            println!("removed {n} {kind}{} for {network}", if n == 1 { "" } else { "s" });
        }
        IpCommand::Country(CountryCommand::Show) => show_country(&db).await?,
        IpCommand::Country(CountryCommand::Set { mode, countries, mmdb }) => {
            set_country(&db, &audit, mode, countries, mmdb, now).await?
        }
        IpCommand::List => {
            let rules = access::list_rules(&db, now).await?;
            if rules.is_empty() {
                println!("no IP rules");
            }
            for r in rules {
                let expires = r
                    .expires_at
                    .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                    .unwrap_or_else(|| "never".into());
                println!(
                    "{:<7} {:<43} {:<9} expires {:<20} {}",
                    r.action,
                    r.network,
                    r.source,
                    expires,
                    r.reason.unwrap_or_default()
                );
            }
        }
    }
    let _ = db.close().await;
    Ok(())
}

async fn add(
    db: &sea_orm::DatabaseConnection,
    audit: &AuditLog,
    a: RuleArgs,
    action: RuleAction,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    let network = pv_security::blocklist::parse_network(&a.network)?;
    let expires_at = a.expires.as_deref().map(access::parse_duration).transpose()?.map(|d| now + d);
    let source = if a.fail2ban { RuleSource::Fail2ban } else { RuleSource::Cli };
    let rule = NewRule { network, action, reason: a.reason, source, created_by: None, expires_at };
    let saved = access::add_rule(db, rule, now).await?;
    let event = Event::new(
        source.as_str(),
        &format!("ip_rule.{}", action.as_str()),
        "ip_rule",
        &saved.network,
    )
    .details(serde_json::json!({
        "reason": saved.reason,
        "expires_at": saved.expires_at.map(|t| t.to_rfc3339()),
    }));
    audit.append(event, now).await?;
    let verb = if action == RuleAction::Block { "blocked" } else { "exempted" };
    match saved.expires_at {
        Some(t) => println!("{verb} {} until {}", saved.network, t.format("%Y-%m-%dT%H:%M:%SZ")),
        None => println!("{verb} {}", saved.network),
    }
    Ok(())
}

async fn show_country(db: &sea_orm::DatabaseConnection) -> anyhow::Result<()> {
    let policy = country::load_policy(db).await?;
    let codes: Vec<&str> = policy.countries.iter().map(|c| c.as_str()).collect();
    println!("mode       {}", policy.mode);
    println!("countries  {}", if codes.is_empty() { "(none)".into() } else { codes.join(",") });
    match &policy.mmdb_path {
        None => println!("mmdb       (none)"),
        Some(path) => match GeoDb::open(path) {
            Ok(geo) => {
                let built = geo
                    .built_at()
                    .map(|t| format!(", built {}", t.format("%Y-%m-%d")))
                    .unwrap_or_default();
                println!("mmdb       {} ({}{built})", path.display(), geo.database_type());
            }
            Err(e) => println!("mmdb       {} (unusable: {e})", path.display()),
        },
    }
    Ok(())
}

async fn set_country(
    db: &sea_orm::DatabaseConnection,
    audit: &AuditLog,
    mode: Option<String>,
    countries: Option<String>,
    mmdb: Option<PathBuf>,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    let before = country::load_policy(db).await.unwrap_or_else(|e| {
        eprintln!("the stored country policy is unreadable ({e}); starting from off");
        CountryPolicy::default()
    });
    let mut policy = before.clone();
    if let Some(mode) = mode {
        policy.mode = mode.parse::<PolicyMode>()?;
    }
    if let Some(countries) = countries {
        policy.countries = country::parse_countries(&countries)?;
    }
    if let Some(path) = mmdb {
        // The server resolves the path from its own working directory: store it absolute.
        policy.mmdb_path = Some(std::path::absolute(&path)?);
    }
    let saved = country::save_policy(db, &policy, None, now).await?;
    let codes = |p: &CountryPolicy| p.countries.iter().map(|c| c.to_string()).collect::<Vec<_>>();
    let event = Event::new("cli", "country_policy.set", "country_policy", &saved.id.to_string())
        .details(serde_json::json!({
            "mode": saved.mode,
            "countries": saved.countries,
            "mmdb_path": saved.mmdb_path,
            "previous": {
                "mode": before.mode.as_str(),
                "countries": codes(&before),
                "mmdb_path": before.mmdb_path.as_ref().map(|p| p.display().to_string()),
            },
        }));
    audit.append(event, now).await?;
    let list = codes(&CountryPolicy::from_row(&saved)?).join(",");
    match saved.mode.as_str() {
        "off" => println!("country policy off"),
        "allow" => println!("country policy: only {list} may connect"),
        _ => println!("country policy: {list} refused"),
    }
    Ok(())
}
