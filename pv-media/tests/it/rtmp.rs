//! RTMP out: a recorded camera's tap pushed to a real nginx-rtmp (Debian's libnginx-mod-rtmp,
//! started by the test on a free loopback port), checked with ffprobe as a player; the push
//! reconnects when nginx goes away and comes back; the recorder is never disturbed.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pv_media::record::RecorderStatus;
use pv_media::rtmp::{PushStatus, RtmpConfig, RtmpPush};
use pv_media::tap::StreamTap;
use pv_media::testcam::{Clip, TestCamera};
use tokio::sync::watch;

use pv_media::testcam::rtmp::RtmpServer as Nginx;

use crate::support::{Rec, check_segments, config};

/// A TLS server with a self-signed certificate (`openssl s_server`), killed when dropped.
struct TlsServer {
    _dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl TlsServer {
    fn start() -> TlsServer {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let made = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
            .args(["-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(made.success(), "openssl req");
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "openssl s_server did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        TlsServer { _dir: dir, port, child }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The codec, width and height of every stream ffprobe finds at an RTMP URL.
fn ffprobe_rtmp(url: &str) -> Result<Vec<(String, u32, u32)>, String> {
    let out = Command::new("timeout")
        .args(["30", "ffprobe", "-v", "error", "-rw_timeout", "20000000"])
        .args(["-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0"])
        .arg(url)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let mut streams: Vec<(String, u32, u32)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let mut it = l.split(',');
            let codec = it.next().unwrap_or_default().to_owned();
            let w = it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            let h = it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            (codec, w, h)
        })
        .collect();
    streams.sort();
    Ok(streams)
}

async fn probe(url: String) -> Result<Vec<(String, u32, u32)>, String> {
    tokio::task::spawn_blocking(move || ffprobe_rtmp(&url)).await.unwrap()
}

async fn wait_status(
    status: &mut watch::Receiver<PushStatus>,
    timeout: Duration,
    want: impl Fn(&PushStatus) -> bool,
) -> Result<(), PushStatus> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if want(&status.borrow_and_update()) {
            return Ok(());
        }
        if tokio::time::timeout_at(deadline, status.changed()).await.is_err() {
            return Err(status.borrow().clone());
        }
    }
}

async fn wait_ready(tap: &StreamTap) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !tap.info().is_ready() || tap.key_frame().is_none() {
        assert!(Instant::now() < deadline, "tap not ready: {tap:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn push_config(url: String) -> RtmpConfig {
    let mut c = RtmpConfig::new(url);
    c.backoff_initial = Duration::from_millis(250);
    c.backoff_max = Duration::from_secs(1);
    c.timeout = Duration::from_secs(5);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_camera_is_pushed_to_nginx_rtmp_and_reconnects() {
    let mut nginx = Nginx::start().unwrap();
    let cam = TestCamera::start(Clip::Moving).unwrap();
    let aac_cam = TestCamera::start(Clip::MovingAac).unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut rec = Rec::start(config(50, &cam.url(), data.path()));
    let mut aac = Rec::start(config(51, &aac_cam.url(), data.path()));
    let tap = rec.recorder.as_ref().unwrap().tap();
    let aac_tap = aac.recorder.as_ref().unwrap().tap();
    wait_ready(&tap).await;
    wait_ready(&aac_tap).await;

    let t = Instant::now();
    let push = RtmpPush::start(tap.clone(), push_config(nginx.url("cam50"))).unwrap();
    assert_eq!(push.target(), format!("rtmp://127.0.0.1:{}/live/<key>", nginx.port()));
    let aac_push = RtmpPush::start(aac_tap.clone(), push_config(nginx.url("cam51"))).unwrap();
    let mut status = push.status();
    let mut aac_status = aac_push.status();
    wait_status(&mut status, Duration::from_secs(10), |s| *s == PushStatus::Pushing).await.unwrap();
    let first = t.elapsed();
    wait_status(&mut aac_status, Duration::from_secs(10), |s| *s == PushStatus::Pushing)
        .await
        .unwrap();

    let t = Instant::now();
    let streams = probe(nginx.url("cam50")).await.unwrap();
    let probe_took = t.elapsed();
    assert_eq!(streams, [("h264".to_owned(), 1280, 720)]);
    let streams = probe(nginx.url("cam51")).await.unwrap();
    let codecs: Vec<&str> = streams.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(codecs, ["aac", "h264"], "{streams:?}");
    assert!(streams.contains(&("h264".to_owned(), 1280, 720)), "{streams:?}");
    eprintln!("RTMP: pushing {first:?} after start; ffprobe answered in {probe_took:?}");

    // nginx goes away: the push notices and retries; the recorders carry on.
    let before = rec.segments().len();
    nginx.stop();
    let lost = Instant::now();
    let reason = match wait_status(&mut status, Duration::from_secs(10), |s| {
        matches!(s, PushStatus::Reconnecting { .. })
    })
    .await
    {
        Ok(()) => status.borrow().reason().unwrap_or_default().to_owned(),
        Err(s) => panic!("push did not notice nginx going away: {s:?}"),
    };
    eprintln!("RTMP: endpoint loss noticed after {:?}: {reason}", lost.elapsed());
    assert!(!reason.contains("cam50"), "the stream key is not in the reason: {reason}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        matches!(status.borrow().clone(), PushStatus::Reconnecting { attempt, .. } if attempt >= 2)
    );

    // nginx comes back on the same port: pushing again within the back-off cap.
    nginx.restart().unwrap();
    let back = Instant::now();
    wait_status(&mut status, Duration::from_secs(10), |s| *s == PushStatus::Pushing).await.unwrap();
    let resumed = back.elapsed();
    let streams = probe(nginx.url("cam50")).await.unwrap();
    assert_eq!(streams, [("h264".to_owned(), 1280, 720)]);
    eprintln!("RTMP: pushing again {resumed:?} after nginx came back");

    assert!(rec.wait_until(Duration::from_secs(10), |r| r.segments().len() > before + 1).await);
    assert_eq!(rec.status().status, RecorderStatus::Streaming);

    push.stop().await;
    aac_push.stop().await;
    assert_eq!(*status.borrow(), PushStatus::Stopped);
    rec.stop().await;
    aac.stop().await;
    check_segments(&rec.segments(), "h264");
    check_segments(&aac.segments(), "h264");
    assert!(
        rec.events.iter().all(|e| !matches!(e, pv_media::record::RecorderEvent::GapStarted { .. }))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_waits_for_a_camera_and_follows_it_across_a_reconnect() {
    let nginx = Nginx::start().unwrap();
    let mut cam = TestCamera::start(Clip::Moving).unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut rec = Rec::start(config(52, &cam.url(), data.path()));
    let tap = rec.recorder.as_ref().unwrap().tap();
    // Started before the camera streams: it waits, then pushes.
    let push = RtmpPush::start(tap.clone(), push_config(nginx.url("cam52"))).unwrap();
    let mut status = push.status();
    wait_status(&mut status, Duration::from_secs(20), |s| *s == PushStatus::Pushing).await.unwrap();

    // The camera goes away and comes back: the recorder reconnects (a new tap generation with
    // the same caps) and the push carries on.
    let generation = tap.info().generation;
    cam.stop();
    wait_status(&mut status, Duration::from_secs(10), |s| {
        matches!(s, PushStatus::WaitingForVideo { .. })
    })
    .await
    .unwrap();
    cam.restart().unwrap();
    assert!(
        rec.wait_until(Duration::from_secs(15), |r| r.status().status == RecorderStatus::Streaming)
            .await
    );
    wait_status(&mut status, Duration::from_secs(10), |s| *s == PushStatus::Pushing).await.unwrap();
    assert!(tap.info().generation > generation);
    let streams = probe(nginx.url("cam52")).await.unwrap();
    assert_eq!(streams, [("h264".to_owned(), 1280, 720)]);

    // A target nobody listens on: reconnecting with a reason, never pushing.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let push_dead =
        RtmpPush::start(tap.clone(), push_config(format!("rtmp://127.0.0.1:{dead}/live/k3y")))
            .unwrap();
    let mut dead_status = push_dead.status();
    wait_status(
        &mut dead_status,
        Duration::from_secs(10),
        |s| matches!(s, PushStatus::Reconnecting { attempt, .. } if *attempt >= 2),
    )
    .await
    .unwrap();
    eprintln!("dead endpoint: {:?}", dead_status.borrow().reason());

    // RTMPS goes through TLS and checks the endpoint's certificate: a self-signed one is
    // refused.
    let tls = TlsServer::start();
    let push_tls = RtmpPush::start(
        tap.clone(),
        push_config(format!("rtmps://127.0.0.1:{}/live/k3y", tls.port)),
    )
    .unwrap();
    let mut tls_status = push_tls.status();
    wait_status(&mut tls_status, Duration::from_secs(10), |s| {
        matches!(s, PushStatus::Reconnecting { .. })
    })
    .await
    .unwrap();
    let reason = tls_status.borrow().reason().unwrap_or_default().to_lowercase();
    assert!(reason.contains("certificate") || reason.contains("tls"), "{reason}");
    eprintln!("self-signed RTMPS endpoint: {reason}");

    push_tls.stop().await;
    push_dead.stop().await;
    push.stop().await;
    rec.stop().await;
    check_segments(&rec.segments(), "h264");
}
