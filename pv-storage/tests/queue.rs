//! The upload engine against real local-path modules (OpenDAL's fs service in temporary
//! directories). A module is made to fail by replacing its root directory with a regular file,
//! so every write below it fails with "not a directory", and repaired by putting the directory
//! back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use pv_storage::module::{ModuleSettings, StorageModule, Uploaded};
use pv_storage::queue::{
    Health, Job, JobStatus, JobStore, MemoryJobStore, QueueConfig, QueueEvent, UploadQueue,
};
use pv_storage::template::{KeyContext, KeyTemplate};
use serde_json::{Map, Value, json};
use tokio::sync::{broadcast, oneshot};

const TEMPLATE: &str = "{camera}/{date}/{segment}.{ext}";

fn ctx(camera: &str, segment_id: i64) -> KeyContext {
    KeyContext {
        provider: "local-path".into(),
        module: "test".into(),
        camera: camera.into(),
        camera_id: 7,
        segment: format!("seg-{segment_id:03}"),
        segment_id,
        started_at: Utc.with_ymd_and_hms(2026, 12, 5, 10, 0, 0).unwrap(),
        ext: "mp4".into(),
    }
}

fn expected_key(camera: &str, segment_id: i64) -> String {
    format!("{camera}/2026-12-05/seg-{segment_id:03}.mp4")
}

async fn fs_module(name: &str, root: &Path, parallel: u32) -> StorageModule {
    let mut settings = ModuleSettings::new(name);
    settings.key_template = KeyTemplate::parse(TEMPLATE).unwrap();
    settings.parallel = parallel;
    let config: Map<String, Value> =
        json!({ "root": root.to_str().unwrap() }).as_object().unwrap().clone();
    StorageModule::from_backend("fs", &config, &Map::new(), settings).await.unwrap()
}

fn write_file(dir: &Path, name: &str, len: usize, seed: u8) -> PathBuf {
    let path = dir.join(name);
    let data: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
    std::fs::write(&path, data).unwrap();
    path
}

/// Make the module rooted at `root` fail: its root becomes a regular file.
fn break_root(root: &Path) {
    std::fs::remove_dir_all(root).unwrap();
    std::fs::write(root, b"not a directory").unwrap();
}

fn repair_root(root: &Path) {
    std::fs::remove_file(root).unwrap();
    std::fs::create_dir_all(root).unwrap();
}

fn fast_config() -> QueueConfig {
    QueueConfig {
        poll: Duration::from_millis(20),
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(80),
        failing_after: 3,
        probe_every: Duration::from_millis(150),
    }
}

/// A running queue and the way to stop it.
struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    fn start(queue: UploadQueue) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn({
            let queue = queue.clone();
            async move {
                queue
                    .run(async {
                        let _ = stopped.await;
                    })
                    .await
            }
        });
        Self { stop: Some(stop), task }
    }

    /// Ask for shutdown and wait for `run` to return; returns how long that took.
    async fn stop(mut self) -> Duration {
        let t = Instant::now();
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(30), self.task).await.unwrap().unwrap();
        t.elapsed()
    }
}

async fn wait_done(store: &MemoryJobStore, id: i64) -> (i64, Uploaded) {
    tokio::time::timeout(Duration::from_secs(30), store.wait(id))
        .await
        .unwrap_or_else(|_| panic!("job {id} not done in time: {:?}", store.state(id)))
        .unwrap()
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn drain(rx: &mut broadcast::Receiver<QueueEvent>) -> Vec<QueueEvent> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        out.push(e);
    }
    out
}

