//! The MSE fallback of live view: `GET /api/v1/cameras/{id}/live.mp4` upgraded to a
//! WebSocket that carries the camera's tap as fragmented MP4 for Media Source Extensions.
//!
//! The protocol: a text message `{"type":"init","mime":"video/mp4; codecs=\"avc1.640028\"",
//! "width":…,"height":…,"audio":…}`, a binary message with the init segment, then one binary
//! message per frame (moof+mdat) from a key frame on. When the camera's stream restarts with
//! other parameters, a new `init` text message and init segment follow. On a problem the
//! server sends `{"type":"error","detail":"…"}` and closes. Needs `cameras.live` on the
//! camera; counts against `[live] max_viewers`; start and end are audit events.
//!
//! A viewer that cannot keep up (its TCP connection is slow) never delays the camera or other
//! viewers: its subscription of the tap skips to the next key frame, and a frame older than
//! [`MAX_FRAME_AGE`] when it is about to be sent is skipped with the rest of its group.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use poem::http::StatusCode;
use poem::web::websocket::{Message, WebSocket};
use poem::web::{Data, Path, Query};
use poem::{IntoResponse, Request, Response, handler};
use pv_media::fmp4::{AudioTrack, Fmp4Codec, Muxer, VideoTrack};
use pv_media::tap::{AudioCodec, StreamTap, TapInfo, Timeline, Track, VideoCodec};
use pv_security::rbac::Permission;

use crate::auth::Principal;
use crate::live::SessionOwner;
use crate::problem::Problem;
use crate::state::AppState;

/// A frame older than this when it is about to be sent is skipped (with its group).
const MAX_FRAME_AGE: Duration = Duration::from_millis(1500);

/// Query parameters of the MSE WebSocket.
#[derive(Debug, serde::Deserialize)]
pub struct LiveParams {
    /// `main` (default) or `sub`.
    pub stream: Option<String>,
}

/// `GET /api/v1/cameras/:id/live.mp4` (WebSocket).
#[handler]
pub async fn live_mp4(
    req: &Request,
    ws: WebSocket,
    Path(id): Path<i64>,
    Query(params): Query<LiveParams>,
    Data(state): Data<&AppState>,
) -> Response {
    let Some(principal) = req.extensions().get::<Principal>().cloned() else {
        return Problem::new(StatusCode::UNAUTHORIZED, "sign in to watch cameras").into_response();
    };
    if let Err(e) = crate::auth::check_stage(&principal) {
        return Problem::new(e.status(), e.to_string()).into_response();
    }
    let cam = match crate::rest::cameras::load_for(state, &principal, id, Permission::CamerasLive)
        .await
    {
        Ok(cam) => cam,
        Err(e) => return e.into_response(),
    };
    let Some(viewer) = state.live().mse_viewer() else {
        return Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "the server already has its maximum of live viewers; try again later",
        )
        .into_response();
    };
    let stream = match crate::rest::live::parse_stream(params.stream.as_deref()) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let (tap, lease) = match crate::live::viewer_source(state, &cam, stream).await {
        Ok(source) => source,
        Err(e) => {
            return Problem::new(crate::problem::status_for(e.kind()), e.to_string())
                .into_response();
        }
    };
    let live = state.live().clone();
    let owner = SessionOwner::of(&principal, cam.id);
    ws.on_upgrade(move |socket| async move {
        let session = pv_media::live::SessionId::random();
        live.audit(&owner, "live.start", &session, serde_json::json!({ "protocol": "mse" })).await;
        let started = Instant::now();
        let (mut sink, mut stream) = socket.split();
        let (reason, frames) = tokio::select! {
            r = serve(&mut sink, &tap) => r,
            () = viewer_gone(&mut stream) => ("closed", 0),
        };
        let _ = sink.close().await;
        drop(viewer);
        drop(lease);
        let details = serde_json::json!({
            "protocol": "mse",
            "reason": reason,
            "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            "frames": frames,
        });
        live.audit(&owner, "live.end", &session, details).await;
    })
    .into_response()
}

/// Resolves when the viewer closes the socket (or it breaks); what it sends is ignored.
async fn viewer_gone(
    stream: &mut futures_util::stream::SplitStream<poem::web::websocket::WebSocketStream>,
) {
    while let Some(Ok(m)) = stream.next().await {
        if matches!(m, Message::Close(_)) {
            break;
        }
    }
}

type Sink = futures_util::stream::SplitSink<poem::web::websocket::WebSocketStream, Message>;

async fn send_error(sink: &mut Sink, detail: &str) {
    let msg = serde_json::json!({ "type": "error", "detail": detail }).to_string();
    let _ = sink.send(Message::Text(msg)).await;
}

