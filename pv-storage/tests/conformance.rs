//! One conformance suite, run against every backend that has a real server on loopback
//! (started by `bins/storage-servers.sh`, see `tests/support`): write, read, range read, stat,
//! list, delete, a 24 MiB multipart/chunked upload, a unicode key, an overwrite and the
//! connection test. Each backend is its own test so a failure names it; an operation a provider
//! declares it cannot do (its definition's capabilities) is skipped with a line on stderr,
//! never passed silently. Read-only variants of the servers check that refused writes fail the
//! upload and the connection test with a message that does not leak the credentials.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use pv_storage::Key;
use pv_storage::definition::{Capabilities, Registry};
use pv_storage::module::{ModuleSettings, StorageModule};
use rand::RngCore;
use sha2::{Digest, Sha256};
use support::Target;

const MIB: usize = 1024 * 1024;
/// The large upload: several 5 MiB parts and a short last one.
const LARGE: usize = 24 * MIB + 12_345;
const CHUNK: u64 = 5 * MIB as u64;

fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand::rng().fill_bytes(&mut v);
    v
}

fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn key(s: &str) -> Key {
    Key::new(s).unwrap_or_else(|e| panic!("test key {s:?} is invalid: {e}"))
}

fn settings(name: &str) -> ModuleSettings {
    let mut s = ModuleSettings::new(format!("conformance {name}"));
    s.chunk_size = Some(CHUNK);
    s.parallel = 4;
    s.op_timeout = Duration::from_secs(120);
    s
}

/// The capabilities the provider of `module` declares.
fn capabilities(module: &StorageModule) -> Capabilities {
    let registry = Registry::builtin();
    let provider = registry
        .get(module.provider_id())
        .unwrap_or_else(|| panic!("provider {} is not built in", module.provider_id()));
    provider.definition.capabilities.clone()
}

fn skip(backend: &str, what: &str) {
    eprintln!("SKIP [{backend}] {what}: the provider declares it unsupported");
}

/// Build the module of `target` (the provider's own field validation included).
async fn connect(target: &Target, name: &str) -> StorageModule {
    let registry = Registry::builtin();
    let mut provider = registry
        .get(target.provider)
        .unwrap_or_else(|| panic!("provider {} is not built in", target.provider))
        .clone();
    for field in &mut provider.definition.fields {
        if target.not_required.contains(&field.key.as_str()) {
            field.required = false;
        }
    }
    let mut settings = settings(name);
    if let Some((chunk, why)) = target.chunk_override {
        eprintln!("NOTE [{name}] part size {chunk} instead of {CHUNK}: {why}");
        settings.chunk_size = Some(chunk);
    }
    match StorageModule::connect(&provider, &target.config, &target.secrets, settings).await {
        Ok(m) => m,
        Err(e) => panic!("[{name}] connect failed: {e}"),
    }
}

async fn upload(module: &StorageModule, dir: &Path, k: &Key, data: &[u8]) {
    let path = dir.join(format!("upload-{}.bin", rand::rng().next_u64()));
    std::fs::write(&path, data).expect("write the local file");
    let up = module.upload_file(k, &path).await.unwrap_or_else(|e| {
        panic!(
            "[{}] upload of {} ({} bytes) failed: {e}",
            module.provider_id(),
            k.as_str(),
            data.len()
        )
    });
    assert_eq!(up.key, *k, "upload reports the key it wrote");
    assert_eq!(up.size, data.len() as u64, "upload of {} reports the stored size", k.as_str());
    let _ = std::fs::remove_file(&path);
}

async fn read_all(module: &StorageModule, k: &Key) -> Vec<u8> {
    module
        .read(k, None)
        .await
        .unwrap_or_else(|e| panic!("[{}] read of {} failed: {e}", module.provider_id(), k.as_str()))
}

async fn size_of(module: &StorageModule, k: &Key) -> Option<u64> {
    module
        .stat(k)
        .await
        .unwrap_or_else(|e| panic!("[{}] stat of {} failed: {e}", module.provider_id(), k.as_str()))
        .map(|m| m.size)
}

async fn listed(module: &StorageModule, prefix: &str) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = module
        .list(prefix)
        .await
        .unwrap_or_else(|e| panic!("[{}] list of {prefix} failed: {e}", module.provider_id()))
        .into_iter()
        .map(|m| (m.key, m.size))
        .collect();
    v.sort();
    v
}

