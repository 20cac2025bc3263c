//! Live view over WHEP (draft-ietf-wish-whep): `POST /cameras/{id}/whep` with an SDP offer
//! answers `201 Created` with the SDP answer and the session's `Location`; `PATCH` on it takes
//! trickled candidates, `DELETE` ends it. Plain WHEP, so any WHEP client can play a camera.
//! Needs `cameras.live` on the camera (scope and access windows apply); a session can be
//! patched or ended only by the user who opened it (others get 404). The MSE fallback (a
//! WebSocket) is [`crate::live_mse`].

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Binary, PlainText};
use poem_openapi::{ApiRequest, ApiResponse, OpenApi};
use pv_media::live::{LiveError, SessionId};
use pv_security::rbac::Permission;

use super::ApiTags;
use super::cameras::load_for;
use super::error::{ApiError, ApiResult};
use crate::auth::{Scoped, perm};
use crate::live::SessionOwner;
use crate::state::AppState;

/// The largest offer or candidate fragment accepted.
const MAX_SDP_BYTES: usize = 64 * 1024;

/// A WHEP offer.
#[derive(ApiRequest, Debug)]
pub enum SdpOfferBody {
    /// The viewer's SDP offer (receive-only video, optionally audio).
    #[oai(content_type = "application/sdp")]
    Sdp(PlainText<String>),
}

/// Trickled ICE candidates.
#[derive(ApiRequest, Debug)]
pub enum TrickleBody {
    /// An SDP fragment with `a=ice-ufrag`, `a=ice-pwd`, `m=` and `a=candidate` lines.
    #[oai(content_type = "application/trickle-ice-sdpfrag")]
    Fragment(PlainText<String>),
}

/// The answer to a WHEP offer.
#[derive(ApiResponse, Debug)]
pub enum WhepCreated {
    /// The session is open: the SDP answer, its resource, and the ICE servers to use (one
    /// `Link: <stun:…>; rel="ice-server"` per configured STUN server).
    #[oai(status = 201, content_type = "application/sdp")]
    Created(
        PlainText<String>,
        #[oai(header = "Location")] String,
        #[oai(header = "Link")] Option<String>,
        #[oai(header = "Cache-Control")] String,
    ),
}

/// A session change that needs no body back.
#[derive(ApiResponse, Debug)]
pub enum WhepDone {
    /// Done.
    #[oai(status = 204)]
    NoContent,
}

