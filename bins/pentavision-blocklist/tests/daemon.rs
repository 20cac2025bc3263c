//! End-to-end: the real `pentavision-blocklist` binary serving rules from the users database.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use chrono::Utc;
use pv_core::config::DbKind;
use pv_core::db::users::{blocklist_setting, ip_rule};
use pv_core::testkit::{Engine, TestEnv};
use sea_orm::{ActiveModelTrait, Set};

#[tokio::test]
async fn serves_rules_from_the_database_with_exclusions_and_token() {
    let env = TestEnv::new(Engine::Sqlite).await;
    let users = pv_core::db::connect(&env.config, DbKind::Users).await.unwrap();
    pv_core::db::migrate(DbKind::Users, &users).await.unwrap();
    let now = Utc::now();
    for (network, action, expires) in [
        ("2001:db8::/32", "block", None),
        ("203.0.113.0/24", "block", None),
        ("203.0.113.9", "exempt", None),
        ("192.168.250.4", "block", None),
        ("198.51.100.1", "block", Some(now - chrono::Duration::hours(1))),
        ("198.51.100.2", "block", Some(now + chrono::Duration::hours(1))),
    ] {
        ip_rule::ActiveModel {
            network: Set(network.into()),
            action: Set(action.into()),
            source: Set("cli".into()),
            created_at: Set(now),
            expires_at: Set(expires),
            ..Default::default()
        }
        .insert(&users)
        .await
        .unwrap();
    }

    let mut child = Command::new(env!("CARGO_BIN_EXE_pentavision-blocklist"))
        .args(["--data-dir", env.data_dir.path().to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .env_remove("PENTAVISION_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let line = BufReader::new(child.stdout.take().unwrap()).lines().next().unwrap().unwrap();
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap().to_string();

    let resp = reqwest::get(&url).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    let body = resp.text().await.unwrap();
    let lines: Vec<&str> = body.split("\r\n").collect();
    // 203.0.113.0/24 without .9 is 8 CIDRs; then the unexpired host; IPv6 last; expired and
    // never-block entries are absent.
    assert_eq!(lines.last(), Some(&""), "CRLF after every line");
    assert_eq!(lines[lines.len() - 2], "2001:db8::/32");
    assert!(lines.contains(&"198.51.100.2"));
    assert!(!body.contains("198.51.100.1\r\n") && !body.contains("192.168.250"));
    assert!(!body.contains("203.0.113.9\r\n") && !body.contains("203.0.113.0/24"));
    assert!(
        body.starts_with("198.51.100.2\r\n203.0.113.0/29\r\n203.0.113.8\r\n203.0.113.10/31\r\n"),
        "{body}"
    );
    let with_header = reqwest::get(format!("{url}?header=1")).await.unwrap().text().await.unwrap();
    assert!(with_header.starts_with("network\r\n"));

    // Conditional requests: the same list is 304 without a body.
    let first = reqwest::get(&url).await.unwrap();
    let etag = first.headers()["etag"].clone();
    assert_eq!(first.headers()["cache-control"], "no-cache, max-age=60");
    let client = reqwest::Client::new();
    let again = client.get(&url).header("if-none-match", etag.clone()).send().await.unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"], etag);
    assert_eq!(again.text().await.unwrap(), "");

    // A token set in the database applies without a restart (within the 1 s re-validation).
    blocklist_setting::ActiveModel {
        enabled: Set(true),
        token_hash: Set(Some(pv_web::blocklist::sha256_hex("s3cret-token"))),
        requests_per_minute: Set(60),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&users)
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let denied = loop {
        let r = client.get(&url).send().await.unwrap();
        if r.status() != 200 || std::time::Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(denied.status(), 401);
    assert_eq!(denied.headers()["content-type"], "application/problem+json");
    let wrong = client.get(&url).bearer_auth("nope").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let ok = client.get(&url).bearer_auth("s3cret-token").send().await.unwrap();
    assert_eq!(ok.status(), 200);

    // The database setting allows 60 requests a minute; the 61st in the same minute is refused
    // (unless the minute rolls over while we ask, which the loop tolerates).
    let mut limited = None;
    for _ in 0..70 {
        let r = client.get(&url).bearer_auth("s3cret-token").send().await.unwrap();
        if r.status() == 429 {
            limited = Some(r);
            break;
        }
    }
    let limited = limited.expect("rate limit applies");
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(limited.headers()["content-type"], "application/problem+json");

    let _ = child.kill();
    let _ = child.wait();
}