/// Every file under `root`, as `/`-separated paths relative to it.
fn objects(root: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                let rel = path.strip_prefix(base).unwrap().to_str().unwrap().replace('\\', "/");
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_segment_is_uploaded_exactly_once_under_its_template_key() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("remote");
    std::fs::create_dir_all(&root).unwrap();
    let store = Arc::new(MemoryJobStore::new());
    let queue = UploadQueue::new(store.clone(), fast_config());
    queue.set_module(1, fs_module("Local archive", &root, 3).await, true);
    let mut events = queue.subscribe();
    let running = Running::start(queue.clone());

    let mut jobs = Vec::new();
    for i in 0..12 {
        let path = write_file(dir.path(), &format!("local-{i}.mp4"), 100_000 + i as usize, i as u8);
        jobs.push((i, path.clone(), store.enqueue(path, ctx("Front door", i), vec![1])));
    }
    queue.wake();
    for (i, path, id) in &jobs {
        let (module, up) = wait_done(&store, *id).await;
        assert_eq!(module, 1);
        assert_eq!(up.key.as_str(), expected_key("Front_door", *i));
        assert_eq!(up.size, std::fs::metadata(path).unwrap().len());
        let stored = std::fs::read(root.join(expected_key("Front_door", *i))).unwrap();
        assert_eq!(stored, std::fs::read(path).unwrap());
    }
    // A retry of the same segment (as after a crash between upload and bookkeeping) writes the
    // same key again: still one object per segment.
    let again = store.enqueue(jobs[3].1.clone(), ctx("Front door", 3), vec![1]);
    queue.wake();
    wait_done(&store, again).await;
    running.stop().await;

    let mut want: Vec<String> = (0..12).map(|i| expected_key("Front_door", i)).collect();
    want.sort();
    assert_eq!(objects(&root), want);
    for (_, _, id) in &jobs {
        let state = store.state(*id).unwrap();
        assert_eq!(state.status, JobStatus::Done);
        assert_eq!(state.finished_count, 1, "job {id} reported finished more than once");
        assert_eq!(state.attempts, 0);
    }
    let events = drain(&mut events);
    let done = events.iter().filter(|e| e.event == "upload_done").count();
    let started = events.iter().filter(|e| e.event == "upload_start").count();
    assert_eq!((started, done), (13, 13));
    assert!(events.iter().all(|e| e.module_id == 1));
    assert!(events.iter().any(|e| e.stream_id.as_deref() == Some("7-5")));
    assert_eq!(queue.health(1), Health::Healthy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_fail_over_to_the_next_module_and_come_back_after_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first");
    let second = dir.path().join("second");
    std::fs::create_dir_all(&first).unwrap();
    std::fs::create_dir_all(&second).unwrap();
    let store = Arc::new(MemoryJobStore::new());
    let config = QueueConfig { failing_after: 2, ..fast_config() };
    let queue = UploadQueue::new(store.clone(), config);
    queue.set_module(1, fs_module("Primary NAS", &first, 1).await, true);
    queue.set_module(2, fs_module("Backup disk", &second, 1).await, true);
    let mut events = queue.subscribe();
    break_root(&first);
    let running = Running::start(queue.clone());

    // Two jobs fail on the first module, which makes it failing; they and the rest go to the
    // second one.
    let mut ids = Vec::new();
    for i in 0..4 {
        let path = write_file(dir.path(), &format!("a-{i}.mp4"), 20_000, i as u8);
        ids.push(store.enqueue(path, ctx("Yard", i), vec![1, 2]));
    }
    queue.wake();
    for id in &ids {
        let (module, _) = wait_done(&store, *id).await;
        assert_eq!(module, 2, "job {id}: {:?}", store.state(*id));
    }
    assert_eq!(queue.health(1), Health::Failing);
    assert_eq!(queue.health(2), Health::Healthy);
    let failed_on_first =
        ids.iter().filter(|id| store.state(**id).unwrap().last_failed_module == Some(1)).count();
    assert!(failed_on_first >= 2, "{failed_on_first} job(s) failed on the first module");
    let seen = drain(&mut events);
    let failover = seen
        .iter()
        .find(|e| e.event == "failover" && e.module_id == 1)
        .unwrap_or_else(|| panic!("no failover event in {seen:#?}"));
    assert!(failover.message.contains("Primary NAS"), "{}", failover.message);
    assert!(failover.message.contains("Backup disk"), "{}", failover.message);
    let failure = seen.iter().find(|e| e.event == "upload_failed").unwrap();
    assert!(failure.message.contains("Primary NAS"), "{}", failure.message);
    // Probes run every 150 ms and keep failing while the root is broken.
    wait_until("a failed probe", || {
        events_contain(&mut events, |e| e.event == "probe" && e.message.contains("still failing"))
    })
    .await;
    assert_eq!(queue.health(1), Health::Failing);

    // Repair: the next probe passes and new uploads go to the first module again.
    repair_root(&first);
    wait_until("the first module is healthy again", || queue.health(1) != Health::Failing).await;
    assert_eq!(queue.health(1), Health::Degraded, "failures in the last hour");
    let path = write_file(dir.path(), "after.mp4", 20_000, 99);
    let id = store.enqueue(path, ctx("Yard", 100), vec![1, 2]);
    queue.wake();
    let (module, up) = wait_done(&store, id).await;
    assert_eq!(module, 1);
    assert!(first.join(up.key.as_str()).is_file());
    running.stop().await;
    // Nothing was stored twice: four objects on the second module, one on the first.
    assert_eq!(objects(&second).len(), 4);
    assert_eq!(objects(&first), vec![expected_key("Yard", 100)]);
}

fn events_contain(
    rx: &mut broadcast::Receiver<QueueEvent>,
    pred: impl Fn(&QueueEvent) -> bool,
) -> bool {
    drain(rx).iter().any(pred)
}

/// One `failed` call: the job's attempts before it, when it was made, the next attempt, the error.
type Failure = (u32, DateTime<Utc>, DateTime<Utc>, String);

/// Records every `failed` call with the time it was made, then delegates.
struct Recording {
    inner: MemoryJobStore,
    failures: Mutex<Vec<Failure>>,
}

#[async_trait]
impl JobStore for Recording {
    async fn claim_due(&self, now: DateTime<Utc>, limit: usize) -> pv_storage::Result<Vec<Job>> {
        self.inner.claim_due(now, limit).await
    }
    async fn finished(&self, job: &Job, module_id: i64, up: &Uploaded) -> pv_storage::Result<()> {
        self.inner.finished(job, module_id, up).await
    }
    async fn failed(
        &self,
        job: &Job,
        module_id: i64,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> pv_storage::Result<()> {
        self.failures.lock().unwrap().push((
            job.attempts,
            Utc::now(),
            next_attempt_at,
            error.into(),
        ));
        self.inner.failed(job, module_id, error, next_attempt_at).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_off_doubles_per_attempt_up_to_the_cap_and_health_degrades_then_fails() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("remote");
    std::fs::create_dir_all(&root).unwrap();
    let store =
        Arc::new(Recording { inner: MemoryJobStore::new(), failures: Mutex::new(Vec::new()) });
    let config = QueueConfig {
        poll: Duration::from_millis(10),
        backoff_base: Duration::from_millis(40),
        backoff_max: Duration::from_millis(160),
        failing_after: 3,
        probe_every: Duration::from_secs(3600),
    };
    let queue = UploadQueue::new(store.clone(), config.clone());
    queue.set_module(1, fs_module("Only target", &root, 1).await, true);
    break_root(&root);
    let running = Running::start(queue.clone());
    let path = write_file(dir.path(), "seg.mp4", 1000, 1);
    let id = store.inner.enqueue(path, ctx("Gate", 1), vec![1]);
    queue.wake();

    wait_until("one failure", || store.inner.state(id).unwrap().attempts >= 1).await;
    assert_eq!(queue.health(1), Health::Degraded);
    // The only module of the chain is failing: the job keeps being retried on it. (Each
    // attempt takes a few seconds: the module's own retry layer tries the write again first.)
    wait_until("four failures", || store.inner.state(id).unwrap().attempts >= 4).await;
    running.stop().await;
    assert_eq!(queue.health(1), Health::Failing);

    let failures = store.failures.lock().unwrap().clone();
    for (n, (attempts, at, next, error)) in failures.iter().enumerate() {
        assert_eq!(*attempts as usize, n, "attempts counted one by one");
        let nominal = config.backoff(*attempts);
        let delay = (*next - *at).to_std().unwrap_or_default();
        assert!(
            delay <= nominal + Duration::from_millis(5)
                && delay + Duration::from_millis(5) >= nominal.mul_f64(0.8),
            "attempt {attempts}: waited {delay:?}, nominal {nominal:?}"
        );
        assert!(!error.is_empty());
    }
    assert!(failures.len() >= 4);
    let nominal: Vec<u64> = (0..4).map(|a| config.backoff(a).as_millis() as u64).collect();
    assert_eq!(nominal, [40, 80, 160, 160]);
    let state = store.inner.state(id).unwrap();
    assert_eq!(state.status, JobStatus::Pending, "a failed job stays queued");
    assert!(state.last_error.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_per_module_never_exceed_its_parallel_setting() {
    let dir = tempfile::tempdir().unwrap();
    let narrow_root = dir.path().join("narrow");
    let wide_root = dir.path().join("wide");
    std::fs::create_dir_all(&narrow_root).unwrap();
    std::fs::create_dir_all(&wide_root).unwrap();
    let store = Arc::new(MemoryJobStore::new());
    let queue = UploadQueue::new(store.clone(), fast_config());
    // Every job goes to "narrow" (first in the chain, healthy); "wide" only adds capacity, so
    // the queue claims more jobs than "narrow" may run at once.
    queue.set_module(1, fs_module("narrow", &narrow_root, 2).await, true);
    queue.set_module(2, fs_module("wide", &wide_root, 4).await, true);
    let mut ids = Vec::new();
    for i in 0..16 {
        let path = write_file(dir.path(), &format!("big-{i}.mp4"), 4 << 20, i as u8);
        ids.push(store.enqueue(path, ctx("Hall", i), vec![1, 2]));
    }
    let running = Running::start(queue.clone());
    queue.wake();
    let mut max_active = 0;
    let mut max_in_flight = 0;
    while store.counts().2 < ids.len() {
        max_active = max_active.max(queue.active_uploads(1));
        max_in_flight = max_in_flight.max(queue.in_flight());
        tokio::task::yield_now().await;
    }
    running.stop().await;
    assert_eq!(max_active, 2, "at most (and, with 16 jobs, exactly) 2 uploads at once");
    assert!(max_in_flight > 2, "the queue claimed beyond the module's slots: {max_in_flight}");
    assert!(max_in_flight <= 6);
    assert_eq!(queue.active_uploads(1), 0);
    assert_eq!(objects(&narrow_root).len(), 16);
    assert!(objects(&wide_root).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_local_file_fails_with_a_message_and_the_module_stays_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("remote");
    std::fs::create_dir_all(&root).unwrap();
    let store = Arc::new(MemoryJobStore::new());
    let config = QueueConfig { backoff_max: Duration::from_secs(3600), ..fast_config() };
    let queue = UploadQueue::new(store.clone(), config);
    queue.set_module(1, fs_module("Archive", &root, 1).await, true);
    let running = Running::start(queue.clone());
    let gone = dir.path().join("deleted.mp4");
    let id = store.enqueue(&gone, ctx("Porch", 1), vec![1]);
    queue.wake();
    wait_until("the failure", || store.state(id).unwrap().attempts == 1).await;
    let state = store.state(id).unwrap();
    assert_eq!(state.status, JobStatus::Pending);
    let error = state.last_error.unwrap();
    assert!(error.contains("no longer exists") && error.contains("deleted.mp4"), "{error}");
    let wait = (state.next_attempt_at - Utc::now()).to_std().unwrap();
    assert!(wait > Duration::from_secs(3500), "long back-off, got {wait:?}");
    assert_eq!(queue.health(1), Health::Healthy, "the module is not to blame");
    // Other jobs are not held up.
    let path = write_file(dir.path(), "ok.mp4", 5000, 3);
    let ok = store.enqueue(path, ctx("Porch", 2), vec![1]);
    queue.wake();
    wait_done(&store, ok).await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_without_an_enabled_module_waits_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("remote");
    std::fs::create_dir_all(&root).unwrap();
    let store = Arc::new(MemoryJobStore::new());
    let queue = UploadQueue::new(store.clone(), fast_config());
    queue.set_module(1, fs_module("Enabled", &root, 1).await, true);
    queue.set_module(2, fs_module("Switched off", &root, 1).await, false);
    assert_eq!(queue.health(2), Health::Disabled);
    let running = Running::start(queue.clone());
    let path = write_file(dir.path(), "seg.mp4", 5000, 1);
    let id = store.enqueue(&path, ctx("Back", 1), vec![2]);
    queue.wake();
    wait_until("the failure", || store.state(id).unwrap().attempts == 1).await;
    let state = store.state(id).unwrap();
    assert_eq!(state.last_error.as_deref(), Some("no enabled storage module for this camera"));
    let wait = (state.next_attempt_at - Utc::now()).to_std().unwrap();
    assert!(wait > Duration::from_secs(55) && wait <= Duration::from_secs(60), "{wait:?}");
    assert!(objects(&root).is_empty());
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wake_starts_a_new_job_without_waiting_for_the_poll() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("remote");
    std::fs::create_dir_all(&root).unwrap();
    let store = Arc::new(MemoryJobStore::new());
    let config = QueueConfig {
        poll: Duration::from_secs(120),
        probe_every: Duration::from_secs(120),
        ..fast_config()
    };
    let queue = UploadQueue::new(store.clone(), config);
    queue.set_module(1, fs_module("Archive", &root, 1).await, true);
    let running = Running::start(queue.clone());
    tokio::time::sleep(Duration::from_millis(100)).await; // the loop is now asleep
    let path = write_file(dir.path(), "seg.mp4", 5000, 1);
    let t = Instant::now();
    let id = store.enqueue(&path, ctx("Drive", 1), vec![1]);
    queue.wake();
    wait_done(&store, id).await;
    assert!(t.elapsed() < Duration::from_secs(5), "took {:?}", t.elapsed());
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_running_uploads_finish_and_abandons_them_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("remote");
    std::fs::create_dir_all(&root).unwrap();
    let store = Arc::new(MemoryJobStore::new());
    let queue = UploadQueue::new(store.clone(), fast_config());
    // 256 KiB/s after a burst of about 1 MiB (the throttle's bucket starts full): a 1.5 MiB
    // file takes about 2 s, a 2 MiB file about 4 s.
    let mut settings = ModuleSettings::new("Slow link");
    settings.key_template = KeyTemplate::parse(TEMPLATE).unwrap();
    settings.parallel = 1;
    settings.chunk_size = Some(64 * 1024);
    settings.bandwidth_bytes_per_sec = Some(256 * 1024);
    let config: Map<String, Value> =
        json!({ "root": root.to_str().unwrap() }).as_object().unwrap().clone();
    let slow = StorageModule::from_backend("fs", &config, &Map::new(), settings).await.unwrap();
    queue.set_module(1, slow, true);

    // 1: shutdown while an upload runs, within the grace period: it finishes.
    let running = Running::start(queue.clone());
    let path = write_file(dir.path(), "a.mp4", 1536 * 1024, 1);
    let id = store.enqueue(&path, ctx("Lab", 1), vec![1]);
    queue.wake();
    wait_until("the upload runs", || queue.active_uploads(1) == 1).await;
    let took = running.stop().await;
    assert_eq!(store.state(id).unwrap().status, JobStatus::Done, "finished during the grace");
    assert!(took > Duration::from_millis(300), "run returned before the upload ended: {took:?}");

    // 2: a grace period shorter than the upload: `run` returns, the job stays "uploading"
    // (as after a crash) and is uploaded by the next run once the store requeues it.
    queue.set_shutdown_grace(Duration::from_millis(200));
    let running = Running::start(queue.clone());
    let path = write_file(dir.path(), "b.mp4", 2 << 20, 2);
    let id = store.enqueue(&path, ctx("Lab", 2), vec![1]);
    queue.wake();
    wait_until("the upload runs", || queue.active_uploads(1) == 1).await;
    let took = running.stop().await;
    assert!(took < Duration::from_secs(2), "grace not honoured: {took:?}");
    assert_eq!(store.state(id).unwrap().status, JobStatus::Uploading);
    assert_eq!(queue.active_uploads(1), 0);
    assert_eq!(store.requeue_stale(), 1);
    let running = Running::start(queue.clone());
    queue.wake();
    let (_, up) = wait_done(&store, id).await;
    running.stop().await;
    assert_eq!(up.size, 2 << 20);
    assert_eq!(std::fs::read(root.join(up.key.as_str())).unwrap(), std::fs::read(&path).unwrap());
    assert_eq!(store.state(id).unwrap().finished_count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_health_check_result_fed_in_moves_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let store = Arc::new(MemoryJobStore::new());
    let config =
        QueueConfig { failing_after: 2, probe_every: Duration::from_secs(3600), ..fast_config() };
    let queue = UploadQueue::new(store.clone(), config);
    queue.set_module(1, fs_module("A", &a, 1).await, true);
    queue.set_module(2, fs_module("B", &b, 1).await, true);
    queue.mark_probe_result(1, false);
    assert_eq!(queue.health(1), Health::Degraded);
    queue.mark_probe_result(1, false);
    assert_eq!(queue.health(1), Health::Failing);
    let running = Running::start(queue.clone());
    let path = write_file(dir.path(), "s.mp4", 1000, 1);
    let id = store.enqueue(&path, ctx("C", 1), vec![1, 2]);
    queue.wake();
    assert_eq!(wait_done(&store, id).await.0, 2);
    queue.mark_probe_result(1, true);
    assert_eq!(queue.health(1), Health::Degraded);
    let id = store.enqueue(&path, ctx("C", 2), vec![1, 2]);
    queue.wake();
    assert_eq!(wait_done(&store, id).await.0, 1);
    queue.set_module(1, fs_module("A", &a, 1).await, false);
    assert_eq!(queue.health(1), Health::Disabled);
    let id = store.enqueue(&path, ctx("C", 3), vec![1, 2]);
    queue.wake();
    assert_eq!(wait_done(&store, id).await.0, 2);
    running.stop().await;
}
