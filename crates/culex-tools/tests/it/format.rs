//! The output formatter against Debian's mosquitto_sub: the same retained
//! messages, received by mosquitto_sub from a real mosquitto broker, must
//! print byte for byte as culex's formatter prints them (time fields are
//! compared by shape: every run of digits counts as one digit).

use culex_testkit::{run_with_timeout, tool, Mosquitto};
use culex_tools::format::{
    self, MessageProperties, MessageProperty, OutputOptions, Received, Timestamp,
};
use std::process::Command;
use std::time::Duration;

struct Sample {
    topic: &'static str,
    payload: &'static [u8],
    properties: Vec<MessageProperty>,
}

fn samples() -> Vec<Sample> {
    vec![
        Sample {
            topic: "fmt/text",
            payload: b"hello world",
            properties: vec![],
        },
        Sample {
            topic: "fmt/bin",
            payload: b"\x00\x01\xfe\xff\"\\q\n",
            properties: vec![],
        },
        Sample {
            topic: "fmt/json",
            payload: br#"{"a": [1, 2.50, 1e3, "x\u00e9"], "b": {}, "c": null}"#,
            properties: vec![],
        },
        Sample {
            topic: "fmt/props",
            payload: b"with properties",
            // The order in which mosquitto forwards them.
            properties: vec![
                MessageProperty::User("k1".into(), "v1".into()),
                MessageProperty::User("k2".into(), "v2".into()),
                MessageProperty::ContentType("text/plain".into()),
                MessageProperty::CorrelationData(b"corr".to_vec()),
                MessageProperty::ResponseTopic("reply/here".into()),
                MessageProperty::PayloadFormat(1),
            ],
        },
    ]
}

/// Extra mosquitto_sub flags for each case; the last element of each is
/// whether time fields are involved.
const CASES: &[(&[&str], bool)] = &[
    (&[], false),
    (&["-N"], false),
    (&["-v"], false),
    (&["-v", "-N"], false),
    (&["-F", "%t"], false),
    (&["-F", "%p"], false),
    (&["-F", "%l|%m|%q|%r"], false),
    (&["-F", "%x"], false),
    (&["-F", "%X"], false),
    (&["-F", "100%% %t %p"], false),
    (&["-F", "[%10t][%-10t][%.3t][%8.2t][%-8.2t]"], false),
    (&["-F", "[%20p][%-20p][%020p][%3p][%-p]"], false),
    (&["-F", "[%10x][%-10X][%4x][%-x]"], false),
    (&["-F", "[%5l][%-5l][%05l][%05m][%-3q]"], false),
    (&["-F", "%C|%R|%D|%F|%P|%S|%A|%E"], false),
    (&["-F", "[%12C][%-12R][%5F][%05S][%3A][%-4E]"], false),
    (&["-F", "\\t%t\\n%p\\\\\\e\\a\\r\\v\\0end"], false),
    (&["-F", "@@ %% \\\\"], false),
    (&["-F", "%j"], true),
    (&["-F", "%j", "--pretty"], true),
    (&["-F", "%J"], true),
    (&["-F", "%J", "--pretty"], true),
    (&["-F", "%I"], true),
    (&["-F", "[%30I][%-30I][%.10I]"], true),
    (&["-F", "%U"], true),
    (
        &[
            "-F",
            "@Y-@m-@d @H:@M:@S.@N @z @s @j @a @b @A @B @e @p @y @C @u @w @%",
        ],
        true,
    ),
    (&["-F", "@F @T @D @R @c @x @X @Q @E @+"], true),
    (&["-N", "-F", "%t=%p;"], false),
];

fn shape(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    let mut in_digits = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('9');
            }
            in_digits = true;
        } else {
            in_digits = false;
            out.push(c);
        }
    }
    out
}

