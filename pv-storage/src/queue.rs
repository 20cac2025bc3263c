//! The upload engine: a durable queue of "copy this local file to that storage module" jobs,
//! worked off with bounded parallelism per module, retries with back-off and automatic failover.
//!
//! The jobs live in a [`JobStore`]: the records database in the server (`pv_core::storage`), or
//! [`MemoryJobStore`] for programs that embed pv-storage without a database. The queue itself
//! keeps no job state of its own, so the store is the single source of truth across restarts.
//!
//! How [`UploadQueue::run`] works:
//! - It claims due jobs from the store (the store marks them "uploading"), at most as many as the
//!   enabled modules have free upload slots together (each module's
//!   [`ModuleSettings::parallel`](crate::module::ModuleSettings::parallel)). It never requeues
//!   anything itself: the store puts jobs whose lease expired back at start-up (a crash or a
//!   shutdown with uploads still running leaves them "uploading").
//! - Each job carries a *failover chain* of module ids in priority order. The job goes to the
//!   first module of the chain that is set, enabled and not [`Health::Failing`]. When every
//!   module of the chain is failing it goes to the first enabled one, which keeps being retried
//!   with back-off; with no enabled module at all it stays pending and is looked at again a
//!   minute later.
//! - The object key comes from the module's key template ([`StorageModule::key_for`]), so it is
//!   the same on every try: a retried upload overwrites the same object, never a second copy.
//! - Success → [`JobStore::finished`]. Failure → [`JobStore::failed`] with the next attempt after
//!   `backoff_base * 2^attempts` (capped at `backoff_max`, minus up to 20 % of jitter), or at
//!   once when the failure made the module failing and the chain has another module to go to.
//!   A local file that no longer exists is not the module's fault: the job is failed with a
//!   message and the longest back-off, and the module's health is untouched.
//!
//! Health, per module: `failing_after` consecutive failures make a module [`Health::Failing`]
//! (event `failover` naming where uploads go instead); a failing module is probed every
//! `probe_every` with [`StorageModule::test`] (event `probe`), and a passing probe or a
//! successful upload makes it healthy again, so new jobs go back to it. A module with failures
//! in the last hour but fewer than `failing_after` in a row is [`Health::Degraded`].
//! [`UploadQueue::mark_probe_result`] lets a periodic health check feed its results in too.
//!
//! Shutdown: when the future given to [`UploadQueue::run`] completes, no more jobs are claimed,
//! running uploads get [`UploadQueue::shutdown_grace`] (10 s by default) to finish, and the rest
//! are abandoned: their jobs stay "uploading" until the store requeues them.
//!
//! ```no_run
//! # async fn demo(module: pv_storage::module::StorageModule, ctx: pv_storage::template::KeyContext)
//! # -> pv_storage::Result<()> {
//! use std::sync::Arc;
//! use pv_storage::queue::{MemoryJobStore, QueueConfig, UploadQueue};
//!
//! let store = Arc::new(MemoryJobStore::new());
//! let queue = UploadQueue::new(store.clone(), QueueConfig::default());
//! queue.set_module(1, module, true);
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let runner = tokio::spawn({
//!     let queue = queue.clone();
//!     async move { queue.run(async { let _ = stopped.await; }).await }
//! });
//! let job = store.enqueue("/var/lib/pentavision/seg.mp4", ctx, vec![1]);
//! queue.wake();
//! let (module_id, uploaded) = store.wait(job).await?;
//! println!("module {module_id} has {}", uploaded.key);
//! let _ = stop.send(());
//! let _ = runner.await;
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::{Notify, Semaphore, broadcast, watch};
use tokio::task::JoinSet;

use crate::module::{StorageModule, Uploaded};
use crate::template::KeyContext;
use crate::{Error, Result};

/// How long a job without any enabled module in its chain waits before it is looked at again.
const NO_MODULE_RETRY: Duration = Duration::from_secs(60);
/// How far back failures make a module [`Health::Degraded`].
const DEGRADED_WINDOW: Duration = Duration::from_secs(3600);
/// Events kept for slow subscribers before the oldest are dropped.
const EVENT_BUFFER: usize = 1024;

/// Where the queue's jobs are kept. Implementations must be durable if uploads are to survive a
/// restart; [`MemoryJobStore`] is not.
#[async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// Up to `limit` jobs whose next attempt is due at `now`, oldest first, marked "uploading"
    /// (leased) so that no other worker takes them.
    async fn claim_due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Job>>;
    /// `job` was uploaded to module `module_id` and verified.
    async fn finished(&self, job: &Job, module_id: i64, up: &Uploaded) -> Result<()>;
    /// An attempt at `job` on module `module_id` failed with `error` (a sentence for people); the
    /// job goes back to pending, due again at `next_attempt_at`, one attempt more.
    async fn failed(
        &self,
        job: &Job,
        module_id: i64,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<()>;
}

/// One upload to do: a local file, what its key is made of, and where it may go.
#[derive(Debug, Clone)]
pub struct Job {
    /// The store's id of the job.
    pub id: i64,
    /// The local file to upload.
    pub path: PathBuf,
    /// What the module's key template is rendered with.
    pub ctx: KeyContext,
    /// Module ids in priority order: the job goes to the first usable one.
    pub chain: Vec<i64>,
    /// Attempts made so far.
    pub attempts: u32,
    /// The id that ties log lines of this upload together (shown as the stream in the UI).
    pub stream_id: String,
}

/// Tuning of the [`UploadQueue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// How often the store is asked for due jobs when nothing wakes the queue.
    pub poll: Duration,
    /// The back-off after a job's first failure; it doubles with every further attempt.
    pub backoff_base: Duration,
    /// The longest back-off.
    pub backoff_max: Duration,
    /// Consecutive failures after which a module is [`Health::Failing`] and jobs go to the next
    /// module of their chain.
    pub failing_after: u32,
    /// How often a failing module is tested to see whether it works again.
    pub probe_every: Duration,
}

impl Default for QueueConfig {
    /// Poll every 5 s, back off from 10 s up to 30 min, failing after 3 failures in a row,
    /// probe a failing module every minute.
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(5),
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(30 * 60),
            failing_after: 3,
            probe_every: Duration::from_secs(60),
        }
    }
}

