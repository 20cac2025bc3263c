//! Live view through the API: WHEP sessions played by real WebRTC clients (str0m, as a browser
//! would: full ICE against the server's ICE-lite, DTLS, SRTP) from a simulated RTSP camera, the
//! MSE WebSocket, and bad input.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use poem::http::StatusCode;
use poem::test::TestClient;
use pv_core::ids::CameraId;
use pv_core::testkit::Engine;
use pv_media::testcam::{Clip, TestCamera};
use serde_json::{Value, json};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;

use crate::{csrf_token, session_cookie, state_with, user_with_role};

type Cli = TestClient<poem::endpoint::BoxEndpoint<'static>>;

/// A WebRTC viewer: what it received so far.
struct Viewer {
    location: String,
    frames: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<Vec<u8>>>,
}

/// Make an offer as a browser would (receive-only video and audio), with a host candidate.
fn client(
    local: Option<SocketAddr>,
) -> (Rtc, str0m::change::SdpOffer, str0m::change::SdpPendingOffer, str0m::media::Mid) {
    let mut rtc = RtcConfig::new().build(Instant::now());
    if let Some(local) = local {
        rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
    }
    let mut api = rtc.sdp_api();
    let mid = api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    let (offer, pending) = api.apply().unwrap();
    (rtc, offer, pending, mid)
}

async fn post_offer(
    cli: &Cli,
    cookie: &str,
    token: &str,
    camera: i64,
    sdp: &str,
) -> poem::test::TestResponse {
    cli.post(format!("/api/v1/cameras/{camera}/whep"))
        .header("cookie", cookie)
        .header("x-csrf-token", token)
        .content_type("application/sdp")
        .body(sdp.to_owned())
        .send()
        .await
}

/// Open a WHEP session and play it until stopped; the task returns the first frames (Annex B).
async fn watch(cli: &Cli, cookie: &str, token: &str, camera: i64) -> Viewer {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local: SocketAddr = socket.local_addr().unwrap();
    let (mut rtc, offer, pending, _) = client(Some(local));
    let resp = post_offer(cli, cookie, token, camera, &offer.to_sdp_string()).await;
    if resp.0.status() != StatusCode::CREATED {
        let (s, b) = problem(resp).await;
        panic!("WHEP offer refused: {s} {b}");
    }
    let location = resp.0.headers().get("location").unwrap().to_str().unwrap().to_owned();
    let answer = resp.0.into_body().into_string().await.unwrap();
    for line in answer.lines().filter(|l| l.starts_with("a=candidate")) {
        assert!(!line.contains("0.0.0.0"), "no wildcard candidate: {line}");
        assert!(line.contains("127.0.0.1"), "a loopback server announces loopback: {line}");
    }
    rtc.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap()).unwrap();
    let frames = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (f, s) = (frames.clone(), stop.clone());
    let task = tokio::spawn(async move {
        let mut kept = Vec::new();
        let mut buf = vec![0u8; 2048];
        while !s.load(Ordering::SeqCst) {
            let timeout = loop {
                match rtc.poll_output().unwrap() {
                    Output::Timeout(t) => break t,
                    Output::Transmit(t) => {
                        let _ = socket.send_to(&t.contents, t.destination).await;
                    }
                    Output::Event(Event::MediaData(m)) => {
                        f.fetch_add(1, Ordering::SeqCst);
                        if kept.len() < 60 {
                            kept.push(m.data.to_vec());
                        }
                    }
                    Output::Event(_) => {}
                }
            };
            let wait =
                timeout.saturating_duration_since(Instant::now()).min(Duration::from_millis(50));
            match tokio::time::timeout(
                wait.max(Duration::from_millis(1)),
                socket.recv_from(&mut buf),
            )
            .await
            {
                Ok(Ok((n, from))) => {
                    if let Ok(r) = Receive::new(Protocol::Udp, from, local, &buf[..n]) {
                        let _ = rtc.handle_input(Input::Receive(Instant::now(), r));
                    }
                }
                _ => {
                    let _ = rtc.handle_input(Input::Timeout(Instant::now()));
                }
            }
        }
        kept
    });
    Viewer { location, frames, stop, task }
}

/// Add a camera as the administrator; its id.
async fn add_camera(cli: &Cli, state: &pv_web::AppState, admin_id: i64, body: &Value) -> i64 {
    let resp = cli
        .post("/api/v1/cameras")
        .header("cookie", session_cookie(state, admin_id).await)
        .header("x-csrf-token", csrf_token(state, admin_id, "/cameras"))
        .body_json(body)
        .send()
        .await;
    resp.assert_status(StatusCode::CREATED);
    resp.json().await.value().object().get("id").i64()
}

