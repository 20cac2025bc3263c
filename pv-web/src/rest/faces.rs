//! Face recognition: enrolled people and their face images, recognising the faces of an
//! uploaded picture, face events seen on cameras (listed, streamed live, named or rejected).
//!
//! Reading needs `faces.view`; enrolling, editing and naming `faces.enroll`; deleting
//! `faces.delete` (all global). Face events are further limited to the cameras the caller may
//! see. Pictures are sent as the request body (`image/jpeg` or `image/png`, at most
//! [`pv_face::image::MAX_IMAGE_BYTES`] and the server's body limit). Every change is an audit
//! event; no audit event carries a face picture or embedding.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use poem::Body;
use poem::http::StatusCode;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Binary, EventStream, Json};
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiRequest, ApiResponse, Object, OpenApi};
use pv_security::rbac::Permission;
use tokio::io::AsyncReadExt;

use super::ApiTags;
use super::auth::Created;
use crate::auth::{Guarded, Principal, perm};
use crate::faces::{
    EnrolledFace, EventFilter, FaceError, FaceEvent, FacesStatus, Identity, IdentityPatch,
    Recognition,
};
use crate::state::AppState;

/// The faces API.
#[derive(Debug, Clone, Copy)]
pub struct FacesApi;

/// How often an idle event stream sends a comment line, so proxies keep it open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

super::error::problem_responses! {
    /// A problem response of a faces operation: every status of [`ApiError`](super::error::ApiError), and 422 for a
    /// picture without a usable face or a value out of range.
    pub enum FaceApiError extends ApiError {
        /// The picture has no usable face, is not a picture, or a value is out of range.
        Unprocessable = 422
    }
}

impl From<FaceError> for FaceApiError {
    fn from(e: FaceError) -> Self {
        match e {
            FaceError::Disabled(m) => FaceApiError::new(StatusCode::SERVICE_UNAVAILABLE, m),
            FaceError::NotFound(m) => FaceApiError::new(StatusCode::NOT_FOUND, m),
            FaceError::Invalid(m) => FaceApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m),
            FaceError::TooLarge(m) => FaceApiError::new(StatusCode::PAYLOAD_TOO_LARGE, m),
            e @ FaceError::NoFace => {
                FaceApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
            }
            FaceError::Internal(m) => {
                tracing::error!(error = %m, "face operation failed");
                FaceApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; the server log has the details",
                )
            }
        }
    }
}

/// The result of a faces operation.
pub type FaceApiResult<T> = Result<T, FaceApiError>;

/// A picture sent as the request body.
#[derive(ApiRequest, Debug)]
pub enum ImageUpload {
    /// A JPEG picture.
    #[oai(content_type = "image/jpeg")]
    Jpeg(Binary<Body>),
    /// A PNG picture.
    #[oai(content_type = "image/png")]
    Png(Binary<Body>),
}

impl ImageUpload {
    /// The bytes, refused with 413 past [`pv_face::image::MAX_IMAGE_BYTES`] without reading
    /// more than one byte past the cap.
    async fn read(self) -> FaceApiResult<Vec<u8>> {
        let (ImageUpload::Jpeg(Binary(body)) | ImageUpload::Png(Binary(body))) = self;
        let cap = pv_face::image::MAX_IMAGE_BYTES;
        let mut bytes = Vec::new();
        body.into_async_read().take(cap as u64 + 1).read_to_end(&mut bytes).await.map_err(|e| {
            FaceApiError::new(
                StatusCode::BAD_REQUEST,
                format!("the picture could not be received ({e})"),
            )
        })?;
        if bytes.len() > cap {
            return Err(FaceApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("pictures are at most {} MiB", cap >> 20),
            ));
        }
        if bytes.is_empty() {
            return Err(FaceApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "the picture is empty; send a JPEG or PNG file",
            ));
        }
        Ok(bytes)
    }
}

/// `GET /faces/identities`.
#[derive(Debug, Clone, Object)]
pub struct IdentityList {
    /// Enrolled people, by name.
    pub identities: Vec<Identity>,
}

