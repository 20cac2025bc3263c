//! [`LocalStore`]: objects as files under a root directory, written atomically and durably.
//!
//! A key `a/b/c` is the file `<root>/a/b/c`. [`LocalStore::put`] writes a temporary file (named
//! with [`Key::RESERVED_PREFIX`]) in the target's directory, fsyncs it, renames it over the
//! target and fsyncs the directory, so after `put` returns the object survives a power cut, and
//! a reader sees the old bytes or the new bytes, never a mixture. Directories it creates are
//! fsynced into their parents too.
//!
//! Limits of this first version:
//! - It is synchronous (`std::fs`). The async `Backend` trait comes with the OpenDAL work; until
//!   then async callers run it on a blocking thread (`tokio::task::spawn_blocking`).
//! - A file system cannot hold both `a` and `a/b`; writing one when the other exists is
//!   [`Error::Conflict`].
//! - [`LocalStore::delete`] leaves empty directories behind (removing them would race with a
//!   concurrent `put` into the same directory).
//! - Directory fsync is done on Unix only (other systems cannot open a directory for syncing).
//! - [`LocalStore::list`] does not follow symbolic links and skips files whose names are not
//!   valid keys (with a warning), as well as temporary files left by a crash.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Error, Key, Result};

/// Makes temporary file names unique within the process (the process id covers other processes).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// How many temporary names `put` tries before giving up (names only repeat after a crash left a
/// file from an earlier process with the same id).
const TEMP_ATTEMPTS: u32 = 16;

