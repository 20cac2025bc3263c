//! Cold-start time and idle memory of the real `pentavision` binary.
//!
//! Each run starts the server on `127.0.0.1:0` with a fresh data dir (so start-up includes
//! creating and migrating three SQLite databases), measures spawn → first `/readyz` 200, then
//! lets it idle and reads its resident set size from `/proc/PID/status`. A second start on the
//! same data dir measures a warm start (databases exist).
//!
//! `coldstart [--bin PATH] [--runs N] [--idle-ms MS]`; PATH defaults to the `pentavision`
//! next to this executable.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

struct Args {
    bin: std::path::PathBuf,
    runs: usize,
    idle: Duration,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        bin: std::env::current_exe()?.with_file_name("pentavision"),
        runs: 5,
        idle: Duration::from_millis(2000),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let value = it.next().with_context(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--bin" => args.bin = value.into(),
            "--runs" => args.runs = value.parse().context("--runs")?,
            "--idle-ms" => args.idle = Duration::from_millis(value.parse().context("--idle-ms")?),
            _ => bail!(
                "unknown argument {a}; usage: coldstart [--bin PATH] [--runs N] [--idle-ms MS]"
            ),
        }
    }
    if !args.bin.is_file() {
        bail!(
            "{} not found; build it with `cargo build --release -p pentavision`",
            args.bin.display()
        );
    }
    Ok(args)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn start(bin: &std::path::Path, data: &std::path::Path) -> anyhow::Result<(Child, Duration)> {
    let t0 = Instant::now();
    let mut child = Command::new(bin)
        .args(["--data-dir", data.to_str().context("utf-8 path")?, "--listen", "127.0.0.1:0"])
        .env("PV_LOGGING__LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("spawn {}", bin.display()))?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().context("no output")??;
    std::thread::spawn(move || for _ in lines {});
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .context("no URL printed")?
        .trim_end_matches('/')
        .to_string();
    let client = reqwest::Client::new();
    loop {
        if let Ok(r) = client.get(format!("{url}/readyz")).send().await
            && r.status() == 200
        {
            return Ok((child, t0.elapsed()));
        }
        if t0.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            bail!("server not ready after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn stop(mut child: Child) {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
}

fn summary(name: &str, unit: &str, mut v: Vec<f64>) {
    v.sort_by(f64::total_cmp);
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "{name:<26} min {:>8.1} {unit}  median {:>8.1} {unit}  mean {:>8.1} {unit}  max {:>8.1} {unit}",
        v[0],
        v[v.len() / 2],
        mean,
        v[v.len() - 1]
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let (mut cold, mut warm, mut rss) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.runs {
        let dir = tempfile_dir()?;
        let (child, t) = start(&args.bin, &dir).await?;
        cold.push(t.as_secs_f64() * 1000.0);
        tokio::time::sleep(args.idle).await;
        rss.push(rss_kib(child.id()).unwrap_or(0) as f64 / 1024.0);
        stop(child);
        let (child, t) = start(&args.bin, &dir).await?;
        warm.push(t.as_secs_f64() * 1000.0);
        stop(child);
        let _ = std::fs::remove_dir_all(&dir);
    }
    println!("pentavision {} — {} runs", args.bin.display(), args.runs);
    summary("cold start (new data dir)", "ms", cold);
    summary("warm start", "ms", warm);
    summary("idle RSS", "MiB", rss);
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir =
        std::env::temp_dir().join(format!("pv-coldstart-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}
