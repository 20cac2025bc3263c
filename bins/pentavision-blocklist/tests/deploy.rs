//! The files in `deploy/`: the systemd units (hardening present; `systemd-analyze verify` and
//! `security` when systemd-analyze is installed), the production config example (the daemon
//! starts with it), and the fail2ban filter and action (against log lines produced the way
//! `pv_core::telemetry` formats them; also through `fail2ban-regex` when fail2ban is installed).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use regex::Regex;

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy").join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(deploy(path)).unwrap_or_else(|e| panic!("deploy/{path}: {e}"))
}

/// Whether a program is on PATH.
fn installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// INI as systemd and Python's configparser (fail2ban) read it: `[section]`, `key = value`,
/// indented continuation lines (joined with newlines), `#`/`;` comments; a repeated key keeps
/// every value.
fn ini(text: &str) -> BTreeMap<(String, String), Vec<String>> {
    let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut section = String::new();
    let mut last: Option<(String, String)> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if trimmed.is_empty() {
            last = None;
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(key) = &last {
                let value = out.get_mut(key).and_then(|v| v.last_mut()).unwrap();
                value.push('\n');
                value.push_str(trimmed);
            }
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = name.to_string();
            last = None;
            continue;
        }
        let (key, value) =
            trimmed.split_once('=').unwrap_or_else(|| panic!("not key=value: {line}"));
        let key = (section.clone(), key.trim().to_string());
        out.entry(key.clone()).or_default().push(value.trim().to_string());
        last = Some(key);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// systemd

fn unit(name: &str) -> BTreeMap<(String, String), Vec<String>> {
    ini(&read(&format!("systemd/{name}")))
}

fn service_values(u: &BTreeMap<(String, String), Vec<String>>, key: &str) -> Vec<String> {
    u.get(&("Service".to_string(), key.to_string())).cloned().unwrap_or_default()
}

#[test]
fn units_are_hardened() {
    for name in ["pentavision-blocklist.service", "pentavision.service"] {
        let u = unit(name);
        let one = |key: &str| {
            let v = service_values(&u, key);
            assert_eq!(v.len(), 1, "{name}: exactly one {key}=, found {v:?}");
            v[0].clone()
        };
        for (key, want) in [
            ("NoNewPrivileges", "yes"),
            ("ProtectSystem", "strict"),
            ("ProtectHome", "yes"),
            ("PrivateTmp", "yes"),
            ("PrivateDevices", "yes"),
            ("ProtectKernelTunables", "yes"),
            ("ProtectKernelModules", "yes"),
            ("ProtectControlGroups", "yes"),
            ("RestrictNamespaces", "yes"),
            ("RestrictSUIDSGID", "yes"),
            ("LockPersonality", "yes"),
            ("SystemCallArchitectures", "native"),
            ("CapabilityBoundingSet", ""),
            ("User", "pentavision"),
            ("StateDirectory", "pentavision"),
            ("ReadOnlyPaths", "/etc/pentavision"),
            ("UMask", "0077"),
            ("Environment", "NO_COLOR=1"),
        ] {
            assert_eq!(one(key), want, "{name}: {key}");
        }
        let families = one("RestrictAddressFamilies");
        let families: Vec<&str> = families.split_whitespace().collect();
        assert!(families.contains(&"AF_INET") && families.contains(&"AF_INET6"), "{name}");
        assert!(!families.contains(&"AF_PACKET"), "{name}");
        let filters = service_values(&u, "SystemCallFilter");
        assert!(filters.iter().any(|f| f == "@system-service"), "{name}: {filters:?}");
        assert!(filters.iter().any(|f| f.starts_with('~') && f.contains("@privileged")), "{name}");
        assert!(one("ExecStart").contains(" --config /etc/pentavision/pentavision.toml"), "{name}");
    }
    let blocklist = unit("pentavision-blocklist.service");
    assert_eq!(
        service_values(&blocklist, "ExecStart"),
        ["/usr/local/bin/pentavision-blocklist --config /etc/pentavision/pentavision.toml \
             --listen 0.0.0.0:7080"]
    );
    assert_eq!(service_values(&blocklist, "MemoryDenyWriteExecute"), ["yes"]);
    let users = read("sysusers.d/pentavision.conf");
    assert!(users.lines().any(|l| l.starts_with("u pentavision ")), "{users}");
}

/// The units with `ExecStart` pointing at programs that exist here (systemd-analyze checks
/// that the command is executable): the real daemon, and `true` standing in for the server.
fn units_in_temp_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_pentavision-blocklist"),
        bin.join("pentavision-blocklist"),
    )
    .unwrap();
    let truth = ["/usr/bin/true", "/bin/true"].into_iter().find(|p| Path::new(p).exists()).unwrap();
    std::os::unix::fs::symlink(truth, bin.join("pentavision")).unwrap();
    for name in ["pentavision-blocklist.service", "pentavision.service"] {
        let text = read(&format!("systemd/{name}"))
            .replace("ExecStart=/usr/local/bin/", &format!("ExecStart={}/", bin.display()));
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

#[test]
fn systemd_analyze_verify_and_security() {
    if !installed("systemd-analyze") {
        eprintln!("systemd-analyze not installed; only the unit keys were checked");
        return;
    }
    let dir = units_in_temp_dir();
    let names = ["pentavision-blocklist.service", "pentavision.service"];
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(names.map(|n| dir.path().join(n)))
        .output()
        .unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // Unknown keys and bad values are only warnings (exit 0): any output is a failure.
    assert!(out.status.success() && text.trim().is_empty(), "systemd-analyze verify:\n{text}");

    // The exposure score (0 best … 10), where this systemd can score unit files offline.
    let level = Regex::new(r"Overall exposure level for \S+: ([0-9.]+)").unwrap();
    for (name, at_most) in [(names[0], 2.0), (names[1], 2.5)] {
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--no-pager"])
            .arg(dir.path().join(name))
            .output()
            .unwrap();
        if !out.status.success() && out.stdout.is_empty() {
            eprintln!("systemd-analyze security --offline unsupported; skipped");
            return;
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let score: f64 = level.captures(&text).unwrap()[1].parse().unwrap();
        assert!(score <= at_most, "{name}: exposure {score} > {at_most}\n{text}");
    }
}

#[tokio::test]
async fn the_daemon_starts_with_the_production_config() {
    let data = tempfile::tempdir().unwrap();
    let config = deploy("pentavision.toml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pentavision-blocklist"))
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(data.path())
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("PENTAVISION_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let line = BufReader::new(child.stdout.take().unwrap()).lines().next();
    let Some(Ok(line)) = line else {
        let _ = child.wait();
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        panic!("the daemon did not start with deploy/pentavision.toml: {err}");
    };
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap().to_string();
    let resp = reqwest::get(&url).await.unwrap();
    assert_eq!(resp.status(), 200);
    let _ = child.kill();
    let _ = child.wait();
}

// ---------------------------------------------------------------------------------------------
// fail2ban

/// Expand `%(name)s` from the same section (and `%%`), as fail2ban's config reader does.
fn interpolate(
    value: &str,
    section: &str,
    conf: &BTreeMap<(String, String), Vec<String>>,
) -> String {
    let var = Regex::new(r"%\((\w+)\)s").unwrap();
    let mut value = value.to_string();
    for _ in 0..5 {
        value = var
            .replace_all(&value, |c: &regex::Captures<'_>| {
                conf.get(&(section.to_string(), c[1].to_string()))
                    .and_then(|v| v.last())
                    .unwrap_or_else(|| panic!("%({})s is not defined", &c[1]))
                    .clone()
            })
            .into_owned();
    }
    value.replace("%%", "%")
}

/// fail2ban's `<HOST>` with `usedns = no` (the address groups of
/// `fail2ban/server/failregex.py`); its IPv6 look-behind `(?<=:):` written as `:`.
const HOST: &str = r"\[?(?:(?:::f{4,6}:)?(?P<ip4>(?:\d{1,3}\.){3}\d{1,3})|(?P<ip6>(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|:)))\]?";

fn failregexes() -> Vec<Regex> {
    let conf = ini(&read("fail2ban/filter.d/pentavision.conf"));
    let key = ("Definition".to_string(), "failregex".to_string());
    let value = interpolate(&conf[&key][0], "Definition", &conf);
    value
        .lines()
        .map(|re| {
            assert_eq!(re.matches("<HOST>").count(), 1, "{re}");
            Regex::new(&re.replace("<HOST>", HOST)).unwrap_or_else(|e| panic!("{re}: {e}"))
        })
        .collect()
}

/// The address the filter takes from `line`, if it matches.
fn banned(regexes: &[Regex], line: &str) -> Option<IpAddr> {
    regexes.iter().find_map(|re| {
        let c = re.captures(line)?;
        let host = c.name("ip4").or_else(|| c.name("ip6")).unwrap().as_str();
        Some(host.parse().unwrap_or_else(|e| panic!("{host} from {line}: {e}")))
    })
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// Log lines as `pv_core::telemetry::init` writes them (`fmt::layer()`, human or `.json()`,
/// no colour) for what `emit` logs.
fn log_lines(json: bool, emit: impl FnOnce()) -> Vec<String> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    let out = Captured::default();
    let layer = tracing_subscriber::fmt::layer().with_writer(out.clone()).with_ansi(false);
    let layer = if json { layer.json().boxed() } else { layer.boxed() };
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), emit);
    let bytes = out.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap().lines().map(str::to_string).collect()
}

