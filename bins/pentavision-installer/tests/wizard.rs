//! End-to-end: the installer writes a private config the server accepts.

use std::process::Command;

#[test]
fn non_interactive_setup_writes_a_0600_config_and_migrates() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_pentavision-installer"))
            .args([
                "--non-interactive",
                "--data-dir",
                data.to_str().unwrap(),
                "--listen",
                "127.0.0.1:8099",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("users database (sqlite): reachable, 5 migration(s) applied"),
        "{stdout}"
    );
    let cfg = data.join("pentavision.toml");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("listen = \"127.0.0.1:8099\""), "{text}");
    for db in ["users", "faces", "records"] {
        assert!(data.join(format!("{db}.sqlite")).is_file());
    }

    // A second run refuses to overwrite, with one line, unless --force.
    let out = run(&[]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1);
    assert!(err.contains("--force"), "{err}");
    assert!(run(&["--force"]).status.success());

    // A bad URL is refused before anything is written.
    let out = run(&["--force", "--faces-url", "oracle://x"]);
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr).unwrap().contains("database.faces_url"));
}
