//! Bad command lines give mosquitto's message, hint and exit code, byte for
//! byte (Debian's mosquitto 2.0 tools run side by side as the reference).

use crate::common::{culex, culex_with, mosquitto};
use culex_tools::args::Tool;

/// Command lines that fail before any connection is attempted.
const BAD: &[(Tool, &[&str])] = &[
    (Tool::Pub, &["-t", "a/#", "-m", "x"]),
    (Tool::Pub, &["-t", "a/+", "-m", "x"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "-n"]),
    (Tool::Pub, &["-t", "a", "-f", "x", "-s"]),
    (Tool::Pub, &["-t", "a", "-l", "-m", "x"]),
    (Tool::Pub, &["-q", "3", "-t", "a", "-m", "x"]),
    (Tool::Pub, &["-q", "-1", "-t", "a", "-m", "x"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "--foo"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "-C", "3"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "-v"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "-F", "%t"]),
    (Tool::Pub, &["-p", "99999", "-t", "a", "-m", "x"]),
    (Tool::Pub, &["-k", "2", "-t", "a", "-m", "x"]),
    (Tool::Pub, &["-k", "70000", "-t", "a", "-m", "x"]),
    (Tool::Pub, &["-V", "6", "-t", "a", "-m", "x"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "-c"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "-c", "-I", "pre"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "--repeat", "0"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "--repeat-delay", "-1"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "-x"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "-x", "abc"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "-x", "-2"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "-x", "5000000000"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "-D", "connect"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "-D", "connect", "foo"]),
    (
        Tool::Pub,
        &["-t", "a", "-m", "x", "-D", "connect", "foo", "1"],
    ),
    (Tool::Pub, &["-t", "a", "-m", "x", "-D", "bogus", "x", "y"]),
    (
        Tool::Pub,
        &["-t", "a", "-m", "x", "-D", "connect", "topic-alias", "3"],
    ),
    (
        Tool::Pub,
        &[
            "-t",
            "a",
            "-m",
            "x",
            "-D",
            "publish",
            "subscription-identifier",
            "3",
        ],
    ),
    (
        Tool::Pub,
        &[
            "-t",
            "a",
            "-m",
            "x",
            "-D",
            "auth",
            "authentication-method",
            "3",
        ],
    ),
    (
        Tool::Pub,
        &["-t", "a", "-m", "x", "-D", "puback", "reason-string", "3"],
    ),
    (
        Tool::Pub,
        &[
            "-t",
            "a",
            "-m",
            "x",
            "-D",
            "publish",
            "payload-format-indicator",
            "300",
        ],
    ),
    (
        Tool::Pub,
        &[
            "-t",
            "a",
            "-m",
            "x",
            "-D",
            "publish",
            "topic-alias",
            "70000",
        ],
    ),
    (
        Tool::Pub,
        &[
            "-t",
            "a",
            "-m",
            "x",
            "-D",
            "publish",
            "message-expiry-interval",
            "-5",
        ],
    ),
    (
        Tool::Pub,
        &["-t", "a", "-m", "x", "-D", "connect", "user-property", "a"],
    ),
    (
        Tool::Pub,
        &[
            "-t",
            "a",
            "-m",
            "x",
            "-D",
            "connect",
            "receive-maximum",
            "0",
        ],
    ),
    (
        Tool::Pub,
        &[
            "-t",
            "a",
            "-m",
            "x",
            "-D",
            "connect",
            "maximum-packet-size",
            "0",
        ],
    ),
    (
        Tool::Pub,
        &[
            "-t",
            "a",
            "-m",
            "x",
            "-D",
            "connect",
            "session-expiry-interval",
            "1",
            "-V",
            "311",
        ],
    ),
    (
        Tool::Pub,
        &["-t", "a", "-m", "x", "-P", "password-without-user"],
    ),
    (
        Tool::Sub,
        &["-t", "a", "-P", "password-without-user", "-V", "31"],
    ),
    (Tool::Pub, &["-t", "a", "-m", "x", "--will-payload", "x"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "--will-retain"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "--will-topic", "w/#"]),
    (
        Tool::Pub,
        &["-t", "a", "-m", "x", "--will-topic", "w", "--will-qos", "3"],
    ),
    (Tool::Pub, &["-t", "a", "-m", "x", "--cert", "x"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "--key", "x"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "--keyform", "pem"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "--psk", "00"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "--proxy", "http://x"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "-L", "foo://x/y"]),
    (Tool::Pub, &["-m", "x", "-L", "mqtt://localhost:1"]),
    (Tool::Pub, &["-m", "x", "-L", "mqtt://localhost:1/a/#"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "-i", "a", "-I", "b"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "-I", "b", "-i", "a"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "-M", "0"]),
    (Tool::Pub, &["-t", "a", "-m"]),
    (Tool::Pub, &["-t"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "-h"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "-p"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "-u"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "-P"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "-V"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "-A"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "--cafile"]),
    (Tool::Pub, &["-t", "a", "-m", "x", "--will-topic"]),
    (Tool::Pub, &["-t", "a", "-f"]),
    (Tool::Sub, &[]),
    (Tool::Sub, &["-v"]),
    (Tool::Sub, &["-t", "a/#/b"]),
    (Tool::Sub, &["-t", "a+"]),
    (Tool::Sub, &["-t", "a", "-F", "%"]),
    (Tool::Sub, &["-t", "a", "-F", "%z"]),
    (Tool::Sub, &["-t", "a", "-F", "\\"]),
    (Tool::Sub, &["-t", "a", "-F", "\\z"]),
    (Tool::Sub, &["-t", "a", "-F", "@"]),
    (Tool::Sub, &["-t", "a", "-F", "%-"]),
    (Tool::Sub, &["-t", "a", "-F", "%5"]),
    (Tool::Sub, &["-t", "a", "-F", "%5."]),
    (Tool::Sub, &["-t", "a", "-F", "%-05.3"]),
    (Tool::Sub, &["-t", "a", "-F"]),
    (Tool::Sub, &["-t", "a", "-C", "0"]),
    (Tool::Sub, &["-t", "a", "-C"]),
    (Tool::Sub, &["-t", "a", "-W", "0"]),
    (Tool::Sub, &["-t", "a", "-W", "-3"]),
    (Tool::Sub, &["-t", "a", "-m", "x"]),
    (Tool::Sub, &["-t", "a", "-r"]),
    (Tool::Sub, &["-t", "a", "-e", "x"]),
    (Tool::Sub, &["-t", "a", "--repeat", "2"]),
    (Tool::Sub, &["-t", "a", "-T", "a/#/x"]),
    (Tool::Sub, &["-t", "a", "-T"]),
    (Tool::Sub, &["-U", "a/#/b"]),
    (Tool::Sub, &["-t", "a", "-V", "5", "-c"]),
    (Tool::Sub, &["-t", "a", "-c"]),
    (Tool::Sub, &["-t", "a", "--random-filter", "0"]),
    (Tool::Sub, &["-t", "a", "--random-filter", "0.01"]),
    (Tool::Rr, &[]),
    (Tool::Rr, &["-t", "a"]),
    (Tool::Rr, &["-t", "a", "-e", "b"]),
    (Tool::Rr, &["-t", "a", "-e", "b/#"]),
    (Tool::Rr, &["-t", "a/+", "-e", "b"]),
    (Tool::Rr, &["-e", "b", "-m", "x"]),
    (Tool::Rr, &["-t", "a", "-e", "b", "-m", "x", "-T", "x"]),
    (Tool::Rr, &["-t", "a", "-e", "b", "-m", "x", "-l"]),
    (Tool::Rr, &["-t", "a", "-e", "b", "-m", "x", "-C", "2"]),
    (Tool::Rr, &["-t", "a", "-e"]),
    (Tool::Rr, &["-c"]),
    (Tool::Rr, &["-c", "-V", "311"]),
];