/// The suite. Every object lives under a fresh prefix, and is deleted at the end.
async fn conformance(module: StorageModule) {
    let backend = format!("{} ({})", module.provider_id(), module.backend_kind());
    let caps = capabilities(&module);
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = format!("conformance/{:016x}/", rand::rng().next_u64());

    // Test of "Test → Save": every step passes.
    let report = module.test().await;
    assert!(report.ok, "[{backend}] the connection test failed: {report:#?}");
    let steps: Vec<&str> = report.steps.iter().map(|s| s.step.as_str()).collect();
    for want in ["write", "read", "delete"] {
        assert!(
            steps.contains(&want),
            "[{backend}] the connection test has no {want} step: {steps:?}"
        );
    }

    // Write and read back; absent keys.
    let small_key = key(&format!("{prefix}small.mp4"));
    let small = random_bytes(100_003);
    upload(&module, dir.path(), &small_key, &small).await;
    assert_eq!(
        sha256(&read_all(&module, &small_key).await),
        sha256(&small),
        "[{backend}] read returns what was written"
    );
    let missing = key(&format!("{prefix}missing.mp4"));
    assert_eq!(size_of(&module, &missing).await, None, "[{backend}] stat of an absent key is None");
    match module.read(&missing, None).await {
        Ok(_) => panic!("[{backend}] read of an absent key succeeded"),
        Err(e) => assert_eq!(
            e.kind(),
            pv_core::ErrorKind::NotFound,
            "[{backend}] read of an absent key is NotFound, got: {e}"
        ),
    }

    // Stat.
    let meta = module.stat(&small_key).await.expect("stat").expect("stat finds the object");
    assert_eq!(meta.size, small.len() as u64, "[{backend}] stat size");
    assert_eq!(meta.key, small_key.as_str(), "[{backend}] stat names the key");

    // Range reads (start, middle, the last bytes).
    if caps.range {
        for r in [0..1u64, 1000..5000, (small.len() as u64 - 17)..small.len() as u64] {
            let got = module
                .read(&small_key, Some(r.clone()))
                .await
                .unwrap_or_else(|e| panic!("[{backend}] range read {r:?} failed: {e}"));
            assert_eq!(got, small[r.start as usize..r.end as usize], "[{backend}] range {r:?}");
        }
    } else {
        skip(&backend, "range read");
    }

    // A unicode key with a space.
    let unicode_key = key(&format!("{prefix}caméra/été 2026/ñ.mp4"));
    let unicode = random_bytes(4_321);
    upload(&module, dir.path(), &unicode_key, &unicode).await;
    assert_eq!(
        read_all(&module, &unicode_key).await,
        unicode,
        "[{backend}] unicode key round trip"
    );
    assert_eq!(
        size_of(&module, &unicode_key).await,
        Some(unicode.len() as u64),
        "[{backend}] unicode key stat"
    );

    // Overwrite: same key twice, the second shorter; one object with the second content.
    let over_key = key(&format!("{prefix}overwrite.mp4"));
    let first = random_bytes(70_000);
    let second = random_bytes(30_000);
    upload(&module, dir.path(), &over_key, &first).await;
    upload(&module, dir.path(), &over_key, &second).await;
    assert_eq!(
        read_all(&module, &over_key).await,
        second,
        "[{backend}] overwrite keeps the second content"
    );
    assert_eq!(
        size_of(&module, &over_key).await,
        Some(second.len() as u64),
        "[{backend}] overwrite size"
    );

    // A large file in 5 MiB parts (streamed in chunks where the backend has no multipart).
    if !caps.multipart {
        eprintln!(
            "NOTE [{backend}] no multipart upload: the 24 MiB file goes as one streamed write"
        );
    }
    let large_key = key(&format!("{prefix}large/segment.mp4"));
    let large = random_bytes(LARGE);
    upload(&module, dir.path(), &large_key, &large).await;
    assert_eq!(size_of(&module, &large_key).await, Some(LARGE as u64), "[{backend}] large stat");
    assert_eq!(
        sha256(&read_all(&module, &large_key).await),
        sha256(&large),
        "[{backend}] large round trip"
    );
    if caps.range {
        let r = (CHUNK - 100)..(CHUNK + 100);
        let got =
            module.read(&large_key, Some(r.clone())).await.expect("range across a part boundary");
        assert_eq!(
            got,
            large[r.start as usize..r.end as usize],
            "[{backend}] range across a part boundary"
        );
    }

    // List: recursive, one entry per object, sizes right.
    let expected: BTreeSet<(String, u64)> = [
        (small_key.as_str().to_owned(), small.len() as u64),
        (unicode_key.as_str().to_owned(), unicode.len() as u64),
        (over_key.as_str().to_owned(), second.len() as u64),
        (large_key.as_str().to_owned(), LARGE as u64),
    ]
    .into_iter()
    .collect();
    if caps.list {
        let got = listed(&module, &prefix).await;
        let got_set: BTreeSet<(String, u64)> = got.iter().cloned().collect();
        assert_eq!(got.len(), got_set.len(), "[{backend}] list repeats an object: {got:?}");
        assert_eq!(got_set, expected, "[{backend}] list of {prefix}");
        let sub = listed(&module, &format!("{prefix}caméra/")).await;
        assert_eq!(
            sub,
            vec![(unicode_key.as_str().to_owned(), unicode.len() as u64)],
            "[{backend}] list of a sub-prefix"
        );
    } else {
        skip(&backend, "list");
    }

    // Delete: gone from stat and list; deleting again is fine.
    for (k, _) in &expected {
        let k = key(k);
        module
            .delete(&k)
            .await
            .unwrap_or_else(|e| panic!("[{backend}] delete of {} failed: {e}", k.as_str()));
        assert_eq!(
            size_of(&module, &k).await,
            None,
            "[{backend}] {} is gone after delete",
            k.as_str()
        );
    }
    module
        .delete(&small_key)
        .await
        .unwrap_or_else(|e| panic!("[{backend}] deleting an absent key failed: {e}"));
    if caps.list {
        assert_eq!(
            listed(&module, &prefix).await,
            vec![],
            "[{backend}] nothing left under {prefix}"
        );
    }
}

