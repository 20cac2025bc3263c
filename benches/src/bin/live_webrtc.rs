//! Live view over WebRTC: server-added latency and CPU per viewer.
//!
//! `cargo run --release -p pv-benches --bin live_webrtc -- [--seconds 20] [--viewers 1,10,50]`
//!
//! One simulated 1080p camera (4 Mbit/s, 15 fps, 1 s GOP) is pulled into a tap (the same
//! pipeline as a recorder, without the muxer) and served by `pv_media::live::WebRtcServer` on
//! loopback. The viewers run in a child process (this binary with `--clients N`): real str0m
//! peers doing full ICE, DTLS and SRTP against the server, so their CPU is not counted. For
//! each viewer count the parent measures, over `--seconds`:
//! - server-added latency: from an access unit entering the tap to its last RTP packet handed
//!   to the socket (p50, p99, max), every frame of every viewer;
//! - the parent's CPU (user + system, all threads, `/proc/self/stat`) minus the same window
//!   with no viewer: CPU per additional viewer in % of one core;
//! - frames each viewer received (min and max): no viewer starving.
//!
//! Signalling runs over the child's stdin/stdout (one offer and one answer per line, SDP with
//! line breaks escaped), so the measurement has no HTTP in it.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pv_media::live::pull::{LivePull, PullConfig};
use pv_media::live::{LiveConfig, WebRtcServer};
use pv_media::tap::StreamTap;
use pv_media::testcam::{Clip, TestCamera};

fn escape(sdp: &str) -> String {
    sdp.replace('\r', "").replace('\n', "\\n")
}

fn unescape(line: &str) -> String {
    line.trim_end().replace("\\n", "\r\n")
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of the whole line are 12 and 13 after the command name.
    (ticks(11) + ticks(12)) / 100.0
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1));
    if let Some(n) = arg("--clients") {
        return clients(n.parse()?, arg("--seconds").map_or(Ok(20), |s| s.parse())?);
    }
    let seconds: u64 = arg("--seconds").map_or(Ok(20), |s| s.parse())?;
    let counts: Vec<usize> = arg("--viewers")
        .map_or("1,10,50", String::as_str)
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(server(seconds, &counts))
}

async fn server(seconds: u64, counts: &[usize]) -> anyhow::Result<()> {
    let cam = TestCamera::start(Clip::Moving1080)?;
    let tap = StreamTap::new();
    let config = PullConfig::new(cam.url());
    let _pull = LivePull::start(config, tap.clone())?;
    anyhow::ensure!(tap.wait_ready(Duration::from_secs(20)).await, "the camera never streamed");
    let (w, h) = tap.info().dimensions().unwrap_or_default();
    let live = LiveConfig {
        udp_port: 0,
        addresses: vec!["127.0.0.1".parse()?],
        max_viewers: 1000,
        record_latency: true,
        ..LiveConfig::default()
    };
    let (server, _ended) = WebRtcServer::bind(live).await?;
    println!("camera {w}x{h}, {seconds} s windows, server on {:?}", server.candidate_addresses());
    let base = {
        let c0 = cpu_seconds();
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        (cpu_seconds() - c0) / seconds as f64
    };
    println!("no viewer: {:.2} % of a core (the pull alone)", base * 100.0);
    println!(
        "| viewers | latency p50 ms | p99 ms | max ms | CPU % of a core | per extra viewer % | frames per viewer (min–max) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &n in counts {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .args(["--clients", &n.to_string(), "--seconds", &(seconds + 6).to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut stdin = child.stdin.take().ok_or_else(|| anyhow::anyhow!("no stdin"))?;
        let mut stdout =
            BufReader::new(child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?);
        for _ in 0..n {
            let mut line = String::new();
            stdout.read_line(&mut line)?;
            let opened = server.open(&tap, &unescape(&line))?;
            writeln!(stdin, "{}", escape(&opened.answer))?;
        }
        // Let every viewer connect and settle, then measure.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let _ = server.take_latency();
        let c0 = cpu_seconds();
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let cpu = (cpu_seconds() - c0) / seconds as f64;
        let mut lat = server.take_latency().micros;
        lat.sort_unstable();
        let mut report = String::new();
        stdout.read_line(&mut report)?;
        let _ = child.wait();
        let frames: Vec<u64> = report.split_whitespace().filter_map(|v| v.parse().ok()).collect();
        println!(
            "| {n} | {:.2} | {:.2} | {:.2} | {:.1} | {:.2} | {}–{} |",
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            percentile(&lat, 1.0),
            cpu * 100.0,
            (cpu - base) * 100.0 / n as f64,
            frames.iter().min().copied().unwrap_or(0),
            frames.iter().max().copied().unwrap_or(0),
        );
        // Sessions end by consent timeout; wait until they are gone.
        let deadline = Instant::now() + Duration::from_secs(40);
        while server.sessions() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(())
}

/// The child: `n` receive-only peers; offers out, answers in, then frames received per peer
/// on one line after `seconds`.
fn clients(n: usize, seconds: u64) -> anyhow::Result<()> {
    use str0m::change::SdpAnswer;
    use str0m::media::{Direction, MediaKind};
    use str0m::net::{Protocol, Receive};
    use str0m::{Candidate, Event, Input, Output, RtcConfig};

    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut peers = Vec::new();
    for _ in 0..n {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
        socket.set_nonblocking(true)?;
        let local: SocketAddr = socket.local_addr()?;
        let mut rtc = RtcConfig::new().build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp")?);
        let mut api = rtc.sdp_api();
        api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
        let (offer, pending) = api.apply().ok_or_else(|| anyhow::anyhow!("no offer"))?;
        println!("{}", escape(&offer.to_sdp_string()));
        std::io::stdout().flush()?;
        let answer = unescape(&lines.next().ok_or_else(|| anyhow::anyhow!("no answer"))??);
        rtc.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(&answer)?)?;
        peers.push((rtc, socket, local, 0u64));
    }
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut buf = vec![0u8; 2048];
    while Instant::now() < end {
        let mut idle = true;
        for (rtc, socket, local, frames) in &mut peers {
            loop {
                match rtc.poll_output()? {
                    Output::Timeout(_) => break,
                    Output::Transmit(t) => {
                        let _ = socket.send_to(&t.contents, t.destination);
                    }
                    Output::Event(Event::MediaData(_)) => *frames += 1,
                    Output::Event(_) => {}
                }
            }
            while let Ok((len, from)) = socket.recv_from(&mut buf) {
                idle = false;
                if let Ok(r) = Receive::new(Protocol::Udp, from, *local, &buf[..len]) {
                    let _ = rtc.handle_input(Input::Receive(Instant::now(), r));
                }
                while let Ok(o) = rtc.poll_output() {
                    match o {
                        Output::Timeout(_) => break,
                        Output::Transmit(t) => {
                            let _ = socket.send_to(&t.contents, t.destination);
                        }
                        Output::Event(Event::MediaData(_)) => *frames += 1,
                        Output::Event(_) => {}
                    }
                }
            }
            let _ = rtc.handle_input(Input::Timeout(Instant::now()));
        }
        if idle {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let counts: Vec<String> = peers.iter().map(|p| p.3.to_string()).collect();
    println!("{}", counts.join(" "));
    Ok(())
}