#[test]
fn bad_arguments_match_mosquitto_byte_for_byte() {
    let mut mismatches = Vec::new();
    for (tool, args) in BAD {
        let ours = culex(*tool, args);
        let theirs = mosquitto(*tool, args);
        let stdout_agrees = ours.stdout.is_empty() == theirs.stdout.is_empty();
        if ours.code != theirs.code || ours.stderr != theirs.stderr || !stdout_agrees {
            mismatches.push(format!(
                "{tool:?} {args:?}\n  culex     ({}) {:?}\n  mosquitto ({}) {:?}",
                ours.code,
                ours.stderr_text(),
                theirs.code,
                theirs.stderr_text()
            ));
        }
        assert_eq!(ours.code, 1, "{tool:?} {args:?} must exit 1");
    }
    assert!(
        mismatches.is_empty(),
        "differences from mosquitto:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn help_and_version_exit_1_on_stdout_like_mosquitto() {
    for tool in [Tool::Pub, Tool::Sub, Tool::Rr] {
        for flag in ["--help", "--version"] {
            let ours = culex(tool, &[flag]);
            let theirs = mosquitto(tool, &[flag]);
            assert_eq!((ours.code, theirs.code), (1, 1), "{tool:?} {flag}");
            assert!(
                ours.stderr.is_empty() && theirs.stderr.is_empty(),
                "{tool:?} {flag}"
            );
            assert!(!ours.stdout.is_empty(), "{tool:?} {flag} prints to stdout");
        }
        let usage = String::from_utf8(culex(tool, &["--help"]).stdout).expect("utf-8");
        assert!(
            usage.contains(&format!("Usage: {}", tool.command())),
            "{usage}"
        );
    }
}

#[test]
fn missing_payload_prints_error_then_usage() {
    let ours = culex(Tool::Pub, &["-t", "a"]);
    assert_eq!(
        ours.stderr_text(),
        "Error: Both topic and message must be supplied.\n"
    );
    assert!(String::from_utf8_lossy(&ours.stdout).contains("Usage: culex pub"));
    assert_eq!(ours.code, 1);
}

#[test]
fn defaults_file_options_come_first_and_are_checked_the_same_way() {
    // The defaults file's wildcard topic is refused like a command-line one.
    let ours = culex_with(Tool::Pub, &["-m", "x"], b"# defaults\n-t a/#\n", b"");
    assert_eq!(
        ours.stderr_text(),
        "Error: Invalid publish topic 'a/#', does it contain '+' or '#'?\n\nUse 'culex pub --help' to see usage.\n"
    );
    // A defaults file with an unknown option fails the same way.
    let ours = culex_with(Tool::Sub, &["-t", "a"], b"--nope\n", b"");
    assert_eq!(
        ours.stderr_text(),
        "Error: Unknown option '--nope'.\n\nUse 'culex sub --help' to see usage.\n"
    );
}
