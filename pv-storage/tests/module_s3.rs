//! StorageModule against a real S3 server on loopback (`rclone serve s3`, SigV4 enforced): the
//! messages people get for a wrong secret, a missing bucket, an unreachable endpoint and a
//! read-only server; an encrypted upload through S3; the MD5 check of single-PUT uploads; signed
//! URLs; and that no message carries the secret.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use pv_storage::definition::Registry;
use pv_storage::{Key, ModuleSettings, StorageModule, TestReport};
use serde_json::{Value, json};

fn settings() -> ModuleSettings {
    let mut s = ModuleSettings::new("s3 messages");
    s.op_timeout = Duration::from_secs(30);
    s
}

async fn module(target: &support::Target) -> StorageModule {
    let registry = Registry::builtin();
    let provider = registry.get(target.provider).unwrap();
    StorageModule::connect(provider, &target.config, &target.secrets, settings()).await.unwrap()
}

fn failed_step(report: &TestReport) -> (&str, &str) {
    let step =
        report.steps.iter().find(|s| !s.ok).unwrap_or_else(|| panic!("no failed step: {report:?}"));
    (step.step.as_str(), step.message.as_deref().unwrap_or(""))
}

fn secret_of(target: &support::Target) -> String {
    target.secrets["secret_access_key"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn wrong_secret_is_an_auth_error() {
    let mut target = support::s3();
    target
        .secrets
        .insert("secret_access_key".into(), Value::String("wrong-secret-value-123".into()));
    let report = module(&target).await.test().await;
    assert!(!report.ok);
    let (step, message) = failed_step(&report);
    assert_eq!(step, "connect");
    assert_eq!(message, "the access key or secret is wrong (403 SignatureDoesNotMatch)");
    assert!(!format!("{report:?}").contains("wrong-secret-value-123"));
}

#[tokio::test]
async fn missing_bucket_is_named() {
    let mut target = support::s3();
    target.config.insert("bucket".into(), json!("no-such-bucket"));
    let report = module(&target).await.test().await;
    let (step, message) = failed_step(&report);
    assert_eq!(step, "connect");
    assert_eq!(message, "bucket no-such-bucket does not exist");
}

#[tokio::test]
async fn unreachable_endpoint_is_named() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut target = support::s3();
    target.config.insert("endpoint".into(), json!(format!("http://127.0.0.1:{port}")));
    let report = module(&target).await.test().await;
    let (step, message) = failed_step(&report);
    assert_eq!(step, "connect");
    assert_eq!(message, format!("cannot reach http://127.0.0.1:{port}: connection refused"));
}

#[tokio::test]
async fn read_only_server_fails_the_write_step() {
    let target = support::s3_read_only();
    let secret = secret_of(&target);
    let report = module(&target).await.test().await;
    let (step, message) = failed_step(&report);
    assert_eq!(step, "write", "{report:?}");
    assert!(message.contains("bucket pv-test"), "{message}");
    assert!(!message.contains(&secret));
}

#[tokio::test]
async fn encrypted_upload_md5_and_presign() {
    let target = support::s3();
    let plain_module = module(&target).await;
    let registry = Registry::builtin();
    let provider = registry.get(target.provider).unwrap();
    let mut enc_settings = settings();
    enc_settings.encryption_key = Some([5u8; 32]);
    let enc_module =
        StorageModule::connect(provider, &target.config, &target.secrets, enc_settings)
            .await
            .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 241) as u8).collect();
    let src = dir.path().join("seg.mp4");
    std::fs::write(&src, &data).unwrap();
    let n: u64 = rand::random();
    let key = Key::new(format!("h1-tests/{n:016x}/seg.mp4")).unwrap();

    // Plain single PUT: the ETag is the MD5 of what was sent, and the upload reports it.
    let up = plain_module.upload_file(&key, &src).await.unwrap();
    let meta = plain_module.stat(&key).await.unwrap().unwrap();
    assert_eq!(meta.etag.as_deref(), up.checksum.as_deref());
    let url = plain_module.presign_read(&key, Duration::from_secs(300)).await.unwrap().unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(url.contains("X-Amz-Signature="), "{url}");

    // Encrypted: the bucket holds ciphertext, the module reads plaintext, no signed URL.
    let up = enc_module.upload_file(&key, &src).await.unwrap();
    assert_eq!(up.size, pv_storage::crypt::encrypted_len(data.len() as u64));
    let raw = plain_module.read(&key, None).await.unwrap();
    assert_eq!(&raw[..6], b"PVENC1");
    assert_eq!(enc_module.read(&key, Some(1000..1010)).await.unwrap(), data[1000..1010]);
    let dest = dir.path().join("back.mp4");
    assert_eq!(enc_module.download_to(&key, &dest).await.unwrap(), data.len() as u64);
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    assert!(enc_module.presign_read(&key, Duration::from_secs(300)).await.unwrap().is_none());

    // A multipart upload (3 parts of 5 MiB + a short one) verifies too.
    let mut mp_settings = settings();
    mp_settings.chunk_size = Some(5 * 1024 * 1024);
    let mp = StorageModule::connect(provider, &target.config, &target.secrets, mp_settings)
        .await
        .unwrap();
    let big: Vec<u8> = (0..(16 * 1024 * 1024 + 7)).map(|i: usize| (i % 239) as u8).collect();
    std::fs::write(&src, &big).unwrap();
    let big_key = Key::new(format!("h1-tests/{n:016x}/big.mp4")).unwrap();
    let up = mp.upload_file(&big_key, &src).await.unwrap();
    assert_eq!(up.size, big.len() as u64);
    assert_eq!(
        mp.read(&big_key, Some(9_000_000..9_000_100)).await.unwrap(),
        big[9_000_000..9_000_100]
    );

    for k in [&key, &big_key] {
        plain_module.delete(k).await.unwrap();
        assert!(plain_module.stat(k).await.unwrap().is_none());
    }
}
