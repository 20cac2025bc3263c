//! Face recognition as a service: the pv-face engine joined to the faces database, the live
//! cameras and the browser.
//!
//! [`FaceService`] owns
//! - the engine ([`pv_face::engine::FaceEngine`], loaded once at start from the model files
//!   `[faces]` names). A missing or unusable model disables face features with a reason
//!   ([`FaceService::status`]) and nothing else: the server runs, the Faces page says why.
//! - the gallery: every enrolled embedding of the current model, decrypted once at start into a
//!   flat [`pv_face::gallery::Gallery`] and kept in step with every enrolment and deletion.
//!   Embeddings made by another model are not compared (their count is in the status).
//! - face events: a face seen on a camera (time, box, score, identity or unknown, a sealed crop
//!   and embedding so a user can name it later) is a `face_matches` row in the faces database,
//!   with the camera as a plain id. Events are published on a broadcast channel (the live
//!   overlay feed) whether stored or not; a row is stored at most every [`STORE_EVERY`] per
//!   camera and person, so a person standing in view for a minute is not 120 rows.
//! - the live runtime ([`FaceService::run_live`]): while a camera has motion, its sub stream
//!   (the live view's shared pull, or the recorder's tap) is decoded at `[faces] live_fps` by a
//!   [`pv_media::frames::FrameSampler`]; each frame goes to a bounded worker pool
//!   (`[faces] workers` blocking threads) and is dropped when every worker is busy — frames
//!   are never queued.
//! - the link to the records database: a pass marks `segments.has_faces` for the segments face
//!   events fall in (and stores the segment id on the event). The records database learns that
//!   a segment has faces, never whose.
//!
//! Privacy: embeddings and crops are sealed with the server key
//! ([`pv_security::seal::ServerKey::seal_bytes`]) before they reach the database. A person who
//! opted out is still recognised (that is how they are known to have opted out), but is never
//! named: recognition reports them as an unlabelled face, and no event, crop or embedding of
//! them is stored. [`FaceService::delete_identity`] removes an identity's embeddings, crops and
//! privacy policy, and removes the identity from past events. The REST layer audits every
//! change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use pv_core::Clock;
use pv_core::config::FacesConfig;
use pv_core::db::Databases;
use pv_core::db::faces::{face_embedding, face_identity, face_match, face_privacy_policy};
use pv_core::db::records::segment;
use pv_core::ids::IdentityId;
use pv_face::detect::DetectorKind;
use pv_face::engine::{AnalysedFace, EngineConfig, FaceEngine};
use pv_face::gallery::Gallery;
use pv_face::image::RgbImage;
use pv_security::seal::ServerKey;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use tokio::sync::{Semaphore, broadcast};

/// A stored face event per camera and person at most this often (events in between are
/// published to live viewers but not stored).
pub const STORE_EVERY: Duration = Duration::from_secs(2);
/// How long a camera's frames keep being analysed after its motion ended.
pub const LINGER: Duration = Duration::from_secs(3);
/// First wait before a camera whose stream could not be opened for analysis is tried again.
const RETRY_FIRST: Duration = Duration::from_secs(5);
/// Longest wait between such tries.
const RETRY_MAX: Duration = Duration::from_secs(60);
/// Side of the face crops kept with events and enrolled images, in pixels.
pub const CROP_SIDE: u32 = 96;
/// Live events kept for slow SSE listeners.
const FEED_CAPACITY: usize = 256;
const SEAL_EMBEDDING: &str = "face-embedding";
const SEAL_CROP: &str = "face-crop";

/// What went wrong, as the REST layer reports it.
#[derive(Debug, thiserror::Error)]
pub enum FaceError {
    /// Face recognition is off (the reason says why and what to do).
    #[error("{0}")]
    Disabled(String),
    /// No such identity, image or event.
    #[error("{0}")]
    NotFound(String),
    /// The upload is not a usable image, or too large, or a value is out of range.
    #[error("{0}")]
    Invalid(String),
    /// The image is larger than the limits.
    #[error("{0}")]
    TooLarge(String),
    /// No face in the image.
    #[error("No face was found in this image. Use a photo where the face is clearly visible.")]
    NoFace,
    /// A database or engine failure.
    #[error("{0}")]
    Internal(String),
}

impl From<sea_orm::DbErr> for FaceError {
    fn from(e: sea_orm::DbErr) -> Self {
        FaceError::Internal(format!("faces database: {e}"))
    }
}

impl From<pv_face::Error> for FaceError {
    fn from(e: pv_face::Error) -> Self {
        use pv_face::Error as E;
        match e {
            E::NotAnImage(m) => FaceError::Invalid(m),
            E::ImageTooLarge(m) => FaceError::TooLarge(m),
            E::NoFace => FaceError::NoFace,
            E::DimensionMismatch { expected, actual } => FaceError::Invalid(format!(
                "The face model produced {actual} values per face where {expected} were expected; \
                 the model files do not belong together."
            )),
            other => FaceError::Internal(other.to_string()),
        }
    }
}

/// Result of face operations.
pub type FaceResult<T> = Result<T, FaceError>;

/// A face's box in the picture, in pixels of the analysed image.
#[derive(
    Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize, poem_openapi::Object,
)]
pub struct FaceBox {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub w: f32,
    /// Height.
    pub h: f32,
}

impl From<pv_face::detect::BBox> for FaceBox {
    fn from(b: pv_face::detect::BBox) -> Self {
        FaceBox { x: round1(b.x), y: round1(b.y), w: round1(b.w), h: round1(b.h) }
    }
}

fn round1(v: f32) -> f32 {
    (v * 10.0).round() / 10.0
}

/// Whether face recognition works, and with what.
#[derive(Debug, Clone, serde::Serialize, poem_openapi::Object)]
pub struct FacesStatus {
    /// Face features are available.
    pub enabled: bool,
    /// Why not, and what to do (absent when enabled).
    #[oai(skip_serializing_if_is_none)]
    pub reason: Option<String>,
    /// The embedding model in use (absent when disabled).
    #[oai(skip_serializing_if_is_none)]
    pub model: Option<String>,
    /// The face detector (`blazeface_front`, `blazeface_back`, `ultraface`).
    pub detector: String,
    /// Cosine similarity at or above which a face matches.
    pub threshold: f32,
    /// Enrolled people.
    pub identities: u64,
    /// Enrolled face images of the current model (positive and negative).
    pub embeddings: u64,
    /// Enrolled face images made by another model, not compared (enrol those people again).
    pub stale_embeddings: u64,
    /// Frames analysed per second on a camera with motion.
    pub live_fps: u32,
    /// Cameras being analysed now.
    pub live_cameras: Vec<i64>,
    /// Live frames dropped because every worker was busy, since start.
    pub dropped_frames: u64,
}

