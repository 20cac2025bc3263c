//! `pentavision ip …` end to end: rules land in the users database and shape the blocklist.

use std::process::Command;

fn pv(data: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pentavision"))
        .args(["--data-dir", data.to_str().unwrap(), "ip"])
        .args(args)
        .env_remove("PENTAVISION_CONFIG")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn block_allow_list_remove() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ok, out, _) =
        pv(d, &["block", "203.0.113.7", "--reason", "ssh brute force", "--expires", "1h"]);
    assert!(ok);
    assert!(out.starts_with("blocked 203.0.113.7 until "), "{out}");
    assert!(pv(d, &["block", "2001:db8::/32", "--fail2ban"]).0);
    assert!(pv(d, &["allow", "198.51.100.9/24"]).0, "host bits are cleared");

    let (ok, out, _) = pv(d, &["list"]);
    assert!(ok);
    let lines: Vec<&str> = out.lines().collect();
    // The private and loopback ranges are preloaded exemptions.
    let builtin: Vec<&&str> = lines.iter().filter(|l| l.contains("builtin")).collect();
    assert_eq!(builtin.len(), 6, "{out}");
    for range in ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "::1", "fc00::/7"]
    {
        assert!(builtin.iter().any(|l| l.contains(range)), "{range} preloaded: {out}");
    }
    let ours: Vec<&&str> = lines.iter().filter(|l| !l.contains("builtin")).collect();
    assert_eq!(ours.len(), 3, "{out}");
    assert!(ours[0].starts_with("exempt") && ours[0].contains("198.51.100.0/24"), "{out}");
    assert!(ours[1].contains("203.0.113.7") && ours[1].contains("ssh brute force"), "{out}");
    assert!(ours[2].contains("2001:db8::/32") && ours[2].contains("fail2ban"), "{out}");
    assert!(lines.iter().position(|l| l.starts_with("block")).unwrap() >= 7, "exemptions first");

    // Blocking again updates the rule rather than duplicating it.
    assert!(pv(d, &["block", "203.0.113.7"]).0);
    let (_, out, _) = pv(d, &["list"]);
    assert_eq!(out.lines().count(), 9);
    assert!(out.lines().any(|l| l.contains("203.0.113.7") && l.contains("expires never")), "{out}");

    // Preloaded exemptions are removable.
    let (ok, out, _) = pv(d, &["remove", "fc00::/7"]);
    assert!(ok, "{out}");
    assert!(!pv(d, &["list"]).1.contains("fc00::/7"));

    let (ok, out, _) = pv(d, &["remove", "203.0.113.7"]);
    assert!(ok);
    assert_eq!(out.trim(), "removed 1 rule for 203.0.113.7");
    let (ok, _, err) = pv(d, &["remove", "203.0.113.7"]);
    assert!(!ok);
    assert_eq!(err.trim(), "pentavision: no rule for 203.0.113.7");
}

#[test]
fn remove_block_only_keeps_an_exemption_of_the_same_address() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // An administrator exempted the address; fail2ban then banned it anyway.
    assert!(pv(d, &["allow", "203.0.113.40", "--reason", "office"]).0);
    assert!(pv(d, &["block", "203.0.113.40", "--fail2ban", "--expires", "1h"]).0);
    assert!(pv(d, &["block", "203.0.113.41", "--fail2ban"]).0);
    let rules_of = |d: &std::path::Path, net: &str| -> Vec<String> {
        pv(d, &["list"])
            .1
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some(net))
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect()
    };
    assert_eq!(rules_of(d, "203.0.113.40"), ["exempt", "block"]);

    // The unban lifts the block only.
    let (ok, out, err) = pv(d, &["remove", "203.0.113.40", "--block-only"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "removed 1 block rule for 203.0.113.40");
    assert_eq!(rules_of(d, "203.0.113.40"), ["exempt"], "the exemption stays");
    // Nothing left to unban: a one-line error, and the exemption is still untouched.
    let (ok, _, err) = pv(d, &["remove", "203.0.113.40", "--block-only"]);
    assert!(!ok);
    assert_eq!(err.trim(), "pentavision: no block rule for 203.0.113.40");
    assert_eq!(rules_of(d, "203.0.113.40"), ["exempt"]);
    // An address that only had a block loses it.
    assert!(pv(d, &["remove", "203.0.113.41", "--block-only"]).0);
    assert!(rules_of(d, "203.0.113.41").is_empty());
    // A preloaded exemption is never removed by --block-only either.
    let (ok, _, err) = pv(d, &["remove", "10.0.0.0/8", "--block-only"]);
    assert!(!ok, "no block rule for a preloaded exemption");
    assert!(err.contains("no block rule for 10.0.0.0/8"), "{err}");
    assert_eq!(rules_of(d, "10.0.0.0/8"), ["exempt"]);
    // Without the flag, every rule of the address goes.
    assert!(pv(d, &["block", "203.0.113.40"]).0);
    let (ok, out, _) = pv(d, &["remove", "203.0.113.40"]);
    assert!(ok);
    assert_eq!(out.trim(), "removed 2 rules for 203.0.113.40");
    assert!(rules_of(d, "203.0.113.40").is_empty());
}

#[test]
fn bad_input_is_one_line_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for args in [
        &["block", "300.1.1.1"][..],
        &["block", "example.com"],
        &["block", "198.51.100.1", "--expires", "soon"],
        &["allow", "198.51.100.1", "--expires", "0h"],
    ] {
        let (ok, _, err) = pv(d, args);
        assert!(!ok, "{args:?}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("pentavision: "), "{err}");
    }
    let (_, out, _) = pv(d, &["list"]);
    assert!(out.lines().all(|l| l.contains("builtin")), "only the preloaded rules: {out}");
}

#[test]
fn rule_changes_are_audited_and_the_chain_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(pv(d, &["block", "203.0.113.50", "--reason", "scanner"]).0);
    assert!(pv(d, &["allow", "198.51.100.0/24"]).0);
    assert!(pv(d, &["remove", "203.0.113.50"]).0);
    let verify = |d: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_pentavision"))
            .args(["--data-dir", d.to_str().unwrap(), "audit", "verify"])
            .env_remove("PENTAVISION_CONFIG")
            .output()
            .unwrap()
    };
    let out = verify(d);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "audit chain intact: 3 events");

    // Tamper with the second event directly in the database file.
    let url = format!("sqlite://{}", d.join("users.sqlite").display());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use sea_orm::ConnectionTrait;
        let db = sea_orm::Database::connect(url).await.unwrap();
        db.execute_unprepared("UPDATE audit_events SET target_id = '192.0.2.1' WHERE id = 2")
            .await
            .unwrap();
        db.close().await.unwrap();
    });
    let out = verify(d);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("broken at event #2"), "{err}");
}
