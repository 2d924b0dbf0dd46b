//! `culex passwd` against Debian's mosquitto and mosquitto_passwd.

use culex_testkit::{run_with_timeout, tool, Mosquitto};
use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Duration;

fn culex_passwd(args: &[&str]) -> ExitCode {
    culex_tools::passwd_main(args.iter().map(OsString::from).collect())
}

/// Publishes once to `broker` as `user`/`password`; returns mosquitto_pub's exit code.
fn publish_as(broker: &Mosquitto, user: &str, password: &str) -> i32 {
    let out = run_with_timeout(
        Command::new(tool("mosquitto_pub"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &broker.port.to_string(),
                "-t",
                "t",
                "-m",
                "x",
            ])
            .args(["-u", user, "-P", password]),
        Duration::from_secs(10),
    );
    out.status.code().unwrap_or(-1)
}

fn mosquitto_with_passwords(file: &Path) -> Mosquitto {
    Mosquitto::start(&format!(
        "password_file {}\nallow_anonymous false",
        file.display()
    ))
}

#[test]
fn file_written_by_culex_passwd_is_accepted_by_mosquitto() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    let path = file.to_str().unwrap();
    assert_eq!(
        culex_passwd(&["-c", "-b", path, "alice", "s3cret pw"]),
        ExitCode::SUCCESS
    );
    assert_eq!(
        culex_passwd(&["-b", path, "bob", "hunter2"]),
        ExitCode::SUCCESS
    );
    assert_eq!(
        culex_passwd(&["-H", "sha512", "-b", path, "carol", "old-style"]),
        ExitCode::SUCCESS
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("alice:$7$101$"), "{text}");

    let broker = mosquitto_with_passwords(&file);
    assert_eq!(publish_as(&broker, "alice", "s3cret pw"), 0);
    assert_eq!(publish_as(&broker, "bob", "hunter2"), 0);
    assert_eq!(publish_as(&broker, "carol", "old-style"), 0);
    // Bad credentials: CONNACK 5 on MQTT 3.1.1, which mosquitto_pub returns.
    assert_eq!(publish_as(&broker, "alice", "s3cret"), 5);
    assert_eq!(publish_as(&broker, "bob", "s3cret pw"), 5);
    assert_eq!(publish_as(&broker, "mallory", "hunter2"), 5);
}

#[test]
fn update_leaves_hashed_lines_alone() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    let out = run_with_timeout(
        Command::new(tool("mosquitto_passwd"))
            .arg("-c")
            .arg("-b")
            .arg(&file)
            .args(["hashed", "first"]),
        Duration::from_secs(10),
    );
    assert!(out.status.success(), "{out:?}");
    let hashed_line = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{hashed_line}plain:second\n")).unwrap();

    assert_eq!(
        culex_passwd(&["-U", file.to_str().unwrap()]),
        ExitCode::SUCCESS
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with(&hashed_line),
        "the hashed line changed:\n{text}"
    );
    assert!(!text.contains("plain:second"), "{text}");
    // Running it again changes nothing: every line is hashed now.
    assert_eq!(
        culex_passwd(&["-U", file.to_str().unwrap()]),
        ExitCode::SUCCESS
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);

    let broker = mosquitto_with_passwords(&file);
    assert_eq!(publish_as(&broker, "hashed", "first"), 0);
    assert_eq!(publish_as(&broker, "plain", "second"), 0);
}

#[test]
fn username_with_colon_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    let path = file.to_str().unwrap();
    assert_eq!(
        culex_passwd(&["-c", "-b", path, "a:b", "pw"]),
        ExitCode::from(1)
    );
    assert!(!file.exists());
    assert_eq!(
        culex_passwd(&["-c", "-b", path, "ok", "pw"]),
        ExitCode::SUCCESS
    );
    let before = std::fs::read_to_string(&file).unwrap();
    assert_eq!(culex_passwd(&["-b", path, "ok:x", "pw"]), ExitCode::from(1));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
}

#[test]
fn delete_removes_the_user() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    let path = file.to_str().unwrap();
    assert_eq!(
        culex_passwd(&["-c", "-b", path, "gone", "pw1"]),
        ExitCode::SUCCESS
    );
    assert_eq!(
        culex_passwd(&["-b", path, "stays", "pw2"]),
        ExitCode::SUCCESS
    );
    assert_eq!(culex_passwd(&["-D", path, "gone"]), ExitCode::SUCCESS);
    assert_eq!(culex_passwd(&["-D", path, "gone"]), ExitCode::from(1));

    let broker = mosquitto_with_passwords(&file);
    assert_eq!(publish_as(&broker, "gone", "pw1"), 5);
    assert_eq!(publish_as(&broker, "stays", "pw2"), 0);
}