async fn run(target: Target, name: &str) {
    let module = connect(&target, name).await;
    conformance(module).await;
}

/// Writes through a read-only server must fail, in the upload and in the connection test, with a
/// message that names no secret.
async fn read_only_refuses_writes(target: Target, name: &str) {
    let module = connect(&target, name).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ro.bin");
    std::fs::write(&path, random_bytes(10_000)).expect("write the local file");
    let k = key(&format!("conformance/read-only-{:016x}.mp4", rand::rng().next_u64()));
    let err = match module.upload_file(&k, &path).await {
        Ok(up) => panic!("[{name}] upload through a read-only server succeeded: {up:?}"),
        Err(e) => e,
    };
    assert_no_secret(&target, &err.to_string(), name);
    let report = module.test().await;
    assert!(
        !report.ok,
        "[{name}] the connection test passed against a read-only server: {report:#?}"
    );
    let failed = report.steps.iter().find(|s| !s.ok).expect("a failed step");
    assert_eq!(failed.step, "write", "[{name}] the write step fails first: {report:#?}");
    let msg = failed.message.clone().unwrap_or_default();
    assert!(!msg.trim().is_empty(), "[{name}] the failed write step explains itself");
    assert_no_secret(&target, &msg, name);
}

/// A wrong password or secret key: the connection test fails with a message, uploads fail as
/// authentication errors, and the secret appears nowhere.
async fn wrong_credentials(mut target: Target, name: &str) {
    let secret_field = target.secrets.keys().next().cloned().expect("a secret field");
    target.secrets.insert(secret_field, serde_json::Value::String("wrong-Secret-4711".into()));
    let module = connect(&target, name).await;
    let report = module.test().await;
    assert!(!report.ok, "[{name}] the connection test passed with a wrong secret: {report:#?}");
    let failed = report.steps.iter().find(|s| !s.ok).expect("a failed step");
    let msg = failed.message.clone().unwrap_or_default();
    assert!(!msg.trim().is_empty(), "[{name}] the failed step explains itself");
    assert!(!msg.contains("wrong-Secret-4711"), "[{name}] the message leaks the secret: {msg}");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("auth.bin");
    std::fs::write(&path, random_bytes(1_000)).expect("write the local file");
    let k = key(&format!("conformance/auth-{:016x}.mp4", rand::rng().next_u64()));
    match module.upload_file(&k, &path).await {
        Ok(up) => panic!("[{name}] upload with a wrong secret succeeded: {up:?}"),
        Err(e) => {
            assert!(
                pv_storage::module::is_auth_error(&e),
                "[{name}] a wrong secret is an auth error, got: {e} ({e:?})"
            );
            assert!(
                !e.to_string().contains("wrong-Secret-4711"),
                "[{name}] the error leaks the secret: {e}"
            );
        }
    }
}