/// An enrolled person.
#[derive(Debug, Clone, serde::Serialize, poem_openapi::Object)]
pub struct Identity {
    /// Identity id.
    pub id: i64,
    /// The name shown on overlays and events.
    pub name: String,
    /// The PentaVision user this person is, if any.
    #[oai(skip_serializing_if_is_none)]
    pub user_id: Option<i64>,
    /// Notes for administrators.
    #[oai(skip_serializing_if_is_none)]
    pub notes: Option<String>,
    /// The person opted out of tagging: never named, no events stored.
    pub opt_out: bool,
    /// Enrolled face images.
    pub embeddings: u64,
    /// Faces marked as not this person.
    pub negatives: u64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// One enrolled face image of a person.
#[derive(Debug, Clone, serde::Serialize, poem_openapi::Object)]
pub struct EnrolledFace {
    /// Image id.
    pub id: i64,
    /// The person.
    pub identity_id: i64,
    /// Where it came from: `upload`, `camera` (the browser's camera) or `recording` (a face
    /// event a user named).
    pub source: String,
    /// A face marked as *not* this person (it vetoes matches it is closer to).
    pub negative: bool,
    /// Detector confidence, 0..1.
    pub quality: f64,
    /// A crop of the face can be fetched.
    pub has_crop: bool,
    /// The face event it came from, if any.
    #[oai(skip_serializing_if_is_none)]
    pub event_id: Option<i64>,
    /// Enrolled.
    pub created_at: DateTime<Utc>,
}

/// A face found in an uploaded image.
#[derive(Debug, Clone, serde::Serialize, poem_openapi::Object)]
pub struct RecognizedFace {
    /// Where the face is.
    #[oai(rename = "box")]
    #[serde(rename = "box")]
    pub bbox: FaceBox,
    /// The matched person; null when unknown.
    #[oai(nullable)]
    pub identity_id: Option<i64>,
    /// The matched person's name; null when unknown.
    #[oai(nullable)]
    pub name: Option<String>,
    /// Cosine similarity to the matched person, or to the nearest one when unknown.
    pub score: f32,
}

/// Every face found in an uploaded image, largest first.
#[derive(Debug, Clone, serde::Serialize, poem_openapi::Object)]
pub struct Recognition {
    /// The faces.
    pub faces: Vec<RecognizedFace>,
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
}

/// A face seen on a camera.
#[derive(Debug, Clone, serde::Serialize, poem_openapi::Object)]
pub struct FaceEvent {
    /// Event id; null for a live event that was not stored (see `STORE_EVERY`).
    #[oai(nullable)]
    pub id: Option<i64>,
    /// The camera.
    pub camera_id: i64,
    /// The time of the frame.
    pub at: DateTime<Utc>,
    /// The person; null when unknown.
    #[oai(nullable)]
    pub identity_id: Option<i64>,
    /// The person's name; null when unknown.
    #[oai(nullable)]
    pub name: Option<String>,
    /// Cosine similarity to the person, or to the nearest one when unknown.
    pub score: f64,
    /// Where the face is, in pixels of the analysed frame.
    #[oai(rename = "box")]
    #[serde(rename = "box")]
    pub bbox: FaceBox,
    /// The analysed frame's width.
    pub frame_width: i32,
    /// The analysed frame's height.
    pub frame_height: i32,
    /// The recorded segment the face is in, once known.
    #[oai(nullable)]
    pub segment_id: Option<i64>,
    /// A crop of the face can be fetched.
    pub has_crop: bool,
    /// A user confirmed or rejected the match.
    pub labelled: bool,
}

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only this camera.
    pub camera_id: Option<i64>,
    /// Only cameras in this set (the caller's camera scope); None: all.
    pub cameras: Option<Vec<i64>>,
    /// Only this person.
    pub identity_id: Option<i64>,
    /// Only unknown faces.
    pub unknown: bool,
    /// From this time.
    pub from: Option<DateTime<Utc>>,
    /// Before this time.
    pub to: Option<DateTime<Utc>>,
    /// At most this many (default 200, at most 1000), newest first.
    pub limit: Option<u64>,
}

/// Changes to an identity.
#[derive(Debug, Clone, Default)]
pub struct IdentityPatch {
    /// New name.
    pub name: Option<String>,
    /// New notes (Some(None) clears).
    pub notes: Option<Option<String>>,
    /// New user link (Some(None) clears).
    pub user_id: Option<Option<i64>>,
    /// Opt out of (true) or back into (false) tagging.
    pub opt_out: Option<bool>,
}

/// What deleting an identity removed.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Deleted {
    /// Embeddings (with their crops) deleted.
    pub embeddings: u64,
    /// Past events whose identity was removed.
    pub events_unlabelled: u64,
}

/// A face of a live frame with who it is: (face, identity, name, score).
type LabelledFace = (AnalysedFace, Option<i64>, Option<String>, f32);

#[derive(Debug, Clone)]
struct Person {
    name: String,
    opt_out: bool,
}

struct GalleryState {
    gallery: Gallery,
    people: HashMap<i64, Person>,
    stale: u64,
}

struct LiveCamera {
    stop: tokio::sync::watch::Sender<bool>,
    last_motion: Instant,
}

/// The face service. Cheap to clone.
#[derive(Clone)]
pub struct FaceService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FaceService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaceService").field("enabled", &self.inner.engine.is_ok()).finish()
    }
}