impl QueueConfig {
    /// The back-off, before jitter, after a failure of a job that had `attempts` attempts
    /// before the failed one: `backoff_base * 2^attempts`, at most `backoff_max`. The queue
    /// waits between 80 % and 100 % of it.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 1u32.checked_shl(attempts.min(31)).unwrap_or(u32::MAX);
        self.backoff_base.checked_mul(factor).unwrap_or(self.backoff_max).min(self.backoff_max)
    }
}

/// A module's health as the queue sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// No failure in the last hour.
    Healthy,
    /// Some failures in the last hour, but fewer in a row than make it failing.
    Degraded,
    /// Too many failures in a row: jobs go to the next module of their chain, and the module is
    /// probed until it works again.
    Failing,
    /// Switched off (or unknown to the queue): it gets no jobs.
    Disabled,
}

impl Health {
    /// `healthy`, `degraded`, `failing` or `disabled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Failing => "failing",
            Health::Disabled => "disabled",
        }
    }
}

/// How serious a [`QueueEvent`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Normal operation.
    Info,
    /// Something failed but will be retried or worked around.
    Warn,
    /// Something failed that needs attention.
    Error,
}

impl Level {
    /// `info`, `warn` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// Something that happened in the queue, for a module's log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QueueEvent {
    /// The module concerned (0 when the job had no usable module).
    pub module_id: i64,
    /// How serious it is.
    pub level: Level,
    /// `upload_start`, `upload_done`, `upload_failed`, `failover` or `probe`.
    pub event: String,
    /// The job's stream id, when the event concerns a job.
    pub stream_id: Option<String>,
    /// What happened, for people.
    pub message: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// The upload engine. Cheap to clone: clones share the same queue.
#[derive(Clone)]
pub struct UploadQueue {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for UploadQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let modules = lock(&self.inner.modules);
        f.debug_struct("UploadQueue")
            .field("config", &self.inner.config)
            .field("modules", &modules.keys().collect::<Vec<_>>())
            .field("in_flight", &self.inner.in_flight.load(Ordering::Relaxed))
            .finish()
    }
}

struct Inner {
    store: Arc<dyn JobStore>,
    config: QueueConfig,
    modules: Mutex<HashMap<i64, Slot>>,
    events: broadcast::Sender<QueueEvent>,
    wake: Notify,
    /// Jobs claimed and not yet finished or failed (waiting for a slot or uploading).
    in_flight: AtomicUsize,
    shutdown_grace_ms: AtomicU64,
}