/// `POST /faces/identities`.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct NewIdentity {
    /// The name shown on overlays and events (1 to 100 characters).
    pub name: String,
    /// The PentaVision user this person is.
    pub user_id: Option<i64>,
    /// Notes for administrators.
    pub notes: Option<String>,
}

/// `PATCH /faces/identities/{id}`: absent fields stay; `null` clears notes or the user link.
#[derive(Debug, Clone, Object)]
pub struct IdentityChange {
    /// New name.
    #[oai(skip_serializing_if_is_none)]
    pub name: Option<String>,
    /// New notes; null clears them.
    #[oai(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub notes: MaybeUndefined<String>,
    /// The PentaVision user this person is; null clears the link.
    #[oai(skip_serializing_if = "MaybeUndefined::is_undefined")]
    pub user_id: MaybeUndefined<i64>,
    /// Opt out of tagging (never named, no events stored; past events lose the name), or
    /// back in.
    #[oai(skip_serializing_if_is_none)]
    pub opt_out: Option<bool>,
}

/// `GET /faces/identities/{id}/images`.
#[derive(Debug, Clone, Object)]
pub struct ImageList {
    /// Enrolled face images, newest first.
    pub images: Vec<EnrolledFace>,
}

/// `GET /faces/events`.
#[derive(Debug, Clone, Object)]
pub struct EventList {
    /// Face events, newest first.
    pub events: Vec<FaceEvent>,
}

/// `POST /faces/events/{id}/label`.
#[derive(Debug, Clone, Object)]
pub struct EventLabel {
    /// The person.
    pub identity_id: i64,
    /// true: this is the person (the face becomes one of their images); false: this is not
    /// them (faces this close no longer match them).
    pub correct: bool,
}

