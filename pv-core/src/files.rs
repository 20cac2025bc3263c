//! Reading files whose path a person or a request named (the country database, models,
//! certificates): [`read_regular_file`] opens without blocking, checks on the opened handle that
//! it is a regular file, and reads at most a stated number of bytes.
//!
//! Without these checks a path such as `/dev/zero` makes a plain `fs::read` allocate memory
//! without bound, a FIFO blocks the reading thread forever, and a huge file is read whole.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::{Error, Result};

/// Read the file at `path` whole, refusing — quickly and without reading — anything that is
/// not a regular file (a device such as `/dev/zero`, a FIFO, a socket, a directory) and any
/// file larger than `max_bytes`. `what` names the file in messages ("the country database").
///
/// The file is opened with `O_NONBLOCK` so that opening a FIFO returns at once, and its type
/// and size are taken from the opened handle (no window between a check and the open). A file
/// that grows past `max_bytes` while it is read is refused too.
///
/// Errors are [`Error::InvalidInput`] with a message for people.
pub fn read_regular_file(path: &Path, max_bytes: u64, what: &str) -> Result<Vec<u8>> {
    let shown = path.display();
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(|e| Error::InvalidInput(format!("cannot read {what} {shown}: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| Error::InvalidInput(format!("cannot read {what} {shown}: {e}")))?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let is = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a named pipe (FIFO)"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(Error::InvalidInput(format!(
            "{what} {shown} is {is}; it must be a regular file"
        )));
    }
    if meta.len() > max_bytes {
        return Err(too_large(what, &shown.to_string(), max_bytes));
    }
    read_capped(file, max_bytes)
        .map_err(|e| Error::InvalidInput(format!("cannot read {what} {shown}: {e}")))?
        .ok_or_else(|| too_large(what, &shown.to_string(), max_bytes))
}

/// The file's bytes, or None when it holds more than `max_bytes`.
fn read_capped(file: File, max_bytes: u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1)).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= max_bytes).then_some(bytes))
}

fn too_large(what: &str, shown: &str, max_bytes: u64) -> Error {
    Error::InvalidInput(format!(
        "{what} {shown} is larger than the limit of {} MiB",
        max_bytes / (1024 * 1024)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_small_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.bin");
        std::fs::write(&p, b"hello").unwrap();
        assert_eq!(read_regular_file(&p, 5, "the file").unwrap(), b"hello");
        let e = read_regular_file(&p, 4, "the file").unwrap_err().to_string();
        assert!(e.contains("larger than the limit"), "{e}");
    }

    #[test]
    fn refuses_devices_directories_fifos_and_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_regular_file(Path::new("/dev/zero"), 1 << 20, "the file").unwrap_err();
        assert!(e.to_string().contains("is a device"), "{e}");
        let e = read_regular_file(dir.path(), 1 << 20, "the file").unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
        let fifo = dir.path().join("pipe");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::from_raw_mode(0o600))
            .unwrap();
        let e = read_regular_file(&fifo, 1 << 20, "the file").unwrap_err();
        assert!(e.to_string().contains("named pipe"), "{e}");
        let e = read_regular_file(&dir.path().join("nope"), 1, "the file").unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
        assert!(e.to_string().starts_with("cannot read the file"), "{e}");
    }

    #[test]
    fn refuses_a_huge_sparse_file_without_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        File::create(&p).unwrap().set_len(1 << 30).unwrap();
        let started = std::time::Instant::now();
        let e = read_regular_file(&p, 256 << 20, "the file").unwrap_err().to_string();
        assert!(e.contains("larger than the limit of 256 MiB"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