/// The muxer and the init message for the tap's current tracks.
fn muxer(info: &TapInfo) -> Result<(Muxer, String), String> {
    let video = info.video.as_ref().ok_or("the camera sends no video")?;
    let codec = match video.codec {
        VideoCodec::H264 => Fmp4Codec::H264,
        VideoCodec::H265 => Fmp4Codec::H265,
        _ => return Err("the camera's video codec cannot be played in the browser".into()),
    };
    let track = VideoTrack {
        codec,
        codec_data: video.codec_data.clone(),
        width: video.width,
        height: video.height,
    };
    // Only AAC plays through Media Source; other audio is left out, the video plays.
    let audio = info.audio.as_ref().filter(|a| a.codec == AudioCodec::Aac).map(|a| AudioTrack {
        codec_data: a.codec_data.clone(),
        sample_rate: a.sample_rate,
        channels: u16::try_from(a.channels).unwrap_or(2),
    });
    let has_audio = audio.is_some();
    let muxer = Muxer::new(track, audio).map_err(|e| e.to_string())?;
    let init = serde_json::json!({
        "type": "init",
        "mime": muxer.mime_type(),
        "width": video.width,
        "height": video.height,
        "audio": has_audio,
    })
    .to_string();
    Ok((muxer, init))
}

fn ticks(d: Duration, rate: u32) -> u64 {
    (d.as_nanos() * u128::from(rate) / 1_000_000_000) as u64
}

/// Send the tap until the viewer goes or the tap does; why it ended and frames sent.
async fn serve(sink: &mut Sink, tap: &StreamTap) -> (&'static str, u64) {
    if !tap.wait_ready(crate::live::READY_WAIT).await {
        send_error(sink, "the camera is not streaming now; live view starts when it is").await;
        return ("not_streaming", 0);
    }
    let mut sub = tap.subscribe();
    let mut frames = 0u64;
    let live_from = Instant::now();
    'generation: loop {
        let info = sub.info().clone();
        let (mut mux, init) = match muxer(&info) {
            Ok(m) => m,
            Err(detail) => {
                send_error(sink, &detail).await;
                return ("unsupported", frames);
            }
        };
        if sink.send(Message::Text(init)).await.is_err()
            || sink.send(Message::Binary(mux.init_segment())).await.is_err()
        {
            return ("closed", frames);
        }
        let rate = info.audio.as_ref().map_or(48_000, |a| a.sample_rate.max(1));
        let frame_ticks = info
            .video
            .as_ref()
            .and_then(|v| v.framerate)
            .filter(|(n, _)| *n > 0)
            .map_or(3000, |(n, d)| (90_000 * u64::from(d) / u64::from(n)).max(1));
        // A camera that reconnects with the same tracks continues on the same timeline; other
        // tracks need a new init segment (the player starts a new Media Source).
        let mut timeline = Timeline::new(Duration::from_nanos(frame_ticks * 100_000 / 9));
        loop {
            let Some(unit) = sub.recv().await else { return ("camera_gone", frames) };
            if unit.generation() != info.generation
                && (sub.info().video != info.video || sub.info().audio != info.audio)
            {
                continue 'generation;
            }
            let Some(since) = timeline.place(&unit) else { continue };
            let behind =
                unit.received_at() >= live_from && unit.received_at().elapsed() > MAX_FRAME_AGE;
            if behind && unit.track() == Track::Video && !unit.is_key_frame() {
                sub.resync();
                continue;
            }
            let fragment = match unit.track() {
                Track::Video => {
                    let dts = ticks(since, 90_000);
                    let cts = unit.pts().zip(unit.dts()).map_or(0, |(p, d)| {
                        let diff = ticks(p.abs_diff(d), 90_000) as i64;
                        i32::try_from(if p >= d { diff } else { -diff }).unwrap_or(0)
                    });
                    let duration = unit
                        .duration()
                        .map_or(frame_ticks, |d| ticks(d, 90_000).max(1))
                        .min(90_000) as u32;
                    mux.video_fragment(unit.data(), dts, cts, duration, unit.is_key_frame())
                }
                Track::Audio => {
                    if !info.audio.as_ref().is_some_and(|a| a.codec == AudioCodec::Aac) {
                        continue;
                    }
                    mux.audio_fragment(unit.data(), ticks(since, rate), 1024)
                }
            };
            let Ok(fragment) = fragment else { continue };
            if sink.send(Message::Binary(fragment)).await.is_err() {
                return ("closed", frames);
            }
            if unit.track() == Track::Video {
                frames += 1;
            }
        }
    }
}