/// A face crop.
#[derive(ApiResponse)]
pub enum CropResponse {
    /// The face, as JPEG.
    #[oai(status = 200, content_type = "image/jpeg")]
    Ok(Binary<Vec<u8>>, #[oai(header = "Cache-Control")] String),
}

/// Done, nothing to say.
#[derive(ApiResponse)]
pub enum Deleted {
    /// Deleted.
    #[oai(status = 204)]
    Done,
}

/// One person.
#[derive(ApiResponse)]
pub enum IdentityResponse {
    /// The person.
    #[oai(status = 200)]
    Ok(Json<Identity>),
}

/// One face event.
#[derive(ApiResponse)]
pub enum EventResponse {
    /// The event.
    #[oai(status = 200)]
    Ok(Json<FaceEvent>),
}

/// Absent: None (keep); null: Some(None) (clear); a value: Some(Some(value)).
fn undefined_to_option<T>(v: MaybeUndefined<T>) -> Option<Option<T>> {
    match v {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

fn crop(jpeg: Vec<u8>) -> CropResponse {
    CropResponse::Ok(Binary(jpeg), "private, no-store".into())
}

/// The cameras whose face events `who` may see: one checked camera, or every one allowed.
async fn visible_cameras(
    state: &AppState,
    who: &Principal,
    camera_id: Option<i64>,
) -> FaceApiResult<Vec<i64>> {
    Ok(super::recordings::cameras_for(state, who, camera_id, Permission::CamerasView).await?)
}

/// A face event, if `who` may see its camera (404 otherwise, as if it did not exist).
async fn visible_event(state: &AppState, who: &Principal, id: i64) -> FaceApiResult<FaceEvent> {
    let event = state.faces().event(id).await?;
    let cameras = visible_cameras(state, who, None).await?;
    if !cameras.contains(&event.camera_id) {
        return Err(FaceError::NotFound(format!("There is no face event {id}.")).into());
    }
    Ok(event)
}

#[OpenApi(tag = "ApiTags::Faces")]
impl FacesApi {
    /// Whether face recognition works (and why not), with what model, detector and threshold,
    /// and how many people and face images are enrolled.
    #[oai(path = "/faces/status", method = "get", operation_id = "getFacesStatus")]
    async fn status(
        &self,
        state: Data<&AppState>,
        _auth: Guarded<perm::FacesView>,
    ) -> FaceApiResult<Json<FacesStatus>> {
        Ok(Json(state.faces().status().await?))
    }

    /// Every enrolled person, by name.
    #[oai(path = "/faces/identities", method = "get", operation_id = "listFaceIdentities")]
    async fn identities(
        &self,
        state: Data<&AppState>,
        _auth: Guarded<perm::FacesView>,
    ) -> FaceApiResult<Json<IdentityList>> {
        Ok(Json(IdentityList { identities: state.faces().identities().await? }))
    }

    /// Enrol a person (then add face images of them).
    #[oai(path = "/faces/identities", method = "post", operation_id = "createFaceIdentity")]
    async fn create_identity(
        &self,
        state: Data<&AppState>,
        auth: Guarded<perm::FacesEnroll>,
        body: Json<NewIdentity>,
    ) -> FaceApiResult<Created<Identity>> {
        let b = body.0;
        let identity = state.faces().create_identity(&b.name, b.user_id, b.notes).await?;
        auth.audit(
            &state,
            "faces.identity.create",
            "face_identity",
            &identity.id.to_string(),
            serde_json::json!({ "name": identity.name, "user_id": identity.user_id }),
        )
        .await;
        Ok(Created::Created(Json(identity)))
    }

    /// One enrolled person.
    #[oai(path = "/faces/identities/:id", method = "get", operation_id = "getFaceIdentity")]
    async fn identity(
        &self,
        state: Data<&AppState>,
        _auth: Guarded<perm::FacesView>,
        id: Path<i64>,
    ) -> FaceApiResult<IdentityResponse> {
        Ok(IdentityResponse::Ok(Json(state.faces().identity(id.0).await?)))
    }

    /// Change a person's name, notes, user link or opt-out. Opting out stops naming them and
    /// removes their name, crops and face data from past events.
    #[oai(path = "/faces/identities/:id", method = "patch", operation_id = "updateFaceIdentity")]
    async fn update_identity(
        &self,
        state: Data<&AppState>,
        auth: Guarded<perm::FacesEnroll>,
        id: Path<i64>,
        body: Json<IdentityChange>,
    ) -> FaceApiResult<IdentityResponse> {
        let b = body.0;
        let before = state.faces().identity(id.0).await?;
        let patch = IdentityPatch {
            name: b.name,
            notes: undefined_to_option(b.notes),
            user_id: undefined_to_option(b.user_id),
            opt_out: b.opt_out,
        };
        let mut changed: Vec<&str> = Vec::new();
        if patch.name.is_some() {
            changed.push("name");
        }
        if patch.notes.is_some() {
            changed.push("notes");
        }
        if patch.user_id.is_some() {
            changed.push("user_id");
        }
        if patch.opt_out.is_some() {
            changed.push("opt_out");
        }
        let after = state.faces().update_identity(id.0, patch).await?;
        let mut details = serde_json::json!({
            "name": after.name,
            "changed": changed,
        });
        if before.opt_out != after.opt_out {
            details["opt_out"] = serde_json::json!({ "from": before.opt_out, "to": after.opt_out });
        }
        if before.name != after.name {
            details["previous_name"] = serde_json::Value::String(before.name);
        }
        auth.audit(&state, "faces.identity.update", "face_identity", &id.0.to_string(), details)
            .await;
        Ok(IdentityResponse::Ok(Json(after)))
    }

    /// Delete a person: their face images and crops, their privacy settings and the identity;
    /// past events keep only an unnamed face without crop.
    #[oai(path = "/faces/identities/:id", method = "delete", operation_id = "deleteFaceIdentity")]
    async fn delete_identity(
        &self,
        state: Data<&AppState>,
        auth: Guarded<perm::FacesDelete>,
        id: Path<i64>,
    ) -> FaceApiResult<Deleted> {
        let name = state.faces().identity(id.0).await?.name;
        let deleted = state.faces().delete_identity(id.0).await?;
        auth.audit(
            &state,
            "faces.identity.delete",
            "face_identity",
            &id.0.to_string(),
            serde_json::json!({
                "name": name,
                "embeddings": deleted.embeddings,
                "events_unlabelled": deleted.events_unlabelled,
            }),
        )
        .await;
        Ok(Deleted::Done)
    }

    /// Enrol the largest face of a picture (JPEG or PNG body) as this person's.
    #[oai(path = "/faces/identities/:id/images", method = "post", operation_id = "addFaceImage")]
    async fn add_image(
        &self,
        state: Data<&AppState>,
        auth: Guarded<perm::FacesEnroll>,
        id: Path<i64>,
        /// `upload` (default) or `camera` (taken with the browser's camera).
        source: Query<Option<String>>,
        body: ImageUpload,
    ) -> FaceApiResult<Created<EnrolledFace>> {
        let source = match source.0.as_deref() {
            None | Some("") | Some("upload") => "upload",
            Some("camera") => "camera",
            Some(_) => {
                return Err(FaceApiError::new(
                    StatusCode::BAD_REQUEST,
                    "the source is upload or camera",
                ));
            }
        };
        let bytes = body.read().await?;
        let face = state.faces().enroll_image(id.0, bytes, source).await?;
        auth.audit(
            &state,
            "faces.image.add",
            "face_image",
            &face.id.to_string(),
            serde_json::json!({
                "identity_id": face.identity_id,
                "source": face.source,
                "quality": face.quality,
            }),
        )
        .await;
        Ok(Created::Created(Json(face)))
    }

    /// A person's enrolled face images, newest first.
    #[oai(path = "/faces/identities/:id/images", method = "get", operation_id = "listFaceImages")]
    async fn images(
        &self,
        state: Data<&AppState>,
        _auth: Guarded<perm::FacesView>,
        id: Path<i64>,
    ) -> FaceApiResult<Json<ImageList>> {
        Ok(Json(ImageList { images: state.faces().images(id.0).await? }))
    }

    /// The face crop of an enrolled image (JPEG).
    #[oai(
        path = "/faces/embeddings/:id/crop.jpg",
        method = "get",
        operation_id = "getFaceImageCrop"
    )]
    async fn image_crop(
        &self,
        state: Data<&AppState>,
        _auth: Guarded<perm::FacesView>,
        id: Path<i64>,
    ) -> FaceApiResult<CropResponse> {
        Ok(crop(state.faces().image_crop(id.0).await?))
    }

    /// Delete one enrolled face image.
    #[oai(path = "/faces/embeddings/:id", method = "delete", operation_id = "deleteFaceImage")]
    async fn delete_image(
        &self,
        state: Data<&AppState>,
        auth: Guarded<perm::FacesDelete>,
        id: Path<i64>,
    ) -> FaceApiResult<Deleted> {
        let identity = state.faces().delete_image(id.0).await?;
        auth.audit(
            &state,
            "faces.image.delete",
            "face_image",
            &id.0.to_string(),
            serde_json::json!({ "identity_id": identity }),
        )
        .await;
        Ok(Deleted::Done)
    }

    /// Find and recognise every face of a picture (JPEG or PNG body), largest first. Nothing
    /// is stored.
    #[oai(path = "/faces/recognize", method = "post", operation_id = "recognizeFaces")]
    async fn recognize(
        &self,
        state: Data<&AppState>,
        _auth: Guarded<perm::FacesView>,
        body: ImageUpload,
    ) -> FaceApiResult<Json<Recognition>> {
        let bytes = body.read().await?;
        Ok(Json(state.faces().recognize(bytes).await?))
    }

    /// Face events of the cameras the caller may see, newest first.
    #[oai(path = "/faces/events", method = "get", operation_id = "listFaceEvents")]
    #[allow(clippy::too_many_arguments)]
    async fn events(
        &self,
        state: Data<&AppState>,
        auth: Guarded<perm::FacesView>,
        /// Only this camera.
        camera_id: Query<Option<i64>>,
        /// Only this person.
        identity_id: Query<Option<i64>>,
        /// Only faces of nobody enrolled.
        unknown: Query<Option<bool>>,
        /// From this time (RFC 3339).
        from: Query<Option<DateTime<Utc>>>,
        /// Before this time (RFC 3339).
        to: Query<Option<DateTime<Utc>>>,
        /// At most this many (1 to 1000, default 200).
        limit: Query<Option<u64>>,
    ) -> FaceApiResult<Json<EventList>> {
        if let Some(l) = limit.0
            && !(1..=1000).contains(&l)
        {
            return Err(FaceApiError::new(
                StatusCode::BAD_REQUEST,
                "show between 1 and 1000 face events at a time",
            ));
        }
        if let (Some(f), Some(t)) = (from.0, to.0)
            && f > t
        {
            return Err(FaceApiError::new(
                StatusCode::BAD_REQUEST,
                "the start of the time range is after its end",
            ));
        }
        let cameras = visible_cameras(&state, &auth, camera_id.0).await?;
        let events = state
            .faces()
            .events(EventFilter {
                camera_id: camera_id.0,
                cameras: Some(cameras),
                identity_id: identity_id.0,
                unknown: unknown.0.unwrap_or(false),
                from: from.0,
                to: to.0,
                limit: limit.0,
            })
            .await?;
        Ok(Json(EventList { events }))
    }

    /// Live face events as they happen (server-sent events: one `data:` line of event JSON
    /// per face; a comment line every 15 seconds keeps the connection open). Events of live
    /// frames not stored have no id.
    #[oai(path = "/faces/events/stream", method = "get", operation_id = "streamFaceEvents")]
    async fn stream(
        &self,
        state: Data<&AppState>,
        auth: Guarded<perm::FacesView>,
        /// Only this camera.
        camera_id: Query<Option<i64>>,
    ) -> FaceApiResult<EventStream<BoxStream<'static, FaceEvent>>> {
        let allowed: BTreeSet<i64> =
            visible_cameras(&state, &auth, camera_id.0).await?.into_iter().collect();
        let rx = state.faces().subscribe();
        let stream = futures_util::stream::unfold(rx, move |mut rx| {
            let allowed = allowed.clone();
            async move {
                loop {
                    match rx.recv().await {
                        Ok(e) if allowed.contains(&e.camera_id) => return Some((e, rx)),
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            tracing::debug!(skipped = n, "face event stream fell behind");
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        })
        .boxed();
        Ok(EventStream::new(stream).keep_alive(KEEP_ALIVE))
    }

    /// The face crop of a face event (JPEG).
    #[oai(path = "/faces/events/:id/crop.jpg", method = "get", operation_id = "getFaceEventCrop")]
    async fn event_crop(
        &self,
        state: Data<&AppState>,
        auth: Guarded<perm::FacesView>,
        id: Path<i64>,
    ) -> FaceApiResult<CropResponse> {
        visible_event(&state, &auth, id.0).await?;
        Ok(crop(state.faces().event_crop(id.0).await?))
    }

    /// Name a face event: "this is the person" (the face becomes one of their images) or
    /// "this is not them" (a negative example: faces this close no longer match them).
    #[oai(path = "/faces/events/:id/label", method = "post", operation_id = "labelFaceEvent")]
    async fn label(
        &self,
        state: Data<&AppState>,
        auth: Guarded<perm::FacesEnroll>,
        id: Path<i64>,
        body: Json<EventLabel>,
    ) -> FaceApiResult<EventResponse> {
        visible_event(&state, &auth, id.0).await?;
        let b = body.0;
        let event = state.faces().label_event(id.0, b.identity_id, b.correct).await?;
        auth.audit(
            &state,
            "faces.event.label",
            "face_event",
            &id.0.to_string(),
            serde_json::json!({ "identity_id": b.identity_id, "correct": b.correct }),
        )
        .await;
        Ok(EventResponse::Ok(Json(event)))
    }
}
