//! A simulated RTSP camera for tests (feature `testkit`).
//!
//! [`TestCamera::start`] serves a pre-encoded [`Clip`] in a loop from gst-rtsp-server on
//! 127.0.0.1: the clip is encoded once per machine into a cache file ([`clip::cache_dir`]),
//! loaded into memory once per process, and pushed into one shared RTP payloading pipeline per
//! camera in real time, so a camera costs no encoder and a few per cent of a core however many
//! clients read it. [`TestCamera::stop`] closes the port and every client connection (the
//! camera disappears); [`TestCamera::restart`] brings it back on the same port.
//! [`TestCamera::start_picture`] serves a picture file instead ([`picture`]): a still JPEG or
//! PNG drifting slowly sideways on a grey background, for tests that need a real face.
//!
//! ```no_run
//! # fn main() -> pv_media::Result<()> {
//! use pv_media::testcam::{Clip, TestCamera};
//! let mut cam = TestCamera::start(Clip::Moving)?;
//! let url = cam.url(); // rtsp://127.0.0.1:PORT/cam
//! cam.stop();
//! cam.restart()?;
//! # Ok(()) }
//! ```

pub mod clip;
pub mod clock;
pub mod picture;
pub mod rtmp;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;

pub use clip::Clip;
use clip::ClipData;

use crate::{Error, Result};

/// The mount path every test camera serves.
pub const MOUNT: &str = "/cam";

/// How a [`TestCamera`] is set up.
#[derive(Debug, Clone, Default)]
pub struct TestCameraOptions {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Require this user name and password (HTTP basic authentication, or digest with
    /// [`TestCameraOptions::digest`]).
    pub credentials: Option<(String, String)>,
    /// Ask for the credentials with digest authentication instead of basic.
    pub digest: bool,
    /// Serve RTSPS (RTSP over TLS) with this certificate and its private key (PEM, both in
    /// one string); [`TestCamera::url`] then starts with `rtsps://`.
    pub tls: Option<String>,
    /// Add a G.711 µ-law audio track (8 kHz mono, a 440 Hz tone, payload type 0), as
    /// Hikvision, Dahua and Reolink cameras send.
    pub g711: bool,
}

/// A running (or stopped) simulated camera. Dropping it stops it.
#[derive(Debug)]
pub struct TestCamera {
    clip: Clip,
    picture: Option<PathBuf>,
    data: Arc<ClipData>,
    options: TestCameraOptions,
    port: u16,
    running: Option<Running>,
}

#[derive(Debug)]
struct Running {
    server: rtsp::RTSPServer,
    context: glib::MainContext,
    source: Option<glib::SourceId>,
    main_loop: glib::MainLoop,
    thread: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl TestCamera {
    /// Serve `clip` on a free port.
    pub fn start(clip: Clip) -> Result<TestCamera> {
        Self::start_with(clip, TestCameraOptions::default())
    }

    /// Serve `clip` as `options` say.
    pub fn start_with(clip: Clip, options: TestCameraOptions) -> Result<TestCamera> {
        crate::init()?;
        let data = clip::load(clip)?;
        let mut cam =
            TestCamera { clip, picture: None, data, port: options.port, options, running: None };
        cam.restart()?;
        Ok(cam)
    }

    /// Serve the picture file `picture` (JPEG or PNG) as [`Clip::Picture`]: scaled to fit a
    /// 1280x720 frame on grey, drifting slowly sideways (see [`picture`]). The clip is encoded
    /// once per picture content and cached like the others.
    pub fn start_picture(picture: &Path, options: TestCameraOptions) -> Result<TestCamera> {
        crate::init()?;
        let data = picture::load(picture)?;
        let mut cam = TestCamera {
            clip: Clip::Picture,
            picture: Some(picture.to_path_buf()),
            data,
            port: options.port,
            options,
            running: None,
        };
        cam.restart()?;
        Ok(cam)
    }

    /// `rtsp://127.0.0.1:PORT/cam` (without credentials).
    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}{MOUNT}", self.scheme(), self.port)
    }