/// The server's failed sign-in event (`pv_security::signin`), optionally inside poem's
/// request span, and a success event naming an address in the user name.
fn sign_in_events(client_ip: &str, user: &str, in_span: bool) {
    let fail = || {
        let client_ip = client_ip.to_string();
        let method = "password";
        let reason = "bad-credentials";
        tracing::warn!(target: "pentavision::auth", client_ip, user = ?user.to_string(), method,
            reason, "sign-in failed");
    };
    if in_span {
        let span = tracing::info_span!("request", remote_addr = %client_ip,
            version = ?format_args!("HTTP/1.1"), method = %"POST", uri = %"/api/v1/auth/sign-in?next=a:b");
        span.in_scope(|| tracing::info_span!("sign_in", user = ?user.to_string()).in_scope(fail));
    } else {
        fail();
    }
    let client_ip = client_ip.to_string();
    tracing::info!(target: "pentavision::auth", client_ip, user = ?user.to_string(),
        method = "password", stage = "done", "sign-in succeeded");
}

/// `(line, the address fail2ban must ban for it)`.
fn samples() -> Vec<(String, Option<IpAddr>)> {
    let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
    let mut out = Vec::new();
    for json in [false, true] {
        for (client, in_span) in [("203.0.113.9", false), ("2001:db8::7", true)] {
            let lines = log_lines(json, || sign_in_events(client, "alice", in_span));
            assert_eq!(lines.len(), 2, "{lines:?}");
            out.push((lines[0].clone(), ip(client)));
            out.push((lines[1].clone(), None));
        }
        // A user name crafted to look like another failure names no other address.
        let crafted = "x\" client_ip=\"198.51.100.66\" WARN pentavision::auth: sign-in failed \
                       client_ip=198.51.100.67 \",\"client_ip\":\"198.51.100.68";
        for in_span in [false, true] {
            let lines = log_lines(json, || sign_in_events("203.0.113.10", crafted, in_span));
            out.push((lines[0].clone(), ip("203.0.113.10")));
            out.push((lines[1].clone(), None));
        }
        // Another component's warning quoting the same text bans nobody.
        let lines = log_lines(json, || {
            tracing::warn!(target: "pv_web::access", path = crafted, "refused");
            tracing::warn!(target: "pentavision::auth", client_ip = "unknown", "sign-in failed");
        });
        out.extend(lines.into_iter().map(|l| (l, None)));
    }
    // The forms written in the issue, and a line as fail2ban's journal backend presents it.
    for (line, want) in [
        (
            "2026-05-01T10:00:00.123456Z  WARN pentavision::auth: sign-in failed \
             client_ip=203.0.113.11 user=\"alice\" method=password reason=bad-credentials",
            ip("203.0.113.11"),
        ),
        (
            "{\"timestamp\":\"2026-05-01T10:00:00.123456Z\",\"level\":\"WARN\",\"fields\":{\
             \"message\":\"sign-in failed\",\"client_ip\":\"2001:db8::11\",\"user\":\"alice\",\
             \"method\":\"password\",\"reason\":\"bad-credentials\"},\"target\":\"pentavision::auth\"}",
            ip("2001:db8::11"),
        ),
        (
            "nvr pentavision[812]: 2026-05-01T10:00:00.123456Z  WARN \
             pentavision::auth: sign-in failed client_ip=\"::ffff:203.0.113.12\" user=\"a\"",
            ip("203.0.113.12"),
        ),
        (
            "2026-05-01T10:00:00.123456Z  INFO pentavision::auth: sign-in failed \
             client_ip=203.0.113.13",
            None,
        ),
    ] {
        out.push((line.to_string(), want));
    }
    out
}