fn assert_no_secret(target: &Target, text: &str, name: &str) {
    for v in target.secrets.values() {
        if let Some(s) = v.as_str() {
            assert!(!text.contains(s), "[{name}] a message leaks a secret: {text}");
        }
    }
}

/// Whether a backend file of one of `names` exists in `src/backend/` (kinds implemented by
/// other work in progress; once the file exists the test runs in full).
fn implemented(names: &[&str]) -> bool {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/backend");
    names.iter().any(|n| dir.join(n).exists())
}

/// OpenDAL's FTPS trusts the platform roots only: run `test` again in a child process of this
/// test binary whose `SSL_CERT_FILE` adds the test CA. Returns true in the parent (whose work is
/// then done) and false in the child (which runs the suite).
fn rerun_with_test_ca(test: &str) -> bool {
    let bundle = support::tls_ca_bundle();
    if std::env::var("SSL_CERT_FILE").ok().as_deref() == Some(bundle.as_str()) {
        return false;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let out = std::process::Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("SSL_CERT_FILE", &bundle)
        .output()
        .expect("run the test binary again");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "{test} failed with the test CA trusted");
    assert!(text.contains("1 passed"), "{test} did not run in the child process");
    true
}

// --- one test per backend ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3() {
    run(support::s3(), "s3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azblob() {
    run(support::azblob(), "azblob").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs() {
    run(support::gcs(), "gcs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webdav() {
    run(support::webdav(), "webdav").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ftp() {
    run(support::ftp(), "ftp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ftps_explicit() {
    if rerun_with_test_ca("ftps_explicit") {
        return;
    }
    run(support::ftps_explicit(), "ftps_explicit").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ftps_implicit() {
    if !implemented(&["ftps_implicit.rs", "ftps.rs"]) {
        eprintln!("SKIP [ftps_implicit] the implicit FTPS backend is not in src/backend yet");
        return;
    }
    if rerun_with_test_ca("ftps_implicit") {
        return;
    }
    run(support::ftps_implicit(), "ftps_implicit").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp() {
    run(support::sftp(), "sftp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smb() {
    if !implemented(&["smb.rs"]) {
        eprintln!("SKIP [smb] the SMB backend is not in src/backend yet");
        return;
    }
    run(support::smb(), "smb").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swift() {
    run(support::swift(), "swift").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_fs() {
    let root = tempfile::tempdir().expect("temp dir");
    run(support::local(root.path()), "local_fs").await;
}

// --- refused writes and wrong credentials --------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_read_only_refuses_writes() {
    read_only_refuses_writes(support::s3_read_only(), "s3_read_only").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webdav_read_only_refuses_writes() {
    read_only_refuses_writes(support::webdav_read_only(), "webdav_read_only").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ftp_read_only_refuses_writes() {
    read_only_refuses_writes(support::ftp_read_only(), "ftp_read_only").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_read_only_refuses_writes() {
    read_only_refuses_writes(support::sftp_read_only(), "sftp_read_only").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smb_read_only_refuses_writes() {
    if !implemented(&["smb.rs"]) {
        eprintln!("SKIP [smb_read_only] the SMB backend is not in src/backend yet");
        return;
    }
    read_only_refuses_writes(support::smb_read_only(), "smb_read_only").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swift_read_only_refuses_writes() {
    read_only_refuses_writes(support::swift_read_only(), "swift_read_only").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swift_wrong_credentials() {
    wrong_credentials(support::swift(), "swift_wrong_credentials").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_wrong_credentials() {
    wrong_credentials(support::s3(), "s3_wrong_credentials").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azblob_wrong_credentials() {
    // Azurite checks the signature of every request: a different (valid base64) key fails it.
    let mut t = support::azblob();
    t.secrets.insert(
        "account_key".into(),
        serde_json::Value::String("d3JvbmctU2VjcmV0LTQ3MTEtd3Jvbmctd3Jvbmctd3Jvbmc=".into()),
    );
    let module = connect(&t, "azblob_wrong_credentials").await;
    let report = module.test().await;
    assert!(!report.ok, "[azblob] the connection test passed with a wrong key: {report:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webdav_wrong_credentials() {
    wrong_credentials(support::webdav(), "webdav_wrong_credentials").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ftp_wrong_credentials() {
    wrong_credentials(support::ftp(), "ftp_wrong_credentials").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smb_wrong_credentials() {
    if !implemented(&["smb.rs"]) {
        eprintln!("SKIP [smb_wrong_credentials] the SMB backend is not in src/backend yet");
        return;
    }
    wrong_credentials(support::smb(), "smb_wrong_credentials").await;
}