    fn scheme(&self) -> &'static str {
        if self.options.tls.is_some() { "rtsps" } else { "rtsp" }
    }

    /// The URL with `user:password@` when the camera requires credentials.
    pub fn url_with_credentials(&self) -> String {
        match &self.options.credentials {
            Some((user, pass)) => {
                format!("{}://{user}:{pass}@127.0.0.1:{}{MOUNT}", self.scheme(), self.port)
            }
            None => self.url(),
        }
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The clip served.
    pub fn clip(&self) -> Clip {
        self.clip
    }

    /// The picture file served by a [`TestCamera::start_picture`] camera.
    pub fn picture(&self) -> Option<&Path> {
        self.picture.as_deref()
    }

    /// RTSP sessions open now (one per client that set the stream up).
    pub fn sessions(&self) -> usize {
        self.running
            .as_ref()
            .and_then(|r| r.server.session_pool())
            .map_or(0, |p| usize::try_from(p.n_sessions()).unwrap_or(0))
    }

    /// Whether the camera is serving.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Disappear: close the listening socket and every client connection. Idempotent.
    pub fn stop(&mut self) {
        let Some(mut running) = self.running.take() else {
            return;
        };
        running.stop.store(true, Ordering::SeqCst);
        if let Some(pool) = running.server.session_pool() {
            pool.filter(Some(&mut |_, _| rtsp::RTSPFilterResult::Remove));
        }
        running.server.client_filter(Some(&mut |_, _| rtsp::RTSPFilterResult::Remove));
        if let Some(source) = running.source.take()
            && let Some(source) = running.context.find_source_by_id(&source)
        {
            source.destroy();
        }
        running.main_loop.quit();
        if let Some(thread) = running.thread.take() {
            let _ = thread.join();
        }
        tracing::debug!(port = self.port, "test camera stopped");
    }

    /// (Re)start serving on the same port. A running camera is stopped first.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        let stop = Arc::new(AtomicBool::new(false));
        let server = rtsp::RTSPServer::new();
        server.set_address("127.0.0.1");
        server.set_service(&self.port.to_string());
        let mounts = server
            .mount_points()
            .ok_or_else(|| Error::Gstreamer("RTSP server has no mount points".into()))?;
        let factory = rtsp::RTSPMediaFactory::new();
        let audio = if self.data.audio.is_some() {
            " appsrc name=asrc is-live=true format=time do-timestamp=true max-bytes=0 ! rtpmp4gpay name=pay1 pt=97"
        } else if self.options.g711 {
            // Fed like the video (a live audiotestsrc would make the media seekable, and
            // gst-rtsp-server then answers PLAY with a range with 503).
            " appsrc name=asrc is-live=true format=time do-timestamp=true max-bytes=0 ! rtppcmupay name=pay1 pt=0"
        } else {
            ""
        };
        factory.set_launch(&format!(
            "( appsrc name=src is-live=true format=time do-timestamp=true max-bytes=0 ! {} name=pay0 pt=96 config-interval=1{audio} )",
            self.clip.payloader()
        ));
        factory.set_shared(true);
        factory.set_protocols(
            gstreamer_rtsp_server::gst_rtsp::RTSPLowerTrans::TCP
                | gstreamer_rtsp_server::gst_rtsp::RTSPLowerTrans::UDP,
        );
        let data = self.data.clone();
        let audio = match &data.audio {
            Some(a) => Some(a.clone()),
            None if self.options.g711 => Some(g711_tone()),
            None => None,
        };
        let feeder_stop = stop.clone();
        factory.connect_media_configure(move |_, media| {
            let bin = media.element();
            let appsrc = |name: &str| {
                bin.downcast_ref::<gst::Bin>()
                    .and_then(|b| b.by_name(name))
                    .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            };
            let streams = [
                (appsrc("src"), Some((data.caps.clone(), data.frames.clone()))),
                (appsrc("asrc"), audio.clone()),
            ];
            for (src, stream) in streams {
                let (Some(src), Some((caps, frames))) = (src, stream) else { continue };
                src.set_caps(Some(&caps));
                let stop = feeder_stop.clone();
                let _ = std::thread::Builder::new()
                    .name("testcam-feed".into())
                    .spawn(move || feed(&src, &frames, &stop));
            }
        });
        if self.options.credentials.is_some() || self.options.tls.is_some() {
            let auth = rtsp::RTSPAuth::new();
            let mut token = rtsp::RTSPToken::builder()
                .field(rtsp::RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
                .build();
            match &self.options.credentials {
                Some((user, pass)) if self.options.digest => {
                    auth.add_digest(user, pass, &token);
                    auth.set_supported_methods(
                        gstreamer_rtsp_server::gst_rtsp::RTSPAuthMethod::Digest,
                    );
                }
                Some((user, pass)) => {
                    auth.add_basic(rtsp::RTSPAuth::make_basic(user, pass).as_str(), &token);
                }
                // TLS without a login: everyone may watch.
                None => auth.set_default_token(Some(&mut token)),
            }
            if let Some(pem) = &self.options.tls {
                let cert = gstreamer_rtsp_server::gio::TlsCertificate::from_pem(pem)
                    .map_err(|e| Error::Gstreamer(format!("test camera certificate: {e}")))?;
                auth.set_tls_certificate(Some(&cert));
            }
            server.set_auth(Some(&auth));
            factory.add_role_from_structure(
                &gst::Structure::builder("user")
                    .field(rtsp::RTSP_PERM_MEDIA_FACTORY_ACCESS, true)
                    .field(rtsp::RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, true)
                    .build(),
            );
        }
        mounts.add_factory(MOUNT, factory);

        let context = glib::MainContext::new();
        let source = server.attach(Some(&context))?;
        let port = u16::try_from(server.bound_port())
            .map_err(|_| Error::Gstreamer("RTSP server did not bind".into()))?;
        self.port = port;
        let main_loop = glib::MainLoop::new(Some(&context), false);
        let loop_ = main_loop.clone();
        let thread_context = context.clone();
        let thread = std::thread::Builder::new()
            .name(format!("testcam-{port}"))
            .spawn(move || {
                let _ = thread_context.with_thread_default(|| loop_.run());
            })
            .map_err(|e| Error::Gstreamer(format!("cannot start test camera thread: {e}")))?;
        tracing::debug!(port, clip = self.clip.name(), "test camera serving");
        self.running = Some(Running {
            server,
            context,
            source: Some(source),
            main_loop,
            thread: Some(thread),
            stop,
        });
        Ok(())
    }
}