fn ours(flags: &[&str], sample: &Sample) -> (Vec<u8>, Vec<String>) {
    let mut options = OutputOptions {
        eol: true,
        ..OutputOptions::default()
    };
    let mut i = 0;
    while i < flags.len() {
        match flags[i] {
            "-N" => options.eol = false,
            "-v" => options.verbose = true,
            "--pretty" => options.pretty = true,
            "-F" => {
                i += 1;
                let format = flags[i].as_bytes().to_vec();
                format::check_format(&format).expect("valid format");
                options.format = Some(format);
            }
            other => panic!("unexpected flag {other}"),
        }
        i += 1;
    }
    let properties = MessageProperties {
        list: sample.properties.clone(),
    };
    let message = Received {
        topic: sample.topic,
        payload: sample.payload,
        qos: 1,
        retain: true,
        mid: 1,
        properties: &properties,
    };
    let mut out = Vec::new();
    let errors = format::render(&options, &message, &Timestamp::now(), &mut out);
    (out, errors)
}

#[test]
fn output_matches_mosquitto_sub_byte_for_byte() {
    let broker = Mosquitto::start("");
    let port = broker.port.to_string();
    for sample in samples() {
        let payload_file = broker.path("payload");
        std::fs::write(&payload_file, sample.payload).expect("write payload");
        let mut publish = Command::new(tool("mosquitto_pub"));
        publish
            .args([
                "-p",
                &port,
                "-V",
                "5",
                "-q",
                "1",
                "-r",
                "-t",
                sample.topic,
                "-f",
            ])
            .arg(&payload_file);
        for property in &sample.properties {
            let (name, value) = match property {
                MessageProperty::ContentType(v) => ("content-type", v.clone()),
                MessageProperty::ResponseTopic(v) => ("response-topic", v.clone()),
                MessageProperty::CorrelationData(v) => {
                    ("correlation-data", String::from_utf8_lossy(v).into_owned())
                }
                MessageProperty::PayloadFormat(v) => ("payload-format-indicator", v.to_string()),
                MessageProperty::User(k, v) => {
                    publish.args(["-D", "publish", "user-property", k, v]);
                    continue;
                }
                other => panic!("not used here: {other:?}"),
            };
            publish.args(["-D", "publish", name, &value]);
        }
        let published = run_with_timeout(&mut publish, Duration::from_secs(10));
        assert!(
            published.status.success(),
            "mosquitto_pub failed: {published:?}"
        );
    }
    let mut mismatches = Vec::new();
    let mut compared = 0;
    for (flags, timed) in CASES {
        for sample in samples() {
            let mut subscribe = Command::new(tool("mosquitto_sub"));
            subscribe
                .args([
                    "-p",
                    &port,
                    "-V",
                    "5",
                    "-q",
                    "1",
                    "-C",
                    "1",
                    "-W",
                    "5",
                    "-t",
                    sample.topic,
                ])
                .args(*flags);
            let theirs = run_with_timeout(&mut subscribe, Duration::from_secs(10));
            assert!(
                !theirs.stdout.is_empty(),
                "mosquitto_sub printed nothing for {flags:?}: {theirs:?}"
            );
            let (mine, errors) = ours(flags, &sample);
            let their_errors = String::from_utf8_lossy(&theirs.stderr).into_owned();
            let (a, b) = if *timed {
                (shape(&mine), shape(&theirs.stdout))
            } else {
                (
                    String::from_utf8_lossy(&mine).into_owned(),
                    String::from_utf8_lossy(&theirs.stdout).into_owned(),
                )
            };
            compared += 1;
            if a != b || errors.concat() != their_errors {
                mismatches.push(format!(
                    "{flags:?} on {}:\n  culex     {a:?} {errors:?}\n  mosquitto {b:?} {their_errors:?}",
                    sample.topic
                ));
            }
        }
    }
    assert!(compared >= CASES.len() * 4, "every case was compared");
    assert!(
        mismatches.is_empty(),
        "{} differences:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
