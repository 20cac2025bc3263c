//! Serve a simulated camera (`pv_media::testcam`) until standard input closes, printing its URL.
//!
//! ```text
//! cargo run -p pv-media --features testkit --example testcam -- [moving|static|h265|aac|g711|garbage|burst|sub|clock] [PORT]
//! cargo run -p pv-media --features testkit --example testcam -- picture PATH [PORT]
//! ```
//!
//! `clock` serves a live-encoded camera that stamps the time into its picture
//! (`pv_media::testcam::clock`), for glass-to-glass latency measurements. `picture` serves a
//! JPEG or PNG file drifting slowly sideways on grey (`pv_media::testcam::picture`), e.g. a face
//! for face recognition.

use std::io::Read;
use std::path::PathBuf;

use pv_media::testcam::{Clip, TestCamera, TestCameraOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let name = args.next();
    if name.as_deref() == Some("clock") {
        let cam = pv_media::testcam::clock::ClockCamera::start()?;
        println!("{}", cam.url());
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        return Ok(());
    }
    if name.as_deref() == Some("picture") {
        let path: PathBuf = args.next().ok_or("usage: testcam picture PATH [PORT]")?.into();
        let port = args.next().map(|p| p.parse()).transpose()?.unwrap_or(0);
        let options = TestCameraOptions { port, ..Default::default() };
        let cam = TestCamera::start_picture(&path, options)?;
        println!("{}", cam.url());
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        return Ok(());
    }
    let clip = match name.as_deref() {
        None | Some("moving") => Clip::Moving,
        Some("static") => Clip::Static,
        Some("h265") => Clip::MovingH265,
        Some("aac") => Clip::MovingAac,
        Some("garbage") => Clip::Garbage,
        Some("burst") => Clip::Burst,
        Some("sub") => Clip::MovingSub,
        Some("g711") => Clip::Moving,
        Some(other) => return Err(format!("unknown clip {other}").into()),
    };
    let port = args.next().map(|p| p.parse()).transpose()?.unwrap_or(0);
    let g711 = name.as_deref() == Some("g711");
    let cam = TestCamera::start_with(clip, TestCameraOptions { port, g711, ..Default::default() })?;
    println!("{}", cam.url());
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    Ok(())
}