/// The frames decode: ffmpeg reads them as H.264 without an error.
fn decodes(frames: &[Vec<u8>]) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.h264");
    std::fs::write(&path, frames.concat()).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=codec_name,nb_read_frames", "-of", "csv=p=0"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(out.stderr.is_empty(), "decoding errors: {}", String::from_utf8_lossy(&out.stderr));
    let mut parts = text.split(',');
    assert_eq!(parts.next(), Some("h264"), "{text}");
    parts.next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

async fn problem(resp: poem::test::TestResponse) -> (StatusCode, Value) {
    let status = resp.0.status();
    let body = resp.0.into_body().into_string().await.unwrap();
    (status, serde_json::from_str(&body).unwrap_or(Value::String(body)))
}

#[tokio::test]
async fn twenty_whep_viewers_share_one_camera_connection_and_bad_input_is_refused() {
    let cam = TestCamera::start(Clip::Moving).unwrap();
    let (_env, state) = state_with(Engine::Sqlite, |c| {
        c.recording.segment_seconds = 5;
        c.live.udp_port = 0;
        c.live.max_viewers = 20;
    })
    .await;
    let cli: Cli = TestClient::new(pv_web::app::build(state.clone()));
    let admin_id = user_with_role(&state, "admin", Some("System Administrator"), None).await;
    let admin = session_cookie(&state, admin_id).await;
    let id = add_camera(&cli, &state, admin_id, &json!({ "name": "Porch", "main_url": cam.url() }))
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !state.nvr().tap(CameraId(id)).info().is_ready()
        || state.nvr().tap(CameraId(id)).key_frame().is_none()
    {
        assert!(Instant::now() < deadline, "the camera never streamed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let token = csrf_token(&state, admin_id, &format!("/cameras/{id}/whep"));

    let mut viewers = Vec::new();
    for _ in 0..20 {
        viewers.push(watch(&cli, &admin, &token, id).await);
    }
    assert_eq!(cam.sessions(), 1, "one RTSP session (the recorder) however many viewers");

    // Every viewer receives frames.
    let deadline = Instant::now() + Duration::from_secs(20);
    while viewers.iter().any(|v| v.frames.load(Ordering::SeqCst) < 30) {
        assert!(
            Instant::now() < deadline,
            "some viewer got no picture: {:?}",
            viewers.iter().map(|v| v.frames.load(Ordering::SeqCst)).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A 21st viewer is over `max_viewers`: a clear 429, the others untouched.
    let (_, offer, _, _) = client(None);
    let (status, body) =
        problem(post_offer(&cli, &admin, &token, id, &offer.to_sdp_string()).await).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("maximum"), "{body}");

    // Close ten; the other ten keep playing.
    let (closed, kept): (Vec<_>, Vec<_>) =
        viewers.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
    let delete_token = |loc: &str| csrf_token(&state, admin_id, loc);
    for (_, v) in &closed {
        let resp = cli
            .delete(&v.location)
            .header("cookie", admin.clone())
            .header("x-csrf-token", delete_token(&v.location))
            .send()
            .await;
        resp.assert_status(StatusCode::NO_CONTENT);
    }
    let before: Vec<u64> = kept.iter().map(|(_, v)| v.frames.load(Ordering::SeqCst)).collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let server = state.live().webrtc().await.unwrap();
    assert_eq!(server.sessions(), 10, "the ten closed sessions are gone");
    for ((_, v), b) in kept.iter().zip(&before) {
        let now = v.frames.load(Ordering::SeqCst);
        assert!(now >= b + 45, "a remaining viewer kept playing: {b} -> {now}");
    }
    // Their sessions are gone: a second DELETE is a 404.
    let loc = &closed[0].1.location;
    let (status, body) = problem(
        cli.delete(loc)
            .header("cookie", admin.clone())
            .header("x-csrf-token", delete_token(loc))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // Every viewer's frames decode, starting at a key frame.
    let mut all = closed;
    all.extend(kept);
    for (_, v) in all {
        v.stop.store(true, Ordering::SeqCst);
        let frames = v.task.await.unwrap();
        assert!(
            frames[0].windows(5).any(|w| w[..4] == [0, 0, 0, 1] && w[4] & 0x1f == 7),
            "the first frame carries SPS"
        );
        let n = tokio::task::spawn_blocking(move || decodes(&frames)).await.unwrap();
        assert!(n >= 30, "decoded {n} frames");
    }
    assert_eq!(cam.sessions(), 1);

    // Bad input: each a clear 4xx problem, and no session opened or closed by it.
    let open_before = server.sessions();
    let post = |body: &'static str| post_offer(&cli, &admin, &token, id, body);
    let (status, body) = problem(post("hello").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("SDP"), "{body}");
    let (status, body) = problem(post("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=rtpmap:96 VP8/90000\r\na=setup:actpass\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\na=rtcp-mux\r\n").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "an offer without H.264: {body}");
    assert!(body["detail"].as_str().unwrap().contains("H.264"), "{body}");
    let (status, body) = problem(
        cli.delete(format!("/api/v1/cameras/{id}/whep/0123456789abcdef0123456789abcdef"))
            .header("cookie", admin.clone())
            .header("x-csrf-token", csrf_token(&state, admin_id, "/cameras/{id}/whep/{session}"))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) =
        problem(post_offer(&cli, &admin, &token, 999_999, &offer.to_sdp_string()).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // A user without access to the camera does not see it.
    let guest = user_with_role(&state, "guest", None, None).await;
    let guest_cookie = session_cookie(&state, guest).await;
    let guest_token = csrf_token(&state, guest, &format!("/cameras/{id}/whep"));
    let (status, body) =
        problem(post_offer(&cli, &guest_cookie, &guest_token, id, &offer.to_sdp_string()).await)
            .await;
    assert!(status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND, "{status} {body}");
    assert_eq!(server.sessions(), open_before, "bad input touches no session");

    // The ten viewers that went away without a DELETE (their tasks stopped: no more ICE
    // consent checks) are dropped within 30 s, and every start and end is in the audit log.
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.sessions() > 0 {
        assert!(Instant::now() < deadline, "{} sessions outlived their viewers", server.sessions());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let events = cli
        .get("/api/v1/audit/events?action=live.end&limit=100")
        .header("cookie", admin.clone())
        .send()
        .await
        .0
        .into_body()
        .into_string()
        .await
        .unwrap();
    let events: Value = serde_json::from_str(&events).unwrap();
    let reasons: Vec<&str> = events
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["details"]["reason"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(reasons.iter().filter(|r| **r == "closed").count(), 10, "{events}");
    assert_eq!(reasons.iter().filter(|r| **r == "consent_lost").count(), 10, "{events}");
}

#[tokio::test]
async fn a_camera_that_does_not_record_gets_a_live_only_pull_while_watched() {
    let main = TestCamera::start(Clip::Moving).unwrap();
    let sub = TestCamera::start(Clip::Moving).unwrap();
    let (_env, state) = state_with(Engine::Sqlite, |c| c.live.udp_port = 0).await;
    let cli: Cli = TestClient::new(pv_web::app::build(state.clone()));
    let admin_id = user_with_role(&state, "admin", Some("System Administrator"), None).await;
    let admin = session_cookie(&state, admin_id).await;
    let id = add_camera(
        &cli,
        &state,
        admin_id,
        &json!({
            "name": "Shed", "main_url": main.url(), "sub_url": sub.url(), "recording_mode": "off"
        }),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(main.sessions() + sub.sessions(), 0, "a camera that does not record is left alone");
    let token = csrf_token(&state, admin_id, &format!("/cameras/{id}/whep"));

    // The main stream: the first viewer starts a pull, a second viewer shares it.
    let a = watch(&cli, &admin, &token, id).await;
    let b = watch(&cli, &admin, &token, id).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while [&a, &b].iter().any(|v| v.frames.load(Ordering::SeqCst) < 15) {
        assert!(Instant::now() < deadline, "no picture from the live-only pull");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(main.sessions(), 1, "one pull for both viewers");
    assert_eq!(sub.sessions(), 0);

    // A tile asks for the sub stream: its own pull of the sub stream.
    let (mut rtc, offer, _pending, _) = client(None);
    let _ = &mut rtc;
    let resp = cli
        .post(format!("/api/v1/cameras/{id}/whep?stream=sub"))
        .header("cookie", admin.clone())
        .header("x-csrf-token", token.clone())
        .content_type("application/sdp")
        .body(offer.to_sdp_string())
        .send()
        .await;
    resp.assert_status(StatusCode::CREATED);
    assert_eq!(sub.sessions(), 1, "the sub stream is pulled for tiles");
    let (status, body) = problem(
        cli.post(format!("/api/v1/cameras/{id}/whep?stream=side"))
            .header("cookie", admin.clone())
            .header("x-csrf-token", token.clone())
            .content_type("application/sdp")
            .body(offer.to_sdp_string())
            .send()
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Everyone leaves: the pulls stop shortly after (the tile never connected, so its session
    // ends when it times out; close the others).
    for v in [a, b] {
        cli.delete(&v.location)
            .header("cookie", admin.clone())
            .header("x-csrf-token", csrf_token(&state, admin_id, &v.location))
            .send()
            .await
            .assert_status(StatusCode::NO_CONTENT);
        v.stop.store(true, Ordering::SeqCst);
    }
    let deadline = Instant::now() + pv_web::live::PULL_LINGER + Duration::from_secs(10);
    while main.sessions() > 0 {
        assert!(Instant::now() < deadline, "the pull outlived its viewers");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn hls_serves_a_live_playlist_whose_segments_decode() {
    let cam = TestCamera::start(Clip::Moving).unwrap();
    let (_env, state) = state_with(Engine::Sqlite, |c| c.live.udp_port = 0).await;
    let cli: Cli = TestClient::new(pv_web::app::build(state.clone()));
    let admin_id = user_with_role(&state, "admin", Some("System Administrator"), None).await;
    let admin = session_cookie(&state, admin_id).await;
    let id =
        add_camera(&cli, &state, admin_id, &json!({ "name": "Gate", "main_url": cam.url() })).await;
    let get = |path: String| cli.get(path).header("cookie", admin.clone()).send();
    let resp = get(format!("/api/v1/cameras/{id}/live.m3u8")).await;
    resp.assert_status_is_ok();
    resp.assert_content_type("application/vnd.apple.mpegurl");
    let playlist = resp.0.into_body().into_string().await.unwrap();
    assert!(playlist.starts_with("#EXTM3U"), "{playlist}");
    assert!(playlist.contains("#EXT-X-MAP:URI=\"live/main/init.mp4\""), "{playlist}");
    let segments: Vec<&str> = playlist.lines().filter(|l| l.ends_with(".m4s")).collect();
    assert!(segments.len() >= 2, "{playlist}");
    let mut file = get(format!("/api/v1/cameras/{id}/live/main/init.mp4"))
        .await
        .0
        .into_body()
        .into_vec()
        .await
        .unwrap();
    for s in &segments {
        let resp = get(format!("/api/v1/cameras/{id}/{s}")).await;
        resp.assert_status_is_ok();
        file.extend(resp.0.into_body().into_vec().await.unwrap());
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.mp4");
    std::fs::write(&path, &file).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "csv=p=0"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    let frames: u32 = text.rsplit(',').next().unwrap().parse().unwrap();
    assert!(text.starts_with("h264,1280,720,"), "{text}");
    assert!(frames >= 20, "{text}");
    // A segment outside the window, a bad name, a bad stream: 404 / 400.
    get(format!("/api/v1/cameras/{id}/live/main/999999.m4s"))
        .await
        .assert_status(StatusCode::NOT_FOUND);
    get(format!("/api/v1/cameras/{id}/live/main/x.ts")).await.assert_status(StatusCode::NOT_FOUND);
    get(format!("/api/v1/cameras/{id}/live/side/init.mp4"))
        .await
        .assert_status(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn viewers_are_told_the_configured_stun_and_turn_servers() {
    let (_env, state) = state_with(Engine::Sqlite, |c| {
        c.live.stun_servers = vec!["stun:stun.example.net:3478".into()];
        c.live.turn_servers = vec![pv_core::config::TurnServer {
            url: "turn:turn.example.net:3478?transport=udp".into(),
            username: "pv".into(),
            credential: "turn-secret".into(),
        }];
    })
    .await;
    let cli: Cli = TestClient::new(pv_web::app::build(state.clone()));
    cli.get("/api/v1/live/ice-servers").send().await.assert_status(StatusCode::UNAUTHORIZED);
    let admin_id = user_with_role(&state, "admin", Some("System Administrator"), None).await;
    let resp = cli
        .get("/api/v1/live/ice-servers")
        .header("cookie", session_cookie(&state, admin_id).await)
        .send()
        .await;
    resp.assert_status_is_ok();
    let (_, body) = problem(resp).await;
    assert_eq!(
        body,
        json!([
            { "urls": "stun:stun.example.net:3478" },
            { "urls": "turn:turn.example.net:3478?transport=udp", "username": "pv", "credential": "turn-secret" },
        ])
    );
}
