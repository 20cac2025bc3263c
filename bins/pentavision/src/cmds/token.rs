//! `pentavision token create|revoke|list`: API tokens from the command line (for scripts and
//! integrations). Each change is an audit event.

use std::path::Path;

use pv_core::config::CliOverrides;
use pv_security::audit::{AuditLog, Event};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TokenCommand {
    /// Create a token acting as USER and print its secret (shown once).
    Create {
        /// The user the token acts as.
        #[arg(long)]
        user: String,
        /// A label for the token.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Lifetime, e.g. 30m, 12h, 90d (default: until revoked).
        #[arg(long)]
        expires: Option<String>,
        /// Permission key the token is limited to (repeatable; default: all of the user's).
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
    /// Revoke token ID.
    Revoke {
        /// The token's id (from `pentavision token list`).
        id: i64,
    },
    /// List tokens (never their secrets).
    List,
}

pub async fn run(
    config_path: Option<&Path>,
    overrides: &CliOverrides,
    args: Args,
) -> anyhow::Result<()> {
    let db = super::open_users_db(config_path, overrides, true).await?;
    let now = chrono::Utc::now();
    let audit = AuditLog::new(db.clone());
    match args.command {
        TokenCommand::Create { user, name, expires, scopes } => {
            let Some(owner) = pv_security::account::find_by_username(&db, &user).await? else {
                anyhow::bail!("no user named {user:?}");
            };
            for s in &scopes {
                if pv_security::rbac::Permission::from_key(s).is_none() {
                    anyhow::bail!("unknown permission {s:?} (e.g. cameras.view)");
                }
            }
            let expires_at = match expires {
                Some(text) => Some(now + pv_security::access::parse_duration(&text)?),
                None => None,
            };
            let new = pv_security::token::NewToken { name, scopes, expires_at };
            let (secret, row) = pv_security::token::create(&db, owner.id, &new, now).await?;
            let event = Event::new("cli", "token.create", "api_token", &row.id.to_string())
                .details(serde_json::json!({ "user": owner.username, "prefix": row.prefix }));
            audit.append(event, now).await?;
            println!("{secret}");
            eprintln!(
                "token {} for {} created{}; send it as `Authorization: Bearer …`. It is not shown again.",
                row.id,
                owner.username,
                row.expires_at.map(|t| format!(", expires {}", t.to_rfc3339())).unwrap_or_default()
            );
        }
        TokenCommand::Revoke { id } => {
            let row = pv_security::token::revoke(&db, id, None, now).await?;
            let event = Event::new("cli", "token.revoke", "api_token", &id.to_string())
                .details(serde_json::json!({ "prefix": row.prefix }));
            audit.append(event, now).await?;
            println!("token {id} revoked");
        }
        TokenCommand::List => {
            for t in pv_security::token::list(&db, None).await? {
                let state = if t.revoked_at.is_some() {
                    "revoked".to_string()
                } else if t.expires_at.is_some_and(|e| e <= now) {
                    "expired".to_string()
                } else {
                    "live".to_string()
                };
                println!("{}\tuser {}\t{}\tpvt_{}…\t{state}", t.id, t.user_id, t.name, t.prefix);
            }
        }
    }
    let _ = db.close().await;
    Ok(())
}
