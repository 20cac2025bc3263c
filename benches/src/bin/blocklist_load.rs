//! Load test of `pentavision-blocklist` against nginx serving the same CSV as a static file.
//!
//! Creates a users database with `--rules` block rules (IPv4 addresses and CIDRs, some IPv6),
//! starts the real daemon on loopback, writes the list it serves to a static file served by
//! nginx (`-p PREFIX -c CONF`, `daemon off`, loopback, pid and logs in the temp dir), then runs
//! `wrk --latency` against both — full responses and conditional ones (`If-None-Match` → 304) —
//! and prints requests/s and p99 latency side by side. Both are stopped at the end.
//!
//! `blocklist_load [--bin PATH] [--rules N] [--duration 10s] [--threads 2] [--connections 32]
//! [--rounds 1] [--log-level info]`; PATH defaults to the `pentavision-blocklist` next to this
//! executable. Run with `benches/blocklist-load.sh` (release builds of both).
//!
//! The database's `requests_per_minute` is set very high for the run: the rate limiter still
//! runs on every request, it just never refuses. Both log one line per request to a file: the
//! daemon (at `info`, `--log-level` to change) its stderr, nginx its access log.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use pv_core::config::{Config, DbKind};
use pv_core::db::users::{blocklist_setting, ip_rule};
use sea_orm::{ActiveModelTrait, EntityTrait, Set, TransactionTrait};

struct Args {
    bin: PathBuf,
    rules: usize,
    duration: String,
    threads: u32,
    connections: u32,
    rounds: u32,
    log_level: String,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        bin: std::env::current_exe()?.with_file_name("pentavision-blocklist"),
        rules: 100_000,
        duration: "10s".into(),
        threads: 2,
        connections: 32,
        rounds: 1,
        log_level: "info".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let value = it.next().with_context(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--bin" => args.bin = value.into(),
            "--rules" => args.rules = value.parse().context("--rules")?,
            "--duration" => args.duration = value,
            "--threads" => args.threads = value.parse().context("--threads")?,
            "--connections" => args.connections = value.parse().context("--connections")?,
            "--rounds" => args.rounds = value.parse().context("--rounds")?,
            "--log-level" => args.log_level = value,
            _ => bail!("unknown argument {a}; see the top of benches/src/bin/blocklist_load.rs"),
        }
    }
    if !args.bin.is_file() {
        bail!(
            "{} not found; build it with `cargo build --release -p pentavision-blocklist`",
            args.bin.display()
        );
    }
    for tool in ["wrk", "nginx"] {
        if which(tool).is_none() {
            bail!("{tool} is not installed (apt-get install wrk nginx-light)");
        }
    }
    Ok(args)
}

fn which(program: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&paths)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// A small deterministic generator (xorshift64*), so every run benches the same list.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A public-looking IPv4 address (no private, loopback or multicast first octet: the
    /// seeded exemptions would drop those from the list).
    fn ipv4(&mut self) -> std::net::Ipv4Addr {
        loop {
            let a = self.next() as u32;
            let first = a >> 24;
            if (1..=223).contains(&first) && ![10, 100, 127, 169, 172, 192].contains(&first) {
                return a.into();
            }
        }
    }
}

/// `n` distinct networks: 80 % IPv4 addresses, 15 % IPv4 /20–/28 networks, 5 % IPv6.
fn networks(n: usize) -> Vec<String> {
    let mut rng = Rng(0x5EED_2026_0001);
    let mut seen = HashSet::with_capacity(n);
    while seen.len() < n {
        let text = match rng.below(100) {
            0..80 => rng.ipv4().to_string(),
            80..95 => {
                let prefix = 20 + rng.below(9) as u8;
                ipnet_v4(rng.ipv4(), prefix)
            }
            _ => {
                let hi = (0x2001_0db8u64 << 32) | rng.below(1 << 32);
                let addr =
                    std::net::Ipv6Addr::from((u128::from(hi) << 64) | u128::from(rng.next()));
                if rng.below(2) == 0 {
                    addr.to_string()
                } else {
                    let segs = addr.segments();
                    format!("{:x}:{:x}:{:x}:{:x}::/64", segs[0], segs[1], segs[2], segs[3])
                }
            }
        };
        seen.insert(text);
    }
    let mut out: Vec<String> = seen.into_iter().collect();
    out.sort();
    out
}