struct Inner {
    dbs: Databases,
    key: ServerKey,
    clock: Arc<dyn Clock>,
    config: FacesConfig,
    engine: Result<Arc<FaceEngine>, String>,
    gallery: RwLock<GalleryState>,
    feed: broadcast::Sender<FaceEvent>,
    workers: Arc<Semaphore>,
    live: Mutex<HashMap<i64, LiveCamera>>,
    /// Last stored event per (camera, identity or 0 for unknown).
    last_stored: Mutex<HashMap<(i64, i64), Instant>>,
    dropped: std::sync::atomic::AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The engine configuration `[faces]` asks for, with relative model names in the model dir.
pub fn engine_config(config: &FacesConfig, data_dir: &std::path::Path) -> EngineConfig {
    let dir = config.model_dir(data_dir);
    let kind = match config.detector.as_str() {
        "blazeface_back" => DetectorKind::BlazefaceBack,
        "ultraface" => DetectorKind::Ultraface,
        _ => DetectorKind::BlazefaceFront,
    };
    let mut engine = EngineConfig::in_dir(&dir, kind);
    if let Some(p) = &config.detector_model {
        engine.detector_path = dir.join(p);
    }
    if let Some(p) = &config.embedder_model {
        engine.embedder_path = dir.join(p);
    }
    engine
}

impl FaceService {
    /// Load the engine (unless `[faces] enabled` is off) and the gallery. Never fails: a
    /// problem disables face features and is logged and shown in [`FaceService::status`].
    pub async fn start(
        dbs: Databases,
        key: ServerKey,
        clock: Arc<dyn Clock>,
        config: FacesConfig,
        data_dir: &std::path::Path,
    ) -> FaceService {
        let engine = if config.enabled {
            let engine_config = engine_config(&config, data_dir);
            let loaded =
                tokio::task::spawn_blocking(move || FaceEngine::load(&engine_config)).await;
            match loaded {
                Ok(Ok(engine)) => Ok(Arc::new(engine)),
                Ok(Err(e)) => {
                    let e = e.to_string();
                    // Advice once: a missing model's error already says how to fetch it.
                    let reason = if e.contains("fetch-models") {
                        format!("Face recognition is off: {e}.")
                    } else {
                        format!(
                            "Face recognition is off: {e}. Run `pentavision faces fetch-models` \
                             to fetch the default models, or fix the [faces] settings."
                        )
                    };
                    tracing::error!("{reason}");
                    Err(reason)
                }
                Err(e) => Err(format!("Face recognition is off: the model loader failed ({e}).")),
            }
        } else {
            Err("Face recognition is turned off in the settings ([faces] enabled = false).".into())
        };
        let dims = engine.as_ref().map(|e| e.dimensions()).unwrap_or(1);
        let (feed, _) = broadcast::channel(FEED_CAPACITY);
        let service = FaceService {
            inner: Arc::new(Inner {
                dbs,
                key,
                clock,
                workers: Arc::new(Semaphore::new(config.workers.max(1))),
                config,
                engine,
                gallery: RwLock::new(GalleryState {
                    gallery: Gallery::new(dims),
                    people: HashMap::new(),
                    stale: 0,
                }),
                feed,
                live: Mutex::new(HashMap::new()),
                last_stored: Mutex::new(HashMap::new()),
                dropped: Default::default(),
            }),
        };
        if let Err(e) = service.reload_gallery().await {
            tracing::error!(error = %e, "cannot load the enrolled faces");
        }
        service
    }

    fn engine(&self) -> FaceResult<Arc<FaceEngine>> {
        self.inner.engine.clone().map_err(FaceError::Disabled)
    }