impl Drop for TestCamera {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Push a stream's buffers into `src` in real time (each buffer's own duration, else one video
/// frame), looping, until the media goes away or the camera stops. `src` time-stamps them.
/// One second of a 440 Hz tone in G.711 µ-law (8 kHz mono), as 20 ms buffers: it loops
/// without a click (440 whole periods).
fn g711_tone() -> (gst::Caps, Vec<gst::Buffer>) {
    // ITU-T G.711 µ-law of a 16-bit sample.
    fn mulaw(sample: i16) -> u8 {
        let (sign, magnitude) =
            if sample < 0 { (0x80u8, -i32::from(sample)) } else { (0, i32::from(sample)) };
        let biased = (magnitude.min(32635) + 0x84) as u32;
        let exponent = (31 - biased.leading_zeros()).saturating_sub(7).min(7);
        let mantissa = (biased >> (exponent + 3)) & 0x0f;
        !(sign | (exponent as u8) << 4 | mantissa as u8)
    }
    let samples: Vec<u8> = (0..8000)
        .map(|i| {
            let t = f64::from(i) / 8000.0;
            mulaw((8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16)
        })
        .collect();
    let frames = samples
        .chunks(160)
        .map(|c| {
            let mut b = gst::Buffer::from_mut_slice(c.to_vec());
            if let Some(b) = b.get_mut() {
                b.set_duration(gst::ClockTime::from_mseconds(20));
            }
            b
        })
        .collect();
    let caps =
        gst::Caps::builder("audio/x-mulaw").field("rate", 8000i32).field("channels", 1i32).build();
    (caps, frames)
}

/// A fresh self-signed certificate and its private key in one PEM string, as an RTSPS camera
/// has (for [`TestCameraOptions::tls`]); made with the `openssl` program.
pub fn self_signed_certificate() -> Result<String> {
    let dir = std::env::temp_dir().join(format!(
        "pv-testcam-tls-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=camera.local", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    let pem = match made {
        Ok(st) if st.success() => std::fs::read_to_string(&cert)
            .and_then(|c| Ok(c + &std::fs::read_to_string(&key)?))
            .map_err(|e| Error::io(&cert, e)),
        _ => Err(Error::Gstreamer("openssl could not make a test certificate".into())),
    };
    let _ = std::fs::remove_dir_all(&dir);
    pem
}

fn feed(src: &gst_app::AppSrc, frames: &[gst::Buffer], stop: &AtomicBool) {
    // `do-timestamp` stamps a buffer with the running time: pushed before the media plays it
    // gets none, and the first client can wait seconds for video. Start once it plays.
    // (A media that never plays is gone within 30 s; pushing into it then fails and ends this.)
    let wait_until = Instant::now() + Duration::from_secs(30);
    while src.current_state() != gst::State::Playing && Instant::now() < wait_until {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let frame = Duration::from_secs(1) / clip::FPS;
    let mut due = Instant::now();
    for buffer in frames.iter().cycle() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let duration = buffer.duration().map_or(frame, |d| Duration::from_nanos(d.nseconds()));
        due += duration;
        let mut buffer = buffer.copy();
        {
            let Some(b) = buffer.get_mut() else { break };
            b.set_pts(gst::ClockTime::NONE);
            b.set_dts(gst::ClockTime::NONE);
            b.set_duration(gst::ClockTime::from_nseconds(duration.as_nanos() as u64));
        }
        if src.push_buffer(buffer).is_err() {
            break;
        }
    }
}
