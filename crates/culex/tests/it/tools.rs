//! `culex pub` and `culex sub` as real processes, side by side with
//! mosquitto_pub and mosquitto_sub: the same bytes on stdout, the same exit
//! codes, the defaults files, and `alias mosquitto_sub='culex sub'`.

use culex_testkit::{run_with_timeout, tool, ChildGuard, Mosquitto};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// `culex` with an empty config directory (no user defaults file).
fn culex(config_home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_culex"));
    cmd.env("HOME", config_home)
        .env("XDG_CONFIG_HOME", config_home);
    cmd
}

fn run(cmd: &mut Command) -> Output {
    run_with_timeout(cmd, Duration::from_secs(15))
}

#[test]
fn culex_sub_and_mosquitto_sub_print_the_same_bytes() {
    let broker = Mosquitto::start("");
    let port = broker.port.to_string();
    let home = tempfile::tempdir().expect("tempdir");
    for (topic, payload) in [("b/1", "plain"), ("b/2", "with\ttab"), ("b/3", "{\"k\":1}")] {
        let out = run(culex(home.path()).args([
            "pub", "-p", &port, "-r", "-q", "1", "-t", topic, "-m", payload,
        ]));
        assert!(out.status.success(), "{out:?}");
    }
    for flags in [
        &["-v"][..],
        &["-F", "%t %p %l %r %q"][..],
        &["-N", "-v"][..],
        &["-F", "%x|%X|%%|@@"][..],
    ] {
        let mut ours = culex(home.path());
        ours.args(["sub", "-p", &port, "-t", "b/#", "-C", "3", "-W", "5"])
            .args(flags);
        let mut theirs = Command::new(tool("mosquitto_sub"));
        theirs
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path())
            .args(["-p", &port, "-t", "b/#", "-C", "3", "-W", "5"])
            .args(flags);
        let (ours, theirs) = (run(&mut ours), run(&mut theirs));
        assert_eq!(ours.stdout, theirs.stdout, "{flags:?}");
        assert_eq!(ours.status.code(), theirs.status.code(), "{flags:?}");
    }
}

#[test]
fn exit_codes_of_the_binary() {
    let home = tempfile::tempdir().expect("tempdir");
    // Bad arguments: 1, and mosquitto's message with culex's name.
    let out = run(culex(home.path()).args(["pub", "-t", "a/#", "-m", "x"]));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Error: Invalid publish topic 'a/#', does it contain '+' or '#'?\n\nUse 'culex pub --help' to see usage.\n"
    );
    // Timeout: 27.
    let broker = Mosquitto::start("");
    let out = run(culex(home.path()).args([
        "sub",
        "-p",
        &broker.port.to_string(),
        "-t",
        "none",
        "-W",
        "1",
    ]));
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned()
        ),
        (Some(27), "Timed out\n".into())
    );
    // Nothing listening: 1.
    let port = culex_testkit::free_port().to_string();
    let out = run(culex(home.path()).args(["sub", "-h", "127.0.0.1", "-p", &port, "-t", "x"]));
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned()
        ),
        (Some(1), "Error: Connection refused\n".into())
    );
}

#[test]
fn defaults_files_are_read_from_the_config_directory() {
    let broker = Mosquitto::start("");
    let home = tempfile::tempdir().expect("tempdir");
    // Like ~/.config/mosquitto_pub: one option per line, before the command line.
    std::fs::write(
        home.path().join("culex_pub"),
        format!(
            "# defaults\n-p {}\n-q 1\n-m from the defaults file\n",
            broker.port
        ),
    )
    .expect("defaults");
    std::fs::write(
        home.path().join("culex_sub"),
        format!("-p {}\n-v\n", broker.port),
    )
    .expect("defaults");
    let out = run(culex(home.path()).args(["pub", "-t", "d/x", "-r"]));
    assert!(out.status.success(), "{out:?}");
    let out = run(culex(home.path()).args(["sub", "-t", "d/x", "-C", "1", "-W", "5"]));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "d/x from the defaults file\n"
    );
}

#[test]
fn culex_sub_stays_subscribed_while_mosquitto_pub_publishes() {
    let broker = Mosquitto::start("");
    let port = broker.port.to_string();
    let home = tempfile::tempdir().expect("tempdir");
    let mut sub = culex(home.path());
    sub.args([
        "sub", "-p", &port, "-t", "hello", "-v", "-C", "1", "-W", "10",
    ])
    .stdout(Stdio::piped());
    let mut child = ChildGuard(sub.spawn().expect("culex sub"));
    let stdout = child.0.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        line
    });
    // The tutorial's message, repeated until the subscriber has it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !reader.is_finished() {
        assert!(
            std::time::Instant::now() < deadline,
            "culex sub printed nothing"
        );
        let mut publish = Command::new(tool("mosquitto_pub"));
        publish.args(["-p", &port, "-t", "hello", "-m", "my name is blah"]);
        run(&mut publish);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(reader.join().expect("reader"), "hello my name is blah\n");
    let status = child.0.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
}