/// The HLS live playlist.
#[derive(ApiResponse, Debug)]
pub enum HlsPlaylist {
    /// The live media playlist (fMP4 segments, HLS version 7).
    #[oai(status = 200, content_type = "application/vnd.apple.mpegurl")]
    Ok(PlainText<String>, #[oai(header = "Cache-Control")] String),
}

/// An HLS init segment or media segment.
#[derive(ApiResponse, Debug)]
pub enum HlsFile {
    /// The segment (fragmented MP4).
    #[oai(status = 200, content_type = "video/mp4")]
    Ok(Binary<Vec<u8>>, #[oai(header = "Cache-Control")] String),
}

/// An ICE server for the viewer's peer connection (`RTCIceServer`).
#[derive(poem_openapi::Object, Debug, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct IceServer {
    /// `stun:…`, `turn:…` or `turns:…`.
    pub urls: String,
    /// TURN user name (absent for STUN).
    #[oai(skip_serializing_if_is_none)]
    pub username: Option<String>,
    /// TURN password (absent for STUN).
    #[oai(skip_serializing_if_is_none)]
    pub credential: Option<String>,
}

fn ice_servers(config: &pv_core::config::LiveConfig) -> Vec<IceServer> {
    let stun = config.stun_servers.iter().map(|s| IceServer {
        urls: s.clone(),
        username: None,
        credential: None,
    });
    let turn = config.turn_servers.iter().map(|t| IceServer {
        urls: t.url.clone(),
        username: Some(t.username.clone()),
        credential: Some(t.credential.clone()),
    });
    stun.chain(turn).collect()
}

/// WHEP live sessions.
#[derive(Debug)]
pub struct LiveApi;

fn live_err(e: LiveError) -> ApiError {
    use poem::http::StatusCode;
    let detail = e.to_string();
    match e {
        LiveError::TooManyViewers { .. } => ApiError::too_many(detail, 30),
        LiveError::UnknownSession => ApiError::new(StatusCode::NOT_FOUND, detail),
        LiveError::NotStreaming => ApiError::new(StatusCode::CONFLICT, detail),
        LiveError::Bind { .. } | LiveError::Internal(_) => {
            tracing::error!(error = %detail, "live view failed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "live view over WebRTC is unavailable on this server now; the player falls back \
                 to MSE",
            )
        }
        _ => ApiError::bad_request(detail),
    }
}

/// The `stream` query parameter.
pub fn parse_stream(raw: Option<&str>) -> ApiResult<crate::live::Stream> {
    match raw {
        None | Some("main") => Ok(crate::live::Stream::Main),
        Some("sub") => Ok(crate::live::Stream::Sub),
        Some(other) => Err(ApiError::bad_request(format!(
            "stream must be main or sub, not '{}'",
            other.chars().take(20).collect::<String>()
        ))),
    }
}

fn session_id(raw: &str) -> ApiResult<SessionId> {
    raw.parse().map_err(live_err)
}

#[OpenApi(tag = "ApiTags::Cameras")]
impl LiveApi {
    /// Start watching the camera live over WebRTC (WHEP). The body is the SDP offer; the
    /// answer sends the camera's H.264 without transcoding, starting at a key frame. Every
    /// session start and end is an audit event.
    #[oai(path = "/cameras/:id/whep", method = "post", operation_id = "startLiveSession")]
    async fn start(
        &self,
        state: Data<&AppState>,
        auth: Scoped<perm::CamerasLive>,
        id: Path<i64>,
        /// `main` (default: full resolution) or `sub` (the camera's small stream, for tiles;
        /// the main stream when it has none).
        stream: Query<Option<String>>,
        body: SdpOfferBody,
    ) -> ApiResult<WhepCreated> {
        let cam = load_for(&state, &auth, id.0, Permission::CamerasLive).await?;
        let SdpOfferBody::Sdp(PlainText(offer)) = body;
        if offer.len() > MAX_SDP_BYTES {
            return Err(ApiError::bad_request("the SDP offer is too long"));
        }
        if !offer.trim_start().starts_with("v=0") {
            return Err(ApiError::bad_request(
                "the body is not an SDP offer (it must start with v=0)",
            ));
        }
        let stream = parse_stream(stream.0.as_deref())?;
        let (tap, lease) =
            crate::live::viewer_source(&state, &cam, stream).await.map_err(live_err)?;
        let owner = SessionOwner::of(&auth, cam.id);
        let opened = state.live().open(&tap, lease, &offer, owner).await.map_err(live_err)?;
        let location = format!("/api/v1/cameras/{}/whep/{}", cam.id, opened.id);
        let links = ice_servers(state.live().config())
            .iter()
            .map(|s| match (&s.username, &s.credential) {
                (Some(u), Some(c)) => format!(
                    "<{}>; rel=\"ice-server\"; username=\"{u}\"; credential=\"{c}\"; credential-type=\"password\"",
                    s.urls
                ),
                _ => format!("<{}>; rel=\"ice-server\"", s.urls),
            })
            .collect::<Vec<_>>();
        let link = (!links.is_empty()).then(|| links.join(", "));
        Ok(WhepCreated::Created(PlainText(opened.answer), location, link, "no-store".into()))
    }

    /// The STUN and TURN servers a live viewer's peer connection should use (`[live]
    /// stun_servers`, `turn_servers`; the same as the WHEP answer's `Link` headers), so a
    /// player can set them before it makes its offer.
    #[oai(path = "/live/ice-servers", method = "get", operation_id = "getLiveIceServers")]
    async fn ice_servers(
        &self,
        state: Data<&AppState>,
        _auth: Scoped<perm::CamerasLive>,
    ) -> ApiResult<poem_openapi::payload::Json<Vec<IceServer>>> {
        Ok(poem_openapi::payload::Json(ice_servers(state.live().config())))
    }