    fn db(&self) -> &sea_orm::DatabaseConnection {
        &self.inner.dbs.faces
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// Rebuild the in-memory gallery from the database.
    pub async fn reload_gallery(&self) -> FaceResult<()> {
        let model = self.inner.engine.as_ref().map(|e| e.model_id().to_owned()).ok();
        let dims = self.inner.engine.as_ref().map(|e| e.dimensions()).unwrap_or(1);
        let mut gallery = Gallery::new(dims);
        let mut stale = 0;
        let policies: HashMap<i64, bool> = face_privacy_policy::Entity::find()
            .all(self.db())
            .await?
            .into_iter()
            .map(|p| (p.identity_id, p.opt_out_tagging))
            .collect();
        let people = face_identity::Entity::find()
            .all(self.db())
            .await?
            .into_iter()
            .map(|i| {
                let opt_out = policies.get(&i.id).copied().unwrap_or(false);
                (i.id, Person { name: i.display_name, opt_out })
            })
            .collect();
        for row in face_embedding::Entity::find().all(self.db()).await? {
            if model.as_deref() != Some(row.model.as_str()) {
                stale += 1;
                continue;
            }
            match self.open_vector(&row) {
                Ok(v) => {
                    if let Err(e) =
                        gallery.insert(row.id, IdentityId(row.identity_id), &v, row.is_negative)
                    {
                        tracing::warn!(embedding = row.id, error = %e, "enrolled face not loaded");
                        stale += 1;
                    }
                }
                Err(e) => {
                    tracing::error!(embedding = row.id, error = %e, "enrolled face cannot be decrypted");
                    stale += 1;
                }
            }
        }
        let mut g = self.inner.gallery.write().unwrap_or_else(|p| p.into_inner());
        *g = GalleryState { gallery, people, stale };
        Ok(())
    }

    fn open_vector(&self, row: &face_embedding::Model) -> FaceResult<Vec<f32>> {
        let raw = if row.encrypted {
            self.inner
                .key
                .open_bytes(SEAL_EMBEDDING, &row.vector)
                .map_err(|e| FaceError::Internal(e.to_string()))?
        } else {
            row.vector.clone()
        };
        Ok(bytes_to_vec(&raw))
    }

    fn seal_vec(&self, v: &[f32]) -> FaceResult<Vec<u8>> {
        self.inner
            .key
            .seal_bytes(SEAL_EMBEDDING, &vec_to_bytes(v))
            .map_err(|e| FaceError::Internal(e.to_string()))
    }

    fn seal_crop(&self, crop: &RgbImage) -> FaceResult<Vec<u8>> {
        let jpeg = pv_face::image::encode_jpeg(crop, 85)?;
        self.inner.key.seal_bytes(SEAL_CROP, &jpeg).map_err(|e| FaceError::Internal(e.to_string()))
    }

    fn open_crop(&self, sealed: &[u8]) -> FaceResult<Vec<u8>> {
        self.inner.key.open_bytes(SEAL_CROP, sealed).map_err(|e| FaceError::Internal(e.to_string()))
    }

    /// Whether face features work, and with what.
    pub async fn status(&self) -> FaceResult<FacesStatus> {
        let (embeddings, stale) = {
            let g = self.inner.gallery.read().unwrap_or_else(|p| p.into_inner());
            (g.gallery.len() as u64, g.stale)
        };
        let identities = face_identity::Entity::find().count(self.db()).await?;
        let mut live_cameras: Vec<i64> = lock(&self.inner.live).keys().copied().collect();
        live_cameras.sort_unstable();
        Ok(FacesStatus {
            enabled: self.inner.engine.is_ok(),
            reason: self.inner.engine.as_ref().err().cloned(),
            model: self.inner.engine.as_ref().ok().map(|e| e.model_id().to_owned()),
            detector: self.inner.config.detector.clone(),
            threshold: self.inner.config.threshold,
            identities,
            embeddings,
            stale_embeddings: stale,
            live_fps: self.inner.config.live_fps,
            live_cameras,
            dropped_frames: self.inner.dropped.load(std::sync::atomic::Ordering::Relaxed),
        })
    }

    async fn identity_view(&self, row: face_identity::Model) -> FaceResult<Identity> {
        let mut views = self.identity_views(vec![row]).await?;
        views.pop().ok_or_else(|| FaceError::Internal("identity view lost".into()))
    }

    /// People as the API shows them, with their opt-out and image counts: two queries for
    /// any number of people.
    async fn identity_views(&self, rows: Vec<face_identity::Model>) -> FaceResult<Vec<Identity>> {
        #[derive(sea_orm::FromQueryResult)]
        struct Counted {
            identity_id: i64,
            is_negative: bool,
            n: i64,
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let opted_out: HashMap<i64, bool> = face_privacy_policy::Entity::find()
            .filter(face_privacy_policy::Column::IdentityId.is_in(ids.clone()))
            .all(self.db())
            .await?
            .into_iter()
            .map(|p| (p.identity_id, p.opt_out_tagging))
            .collect();
        let counts: HashMap<(i64, bool), u64> = face_embedding::Entity::find()
            .select_only()
            .column(face_embedding::Column::IdentityId)
            .column(face_embedding::Column::IsNegative)
            .column_as(face_embedding::Column::Id.count(), "n")
            .filter(face_embedding::Column::IdentityId.is_in(ids))
            .group_by(face_embedding::Column::IdentityId)
            .group_by(face_embedding::Column::IsNegative)
            .into_model::<Counted>()
            .all(self.db())
            .await?
            .into_iter()
            .map(|c| ((c.identity_id, c.is_negative), u64::try_from(c.n).unwrap_or(0)))
            .collect();
        Ok(rows
            .into_iter()
            .map(|row| Identity {
                opt_out: opted_out.get(&row.id).copied().unwrap_or(false),
                embeddings: counts.get(&(row.id, false)).copied().unwrap_or(0),
                negatives: counts.get(&(row.id, true)).copied().unwrap_or(0),
                id: row.id,
                name: row.display_name,
                user_id: row.user_id,
                notes: row.notes,
                created_at: row.created_at,
                updated_at: row.updated_at,
            })
            .collect())
    }

    /// Every enrolled person, by name.
    pub async fn identities(&self) -> FaceResult<Vec<Identity>> {
        let rows = face_identity::Entity::find()
            .filter(face_identity::Column::Kind.eq("person"))
            .order_by_asc(face_identity::Column::DisplayName)
            .all(self.db())
            .await?;
        self.identity_views(rows).await
    }

    async fn identity_row(&self, id: i64) -> FaceResult<face_identity::Model> {
        face_identity::Entity::find_by_id(id)
            .one(self.db())
            .await?
            .ok_or_else(|| FaceError::NotFound(format!("There is no enrolled person {id}.")))
    }

    /// One enrolled person.
    pub async fn identity(&self, id: i64) -> FaceResult<Identity> {
        let row = self.identity_row(id).await?;
        self.identity_view(row).await
    }

    /// Enrol a new person (no face yet: add images next).
    pub async fn create_identity(
        &self,
        name: &str,
        user_id: Option<i64>,
        notes: Option<String>,
    ) -> FaceResult<Identity> {
        let name = check_name(name)?;
        let now = self.now();
        let row = face_identity::ActiveModel {
            user_id: Set(user_id),
            display_name: Set(name.clone()),
            notes: Set(notes.filter(|n| !n.trim().is_empty())),
            kind: Set("person".into()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(self.db())
        .await?;
        self.gallery_write().people.insert(row.id, Person { name, opt_out: false });
        self.identity_view(row).await
    }

    fn gallery_write(&self) -> std::sync::RwLockWriteGuard<'_, GalleryState> {
        self.inner.gallery.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Change a person's name, notes, user link or opt-out.
    pub async fn update_identity(&self, id: i64, patch: IdentityPatch) -> FaceResult<Identity> {
        let row = self.identity_row(id).await?;
        let now = self.now();
        let mut active: face_identity::ActiveModel = row.into();
        if let Some(name) = &patch.name {
            active.display_name = Set(check_name(name)?);
        }
        if let Some(notes) = patch.notes {
            active.notes = Set(notes.filter(|n| !n.trim().is_empty()));
        }
        if let Some(user) = patch.user_id {
            active.user_id = Set(user);
        }
        active.updated_at = Set(now);
        let row = active.update(self.db()).await?;
        if let Some(opt_out) = patch.opt_out {
            self.set_opt_out(id, opt_out).await?;
        }
        {
            let mut g = self.gallery_write();
            let person = g
                .people
                .entry(id)
                .or_insert_with(|| Person { name: row.display_name.clone(), opt_out: false });
            person.name = row.display_name.clone();
            if let Some(opt_out) = patch.opt_out {
                person.opt_out = opt_out;
            }
        }
        self.identity_view(row).await
    }

    async fn set_opt_out(&self, id: i64, opt_out: bool) -> FaceResult<()> {
        let now = self.now();
        let existing = face_privacy_policy::Entity::find()
            .filter(face_privacy_policy::Column::IdentityId.eq(id))
            .one(self.db())
            .await?;
        match existing {
            Some(p) => {
                let mut a: face_privacy_policy::ActiveModel = p.into();
                a.opt_out_tagging = Set(opt_out);
                a.updated_at = Set(now);
                a.update(self.db()).await?;
            }
            None => {
                face_privacy_policy::ActiveModel {
                    identity_id: Set(id),
                    opt_out_tagging: Set(opt_out),
                    retain_days: Set(None),
                    deletion_requested_at: Set(None),
                    deleted_at: Set(None),
                    updated_at: Set(now),
                    ..Default::default()
                }
                .insert(self.db())
                .await?;
            }
        }
        if opt_out {
            // Opting out also forgets where the person was seen: past events lose their name,
            // crop and embedding.
            face_match::Entity::update_many()
                .col_expr(face_match::Column::IdentityId, Expr::value(Option::<i64>::None))
                .col_expr(face_match::Column::Crop, Expr::value(Option::<Vec<u8>>::None))
                .col_expr(face_match::Column::Embedding, Expr::value(Option::<Vec<u8>>::None))
                .filter(face_match::Column::IdentityId.eq(id))
                .exec(self.db())
                .await?;
        }
        Ok(())
    }

    /// Delete everything biometric about a person: their embeddings and crops, their privacy
    /// policy, the identity itself, and their name on past events (which stay as unknown
    /// faces without crop or embedding).
    pub async fn delete_identity(&self, id: i64) -> FaceResult<Deleted> {
        self.identity_row(id).await?;
        let txn = self.db().begin().await?;
        let embeddings = face_embedding::Entity::delete_many()
            .filter(face_embedding::Column::IdentityId.eq(id))
            .exec(&txn)
            .await?
            .rows_affected;
        let events_unlabelled = face_match::Entity::update_many()
            .col_expr(face_match::Column::IdentityId, Expr::value(Option::<i64>::None))
            .col_expr(face_match::Column::Crop, Expr::value(Option::<Vec<u8>>::None))
            .col_expr(face_match::Column::Embedding, Expr::value(Option::<Vec<u8>>::None))
            .filter(face_match::Column::IdentityId.eq(id))
            .exec(&txn)
            .await?
            .rows_affected;
        face_privacy_policy::Entity::delete_many()
            .filter(face_privacy_policy::Column::IdentityId.eq(id))
            .exec(&txn)
            .await?;
        face_identity::Entity::delete_by_id(id).exec(&txn).await?;
        txn.commit().await?;
        {
            let mut g = self.gallery_write();
            g.gallery.remove_identity(IdentityId(id));
            g.people.remove(&id);
        }
        Ok(Deleted { embeddings, events_unlabelled })
    }

    /// Enrol the largest face of `image` (JPEG or PNG bytes) as `id`'s. `source` is `upload`
    /// or `camera`.
    pub async fn enroll_image(
        &self,
        id: i64,
        image: Vec<u8>,
        source: &str,
    ) -> FaceResult<EnrolledFace> {
        self.identity_row(id).await?;
        let engine = self.engine()?;
        let face = tokio::task::spawn_blocking(move || -> FaceResult<AnalysedFace> {
            let img = pv_face::image::decode(&image)?;
            let faces = engine.analyse(&img)?;
            faces.into_iter().next().ok_or(FaceError::NoFace)
        })
        .await
        .map_err(|e| FaceError::Internal(e.to_string()))??;
        let source = if source == "camera" { "camera" } else { "upload" };
        self.add_embedding(
            id,
            &face.embedding,
            Some(&face.crop),
            f64::from(face.detection.score),
            false,
            source,
            None,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn add_embedding(
        &self,
        id: i64,
        embedding: &[f32],
        crop: Option<&RgbImage>,
        quality: f64,
        negative: bool,
        source: &str,
        event: Option<i64>,
    ) -> FaceResult<EnrolledFace> {
        let engine = self.engine()?;
        if embedding.len() != engine.dimensions() {
            return Err(FaceError::Invalid(format!(
                "This face was analysed by a model with {} values per face; the current model has {}.",
                embedding.len(),
                engine.dimensions()
            )));
        }
        // Validate the vector before anything is written.
        pv_face::gallery::l2_normalized(embedding)?;
        let row = face_embedding::ActiveModel {
            identity_id: Set(id),
            model: Set(engine.model_id().to_owned()),
            dimensions: Set(embedding.len() as i32),
            vector: Set(self.seal_vec(embedding)?),
            encrypted: Set(true),
            source: Set(source.to_owned()),
            source_ref: Set(event.map(|e| format!("face event {e}"))),
            quality: Set(quality),
            is_negative: Set(negative),
            created_at: Set(self.now()),
            crop: Set(crop.map(|c| self.seal_crop(c)).transpose()?),
            match_id: Set(event),
            ..Default::default()
        }
        .insert(self.db())
        .await?;
        self.gallery_write().gallery.insert(row.id, IdentityId(id), embedding, negative)?;
        Ok(enrolled_view(&row))
    }

    /// A person's enrolled images, newest first.
    pub async fn images(&self, id: i64) -> FaceResult<Vec<EnrolledFace>> {
        self.identity_row(id).await?;
        let rows = face_embedding::Entity::find()
            .filter(face_embedding::Column::IdentityId.eq(id))
            .order_by_desc(face_embedding::Column::Id)
            .all(self.db())
            .await?;
        Ok(rows.iter().map(enrolled_view).collect())
    }

    /// The JPEG crop of an enrolled image.
    pub async fn image_crop(&self, embedding_id: i64) -> FaceResult<Vec<u8>> {
        let row =
            face_embedding::Entity::find_by_id(embedding_id).one(self.db()).await?.ok_or_else(
                || FaceError::NotFound(format!("There is no enrolled image {embedding_id}.")),
            )?;
        let sealed = row
            .crop
            .ok_or_else(|| FaceError::NotFound("This enrolled image has no picture.".into()))?;
        self.open_crop(&sealed)
    }

    /// Delete one enrolled image. Returns its identity.
    pub async fn delete_image(&self, embedding_id: i64) -> FaceResult<i64> {
        let row =
            face_embedding::Entity::find_by_id(embedding_id).one(self.db()).await?.ok_or_else(
                || FaceError::NotFound(format!("There is no enrolled image {embedding_id}.")),
            )?;
        face_embedding::Entity::delete_by_id(embedding_id).exec(self.db()).await?;
        self.gallery_write().gallery.remove_embedding(embedding_id);
        Ok(row.identity_id)
    }

    /// Find and recognise every face in an image (JPEG or PNG bytes). Nothing is stored.
    pub async fn recognize(&self, image: Vec<u8>) -> FaceResult<Recognition> {
        let engine = self.engine()?;
        let (img_w, img_h, faces) =
            tokio::task::spawn_blocking(move || -> FaceResult<(u32, u32, Vec<AnalysedFace>)> {
                let img = pv_face::image::decode(&image)?;
                let faces = engine.analyse(&img)?;
                Ok((img.width(), img.height(), faces))
            })
            .await
            .map_err(|e| FaceError::Internal(e.to_string()))??;
        let mut out = Vec::with_capacity(faces.len());
        for face in &faces {
            let (identity, name, score, _) = self.label(&face.embedding)?;
            out.push(RecognizedFace {
                bbox: face.detection.bbox.into(),
                identity_id: identity,
                name,
                score: round3(score),
            });
        }
        Ok(Recognition { faces: out, width: img_w, height: img_h })
    }

    /// Who `embedding` is, from one scan of the gallery: (identity, name, score, opted out).
    /// A face whose match, or nearest person, opted out comes back unnamed with a score of 0
    /// (their closeness is not revealed either); `opted out` is true when the match itself
    /// (above the threshold) is such a person, whose faces are then not kept at all.
    fn label(&self, embedding: &[f32]) -> FaceResult<(Option<i64>, Option<String>, f32, bool)> {
        let g = self.inner.gallery.read().unwrap_or_else(|p| p.into_inner());
        if g.gallery.is_empty() {
            return Ok((None, None, 0.0, false));
        }
        let r = g.gallery.recognise(embedding, self.inner.config.threshold)?;
        let opted_out = |id: i64| g.people.get(&id).is_some_and(|p| p.opt_out);
        if let Some(id) = r.identity
            && opted_out(id.0)
        {
            return Ok((None, None, 0.0, true));
        }
        if r.nearest.is_some_and(|n| opted_out(n.0)) {
            return Ok((None, None, 0.0, false));
        }
        Ok(match r.identity {
            Some(id) => (Some(id.0), g.people.get(&id.0).map(|p| p.name.clone()), r.score, false),
            None => (None, None, r.score, false),
        })
    }

    /// Face events, newest first.
    pub async fn events(&self, filter: EventFilter) -> FaceResult<Vec<FaceEvent>> {
        let mut q = face_match::Entity::find();
        if let Some(c) = filter.camera_id {
            q = q.filter(face_match::Column::CameraId.eq(c));
        }
        if let Some(cams) = filter.cameras {
            q = q.filter(face_match::Column::CameraId.is_in(cams));
        }
        if let Some(i) = filter.identity_id {
            q = q.filter(face_match::Column::IdentityId.eq(i));
        }
        if filter.unknown {
            q = q.filter(face_match::Column::IdentityId.is_null());
        }
        if let Some(from) = filter.from {
            q = q.filter(face_match::Column::SeenAt.gte(from));
        }
        if let Some(to) = filter.to {
            q = q.filter(face_match::Column::SeenAt.lt(to));
        }
        let limit = filter.limit.unwrap_or(200).clamp(1, 1000);
        let rows = q
            .order_by_desc(face_match::Column::SeenAt)
            .order_by_desc(face_match::Column::Id)
            .limit(limit)
            .all(self.db())
            .await?;
        let g = self.inner.gallery.read().unwrap_or_else(|p| p.into_inner());
        Ok(rows.iter().map(|r| event_view(r, &g.people)).collect())
    }

    async fn event_row(&self, id: i64) -> FaceResult<face_match::Model> {
        face_match::Entity::find_by_id(id)
            .one(self.db())
            .await?
            .ok_or_else(|| FaceError::NotFound(format!("There is no face event {id}.")))
    }

    /// One face event.
    pub async fn event(&self, id: i64) -> FaceResult<FaceEvent> {
        let row = self.event_row(id).await?;
        let g = self.inner.gallery.read().unwrap_or_else(|p| p.into_inner());
        Ok(event_view(&row, &g.people))
    }

    /// The JPEG crop of a face event.
    pub async fn event_crop(&self, id: i64) -> FaceResult<Vec<u8>> {
        let row = self.event_row(id).await?;
        let sealed = row
            .crop
            .ok_or_else(|| FaceError::NotFound("This face event has no picture.".into()))?;
        self.open_crop(&sealed)
    }

    /// "This is `identity`" (`correct`: the face becomes one of their enrolled images and the
    /// event is named) or "this is not `identity`" (a negative example: faces this close to it
    /// no longer match them; the event becomes unknown if it was theirs).
    pub async fn label_event(
        &self,
        event_id: i64,
        identity: i64,
        correct: bool,
    ) -> FaceResult<FaceEvent> {
        let row = self.event_row(event_id).await?;
        self.identity_row(identity).await?;
        let engine = self.engine()?;
        let sealed = row.embedding.clone().ok_or_else(|| {
            FaceError::Invalid("This face event has no stored face to learn from.".into())
        })?;
        if row.model.as_deref() != Some(engine.model_id()) {
            return Err(FaceError::Invalid(
                "This face was analysed by another face model and cannot be used to teach the current one."
                    .into(),
            ));
        }
        let raw = self
            .inner
            .key
            .open_bytes(SEAL_EMBEDDING, &sealed)
            .map_err(|e| FaceError::Internal(e.to_string()))?;
        let embedding = bytes_to_vec(&raw);
        let crop = match &row.crop {
            Some(c) => {
                let jpeg = self.open_crop(c)?;
                Some(pv_face::image::decode(&jpeg)?)
            }
            None => None,
        };
        self.add_embedding(
            identity,
            &embedding,
            crop.as_ref(),
            row.confidence,
            !correct,
            "recording",
            Some(event_id),
        )
        .await?;
        let mut a: face_match::ActiveModel = row.clone().into();
        if correct {
            a.identity_id = Set(Some(identity));
        } else if row.identity_id == Some(identity) {
            a.identity_id = Set(None);
        }
        a.labelled_at = Set(Some(self.now()));
        let row = a.update(self.db()).await?;
        let g = self.inner.gallery.read().unwrap_or_else(|p| p.into_inner());
        Ok(event_view(&row, &g.people))
    }

    /// Live face events as they happen (the overlay feed).
    pub fn subscribe(&self) -> broadcast::Receiver<FaceEvent> {
        self.inner.feed.subscribe()
    }

    /// Analyse one camera frame (blocking: call from a worker thread) and return the faces
    /// with their labels, without storing anything. Opted-out people are left out.
    fn analyse_frame(
        &self,
        engine: &FaceEngine,
        frame: &RgbImage,
    ) -> FaceResult<Vec<LabelledFace>> {
        let faces = engine.analyse(frame)?;
        let mut out = Vec::with_capacity(faces.len());
        for face in faces {
            let (identity, name, score, opted_out) = self.label(&face.embedding)?;
            if opted_out {
                continue;
            }
            out.push((face, identity, name, score));
        }
        Ok(out)
    }

    /// Store (at most every [`STORE_EVERY`] per camera and person) and publish the faces of
    /// one frame.
    async fn record_frame(
        &self,
        camera: i64,
        at: DateTime<Utc>,
        width: u32,
        height: u32,
        faces: Vec<LabelledFace>,
        model: &str,
    ) -> Vec<FaceEvent> {
        let mut events = Vec::with_capacity(faces.len());
        for (face, identity, name, score) in faces {
            let due = {
                let mut last = lock(&self.inner.last_stored);
                let key = (camera, identity.unwrap_or(0));
                let now = Instant::now();
                let due = last.get(&key).is_none_or(|t| now.duration_since(*t) >= STORE_EVERY);
                if due {
                    last.insert(key, now);
                }
                due
            };
            let bbox: FaceBox = face.detection.bbox.into();
            let mut event = FaceEvent {
                id: None,
                camera_id: camera,
                at,
                identity_id: identity,
                name,
                score: f64::from(round3(score)),
                bbox,
                frame_width: width as i32,
                frame_height: height as i32,
                segment_id: None,
                has_crop: false,
                labelled: false,
            };
            if due {
                match self.store_event(&event, &face, model).await {
                    Ok(id) => {
                        event.id = Some(id);
                        event.has_crop = true;
                    }
                    Err(e) => tracing::error!(camera, error = %e, "face event not stored"),
                }
            }
            let _ = self.inner.feed.send(event.clone());
            events.push(event);
        }
        events
    }

    /// Analyse one camera frame taken at `at` the way live frames are: find and recognise
    /// its faces, store them as face events (at most every [`STORE_EVERY`] per camera and
    /// person; opted-out people never) and publish them to live listeners. Returns the events
    /// (`id` set on those stored). The live runtime calls this on its worker pool; integrators
    /// with frames of their own call it directly.
    pub async fn process_frame(
        &self,
        camera: i64,
        at: DateTime<Utc>,
        frame: RgbImage,
    ) -> FaceResult<Vec<FaceEvent>> {
        let engine = self.engine()?;
        let (w, h) = (frame.width(), frame.height());
        let faces = tokio::task::spawn_blocking({
            let s = self.clone();
            let engine = engine.clone();
            move || s.analyse_frame(&engine, &frame)
        })
        .await
        .map_err(|e| FaceError::Internal(e.to_string()))??;
        if faces.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.record_frame(camera, at, w, h, faces, engine.model_id()).await)
    }

    async fn store_event(
        &self,
        e: &FaceEvent,
        face: &AnalysedFace,
        model: &str,
    ) -> FaceResult<i64> {
        let row = face_match::ActiveModel {
            identity_id: Set(e.identity_id),
            camera_id: Set(e.camera_id),
            segment_id: Set(None),
            seen_at: Set(e.at),
            distance: Set(f64::from((2.0 - 2.0 * e.score as f32).max(0.0).sqrt())),
            confidence: Set(f64::from(face.detection.score)),
            bbox: Set(
                serde_json::json!({"x": e.bbox.x, "y": e.bbox.y, "w": e.bbox.w, "h": e.bbox.h}),
            ),
            score: Set(e.score),
            frame_width: Set(e.frame_width),
            frame_height: Set(e.frame_height),
            crop: Set(Some(self.seal_crop(&face.crop)?)),
            embedding: Set(Some(self.seal_vec(&face.embedding)?)),
            model: Set(Some(model.to_owned())),
            labelled_at: Set(None),
            ..Default::default()
        }
        .insert(self.db())
        .await?;
        Ok(row.id)
    }

    /// Mark the segments face events fall in (`segments.has_faces`) and store each event's
    /// segment id; delete unknown faces older than `[faces] keep_unknown_days`. Returns how
    /// many events were linked.
    pub async fn maintain(&self) -> FaceResult<u64> {
        let now = self.now();
        let keep = chrono::Duration::days(i64::from(self.inner.config.keep_unknown_days));
        face_match::Entity::delete_many()
            .filter(face_match::Column::IdentityId.is_null())
            .filter(face_match::Column::SeenAt.lt(now - keep))
            .exec(self.db())
            .await?;
        let pending = face_match::Entity::find()
            .filter(face_match::Column::SegmentId.is_null())
            .filter(face_match::Column::SeenAt.gte(now - chrono::Duration::days(1)))
            .order_by_asc(face_match::Column::SeenAt)
            .limit(2000)
            .all(self.db())
            .await?;
        let mut linked = 0;
        for e in pending {
            let seg = segment::Entity::find()
                .filter(segment::Column::CameraId.eq(e.camera_id))
                .filter(segment::Column::StartedAt.lte(e.seen_at))
                .filter(segment::Column::EndedAt.gte(e.seen_at))
                .one(&self.inner.dbs.records)
                .await?;
            let Some(seg) = seg else { continue };
            if !seg.has_faces {
                segment::Entity::update_many()
                    .col_expr(segment::Column::HasFaces, Expr::value(true))
                    .filter(segment::Column::Id.eq(seg.id))
                    .exec(&self.inner.dbs.records)
                    .await?;
            }
            face_match::Entity::update_many()
                .col_expr(face_match::Column::SegmentId, Expr::value(Some(seg.id)))
                .filter(face_match::Column::Id.eq(e.id))
                .exec(self.db())
                .await?;
            linked += 1;
        }
        Ok(linked)
    }

    /// The live runtime: until `stop`, analyse the sub stream of every camera with motion
    /// (see the module docs), and run [`FaceService::maintain`] every 10 s.
    pub async fn run_live(&self, state: crate::state::AppState, stop: impl Future<Output = ()>) {
        if self.inner.engine.is_err() {
            stop.await;
            return;
        }
        tokio::pin!(stop);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut cams: Vec<pv_core::db::records::camera::Model> = Vec::new();
        // Cameras whose stream could not be opened: when to try again, and the delay after
        // that (doubling from 5 s up to a minute), so a dead sub stream is not retried every
        // second while motion lasts.
        let mut backoff: HashMap<i64, (Instant, Duration)> = HashMap::new();
        let mut n: u64 = 0;
        loop {
            tokio::select! {
                () = &mut stop => break,
                _ = tick.tick() => {}
            }
            if n.is_multiple_of(5) {
                match pv_core::cameras::list(&state.dbs().records).await {
                    Ok(list) => cams = list,
                    Err(e) => tracing::warn!(error = %e, "faces: cannot list cameras"),
                }
            }
            if n.is_multiple_of(10)
                && let Err(e) = self.maintain().await
            {
                tracing::warn!(error = %e, "faces: maintenance pass failed");
            }
            n += 1;
            for cam in &cams {
                let motion = state.nvr().motion_now(pv_core::ids::CameraId(cam.id));
                let running = {
                    let mut live = lock(&self.inner.live);
                    match live.get_mut(&cam.id) {
                        Some(l) if motion => {
                            l.last_motion = Instant::now();
                            true
                        }
                        Some(l) if l.last_motion.elapsed() > LINGER => {
                            let _ = l.stop.send(true);
                            live.remove(&cam.id);
                            false
                        }
                        Some(_) => true,
                        None => false,
                    }
                };
                if motion
                    && !running
                    && backoff.get(&cam.id).is_none_or(|(next, _)| Instant::now() >= *next)
                {
                    if self.start_camera(&state, cam).await {
                        backoff.remove(&cam.id);
                    } else {
                        let delay = backoff
                            .get(&cam.id)
                            .map_or(RETRY_FIRST, |(_, d)| d.saturating_mul(2).min(RETRY_MAX));
                        backoff.insert(cam.id, (Instant::now() + delay, delay));
                    }
                }
            }
            let known: Vec<i64> = cams.iter().map(|c| c.id).collect();
            backoff.retain(|id, _| known.contains(id));
            lock(&self.inner.live).retain(|id, l| {
                let keep = known.contains(id);
                if !keep {
                    let _ = l.stop.send(true);
                }
                keep
            });
        }
        for (_, l) in lock(&self.inner.live).drain() {
            let _ = l.stop.send(true);
        }
    }

    /// Start analysing `cam`'s sub stream; false when it cannot be opened or decoded.
    async fn start_camera(
        &self,
        state: &crate::state::AppState,
        cam: &pv_core::db::records::camera::Model,
    ) -> bool {
        if self.inner.engine.is_err() {
            return false;
        }
        let (tap, lease) =
            match crate::live::viewer_source(state, cam, crate::live::Stream::Sub).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(camera = cam.id, error = %e, "faces: no stream to analyse");
                    return false;
                }
            };
        let config = pv_media::frames::SamplerConfig {
            fps: self.inner.config.live_fps,
            ..Default::default()
        };
        let clock = self.inner.clock.clone();
        let (sampler, mut frames) = match pv_media::frames::FrameSampler::start(&tap, config, clock)
        {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(camera = cam.id, error = %e, "faces: cannot decode the stream");
                return false;
            }
        };
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        lock(&self.inner.live)
            .insert(cam.id, LiveCamera { stop: stop_tx, last_motion: Instant::now() });
        tracing::info!(camera = cam.id, "faces: analysing live frames while motion lasts");
        let service = self.clone();
        let camera = cam.id;
        tokio::spawn(async move {
            let _lease = lease;
            loop {
                let frame = tokio::select! {
                    _ = stop_rx.changed() => break,
                    f = frames.recv() => match f { Some(f) => f, None => break },
                };
                let Ok(permit) = service.inner.workers.clone().try_acquire_owned() else {
                    service.inner.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    continue;
                };
                let s = service.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    let img = match RgbImage::new(frame.width, frame.height, frame.data.to_vec()) {
                        Ok(img) => img,
                        Err(e) => {
                            tracing::warn!(camera, error = %e, "faces: unusable frame");
                            return;
                        }
                    };
                    if let Err(e) = s.process_frame(camera, frame.at, img).await {
                        tracing::warn!(camera, error = %e, "faces: frame not analysed");
                    }
                });
            }
            sampler.stop().await;
            tracing::info!(camera, "faces: live analysis stopped");
        });
        true
    }
}

fn check_name(name: &str) -> FaceResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(FaceError::Invalid(
            "A name is 1 to 100 characters without line breaks.".into(),
        ));
    }
    Ok(name.to_owned())
}

