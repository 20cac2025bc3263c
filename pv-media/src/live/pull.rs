//! A live-only pull: a camera stream fed into a [`StreamTap`] without recording anything, for
//! live viewers of a camera that is not recording now (mode off, outside its schedule) and of
//! a camera's sub stream (dashboard tiles).
//!
//! The pipeline is the recorder's without the muxer: `rtspsrc → depay → parse → fakesink`,
//! with the same tap probe after the parser, so consumers cannot tell a pull from a recorder.
//! It reconnects with capped back-off (1 s doubling to 10 s) until [`LivePull::stop`]; a
//! stream that delivers no video for [`STALL`] is treated as lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::record::gst::{add_tap_probe, choose};
use crate::record::{StopSignal, Transport};
use crate::tap::{StreamTap, Track};

/// A stream that sends no video for this long is reconnected.
pub const STALL: Duration = Duration::from_secs(10);

/// What to pull.
#[derive(Clone, PartialEq, Eq)]
pub struct PullConfig {
    /// `rtsp://` or `rtsps://` URL (without credentials).
    pub url: String,
    /// User name, when the camera needs one.
    pub username: Option<String>,
    /// Password, when the camera needs one (never logged).
    pub password: Option<String>,
    /// TCP (default) or UDP.
    pub transport: Transport,
    /// Take the AAC track too.
    pub audio: bool,
}

impl PullConfig {
    /// `url` over TCP, without credentials, video and audio.
    pub fn new(url: impl Into<String>) -> PullConfig {
        PullConfig {
            url: url.into(),
            username: None,
            password: None,
            transport: Transport::Tcp,
            audio: true,
        }
    }
}

impl std::fmt::Debug for PullConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullConfig")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("transport", &self.transport)
            .field("audio", &self.audio)
            .finish()
    }
}

/// A running pull. Dropping it stops it without waiting.
#[derive(Debug)]
pub struct LivePull {
    stop: Arc<StopSignal>,
    thread: Option<JoinHandle<()>>,
    tap: StreamTap,
}

impl LivePull {
    /// Start pulling `config` into `tap` on a new thread.
    pub fn start(config: PullConfig, tap: StreamTap) -> crate::Result<LivePull> {
        crate::init()?;
        let stop = Arc::new(StopSignal::default());
        let (s, t) = (stop.clone(), tap.clone());
        let thread = std::thread::Builder::new()
            .name("live-pull".into())
            .spawn(move || supervise(&config, &t, &s))
            .map_err(|e| crate::Error::Process {
                program: "live pull",
                reason: format!("cannot start thread: {e}"),
            })?;
        Ok(LivePull { stop, thread: Some(thread), tap })
    }

    /// The tap it feeds.
    pub fn tap(&self) -> &StreamTap {
        &self.tap
    }

    /// Stop and wait for the pipeline to go.
    pub async fn stop(mut self) {
        self.stop.set();
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

impl Drop for LivePull {
    fn drop(&mut self) {
        self.stop.set();
    }
}

fn supervise(config: &PullConfig, tap: &StreamTap, stop: &StopSignal) {
    let mut backoff = Duration::from_secs(1);
    while !stop.is_set() {
        let started = Instant::now();
        match attempt(config, tap, stop) {
            Ok(()) => return,
            Err(reason) => {
                tracing::info!(url = %config.url, reason, "live pull lost the camera; reconnecting");
            }
        }
        if started.elapsed() > Duration::from_secs(30) {
            backoff = Duration::from_secs(1);
        }
        if stop.sleep(backoff) {
            return;
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// One connection: Ok when stopped, Err with the reason when the camera was lost.
fn attempt(config: &PullConfig, tap: &StreamTap, stop: &StopSignal) -> Result<(), String> {
    let make = |f: &str| {
        gst::ElementFactory::make(f)
            .build()
            .map_err(|_| format!("GStreamer element {f} is not installed"))
    };
    let pipeline = gst::Pipeline::with_name("live-pull");
    let src = make("rtspsrc")?;
    src.set_property("location", &config.url);
    crate::record::gst::accept_camera_certificates(&src, &config.url);
    src.set_property("latency", if config.transport == Transport::Tcp { 0u32 } else { 200 });
    src.set_property_from_str("protocols", config.transport.as_str());
    if let Some(user) = &config.username {
        src.set_property("user-id", user);
    }
    if let Some(pass) = &config.password {
        src.set_property("user-pw", pass);
    }
    let started = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let audio = config.audio;
    let select_tap = tap.clone();
    src.connect("select-stream", false, move |args| {
        let caps = args.get(2).and_then(|v| v.get::<gst::Caps>().ok());
        let chain = caps.as_ref().and_then(|c| choose(c, audio).ok().flatten());
        if chain.is_some_and(|c| !c.video) {
            select_tap.expect_audio();
        }
        Some(chain.is_some().to_value())
    });
    let pad_tap = tap.clone();
    let pad_last = last.clone();
    src.connect_pad_added(move |src, pad| {
        let Some(bin) = src.parent().and_downcast::<gst::Bin>() else { return };
        let Some(caps) = pad.current_caps() else { return };
        let Ok(Some(chain)) = choose(&caps, audio) else { return };
        let elements = (|| -> Result<Vec<gst::Element>, String> {
            let depay = make(chain.depay)?;
            let parse = make(chain.parse)?;
            let filter = make("capsfilter")?;
            let caps: gst::Caps = chain.caps.parse().map_err(|_| "bad caps".to_owned())?;
            filter.set_property("caps", &caps);
            let sink = make("fakesink")?;
            sink.set_property("sync", false);
            sink.set_property("async", false);
            Ok(vec![depay, parse, filter, sink])
        })();
        let Ok(elements) = elements else { return };
        if bin.add_many(&elements).is_err() || gst::Element::link_many(&elements).is_err() {
            return;
        }
        if let Some(src_pad) = elements[2].static_pad("src") {
            let track = if chain.video { Track::Video } else { Track::Audio };
            add_tap_probe(&src_pad, &pad_tap, track);
            if chain.video {
                let last = pad_last.clone();
                src_pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                    last.store(started.elapsed().as_millis() as u64 + 1, Ordering::Relaxed);
                    gst::PadProbeReturn::Ok
                });
            }
        }
        for e in &elements {
            let _ = e.sync_state_with_parent();
        }
        if let Some(sink) = elements[0].static_pad("sink") {
            let _ = pad.link(&sink);
        }
    });
    pipeline.add(&src).map_err(|e| e.to_string())?;
    tap.begin_stream();
    let result = drive(&pipeline, stop, started, &last);
    let _ = pipeline.set_state(gst::State::Null);
    tap.end_stream();
    result
}

fn drive(
    pipeline: &gst::Pipeline,
    stop: &StopSignal,
    started: Instant,
    last: &AtomicU64,
) -> Result<(), String> {
    pipeline.set_state(gst::State::Playing).map_err(|e| e.to_string())?;
    let bus = pipeline.bus().ok_or("the pipeline has no bus")?;
    loop {
        if stop.is_set() {
            return Ok(());
        }
        if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) {
            match msg.view() {
                gst::MessageView::Eos(_) => return Err("the camera ended the stream".into()),
                gst::MessageView::Error(e) => return Err(e.error().to_string()),
                _ => {}
            }
        }
        let seen = last.load(Ordering::Relaxed);
        let since = if seen == 0 {
            started.elapsed()
        } else {
            started.elapsed().saturating_sub(Duration::from_millis(seen - 1))
        };
        if since > STALL {
            return Err(format!("no video for {} s", since.as_secs()));
        }
    }
}