    /// Trickle ICE candidates to a live session (optional: the server also learns the
    /// viewer's address from its connectivity checks).
    #[oai(
        path = "/cameras/:id/whep/:session",
        method = "patch",
        operation_id = "trickleLiveSession"
    )]
    async fn trickle(
        &self,
        state: Data<&AppState>,
        auth: Scoped<perm::CamerasLive>,
        id: Path<i64>,
        session: Path<String>,
        body: TrickleBody,
    ) -> ApiResult<WhepDone> {
        let sid = self.owned(&state, &auth, id.0, &session.0)?;
        let TrickleBody::Fragment(PlainText(fragment)) = body;
        if fragment.len() > MAX_SDP_BYTES {
            return Err(ApiError::bad_request("the candidate fragment is too long"));
        }
        state.live().add_candidates(&sid, &fragment).await.map_err(live_err)?;
        Ok(WhepDone::NoContent)
    }

    /// Watch the camera live over HLS (for browsers with neither WebRTC nor Media Source):
    /// the live playlist of fMP4 segments cut at key frames, kept in memory. The first request
    /// waits up to 10 s for the first segments. A viewer's first request is an audit event.
    #[oai(path = "/cameras/:id/live.m3u8", method = "get", operation_id = "getLivePlaylist")]
    async fn playlist(
        &self,
        state: Data<&AppState>,
        auth: Scoped<perm::CamerasLive>,
        id: Path<i64>,
        /// `main` (default) or `sub`.
        stream: Query<Option<String>>,
    ) -> ApiResult<HlsPlaylist> {
        let cam = load_for(&state, &auth, id.0, Permission::CamerasLive).await?;
        let stream = parse_stream(stream.0.as_deref())?;
        let seg = self.segmenter(&state, &cam, stream).await?;
        if state.live().hls_viewer_is_new(auth.user.id, cam.id) {
            let owner = SessionOwner::of(&auth, cam.id);
            let id = SessionId::random();
            state
                .live()
                .audit(&owner, "live.start", &id, serde_json::json!({ "protocol": "hls" }))
                .await;
        }
        let prefix =
            format!("live/{}/", if stream == crate::live::Stream::Sub { "sub" } else { "main" });
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if seg.len() >= 2
                && let Some(list) = seg.playlist(&prefix)
            {
                return Ok(HlsPlaylist::Ok(PlainText(list), "no-store".into()));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(live_err(LiveError::NotStreaming));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// An HLS file named by the live playlist: `init.mp4` or `N.m4s`.
    #[oai(
        path = "/cameras/:id/live/:stream/:file",
        method = "get",
        operation_id = "getLiveSegment"
    )]
    async fn segment(
        &self,
        state: Data<&AppState>,
        auth: Scoped<perm::CamerasLive>,
        id: Path<i64>,
        stream: Path<String>,
        file: Path<String>,
    ) -> ApiResult<HlsFile> {
        let cam = load_for(&state, &auth, id.0, Permission::CamerasLive).await?;
        let stream = parse_stream(Some(&stream.0))?;
        let seg = self.segmenter(&state, &cam, stream).await?;
        let gone = || {
            ApiError::new(
                poem::http::StatusCode::NOT_FOUND,
                "that part of the live stream is no longer (or not yet) available",
            )
        };
        let data = if file.0 == "init.mp4" {
            seg.init().ok_or_else(gone)?
        } else {
            let n: u64 =
                file.0.strip_suffix(".m4s").and_then(|n| n.parse().ok()).ok_or_else(gone)?;
            seg.segment(n).ok_or_else(gone)?.data
        };
        Ok(HlsFile::Ok(Binary(data.as_ref().clone()), "no-store".into()))
    }

    /// End a live session.
    #[oai(path = "/cameras/:id/whep/:session", method = "delete", operation_id = "endLiveSession")]
    async fn end(
        &self,
        state: Data<&AppState>,
        auth: Scoped<perm::CamerasLive>,
        id: Path<i64>,
        session: Path<String>,
    ) -> ApiResult<WhepDone> {
        let sid = self.owned(&state, &auth, id.0, &session.0)?;
        if !state.live().close(&sid).await {
            return Err(live_err(LiveError::UnknownSession));
        }
        Ok(WhepDone::NoContent)
    }
}

impl LiveApi {
    async fn segmenter(
        &self,
        state: &AppState,
        cam: &pv_core::db::records::camera::Model,
        stream: crate::live::Stream,
    ) -> ApiResult<pv_media::hls::Segmenter> {
        if let Some(running) = state.live().running_hls(cam.id, stream) {
            return Ok(running);
        }
        // The source is looked up before the segmenter lock (it may start a pull).
        let source = crate::live::viewer_source(state, cam, stream).await.map_err(live_err)?;
        let mut source = Some(source);
        state
            .live()
            .hls(cam.id, stream, || {
                source.take().ok_or_else(|| LiveError::Internal("source used twice".into()))
            })
            .map_err(live_err)
    }

    /// The session, when it is open, for this camera, and the caller's own.
    fn owned(
        &self,
        state: &AppState,
        auth: &crate::auth::Principal,
        camera: i64,
        raw: &str,
    ) -> ApiResult<SessionId> {
        let sid = session_id(raw)?;
        match state.live().owner(&sid) {
            Some(o) if o.camera == camera && o.user_id == auth.user.id => Ok(sid),
            _ => Err(live_err(LiveError::UnknownSession)),
        }
    }
}