fn round3(v: f32) -> f32 {
    (v * 1000.0).round() / 1000.0
}

fn vec_to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn bytes_to_vec(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn enrolled_view(row: &face_embedding::Model) -> EnrolledFace {
    EnrolledFace {
        id: row.id,
        identity_id: row.identity_id,
        source: row.source.clone(),
        negative: row.is_negative,
        quality: (row.quality * 1000.0).round() / 1000.0,
        has_crop: row.crop.is_some(),
        event_id: row.match_id,
        created_at: row.created_at,
    }
}

fn event_view(row: &face_match::Model, people: &HashMap<i64, Person>) -> FaceEvent {
    let get = |k: &str| row.bbox.get(k).and_then(serde_json::Value::as_f64).unwrap_or(0.0) as f32;
    FaceEvent {
        id: Some(row.id),
        camera_id: row.camera_id,
        at: row.seen_at,
        identity_id: row.identity_id,
        name: row.identity_id.and_then(|i| people.get(&i).map(|p| p.name.clone())),
        score: row.score,
        bbox: FaceBox { x: get("x"), y: get("y"), w: get("w"), h: get("h") },
        frame_width: row.frame_width,
        frame_height: row.frame_height,
        segment_id: row.segment_id,
        has_crop: row.crop.is_some(),
        labelled: row.labelled_at.is_some(),
    }
}