/// A store of objects as files under one root directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// A store rooted at `root`, creating the directory (and its parents) if missing.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        match fs::create_dir_all(&root) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
                return Err(Error::RootNotADirectory(root));
            }
            Err(e) => return Err(Error::io(root, e)),
        }
        if !root.is_dir() {
            return Err(Error::RootNotADirectory(root));
        }
        Ok(Self { root })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file an object is stored in.
    pub fn path_of(&self, key: &Key) -> PathBuf {
        let mut path = self.root.clone();
        path.extend(key.segments());
        path
    }

    /// Store `bytes` under `key`, replacing any previous object, atomically and durably.
    pub fn put(&self, key: &str, bytes: &[u8]) -> Result<()> {
        let key = Key::new(key)?;
        let (dir_part, _) = key.split_last();
        let dir = self.create_dirs(&key, dir_part)?;
        let target = self.path_of(&key);
        if target.is_dir() {
            return Err(Error::Conflict {
                key: key.into(),
                reason: "a directory of other objects has this name",
            });
        }

        let (tmp, file) = create_temp(&dir)?;
        let written = write_and_sync(file, bytes)
            .map_err(|e| Error::io(&tmp, e))
            .and_then(|()| fs::rename(&tmp, &target).map_err(|e| Error::io(&target, e)));
        if let Err(err) = written {
            if let Err(e) = fs::remove_file(&tmp) {
                tracing::warn!(path = %tmp.display(), error = %e, "could not remove temporary file");
            }
            return Err(err);
        }
        sync_dir(&dir)?;
        tracing::debug!(key = %key, bytes = bytes.len(), "object stored");
        Ok(())
    }

    /// The bytes stored under `key`; [`Error::NotFound`] if there is no such object.
    pub fn get(&self, key: &str) -> Result<Vec<u8>> {
        let key = Key::new(key)?;
        let path = self.path_of(&key);
        fs::read(&path).map_err(|e| {
            if is_absent(&e) { Error::NotFound { key: key.into() } } else { Error::io(path, e) }
        })
    }

    /// Whether an object is stored under `key`.
    pub fn exists(&self, key: &str) -> Result<bool> {
        let key = Key::new(key)?;
        let path = self.path_of(&key);
        match fs::metadata(&path) {
            Ok(meta) => Ok(meta.is_file()),
            Err(e) if is_absent(&e) => Ok(false),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Remove the object under `key`, durably. Returns whether there was one (deleting a missing
    /// object is not an error, so retries are safe).
    pub fn delete(&self, key: &str) -> Result<bool> {
        let key = Key::new(key)?;
        let path = self.path_of(&key);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if is_absent(&e) => return Ok(false),
            Err(e) => return Err(Error::io(path, e)),
        }
        let (dir_part, _) = key.split_last();
        let mut dir = self.root.clone();
        if !dir_part.is_empty() {
            dir.extend(dir_part.split('/'));
        }
        sync_dir(&dir)?;
        tracing::debug!(key = %key, "object deleted");
        Ok(true)
    }

    /// Every key starting with `prefix` (plain string prefix, as in S3: `cameras/id-4` matches
    /// `cameras/id-42/…`), sorted. The empty prefix lists everything.
    pub fn list(&self, prefix: &str) -> Result<Vec<Key>> {
        let invalid = |reason| Error::InvalidPrefix { prefix: prefix.to_owned(), reason };
        if prefix.starts_with('/') {
            return Err(invalid("a prefix is relative and may not start with '/'"));
        }
        if prefix.contains('\\') || prefix.chars().any(char::is_control) {
            return Err(invalid("a prefix may not contain a backslash or control characters"));
        }
        // Only the complete segments name a directory to walk; they must be valid key segments
        // (which also keeps the walk inside the root). The last, partial segment just filters.
        let (dir_part, partial) = prefix.rsplit_once('/').unwrap_or(("", prefix));
        let mut start = self.root.clone();
        if !dir_part.is_empty() {
            let dir_key = Key::new(dir_part).map_err(|e| match e {
                Error::InvalidKey { reason, .. } => invalid(reason),
                other => other,
            })?;
            start.extend(dir_key.segments());
        }

        let mut keys = Vec::new();
        let mut stack = vec![(start, dir_part.to_owned())];
        while let Some((dir, rel)) = stack.pop() {
            let top = rel.len() == dir_part.len();
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if is_absent(&e) => continue,
                Err(e) => return Err(Error::io(dir, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| Error::io(&dir, e))?;
                let Ok(name) = entry.file_name().into_string() else {
                    tracing::warn!(dir = %dir.display(), "skipping a file whose name is not UTF-8");
                    continue;
                };
                if name.starts_with(Key::RESERVED_PREFIX) || (top && !name.starts_with(partial)) {
                    continue;
                }
                let child = if rel.is_empty() { name } else { format!("{rel}/{name}") };
                let file_type = entry.file_type().map_err(|e| Error::io(entry.path(), e))?;
                if file_type.is_dir() {
                    stack.push((entry.path(), child));
                } else if file_type.is_file() {
                    match Key::new(child) {
                        Ok(key) => keys.push(key),
                        Err(e) => {
                            tracing::warn!(error = %e, "skipping a file that is not a valid key")
                        }
                    }
                }
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// Create the directories of `dir_part` under the root one by one, fsyncing each parent that
    /// gained an entry, and return the innermost.
    fn create_dirs(&self, key: &Key, dir_part: &str) -> Result<PathBuf> {
        let mut dir = self.root.clone();
        if dir_part.is_empty() {
            return Ok(dir);
        }
        for segment in dir_part.split('/') {
            let parent = dir.clone();
            dir.push(segment);
            match fs::create_dir(&dir) {
                Ok(()) => sync_dir(&parent)?,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::AlreadyExists | io::ErrorKind::NotADirectory
                    ) =>
                {
                    return Err(Error::Conflict {
                        key: key.as_str().to_owned(),
                        reason: "an object has the name of one of its directories",
                    });
                }
                Err(e) => return Err(Error::io(dir, e)),
            }
        }
        Ok(dir)
    }
}

/// Create a new, uniquely named temporary file in `dir`.
fn create_temp(dir: &Path) -> Result<(PathBuf, File)> {
    let mut last_err = None;
    for _ in 0..TEMP_ATTEMPTS {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{}{}.{n}", Key::RESERVED_PREFIX, std::process::id()));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some((path, e)),
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    Err(match last_err {
        Some((path, e)) => Error::io(path, e),
        None => Error::io(dir, io::Error::other("no temporary file name tried")),
    })
}

fn write_and_sync(mut file: File, bytes: &[u8]) -> io::Result<()> {
    file.write_all(bytes)?;
    file.sync_all()
}

/// Make a directory's entries (a created, renamed or removed file) durable.
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Whether an error means "no object here": the file is missing, a directory on the way is a
/// file, or the path is a directory (which is not an object).
fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::IsADirectory
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn store() -> (tempfile::TempDir, LocalStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path().join("objects")).unwrap();
        (dir, store)
    }

    /// Names in a directory, to check that no temporary file was left behind.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn put_get_exists_delete() {
        let (_tmp, store) = store();
        let key = "cameras/id-42/20261123T101500Z-42.mp4";
        assert!(!store.exists(key).unwrap());
        store.put(key, b"hello").unwrap();
        assert!(store.exists(key).unwrap());
        assert_eq!(store.get(key).unwrap(), b"hello");
        assert_eq!(fs::read(store.root().join(key)).unwrap(), b"hello");
        assert!(store.delete(key).unwrap());
        assert!(!store.exists(key).unwrap());
        assert!(!store.delete(key).unwrap(), "deleting again is not an error");
        assert!(matches!(store.get(key), Err(Error::NotFound { .. })));
    }

    #[test]
    fn put_overwrites_atomically_and_leaves_no_temporary_files() {
        let (_tmp, store) = store();
        store.put("a/b", b"first version, longer").unwrap();
        let dir = store.root().join("a");
        store.put("a/b", b"second").unwrap();
        assert_eq!(store.get("a/b").unwrap(), b"second");
        assert_eq!(names(&dir), ["b"]);
        store.put("a/b", b"").unwrap();
        assert_eq!(store.get("a/b").unwrap(), b"");
        assert_eq!(names(&dir), ["b"]);
    }

    #[cfg(unix)]
    #[test]
    fn put_replaces_the_file_instead_of_writing_into_it() {
        use std::os::unix::fs::MetadataExt;
        let (_tmp, store) = store();
        store.put("k", b"old").unwrap();
        // A reader holding the old file keeps seeing the old bytes: the new ones went to a new
        // inode that was renamed into place.
        let before = fs::metadata(store.root().join("k")).unwrap().ino();
        let reader = fs::read(store.root().join("k")).unwrap();
        store.put("k", b"new bytes").unwrap();
        let after = fs::metadata(store.root().join("k")).unwrap().ino();
        assert_ne!(before, after);
        assert_eq!(reader, b"old");
        assert_eq!(store.get("k").unwrap(), b"new bytes");
    }

    #[test]
    fn bad_keys_are_rejected_by_every_operation_and_touch_nothing() {
        let (tmp, store) = store();
        for bad in ["../x", "/etc/passwd", "a/../../x", "a//b", "a\\b", "", "a/", ".pvtmp.1"] {
            assert!(matches!(store.put(bad, b"x"), Err(Error::InvalidKey { .. })), "{bad:?}");
            assert!(matches!(store.get(bad), Err(Error::InvalidKey { .. })), "{bad:?}");
            assert!(matches!(store.exists(bad), Err(Error::InvalidKey { .. })), "{bad:?}");
            assert!(matches!(store.delete(bad), Err(Error::InvalidKey { .. })), "{bad:?}");
        }
        assert!(!tmp.path().join("x").exists());
        assert!(names(store.root()).is_empty());
    }

    #[test]
    fn file_and_directory_names_conflict() {
        let (_tmp, store) = store();
        store.put("a/b", b"1").unwrap();
        let err = store.put("a", b"2").unwrap_err();
        assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
        assert_eq!(err.kind(), pv_core::ErrorKind::Conflict);

        store.put("f", b"1").unwrap();
        assert!(matches!(store.put("f/g", b"2"), Err(Error::Conflict { .. })));
        assert!(matches!(store.put("f/g/h", b"2"), Err(Error::Conflict { .. })));

        // A directory is not an object.
        assert!(!store.exists("a").unwrap());
        assert!(matches!(store.get("a"), Err(Error::NotFound { .. })));
        assert!(!store.delete("a").unwrap());
        // Nor is anything below a file.
        assert!(!store.exists("f/g").unwrap());
        assert!(matches!(store.get("f/g"), Err(Error::NotFound { .. })));
        assert_eq!(store.get("a/b").unwrap(), b"1");
        assert_eq!(store.get("f").unwrap(), b"1");
    }

    #[test]
    fn list_filters_by_string_prefix_and_sorts() {
        let (_tmp, store) = store();
        for key in [
            "cameras/id-42/2.mp4",
            "cameras/id-42/1.mp4",
            "cameras/id-4/1.mp4",
            "cameras/id-5/1.mp4",
            "snapshots/x.jpg",
            "top",
        ] {
            store.put(key, key.as_bytes()).unwrap();
        }
        let list = |p: &str| -> Vec<String> {
            store.list(p).unwrap().into_iter().map(String::from).collect()
        };
        assert_eq!(
            list(""),
            [
                "cameras/id-4/1.mp4",
                "cameras/id-42/1.mp4",
                "cameras/id-42/2.mp4",
                "cameras/id-5/1.mp4",
                "snapshots/x.jpg",
                "top"
            ]
        );
        assert_eq!(list("cameras/id-42/"), ["cameras/id-42/1.mp4", "cameras/id-42/2.mp4"]);
        assert_eq!(
            list("cameras/id-4"),
            ["cameras/id-4/1.mp4", "cameras/id-42/1.mp4", "cameras/id-42/2.mp4"]
        );
        assert_eq!(list("cameras/id-42/2"), ["cameras/id-42/2.mp4"]);
        assert_eq!(list("t"), ["top"]);
        assert!(list("nothing/here/").is_empty());
        assert!(list("top/").is_empty(), "below a file there is nothing");
    }

    #[test]
    fn list_skips_temporary_and_foreign_files() {
        let (_tmp, store) = store();
        store.put("d/keep", b"1").unwrap();
        fs::write(store.root().join("d").join(".pvtmp.999.0"), b"crash leftover").unwrap();
        fs::write(store.root().join("d").join("back\\slash"), b"foreign").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("/", store.root().join("d").join("link")).unwrap();
        assert_eq!(store.list("").unwrap(), [Key::new("d/keep").unwrap()]);
        assert_eq!(store.list("d/").unwrap(), [Key::new("d/keep").unwrap()]);
    }

    #[test]
    fn bad_prefixes_are_rejected() {
        let (_tmp, store) = store();
        for bad in ["/", "/a", "../", "a/../", "a//", "a\\b", "./x", "nul\0"] {
            let err = store.list(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidPrefix { .. }), "{bad:?}: {err:?}");
            assert_eq!(err.kind(), pv_core::ErrorKind::InvalidInput);
        }
        // A partial last segment only filters, so these are fine.
        for ok in ["..", ".", "a/.", "a/.."] {
            assert!(store.list(ok).unwrap().is_empty(), "{ok:?}");
        }
    }

    #[test]
    fn open_creates_the_root_and_rejects_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        let nested = tmp.path().join("x/y/z");
        let store = LocalStore::open(&nested).unwrap();
        assert!(nested.is_dir());
        assert_eq!(store.root(), nested);

        let file = tmp.path().join("file");
        fs::write(&file, b"").unwrap();
        assert!(matches!(LocalStore::open(&file), Err(Error::RootNotADirectory(_))));
        assert!(matches!(LocalStore::open(file.join("below")), Err(Error::RootNotADirectory(_))));
    }

    #[test]
    fn concurrent_puts_to_one_key_leave_one_whole_value() {
        let (_tmp, store) = store();
        let values: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 64 * 1024]).collect();
        std::thread::scope(|s| {
            for value in &values {
                let store = store.clone();
                s.spawn(move || store.put("shared/key", value).unwrap());
            }
        });
        let got = store.get("shared/key").unwrap();
        assert!(values.contains(&got), "the stored value is one writer's, not a mixture");
        assert_eq!(names(&store.root().join("shared")), ["key"]);
    }
}
