//! Probing a stream before a camera is saved: codec, size, frame rate and audio of good
//! cameras, and a distinct error without any password for every way a URL can be wrong.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;
use pv_core::ErrorKind;
use pv_media::probe::{ProbeError, StreamInfo, probe};
use pv_media::record::{Transport, redact_url};
use pv_media::testcam::{Clip, TestCamera, TestCameraOptions};

use crate::support::init_tracing;

const TIMEOUT: Duration = Duration::from_secs(5);
/// How long a probe may take beyond its timeout (the session's teardown).
const SLACK: Duration = Duration::from_millis(700);
const PASSWORD: &str = "s3cret-pw";
const WRONG: &str = "n0t-the-pw";

/// `probe`, timed. With a camera: when it answered but sent no video, the camera is restarted
/// and probed again (three attempts in all). The simulated camera now and then stalls the
/// stream of a freshly built media for seconds, for every client (ffmpeg too), mostly when the
/// machine is busy; a restarted camera builds a new media.
fn timed_probe(
    mut cam: Option<&mut TestCamera>,
    url: &str,
    user: Option<&str>,
    pass: Option<&str>,
    transport: Transport,
    timeout: Duration,
) -> (Result<StreamInfo, ProbeError>, Duration) {
    init_tracing();
    let mut attempt = 1;
    loop {
        let started = Instant::now();
        let result = probe(url, user, pass, transport, timeout);
        let elapsed = started.elapsed();
        match (cam.as_deref_mut(), &result) {
            (Some(cam), Err(err @ ProbeError::TimedOut { answered: true, .. })) if attempt < 3 => {
                eprintln!("{}: {err}; the test camera stalled, restarted", redact_url(url));
                cam.restart().unwrap();
                attempt += 1;
            }
            _ => return (result, elapsed),
        }
    }
}

/// A probe that is expected to fail: its error, checked for passwords and timed.
fn probe_err(
    cam: Option<&mut TestCamera>,
    url: &str,
    user: Option<&str>,
    pass: Option<&str>,
    timeout: Duration,
) -> ProbeError {
    let (result, elapsed) = timed_probe(cam, url, user, pass, Transport::Tcp, timeout);
    let err = result.unwrap_err();
    eprintln!("{}: {err} [{:?}] in {elapsed:?}", redact_url(url), err.kind());
    assert!(elapsed <= timeout + SLACK, "{}: took {elapsed:?}", redact_url(url));
    let text = format!("{err} {err:?}");
    for secret in [PASSWORD, WRONG] {
        assert!(!text.contains(secret), "{text}");
    }
    err
}

/// A probe of a camera that is expected to succeed, quickly.
fn probe_ok(
    cam: &mut TestCamera,
    url: &str,
    user: Option<&str>,
    pass: Option<&str>,
    transport: Transport,
) -> StreamInfo {
    let (result, elapsed) = timed_probe(Some(cam), url, user, pass, transport, TIMEOUT);
    let info = result.unwrap();
    eprintln!("{}: {info:?} in {elapsed:?}", redact_url(url));
    assert!(elapsed < Duration::from_secs(3), "slow probe: {elapsed:?}");
    info
}

fn expected(codec: &str, audio: Option<&str>) -> StreamInfo {
    StreamInfo {
        video_codec: codec.into(),
        width: Some(1280),
        height: Some(720),
        fps: Some(15.0),
        audio_codec: audio.map(str::to_owned),
    }
}

/// Log lines written by a test subscriber.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

/// A port nothing listens on (bound, then closed at once).
fn refused_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn h264_camera_codec_size_and_rate() {
    let mut cam = TestCamera::start(Clip::Moving).unwrap();
    let url = cam.url();
    assert_eq!(probe_ok(&mut cam, &url, None, None, Transport::Tcp), expected("h264", None));
    assert_eq!(probe_ok(&mut cam, &url, None, None, Transport::Udp), expected("h264", None));
}

#[test]
fn h265_camera() {
    let mut cam = TestCamera::start(Clip::MovingH265).unwrap();
    let url = cam.url();
    assert_eq!(probe_ok(&mut cam, &url, None, None, Transport::Tcp), expected("h265", None));
}

#[test]
fn aac_audio_is_reported() {
    let mut cam = TestCamera::start(Clip::MovingAac).unwrap();
    let url = cam.url();
    let info = probe_ok(&mut cam, &url, None, None, Transport::Tcp);
    assert_eq!(info, expected("h264", Some("aac")));
}