/// A module as the queue tracks it.
struct Slot {
    module: StorageModule,
    enabled: bool,
    parallel: usize,
    semaphore: Arc<Semaphore>,
    active: Arc<AtomicUsize>,
    consecutive_failures: u32,
    failing: bool,
    failures: VecDeque<Instant>,
    next_probe: Instant,
    probing: bool,
}

impl Slot {
    fn health(&self, now: Instant) -> Health {
        if !self.enabled {
            Health::Disabled
        } else if self.failing {
            Health::Failing
        } else if self.failures.iter().any(|t| now.duration_since(*t) < DEGRADED_WINDOW) {
            Health::Degraded
        } else {
            Health::Healthy
        }
    }

    fn usable(&self) -> bool {
        self.enabled && !self.failing
    }
}

/// What a claimed job was routed to.
struct Route {
    id: i64,
    module: StorageModule,
    semaphore: Arc<Semaphore>,
    active: Arc<AtomicUsize>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl UploadQueue {
    /// A queue over `store` with no modules yet.
    pub fn new(store: Arc<dyn JobStore>, config: QueueConfig) -> Self {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        Self {
            inner: Arc::new(Inner {
                store,
                config,
                modules: Mutex::new(HashMap::new()),
                events,
                wake: Notify::new(),
                in_flight: AtomicUsize::new(0),
                shutdown_grace_ms: AtomicU64::new(10_000),
            }),
        }
    }

    /// The queue's configuration.
    pub fn config(&self) -> &QueueConfig {
        &self.inner.config
    }

    /// How long running uploads may go on after shutdown was asked for (10 s unless set).
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.inner.shutdown_grace_ms.load(Ordering::Relaxed))
    }

    /// Change how long running uploads may go on after shutdown was asked for.
    pub fn set_shutdown_grace(&self, grace: Duration) {
        let ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        self.inner.shutdown_grace_ms.store(ms, Ordering::Relaxed);
    }

    /// Add module `id`, or replace it (new settings or credentials). Its health record is kept
    /// across a replacement; feed a passing test in with [`mark_probe_result`] when the new
    /// values are known to work. Uploads already running finish on the old instance.
    ///
    /// [`mark_probe_result`]: Self::mark_probe_result
    pub fn set_module(&self, id: i64, module: StorageModule, enabled: bool) {
        let parallel = usize::try_from(module.settings().parallel.max(1)).unwrap_or(1);
        {
            let mut modules = lock(&self.inner.modules);
            match modules.get_mut(&id) {
                Some(slot) => {
                    if slot.parallel != parallel {
                        slot.semaphore = Arc::new(Semaphore::new(parallel));
                        slot.parallel = parallel;
                    }
                    slot.module = module;
                    slot.enabled = enabled;
                }
                None => {
                    modules.insert(
                        id,
                        Slot {
                            module,
                            enabled,
                            parallel,
                            semaphore: Arc::new(Semaphore::new(parallel)),
                            active: Arc::new(AtomicUsize::new(0)),
                            consecutive_failures: 0,
                            failing: false,
                            failures: VecDeque::new(),
                            next_probe: Instant::now(),
                            probing: false,
                        },
                    );
                }
            }
        }
        self.wake();
    }

    /// Forget module `id`: no new job goes to it (jobs move on along their chain). Uploads
    /// already running on it finish.
    pub fn remove_module(&self, id: i64) {
        lock(&self.inner.modules).remove(&id);
        self.wake();
    }

    /// Module `id`'s health; [`Health::Disabled`] for a module the queue does not know.
    pub fn health(&self, id: i64) -> Health {
        lock(&self.inner.modules)
            .get(&id)
            .map_or(Health::Disabled, |slot| slot.health(Instant::now()))
    }

    /// How many uploads to module `id` are running right now.
    pub fn active_uploads(&self, id: i64) -> usize {
        lock(&self.inner.modules).get(&id).map_or(0, |slot| slot.active.load(Ordering::SeqCst))
    }

    /// How many claimed jobs are waiting for a slot or uploading, over all modules.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::SeqCst)
    }

    /// Events from now on. A subscriber that falls more than 1,024 events behind loses the
    /// oldest ones.
    pub fn subscribe(&self) -> broadcast::Receiver<QueueEvent> {
        self.inner.events.subscribe()
    }

    /// Tell the queue that jobs were enqueued, so it claims them now rather than at its next
    /// poll.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Feed in the result of a test of module `id` done elsewhere (a periodic health check).
    /// A pass makes a failing module healthy again, so new jobs go back to it; a failure counts
    /// like a failed upload towards making it failing.
    pub fn mark_probe_result(&self, id: i64, ok: bool) {
        self.inner.probe_result(id, ok, true);
        if ok {
            self.wake();
        }
    }

    /// Work off the queue until `shutdown` completes, then let running uploads finish for up to
    /// [`shutdown_grace`](Self::shutdown_grace) and return. Run it once per queue.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut uploads: JoinSet<()> = JoinSet::new();
        let mut probes: JoinSet<()> = JoinSet::new();
        tracing::info!("upload queue started");
        loop {
            while let Some(done) = uploads.try_join_next() {
                report_panic(done);
            }
            while let Some(done) = probes.try_join_next() {
                report_panic(done);
            }
            self.start_probes(&mut probes);
            let free = self.free_capacity();
            if free > 0 {
                match self.inner.store.claim_due(Utc::now(), free).await {
                    Ok(jobs) => {
                        for job in jobs {
                            self.dispatch(job, &mut uploads).await;
                        }
                    }
                    Err(e) => tracing::warn!("could not read the upload queue: {e}"),
                }
            }
            let pause = self.inner.config.poll.min(self.inner.config.probe_every);
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = self.inner.wake.notified() => {}
                Some(done) = uploads.join_next(), if !uploads.is_empty() => report_panic(done),
                () = tokio::time::sleep(pause) => {}
            }
        }
        probes.abort_all();
        let grace = self.shutdown_grace();
        if !uploads.is_empty() {
            tracing::info!(
                "upload queue stopping: waiting up to {} for {} running upload(s)",
                human_duration(grace),
                uploads.len()
            );
        }
        let drained = tokio::time::timeout(grace, async {
            while let Some(done) = uploads.join_next().await {
                report_panic(done);
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                "upload queue stopped with {} upload(s) unfinished; they are retried at the next start",
                uploads.len()
            );
            uploads.shutdown().await;
        }
        while probes.join_next().await.is_some() {}
        tracing::info!("upload queue stopped");
    }

    /// Free upload slots over all enabled modules, less the jobs already claimed.
    fn free_capacity(&self) -> usize {
        let total: usize =
            lock(&self.inner.modules).values().filter(|s| s.enabled).map(|s| s.parallel).sum();
        total.saturating_sub(self.inner.in_flight.load(Ordering::SeqCst))
    }

    /// Route a claimed job and start its upload, or put it back when nothing can take it.
    async fn dispatch(&self, job: Job, uploads: &mut JoinSet<()>) {
        let Some(route) = self.inner.route(&job.chain) else {
            let module_id = job.chain.first().copied().unwrap_or(0);
            let message = "no enabled storage module for this camera";
            self.inner.emit(module_id, Level::Warn, "upload_failed", Some(&job), message.into());
            let next = Utc::now() + to_chrono(NO_MODULE_RETRY);
            if let Err(e) = self.inner.store.failed(&job, module_id, message, next).await {
                tracing::warn!("could not record the failed upload of job {}: {e}", job.id);
            }
            return;
        };
        self.inner.in_flight.fetch_add(1, Ordering::SeqCst);
        let inner = self.inner.clone();
        uploads.spawn(async move {
            let _in_flight = InFlight(inner.clone());
            inner.upload(job, route).await;
        });
    }

    /// Start a test of every failing module whose probe is due.
    fn start_probes(&self, probes: &mut JoinSet<()>) {
        let now = Instant::now();
        let mut due = Vec::new();
        {
            let mut modules = lock(&self.inner.modules);
            for (id, slot) in modules.iter_mut() {
                if slot.enabled && slot.failing && !slot.probing && slot.next_probe <= now {
                    slot.probing = true;
                    due.push((*id, slot.module.clone()));
                }
            }
        }
        for (id, module) in due {
            let queue = self.clone();
            probes.spawn(async move {
                let report = module.test().await;
                let message = if report.ok {
                    format!(
                        "{} passed its test in {} ms; new uploads go to it",
                        module.name(),
                        report.total_ms
                    )
                } else {
                    let why = report
                        .steps
                        .iter()
                        .find(|s| !s.ok)
                        .map(|s| match &s.message {
                            Some(m) => format!("{}: {m}", s.label),
                            None => format!("{} failed", s.label),
                        })
                        .unwrap_or_else(|| "the test did not pass".to_owned());
                    format!("{} is still failing its test ({why})", module.name())
                };
                let level = if report.ok { Level::Info } else { Level::Warn };
                queue.inner.emit(id, level, "probe", None, message);
                if let Some(slot) = lock(&queue.inner.modules).get_mut(&id) {
                    slot.probing = false;
                }
                queue.inner.probe_result(id, report.ok, false);
                if report.ok {
                    queue.wake();
                }
            });
        }
    }
}