#[test]
fn filter_matches_failed_sign_ins_only() {
    let regexes = failregexes();
    assert_eq!(regexes.len(), 2);
    for (line, want) in samples() {
        assert_eq!(banned(&regexes, &line), want, "{line}");
    }
}

#[test]
fn fail2ban_regex_agrees() {
    if !installed("fail2ban-regex") {
        eprintln!("fail2ban-regex not installed; the filter was checked with Rust's regex only");
        return;
    }
    let samples = samples();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("pentavision.log");
    let text: String = samples.iter().map(|(l, _)| format!("{l}\n")).collect();
    std::fs::write(&log, text).unwrap();
    let out = Command::new("fail2ban-regex")
        .args(["--usedns=no", "--out", "ip"])
        .arg(&log)
        .arg(deploy("fail2ban/filter.d/pentavision.conf"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: Vec<IpAddr> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().parse().unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let want: Vec<IpAddr> = samples.iter().filter_map(|(_, ip)| *ip).collect();
    assert_eq!(got, want);
}

/// Run an action command as fail2ban would (tags replaced, `sh -c`), with a stand-in
/// `pentavision` that records its arguments.
fn run_action(key: &str, ip: &str, bantime: &str) -> Vec<Vec<String>> {
    let conf = ini(&read("fail2ban/action.d/pentavision.conf"));
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("calls");
    let fake = dir.path().join("pentavision");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" >> '{}'\necho --- >> '{}'\n",
            record.display(),
            record.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let init = conf[&("Init".to_string(), "pentavision".to_string())][0].clone();
    assert!(init.contains("--config /etc/pentavision/pentavision.toml"), "{init}");
    let script =
        interpolate(&conf[&("Definition".to_string(), key.to_string())][0], "Definition", &conf)
            .replace("<pentavision>", &fake.display().to_string())
            .replace("<ip>", ip)
            .replace("<bantime>", bantime);
    let status = Command::new("sh").arg("-c").arg(&script).status().unwrap();
    assert!(status.success(), "{script}");
    let calls = std::fs::read_to_string(&record).unwrap_or_default();
    calls
        .split("---\n")
        .filter(|c| !c.is_empty())
        .map(|c| c.lines().map(str::to_string).collect())
        .collect()
}

#[test]
fn action_blocks_and_removes_through_the_cli() {
    assert_eq!(
        run_action("actionban", "203.0.113.9", "600"),
        [["ip", "block", "203.0.113.9", "--reason", "fail2ban", "--expires", "600s", "--fail2ban"]]
    );
    assert_eq!(
        run_action("actionban", "2001:db8::7", "3600.0"),
        [[
            "ip",
            "block",
            "2001:db8::7",
            "--reason",
            "fail2ban",
            "--expires",
            "3600s",
            "--fail2ban"
        ]]
    );
    // A permanent ban (bantime -1) is a rule without expiry.
    assert_eq!(
        run_action("actionban", "203.0.113.9", "-1"),
        [["ip", "block", "203.0.113.9", "--reason", "fail2ban", "--fail2ban"]]
    );
    // An unban lifts only the block, never an exemption of the same address.
    assert_eq!(
        run_action("actionunban", "203.0.113.9", "600"),
        [["ip", "remove", "203.0.113.9", "--block-only"]]
    );

    // The flags exist in the real CLI (`pentavision ip block|remove`).
    let cli = include_str!("../../pentavision/src/cmds/ip.rs");
    for needle in [
        "Block(RuleArgs)",
        "Remove {",
        "reason: Option<String>",
        "expires: Option<String>",
        "fail2ban: bool",
        "block_only: bool",
    ] {
        assert!(cli.contains(needle), "bins/pentavision/src/cmds/ip.rs no longer has {needle}");
    }
}
