//! The built-in recording ingest: RTSP read with `retina`, fragmented MP4 written by hand.

pub(crate) mod audio;
pub(crate) mod rtsp;
pub(crate) mod segment;
