//! StorageModule over the local-path (`fs`) and in-memory backends: upload, verify, stat, read,
//! range read, list, delete, encryption through upload/download, and the connection test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use chrono::TimeZone;
use pv_storage::{
    Error, Key, KeyContext, KeyTemplate, ModuleSettings, Provider, ProviderSource, StorageModule,
};
use serde_json::{Map, Value, json};

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn ctx(segment: &str) -> KeyContext {
    KeyContext {
        provider: "local".into(),
        module: "Archive".into(),
        camera: "Front door".into(),
        camera_id: 3,
        segment: segment.into(),
        segment_id: 11,
        started_at: chrono::Utc.with_ymd_and_hms(2026, 12, 5, 10, 15, 0).unwrap(),
        ext: "mp4".into(),
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

async fn fs_module(root: &std::path::Path, key: Option<[u8; 32]>) -> StorageModule {
    let mut settings = ModuleSettings::new("Archive");
    settings.encryption_key = key;
    settings.op_timeout = Duration::from_secs(10);
    StorageModule::from_backend(
        "fs",
        &obj(json!({"root": root.to_str().unwrap()})),
        &Map::new(),
        settings,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn fs_upload_stat_read_range_list_delete() {
    let root = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let module = fs_module(root.path(), None).await;
    let data = pattern(3 * 1024 * 1024 + 123);
    let src = work.path().join("seg.mp4");
    std::fs::write(&src, &data).unwrap();

    let key = module.key_for(&ctx("20261205T101500Z-3")).unwrap();
    assert_eq!(key.as_str(), "local/Front_door/2026/12/05/20261205T101500Z-3.mp4");
    let up = module.upload_file(&key, &src).await.unwrap();
    assert_eq!(up.size, data.len() as u64);
    assert_eq!(up.checksum.as_deref().unwrap().len(), 32);
    // The object is a plain file under the root.
    assert_eq!(std::fs::read(root.path().join(key.as_str())).unwrap(), data);

    let meta = module.stat(&key).await.unwrap().unwrap();
    assert_eq!(meta.size, data.len() as u64);
    assert!(module.stat(&Key::new("absent/x").unwrap()).await.unwrap().is_none());

    assert_eq!(module.read(&key, None).await.unwrap(), data);
    assert_eq!(module.read(&key, Some(100..200)).await.unwrap(), data[100..200]);

    // Overwrite with different content: the same key holds the new bytes.
    let data2 = pattern(1000);
    std::fs::write(&src, &data2).unwrap();
    module.upload_file(&key, &src).await.unwrap();
    assert_eq!(module.read(&key, None).await.unwrap(), data2);

    let other = Key::new("local/Back/2026/x.mp4").unwrap();
    module.upload_file(&other, &src).await.unwrap();
    let all: Vec<String> =
        module.list("local/").await.unwrap().into_iter().map(|m| m.key).collect();
    assert_eq!(
        all,
        ["local/Back/2026/x.mp4", "local/Front_door/2026/12/05/20261205T101500Z-3.mp4"]
    );
    let front: Vec<String> =
        module.list("local/Fr").await.unwrap().into_iter().map(|m| m.key).collect();
    assert_eq!(front, ["local/Front_door/2026/12/05/20261205T101500Z-3.mp4"]);
    assert!(module.list("nothing/").await.unwrap().is_empty());

    let dest = work.path().join("back.mp4");
    assert_eq!(module.download_to(&key, &dest).await.unwrap(), data2.len() as u64);
    assert_eq!(std::fs::read(&dest).unwrap(), data2);

    module.delete(&key).await.unwrap();
    assert!(module.stat(&key).await.unwrap().is_none());
    module.delete(&key).await.unwrap(); // absent: still fine
    let err = module.read(&key, None).await.unwrap_err();
    assert!(matches!(err, Error::Remote { kind: pv_storage::RemoteKind::NotFound, .. }), "{err:?}");
    // A local folder cannot sign URLs.
    assert!(module.presign_read(&other, Duration::from_secs(60)).await.unwrap().is_none());
}

#[tokio::test]
async fn encrypted_upload_round_trips_and_stores_ciphertext() {
    let root = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let enc_key = [9u8; 32];
    let module = fs_module(root.path(), Some(enc_key)).await;
    let data = pattern(1_000_003);
    let src = work.path().join("seg.mp4");
    std::fs::write(&src, &data).unwrap();
    let key = Key::new("enc/seg.mp4").unwrap();
    let up = module.upload_file(&key, &src).await.unwrap();
    assert_eq!(up.size, pv_storage::crypt::encrypted_len(data.len() as u64));

    let stored = std::fs::read(root.path().join("enc/seg.mp4")).unwrap();
    assert_eq!(&stored[..6], b"PVENC1");
    assert_eq!(stored.len() as u64, up.size);
    assert_eq!(pv_storage::crypt::decrypt_bytes(&enc_key, &stored).unwrap(), data);

    let dest = work.path().join("plain.mp4");
    assert_eq!(module.download_to(&key, &dest).await.unwrap(), data.len() as u64);
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    assert_eq!(module.read(&key, Some(10..20)).await.unwrap(), data[10..20]);
    assert!(module.presign_read(&key, Duration::from_secs(60)).await.unwrap().is_none());

    // The wrong key cannot download, and no partial file is left.
    let wrong = fs_module(root.path(), Some([1u8; 32])).await;
    let dest2 = work.path().join("wrong.mp4");
    let err = wrong.download_to(&key, &dest2).await.unwrap_err();
    assert!(err.to_string().contains("cannot be decrypted"), "{err}");
    assert!(!dest2.exists());
    // Only seg.mp4 and plain.mp4: no partial download is left behind.
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 2);
}

#[tokio::test]
async fn memory_backend_and_connection_test() {
    let module =
        StorageModule::from_backend("memory", &Map::new(), &Map::new(), ModuleSettings::new("mem"))
            .await
            .unwrap();
    let report = module.test().await;
    assert!(report.ok, "{report:?}");
    let steps: Vec<&str> = report.steps.iter().map(|s| s.step.as_str()).collect();
    assert_eq!(steps, ["connect", "write", "read", "compare", "delete"]);
    // The test object is gone.
    assert!(module.list("").await.unwrap().is_empty());

    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("a.mp4");
    std::fs::write(&src, pattern(70_000)).unwrap();
    let key = Key::new("m/a.mp4").unwrap();
    module.upload_file(&key, &src).await.unwrap();
    assert_eq!(module.read(&key, Some(69_990..70_000)).await.unwrap(), pattern(70_000)[69_990..]);
    assert_eq!(module.list("m/").await.unwrap().len(), 1);
}

#[tokio::test]
async fn fs_test_reports_unwritable_folder() {
    let root = tempfile::tempdir().unwrap();
    let module = fs_module(root.path(), None).await;
    assert!(module.test().await.ok);
    // Running as root ignores permissions; make the test folder a file instead.
    let _ = std::fs::remove_dir_all(root.path().join(".pentavision-test"));
    std::fs::write(root.path().join(".pentavision-test"), b"not a folder").unwrap();
    let report = module.test().await;
    assert!(!report.ok);
    let write = report.steps.iter().find(|s| s.step == "write").unwrap();
    assert!(!write.ok);
    assert!(write.message.as_deref().unwrap_or("").len() > 10, "{write:?}");
}

#[tokio::test]
async fn connect_validates_with_labels() {
    let json = json!({
        "id": "mylocal", "name": "My local", "category": "local", "icon": "folder", "backend": "fs",
        "description": "A folder.", "docs_url": "https://example.com",
        "capabilities": {"range": true, "list": true},
        "fields": [{"key": "root", "label": "Folder", "kind": "path", "required": true}]
    });
    let provider = Provider {
        definition: serde_json::from_value(json).unwrap(),
        template_html: "<div></div>".into(),
        source: ProviderSource::Builtin,
    };
    let err = StorageModule::connect(
        &provider,
        &obj(json!({"root": "relative"})),
        &Map::new(),
        ModuleSettings::new("x"),
    )
    .await
    .unwrap_err();
    assert_eq!(err.to_string(), "Folder must be an absolute path starting with /");
    let root = tempfile::tempdir().unwrap();
    let mut settings = ModuleSettings::new("x");
    settings.key_template = KeyTemplate::parse("{camera_id}/{segment}.{ext}").unwrap();
    let module = StorageModule::connect(
        &provider,
        &obj(json!({"root": root.path().to_str().unwrap()})),
        &Map::new(),
        settings,
    )
    .await
    .unwrap();
    assert_eq!(module.key_for(&ctx("s1")).unwrap().as_str(), "3/s1.mp4");
    assert!(module.test().await.ok);
    // Without a part limit the chunk size stays the module's (8 MiB by default).
    assert_eq!(module.chunk_for(10 << 30), 8 << 20);

    // A provider limited to 1,000 parts (Scaleway) grows the parts of a large upload.
    let mut limited = provider.clone();
    limited.definition.quirks.max_parts = Some(1000);
    let module = StorageModule::connect(
        &limited,
        &obj(json!({"root": root.path().to_str().unwrap()})),
        &Map::new(),
        ModuleSettings::new("x"),
    )
    .await
    .unwrap();
    assert_eq!(module.chunk_for(100 << 20), 8 << 20);
    assert_eq!(module.chunk_for(10 << 30), (10u64 << 30).div_ceil(1000));
}
