//! Upload one file to an S3 bucket through pv-storage's upload queue, with no PentaVision server
//! and no database: an S3 storage module built from code, an in-memory job store, the queue.
//!
//! ```text
//! cargo run -p pv-examples --example upload_to_s3 -- [--endpoint URL] [--bucket NAME]
//!     [--key ACCESS_KEY] [--secret SECRET_KEY] [--region REGION] [FILE]
//! ```
//!
//! Each option falls back to an environment variable: `PV_TEST_S3_ENDPOINT`,
//! `PV_TEST_S3_BUCKET`, `PV_TEST_S3_KEY`, `PV_TEST_S3_SECRET`, `PV_TEST_S3_REGION` (as
//! `bins/storage-servers.sh` writes them for the local test server). Without FILE, a 1 MiB file
//! of pseudo-random bytes is generated and removed afterwards. Prints the object's key; on bad
//! input or a failed upload prints one line saying why and exits non-zero.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use pv_storage::queue::{MemoryJobStore, QueueConfig, UploadQueue};
use pv_storage::{KeyContext, KeyTemplate, ModuleSettings, Registry, StorageModule};
use serde_json::{Map, Value};

/// Where the object goes under the bucket.
const TEMPLATE: &str = "examples/{date}/{segment}.{ext}";
/// How long the upload may take before the example gives up.
const DEADLINE: Duration = Duration::from_secs(300);

struct Args {
    endpoint: String,
    bucket: String,
    key: String,
    secret: String,
    region: String,
    file: Option<PathBuf>,
}

fn parse_args() -> anyhow::Result<Args> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let mut endpoint = env("PV_TEST_S3_ENDPOINT");
    let mut bucket = env("PV_TEST_S3_BUCKET");
    let mut key = env("PV_TEST_S3_KEY");
    let mut secret = env("PV_TEST_S3_SECRET");
    let mut region = env("PV_TEST_S3_REGION");
    let mut file = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let slot = match arg.as_str() {
            "--endpoint" => &mut endpoint,
            "--bucket" => &mut bucket,
            "--key" => &mut key,
            "--secret" => &mut secret,
            "--region" => &mut region,
            "-h" | "--help" => {
                println!(
                    "usage: upload_to_s3 [--endpoint URL] [--bucket NAME] [--key ACCESS_KEY] \
                     [--secret SECRET_KEY] [--region REGION] [FILE]"
                );
                std::process::exit(0);
            }
            other if other.starts_with('-') => bail!("unknown option {other} (try --help)"),
            other => {
                if file.is_some() {
                    bail!("only one file can be given");
                }
                file = Some(PathBuf::from(other));
                continue;
            }
        };
        *slot = Some(args.next().with_context(|| format!("{arg} needs a value"))?);
    }
    let need = |v: Option<String>, what: &str, var: &str| {
        v.with_context(|| format!("no {what}: pass --{} or set {var}", what.replace(' ', "-")))
    };
    Ok(Args {
        endpoint: need(endpoint, "endpoint", "PV_TEST_S3_ENDPOINT")?,
        bucket: need(bucket, "bucket", "PV_TEST_S3_BUCKET")?,
        key: need(key, "key", "PV_TEST_S3_KEY")?,
        secret: need(secret, "secret", "PV_TEST_S3_SECRET")?,
        region: region.unwrap_or_else(|| "us-east-1".to_owned()),
        file,
    })
}

/// 1 MiB of pseudo-random bytes in the temporary directory.
fn generated_file() -> anyhow::Result<PathBuf> {
    let path = std::env::temp_dir().join(format!("pv-upload-example-{}.bin", std::process::id()));
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ u64::from(std::process::id());
    let data: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&path, data).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

fn object_map(pairs: &[(&str, &str)]) -> Map<String, Value> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned()))).collect()
}

async fn upload(args: &Args, file: &Path) -> anyhow::Result<String> {
    if !file.is_file() {
        bail!("{} is not a readable file", file.display());
    }
    let registry = Registry::builtin();
    let provider =
        registry.get("s3-compatible").context("this build has no S3-compatible provider")?;
    let config = object_map(&[
        ("endpoint", &args.endpoint),
        ("bucket", &args.bucket),
        ("region", &args.region),
        ("access_key_id", &args.key),
    ]);
    let secrets = object_map(&[("secret_access_key", &args.secret)]);
    let mut settings = ModuleSettings::new("example");
    settings.key_template = KeyTemplate::parse(TEMPLATE)?;
    let module = StorageModule::connect(provider, &config, &secrets, settings).await?;

    let store = Arc::new(MemoryJobStore::new());
    let queue = UploadQueue::new(store.clone(), QueueConfig::default());
    queue.set_module(1, module, true);
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

    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("upload");
    let ext = file.extension().and_then(|s| s.to_str()).unwrap_or("bin");
    let ctx = KeyContext {
        provider: provider.definition.id.clone(),
        module: "example".into(),
        camera: "example".into(),
        camera_id: 0,
        segment: stem.to_owned(),
        segment_id: 1,
        started_at: chrono::Utc::now(),
        ext: ext.to_owned(),
    };
    let job = store.enqueue(file, ctx, vec![1]);
    queue.wake();

    // Wait for the upload; stop at the first failure rather than retrying with back-off.
    let outcome = tokio::time::timeout(DEADLINE, async {
        let wait = store.wait(job);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                done = &mut wait => return done.map_err(anyhow::Error::from),
                () = tokio::time::sleep(Duration::from_millis(100)) => {
                    if let Some(error) = store.state(job).and_then(|s| s.last_error) {
                        bail!("{error}");
                    }
                }
            }
        }
    })
    .await;
    let _ = stop.send(());
    let _ = runner.await;
    let (_, uploaded) =
        outcome.map_err(|_| anyhow::anyhow!("the upload did not finish in 5 minutes"))??;
    Ok(uploaded.key.to_string())
}

#[tokio::main]
async fn main() {
    let result = async {
        let args = parse_args()?;
        let (file, generated) = match &args.file {
            Some(f) => (f.clone(), false),
            None => (generated_file()?, true),
        };
        let result = upload(&args, &file).await;
        if generated {
            let _ = std::fs::remove_file(&file);
        }
        result
    }
    .await;
    match result {
        Ok(key) => println!("{key}"),
        Err(e) => {
            eprintln!("upload_to_s3: {e:#}");
            std::process::exit(1);
        }
    }
}