/// Decrements the in-flight count and wakes the loop when an upload task ends, however it ends.
struct InFlight(Arc<Inner>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts an upload as active while it runs.
struct Active(Arc<AtomicUsize>);

impl Active {
    fn start(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(counter.clone())
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Inner {
    fn emit(&self, module_id: i64, level: Level, event: &str, job: Option<&Job>, message: String) {
        match level {
            Level::Info => tracing::debug!(module_id, event, "{message}"),
            Level::Warn => tracing::warn!(module_id, event, "{message}"),
            Level::Error => tracing::error!(module_id, event, "{message}"),
        }
        // No subscriber is fine: events are for whoever listens.
        let _ = self.events.send(QueueEvent {
            module_id,
            level,
            event: event.to_owned(),
            stream_id: job.map(|j| j.stream_id.clone()),
            message,
            at: Utc::now(),
        });
    }

    /// The module a job with this chain goes to now.
    fn route(&self, chain: &[i64]) -> Option<Route> {
        let modules = lock(&self.modules);
        let pick = chain
            .iter()
            .find(|id| modules.get(id).is_some_and(Slot::usable))
            .or_else(|| chain.iter().find(|id| modules.get(id).is_some_and(|s| s.enabled)))?;
        let slot = modules.get(pick)?;
        Some(Route {
            id: *pick,
            module: slot.module.clone(),
            semaphore: slot.semaphore.clone(),
            active: slot.active.clone(),
        })
    }

    fn module_name(&self, id: i64) -> String {
        lock(&self.modules)
            .get(&id)
            .map_or_else(|| format!("storage module {id}"), |s| s.module.name().to_owned())
    }

    /// Upload one routed job and record the outcome.
    async fn upload(&self, job: Job, route: Route) {
        let Ok(_permit) = route.semaphore.clone().acquire_owned().await else {
            // Semaphores are never closed; should one be, the job waits for its next try.
            self.fail_without_blame(&job, route.id, "the upload slot was closed".into()).await;
            return;
        };
        if let Err(message) = check_local_file(&job.path).await {
            self.fail_without_blame(&job, route.id, message).await;
            return;
        }
        let key = match route.module.key_for(&job.ctx) {
            Ok(key) => key,
            Err(e) => {
                let message = format!("the object key cannot be made from the key template: {e}");
                self.fail_without_blame(&job, route.id, message).await;
                return;
            }
        };
        let name = route.module.name().to_owned();
        self.emit(
            route.id,
            Level::Info,
            "upload_start",
            Some(&job),
            // The file's name only: the server's directories are nobody's business in a log
            // that is shown in the UI and exported.
            format!(
                "uploading {} to {name} as {key}",
                job.path.file_name().map_or_else(|| "the segment".into(), |f| f.to_string_lossy())
            ),
        );
        let result = {
            let _active = Active::start(&route.active);
            route.module.upload_file(&key, &job.path).await
        };
        match result {
            Ok(up) => {
                self.record_success(route.id);
                if let Err(e) = self.store.finished(&job, route.id, &up).await {
                    tracing::warn!("could not record the finished upload of job {}: {e}", job.id);
                }
                self.emit(
                    route.id,
                    Level::Info,
                    "upload_done",
                    Some(&job),
                    format!(
                        "uploaded {key} to {name}: {} in {} ms",
                        human_bytes(up.size),
                        up.millis
                    ),
                );
            }
            Err(e) => {
                if let Err(message) = check_local_file(&job.path).await {
                    // The file went away during the upload: not the module's fault.
                    self.fail_without_blame(&job, route.id, message).await;
                    return;
                }
                self.fail_upload(&job, route.id, &name, &key, &e).await;
            }
        }
    }

    /// A failed attempt the module is not to blame for (the local file, the key template):
    /// the job waits the longest back-off and the module's health is untouched.
    async fn fail_without_blame(&self, job: &Job, module_id: i64, message: String) {
        let next = Utc::now() + to_chrono(self.config.backoff_max);
        self.emit(
            module_id,
            Level::Error,
            "upload_failed",
            Some(job),
            format!("{message}; the next try is in {}", human_duration(self.config.backoff_max)),
        );
        if let Err(e) = self.store.failed(job, module_id, &message, next).await {
            tracing::warn!("could not record the failed upload of job {}: {e}", job.id);
        }
    }

    /// A failed upload: health bookkeeping, failover, back-off.
    async fn fail_upload(
        &self,
        job: &Job,
        module_id: i64,
        name: &str,
        key: &crate::Key,
        e: &Error,
    ) {
        let message = e.to_string();
        let now_failing = self.record_failure(module_id, Some(&job.chain));
        // When this module just went (or already is) failing and the chain has somewhere else
        // to go, retry there at once rather than after the back-off.
        let moves_on = self.route(&job.chain).is_some_and(|r| r.id != module_id);
        let delay =
            if moves_on { Duration::ZERO } else { jitter(self.config.backoff(job.attempts)) };
        let next = Utc::now() + to_chrono(delay);
        let attempt = job.attempts.saturating_add(1);
        let then = if moves_on {
            "the upload moves to the next storage module".to_owned()
        } else {
            format!("the next try is in {}", human_duration(delay))
        };
        let level = if now_failing { Level::Error } else { Level::Warn };
        self.emit(
            module_id,
            level,
            "upload_failed",
            Some(job),
            format!("upload of {key} to {name} failed (attempt {attempt}): {message}; {then}"),
        );
        if let Err(e) = self.store.failed(job, module_id, &message, next).await {
            tracing::warn!("could not record the failed upload of job {}: {e}", job.id);
        }
    }

    fn record_success(&self, id: i64) {
        let recovered = {
            let mut modules = lock(&self.modules);
            let Some(slot) = modules.get_mut(&id) else { return };
            slot.consecutive_failures = 0;
            std::mem::replace(&mut slot.failing, false)
        };
        if recovered {
            let name = self.module_name(id);
            self.emit(
                id,
                Level::Info,
                "failover",
                None,
                format!("{name} works again (an upload succeeded); new uploads go to it"),
            );
            self.wake.notify_one();
        }
    }

    /// Count a failure of module `id`; returns whether the module is failing now. Emits the
    /// `failover` event when this failure made it failing, naming where `chain` goes instead.
    fn record_failure(&self, id: i64, chain: Option<&[i64]>) -> bool {
        let now = Instant::now();
        let (became_failing, count) = {
            let mut modules = lock(&self.modules);
            let Some(slot) = modules.get_mut(&id) else { return false };
            slot.consecutive_failures = slot.consecutive_failures.saturating_add(1);
            slot.failures.push_back(now);
            while slot.failures.front().is_some_and(|t| now.duration_since(*t) >= DEGRADED_WINDOW) {
                slot.failures.pop_front();
            }
            let became = !slot.failing && slot.consecutive_failures >= self.config.failing_after;
            if became {
                slot.failing = true;
                slot.next_probe = now + self.config.probe_every;
            }
            if !became && !slot.failing {
                return false;
            }
            (became, slot.consecutive_failures)
        };
        if became_failing {
            let name = self.module_name(id);
            let next = chain.map(|c| self.route(c).filter(|r| r.id != id));
            let message = match next {
                None => format!(
                    "{name} is failing after {count} failures in a row; uploads go to the next storage module of each camera until it works again"
                ),
                Some(Some(r)) => format!(
                    "{name} is failing after {count} failures in a row; uploads go to {} until it works again",
                    r.module.name()
                ),
                Some(None) => format!(
                    "{name} is failing after {count} failures in a row and no other storage module is available; uploads keep retrying it with back-off"
                ),
            };
            self.emit(id, Level::Error, "failover", None, message);
        }
        true
    }

    /// A test result for module `id`. `announce` emits an event when the health changes.
    fn probe_result(&self, id: i64, ok: bool, announce: bool) {
        if ok {
            let recovered = {
                let mut modules = lock(&self.modules);
                let Some(slot) = modules.get_mut(&id) else { return };
                slot.consecutive_failures = 0;
                std::mem::replace(&mut slot.failing, false)
            };
            if recovered && announce {
                let name = self.module_name(id);
                self.emit(
                    id,
                    Level::Info,
                    "probe",
                    None,
                    format!("{name} passed its test and is healthy again; new uploads go to it"),
                );
            }
        } else {
            let failing = self.record_failure(id, None);
            if failing && let Some(slot) = lock(&self.modules).get_mut(&id) {
                slot.next_probe = Instant::now() + self.config.probe_every;
            }
        }
    }
}

/// Why a local file cannot be uploaded, if it cannot.
async fn check_local_file(path: &Path) -> std::result::Result<(), String> {
    match tokio::fs::metadata(path).await {
        Ok(meta) if meta.is_file() => Ok(()),
        Ok(_) => Err(format!("{} is not a regular file", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "the local file {} no longer exists (deleted before it was uploaded)",
            path.display()
        )),
        Err(e) => Err(format!("the local file {} cannot be read: {e}", path.display())),
    }
}

fn report_panic(done: std::result::Result<(), tokio::task::JoinError>) {
    if let Err(e) = done
        && e.is_panic()
    {
        tracing::error!("an upload task crashed; its job is retried after its lease expires");
    }
}

/// Between 80 % and 100 % of `d`, so that jobs that failed together do not retry together.
fn jitter(d: Duration) -> Duration {
    let fraction: f64 = rand::random::<f64>() * 0.2;
    d.mul_f64(1.0 - fraction)
}

fn to_chrono(d: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
}

fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        format!("{} ms", d.as_millis())
    } else if secs < 120 {
        format!("{secs} s")
    } else if secs < 7200 {
        format!("{} min", secs / 60)
    } else {
        format!("{} h", secs / 3600)
    }
}

fn human_bytes(n: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if n >= MIB {
        format!("{:.1} MiB", n as f64 / MIB as f64)
    } else if n >= 1024 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} bytes")
    }
}