#[test]
fn credentials_right_wrong_and_missing() {
    let options = TestCameraOptions {
        credentials: Some(("viewer".into(), PASSWORD.into())),
        ..TestCameraOptions::default()
    };
    let mut cam = TestCamera::start_with(Clip::Moving, options).unwrap();
    let (url, with_credentials) = (cam.url(), cam.url_with_credentials());

    let info = probe_ok(&mut cam, &url, Some("viewer"), Some(PASSWORD), Transport::Tcp);
    assert_eq!(info, expected("h264", None));
    // Credentials typed into the URL work too.
    assert_eq!(
        probe_ok(&mut cam, &with_credentials, None, None, Transport::Tcp),
        expected("h264", None)
    );

    // The failures are logged (at debug level) without the password.
    let log = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(log.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let err = probe_err(None, &url, Some("viewer"), Some(WRONG), TIMEOUT);
        assert!(matches!(err, ProbeError::WrongCredentials { .. }), "{err:?}");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("refused the user name and password"), "{err}");

        let in_url = url.replace("rtsp://", &format!("rtsp://viewer:{WRONG}@"));
        let err = probe_err(None, &in_url, None, None, TIMEOUT);
        assert!(matches!(err, ProbeError::WrongCredentials { .. }), "{err:?}");
        probe_ok(&mut cam, &url, Some("viewer"), Some(PASSWORD), Transport::Tcp);
    });
    let log = log.text();
    assert!(log.contains("stream probe failed") && log.contains("stream probed"), "{log}");
    assert!(!log.contains(WRONG) && !log.contains(PASSWORD), "{log}");

    let err = probe_err(None, &url, None, None, TIMEOUT);
    assert!(matches!(err, ProbeError::CredentialsRequired { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("requires a user name and password"), "{err}");
}

#[test]
fn refused_port_is_unreachable() {
    let url = format!("rtsp://127.0.0.1:{}/cam", refused_port());
    let started = Instant::now();
    let err = probe_err(None, &url, Some("viewer"), Some(PASSWORD), TIMEOUT);
    assert!(started.elapsed() < Duration::from_secs(2), "refused at once: {:?}", started.elapsed());
    assert!(matches!(err, ProbeError::Unreachable { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    let text = err.to_string();
    assert!(
        text.contains("cannot connect to 127.0.0.1:") && text.contains("connection refused"),
        "{text}"
    );
}

#[test]
fn wrong_path_on_a_live_camera() {
    let cam = TestCamera::start(Clip::Moving).unwrap();
    let url = format!("rtsp://127.0.0.1:{}/nope", cam.port());
    let err = probe_err(None, &url, Some("viewer"), Some(PASSWORD), TIMEOUT);
    match &err {
        ProbeError::NoSuchStream { path, .. } => assert_eq!(path, "/nope"),
        other => panic!("{other:?}"),
    }
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("404"), "{err}");
}

#[test]
fn garbage_video_cannot_be_parsed() {
    let mut cam = TestCamera::start(Clip::Garbage).unwrap();
    let url = cam.url();
    let timeout = Duration::from_secs(3);
    let err = probe_err(Some(&mut cam), &url, Some("viewer"), Some(PASSWORD), timeout);
    match &err {
        ProbeError::Unparseable { codec, .. } => assert_eq!(codec, "h264"),
        other => panic!("{other:?}"),
    }
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn non_rtsp_urls_are_refused_up_front() {
    for url in [
        format!("http://viewer:{PASSWORD}@127.0.0.1/cam"),
        "file:///etc/passwd".into(),
        "rtsp://".into(),
        String::new(),
        "rtsp://127.0.0.1/a b".into(),
    ] {
        let started = Instant::now();
        let err = probe_err(None, &url, Some("viewer"), Some(PASSWORD), TIMEOUT);
        assert!(started.elapsed() < Duration::from_millis(100));
        assert!(matches!(err, ProbeError::InvalidUrl { .. }), "{}: {err:?}", redact_url(&url));
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
}

/// An RTSP server whose only stream is G.711 A-law audio.
struct AudioOnly {
    server: rtsp::RTSPServer,
    main_loop: gstreamer::glib::MainLoop,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AudioOnly {
    fn start() -> AudioOnly {
        pv_media::init().unwrap();
        let server = rtsp::RTSPServer::new();
        server.set_address("127.0.0.1");
        server.set_service("0");
        let factory = rtsp::RTSPMediaFactory::new();
        factory.set_launch(
            "( audiotestsrc is-live=true ! audio/x-raw,rate=8000,channels=1 ! alawenc ! rtppcmapay name=pay0 )",
        );
        factory.set_shared(true);
        server.mount_points().unwrap().add_factory("/audio", factory);
        let context = gstreamer::glib::MainContext::new();
        server.attach(Some(&context)).unwrap();
        let main_loop = gstreamer::glib::MainLoop::new(Some(&context), false);
        let loop_ = main_loop.clone();
        let thread = std::thread::spawn(move || {
            let _ = context.with_thread_default(|| loop_.run());
        });
        AudioOnly { server, main_loop, thread: Some(thread) }
    }

    fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/audio", self.server.bound_port())
    }
}

impl Drop for AudioOnly {
    fn drop(&mut self) {
        self.main_loop.quit();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn audio_only_stream_has_no_video() {
    let server = AudioOnly::start();
    let err = probe_err(None, &server.url(), None, None, TIMEOUT);
    match &err {
        ProbeError::NoVideo { audio_codec, .. } => assert_eq!(audio_codec.as_deref(), Some("pcma")),
        other => panic!("{other:?}"),
    }
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn a_silent_server_times_out_on_time() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
            let _ = stream.read(&mut buf);
            held.push(stream);
        }
    });
    let timeout = Duration::from_secs(2);
    let started = Instant::now();
    let err = probe_err(None, &format!("rtsp://127.0.0.1:{port}/cam"), None, None, timeout);
    assert!(started.elapsed() >= timeout);
    assert!(matches!(err, ProbeError::TimedOut { answered: false, .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
}

#[test]
fn a_server_that_is_not_rtsp() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let err = probe_err(None, &format!("rtsp://127.0.0.1:{port}/cam"), None, None, TIMEOUT);
    assert!(matches!(err, ProbeError::Stream { .. }), "{err:?}");
    assert!(err.to_string().contains("not RTSP"), "{err}");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
}