fn ipnet_v4(addr: std::net::Ipv4Addr, prefix: u8) -> String {
    let mask = u32::MAX << (32 - u32::from(prefix));
    format!("{}/{prefix}", std::net::Ipv4Addr::from(u32::from(addr) & mask))
}

async fn seed(data_dir: &Path, rules: usize) -> anyhow::Result<()> {
    let config = Config { data_dir: data_dir.to_path_buf(), ..Config::default() };
    let db = pv_core::db::connect(&config, DbKind::Users).await?;
    pv_core::db::migrate(DbKind::Users, &db).await?;
    let now = Utc::now();
    let nets = networks(rules);
    let txn = db.begin().await?;
    for chunk in nets.chunks(2000) {
        let rows = chunk.iter().map(|network| ip_rule::ActiveModel {
            network: Set(network.clone()),
            action: Set("block".into()),
            reason: Set(Some("bench".into())),
            source: Set("cli".into()),
            created_at: Set(now),
            ..Default::default()
        });
        ip_rule::Entity::insert_many(rows).exec(&txn).await?;
    }
    blocklist_setting::ActiveModel {
        enabled: Set(true),
        token_hash: Set(None),
        requests_per_minute: Set(i32::MAX),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    db.close().await?;
    Ok(())
}

fn start_daemon(args: &Args, data_dir: &Path) -> anyhow::Result<(Child, String)> {
    // The request log goes to a file, as nginx's access log does.
    let log = std::fs::File::create(data_dir.join("daemon.log"))?;
    let mut child = Command::new(&args.bin)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("PENTAVISION_CONFIG")
        .env("PV_LOGGING__LEVEL", &args.log_level)
        .env("PV_LOGGING__FILE_ENABLED", "false")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .with_context(|| format!("spawn {}", args.bin.display()))?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let first = lines.next().context("no output from the daemon")??;
    std::thread::spawn(move || for _ in lines {});
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .context("no URL printed")?
        .to_string();
    Ok((child, url))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn start_nginx(prefix: &Path, csv: &[u8]) -> anyhow::Result<(Child, String)> {
    let www = prefix.join("www");
    std::fs::create_dir_all(&www)?;
    std::fs::create_dir_all(prefix.join("tmp"))?;
    std::fs::write(www.join("blocklist.csv"), csv)?;
    // Workers may run as another user: let them read the tree.
    for dir in [prefix, www.as_path()] {
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    }
    let port = free_port()?;
    let p = prefix.display();
    let conf = format!(
        "worker_processes auto;\n\
         daemon off;\n\
         pid {p}/nginx.pid;\n\
         error_log {p}/error.log warn;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n\
           access_log {p}/access.log;\n\
           client_body_temp_path {p}/tmp/body;\n\
           proxy_temp_path {p}/tmp/proxy;\n\
           fastcgi_temp_path {p}/tmp/fastcgi;\n\
           uwsgi_temp_path {p}/tmp/uwsgi;\n\
           scgi_temp_path {p}/tmp/scgi;\n\
           types {{ text/csv csv; }}\n\
           charset utf-8;\n\
           sendfile on;\n\
           tcp_nopush on;\n\
           keepalive_requests 1000000;\n\
           server {{\n\
             listen 127.0.0.1:{port};\n\
             root {p}/www;\n\
             location = /blocklist.csv {{ add_header Cache-Control \"no-cache, max-age=60\"; }}\n\
           }}\n\
         }}\n"
    );
    let conf_path = prefix.join("nginx.conf");
    std::fs::write(&conf_path, conf)?;
    let nginx = which("nginx").context("nginx")?;
    let child = Command::new(nginx)
        .arg("-p")
        .arg(prefix)
        .arg("-c")
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("spawn nginx")?;
    Ok((child, format!("http://127.0.0.1:{port}/blocklist.csv")))
}

async fn wait_ready(url: &str) -> anyhow::Result<(Vec<u8>, String)> {
    let client = reqwest::Client::new();
    let t0 = Instant::now();
    loop {
        if let Ok(r) = client.get(url).send().await
            && r.status() == 200
        {
            let etag = r
                .headers()
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            return Ok((r.bytes().await?.to_vec(), etag));
        }
        if t0.elapsed() > Duration::from_secs(60) {
            bail!("{url} not ready after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn stop(mut child: Child) {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
}

/// One `wrk` run's requests/s, p99 latency in ms and non-2xx/3xx count.
struct Run {
    rps: f64,
    p99_ms: f64,
    errors: u64,
}

fn wrk(args: &Args, url: &str, etag: Option<&str>) -> anyhow::Result<Run> {
    let mut cmd = Command::new("wrk");
    cmd.arg(format!("-t{}", args.threads))
        .arg(format!("-c{}", args.connections))
        .arg(format!("-d{}", args.duration))
        .arg("--latency");
    if let Some(etag) = etag {
        cmd.args(["-H", &format!("If-None-Match: {etag}")]);
    }
    let out = cmd.arg(url).output().context("run wrk")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(|v| v.trim().to_string())
            .with_context(|| format!("no '{prefix}' in wrk output:\n{text}"))
    };
    let rps: f64 = field("Requests/sec:")?.parse()?;
    let p99_ms = latency_ms(&field("99%")?)?;
    let errors = field("Non-2xx or 3xx responses:").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok(Run { rps, p99_ms, errors })
}

/// `812.00us`, `1.23ms`, `2.00s` → milliseconds.
fn latency_ms(text: &str) -> anyhow::Result<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic()).context("latency unit")?;
    let (n, unit) = text.split_at(split);
    let n: f64 = n.parse().with_context(|| format!("latency {text}"))?;
    Ok(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => bail!("latency unit {unit}"),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let dir = std::env::temp_dir().join(format!("pv-blocklist-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = bench(&args, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn bench(args: &Args, dir: &Path) -> anyhow::Result<()> {
    let data = dir.join("data");
    let t0 = Instant::now();
    seed(&data, args.rules).await?;
    println!("seeded {} block rules in {:.1} s", args.rules, t0.elapsed().as_secs_f64());

    let (daemon, daemon_url) = start_daemon(args, &data)?;
    let t0 = Instant::now();
    let (csv, daemon_etag) = match wait_ready(&daemon_url).await {
        Ok(v) => v,
        Err(e) => {
            stop(daemon);
            return Err(e);
        }
    };
    let entries = csv.iter().filter(|b| **b == b'\n').count();
    println!(
        "daemon {daemon_url}: first response after {:.0} ms, {entries} entries, {} bytes",
        t0.elapsed().as_secs_f64() * 1000.0,
        csv.len()
    );
    let (nginx, nginx_url) = match start_nginx(&dir.join("nginx"), &csv) {
        Ok(v) => v,
        Err(e) => {
            stop(daemon);
            return Err(e);
        }
    };
    let result = async {
        let (same, nginx_etag) = wait_ready(&nginx_url).await?;
        if same != csv {
            bail!("nginx serves a different body");
        }
        let mut rows = Vec::new();
        for round in 1..=args.rounds {
            for (name, etag_d, etag_n) in [
                ("200 full list", None, None),
                ("304 If-None-Match", Some(&daemon_etag), Some(&nginx_etag)),
            ] {
                let d = wrk(args, &daemon_url, etag_d.map(String::as_str))?;
                let n = wrk(args, &nginx_url, etag_n.map(String::as_str))?;
                rows.push((round, name, d, n));
            }
        }
        Ok(rows)
    }
    .await;
    stop(daemon);
    stop(nginx);
    let rows = result?;

    println!(
        "\nwrk -t{} -c{} -d{} --latency, {} entries ({} bytes)",
        args.threads,
        args.connections,
        args.duration,
        entries,
        csv.len()
    );
    println!(
        "{:<5} {:<19} {:>14} {:>12} {:>14} {:>12} {:>9}",
        "round", "requests", "daemon req/s", "daemon p99", "nginx req/s", "nginx p99", "ratio"
    );
    for (round, name, d, n) in rows {
        println!(
            "{round:<5} {name:<19} {:>14.1} {:>9.2} ms {:>14.1} {:>9.2} ms {:>8.2}x{}",
            d.rps,
            d.p99_ms,
            n.rps,
            n.p99_ms,
            d.rps / n.rps,
            if d.errors + n.errors > 0 {
                format!("  (non-2xx/3xx: daemon {}, nginx {})", d.errors, n.errors)
            } else {
                String::new()
            }
        );
    }
    Ok(())
}