/// Where a [`MemoryJobStore`] job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    /// Waiting for its next attempt.
    Pending,
    /// Claimed by the queue.
    Uploading,
    /// Uploaded and verified.
    Done,
}

/// A [`MemoryJobStore`] job's state.
#[derive(Debug, Clone)]
pub struct JobState {
    /// Where the job is.
    pub status: JobStatus,
    /// Attempts that failed so far.
    pub attempts: u32,
    /// The last failure's message.
    pub last_error: Option<String>,
    /// The module of the last failure.
    pub last_failed_module: Option<i64>,
    /// When the job is due again.
    pub next_attempt_at: DateTime<Utc>,
    /// The module that has the file, once done.
    pub module_id: Option<i64>,
    /// What was uploaded, once done.
    pub uploaded: Option<Uploaded>,
    /// How often the job was reported finished (1 once done; more would be a duplicate).
    pub finished_count: u32,
}

struct MemoryJob {
    job: Job,
    state: JobState,
}

/// A [`JobStore`] in memory, for programs that embed pv-storage without a database. Jobs are
/// lost when the process ends.
pub struct MemoryJobStore {
    jobs: Mutex<BTreeMap<i64, MemoryJob>>,
    next_id: AtomicU64,
    changed: watch::Sender<u64>,
}

impl std::fmt::Debug for MemoryJobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryJobStore").field("jobs", &lock(&self.jobs).len()).finish()
    }
}

impl Default for MemoryJobStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryJobStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            jobs: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
            changed: watch::channel(0).0,
        }
    }

    /// Queue the upload of `path` (its key rendered from `ctx`) to the first usable module of
    /// `chain`; returns the job id. Call [`UploadQueue::wake`] afterwards so that it starts at
    /// once.
    pub fn enqueue(&self, path: impl Into<PathBuf>, ctx: KeyContext, chain: Vec<i64>) -> i64 {
        let id = i64::try_from(self.next_id.fetch_add(1, Ordering::SeqCst)).unwrap_or(i64::MAX);
        let stream_id = format!("{}-{}", ctx.camera_id, ctx.segment_id);
        let job = Job { id, path: path.into(), ctx, chain, attempts: 0, stream_id };
        let state = JobState {
            status: JobStatus::Pending,
            attempts: 0,
            last_error: None,
            last_failed_module: None,
            next_attempt_at: Utc::now(),
            module_id: None,
            uploaded: None,
            finished_count: 0,
        };
        lock(&self.jobs).insert(id, MemoryJob { job, state });
        self.touch();
        id
    }

    /// Wait until job `id` is uploaded: the module it went to and what was uploaded. Waits as
    /// long as it takes (wrap it in a timeout); fails only for an unknown job id.
    pub async fn wait(&self, id: i64) -> Result<(i64, Uploaded)> {
        let mut changes = self.changed.subscribe();
        loop {
            {
                let jobs = lock(&self.jobs);
                let Some(job) = jobs.get(&id) else {
                    return Err(Error::Provider(format!("there is no upload job {id}")));
                };
                if let (JobStatus::Done, Some(module), Some(up)) =
                    (job.state.status, job.state.module_id, &job.state.uploaded)
                {
                    return Ok((module, up.clone()));
                }
            }
            if changes.changed().await.is_err() {
                return Err(Error::Provider("the upload job store was dropped".to_owned()));
            }
        }
    }

    /// Job `id`'s state, if there is such a job.
    pub fn state(&self, id: i64) -> Option<JobState> {
        lock(&self.jobs).get(&id).map(|j| j.state.clone())
    }

    /// Put jobs left "uploading" (by a queue that stopped before they finished) back to
    /// pending, as a database store does at start-up. Returns how many.
    pub fn requeue_stale(&self) -> usize {
        let mut n = 0;
        for job in lock(&self.jobs).values_mut() {
            if job.state.status == JobStatus::Uploading {
                job.state.status = JobStatus::Pending;
                n += 1;
            }
        }
        self.touch();
        n
    }

    /// Job ids per status: (pending, uploading, done).
    pub fn counts(&self) -> (usize, usize, usize) {
        let jobs = lock(&self.jobs);
        let count = |s| jobs.values().filter(|j| j.state.status == s).count();
        (count(JobStatus::Pending), count(JobStatus::Uploading), count(JobStatus::Done))
    }

    fn touch(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }
}

#[async_trait]
impl JobStore for MemoryJobStore {
    async fn claim_due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Job>> {
        let mut claimed = Vec::new();
        {
            let mut jobs = lock(&self.jobs);
            for job in jobs.values_mut() {
                if claimed.len() >= limit {
                    break;
                }
                if job.state.status == JobStatus::Pending && job.state.next_attempt_at <= now {
                    job.state.status = JobStatus::Uploading;
                    job.job.attempts = job.state.attempts;
                    claimed.push(job.job.clone());
                }
            }
        }
        if !claimed.is_empty() {
            self.touch();
        }
        Ok(claimed)
    }

    async fn finished(&self, job: &Job, module_id: i64, up: &Uploaded) -> Result<()> {
        if let Some(j) = lock(&self.jobs).get_mut(&job.id) {
            j.state.status = JobStatus::Done;
            j.state.module_id = Some(module_id);
            j.state.uploaded = Some(up.clone());
            j.state.finished_count = j.state.finished_count.saturating_add(1);
        }
        self.touch();
        Ok(())
    }

    async fn failed(
        &self,
        job: &Job,
        module_id: i64,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<()> {
        if let Some(j) = lock(&self.jobs).get_mut(&job.id) {
            if j.state.status != JobStatus::Done {
                j.state.status = JobStatus::Pending;
            }
            j.state.attempts = j.state.attempts.saturating_add(1);
            j.state.last_error = Some(error.to_owned());
            j.state.last_failed_module = Some(module_id);
            j.state.next_attempt_at = next_attempt_at;
        }
        self.touch();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let c = QueueConfig {
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(300),
            ..QueueConfig::default()
        };
        assert_eq!(c.backoff(0), Duration::from_secs(10));
        assert_eq!(c.backoff(1), Duration::from_secs(20));
        assert_eq!(c.backoff(4), Duration::from_secs(160));
        assert_eq!(c.backoff(5), Duration::from_secs(300));
        assert_eq!(c.backoff(40), Duration::from_secs(300));
        assert_eq!(c.backoff(u32::MAX), Duration::from_secs(300));
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let d = Duration::from_secs(100);
        for _ in 0..1000 {
            let j = jitter(d);
            assert!(j <= d && j >= Duration::from_secs(80), "{j:?}");
        }
    }

    #[test]
    fn human_texts() {
        assert_eq!(human_duration(Duration::from_millis(250)), "250 ms");
        assert_eq!(human_duration(Duration::from_secs(90)), "90 s");
        assert_eq!(human_duration(Duration::from_secs(1800)), "30 min");
        assert_eq!(human_bytes(8 * 1024 * 1024), "8.0 MiB");
        assert_eq!(human_bytes(12), "12 bytes");
    }
}
