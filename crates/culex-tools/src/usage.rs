//! `--help` texts. The synopsis lists the same flags as mosquitto's tools;
//! the descriptions are culex's own.

use crate::args::Tool;

/// The version line, printed by `--version` and at the top of the usage.
pub fn version_line(tool: Tool) -> String {
    format!(
        "{} version {} (culex, mosquitto 2.0 compatible)",
        tool.command(),
        env!("CARGO_PKG_VERSION")
    )
}

/// The full usage text for `tool`.
pub fn text(tool: Tool) -> String {
    let name = tool.command();
    let summary = match tool {
        Tool::Pub => "publishes one message (or a line-by-line stream) to a topic, then exits.",
        Tool::Sub => "subscribes to topics and prints the messages it receives.",
        Tool::Rr => {
            "sends a request and waits for the matching response (MQTT 5 request/response)."
        }
    };
    let synopsis = match tool {
        Tool::Pub => {
            "{[-h host] [--unix path] [-p port] [-u username] [-P password] -t topic | -L URL}\n\
             \x20   {-f file | -l | -n | -m message | -s}\n\
             \x20   [-c] [-k keepalive] [-q qos] [-r] [--repeat N] [--repeat-delay time] [-x session-expiry]\n"
        }
        Tool::Sub => {
            "{[-h host] [--unix path] [-p port] [-u username] [-P password] -t topic | -L URL [-t topic]}\n\
             \x20   [-c] [-k keepalive] [-q qos] [-x session-expiry-interval]\n\
             \x20   [-C msg_count] [-E] [-R] [--retained-only] [--remove-retained] [-T filter_out] [-U topic ...]\n\
             \x20   [-F format] [-W timeout_secs] [-N] [-v] [--pretty] [--retain-as-published]\n"
        }
        Tool::Rr => {
            "{[-h host] [--unix path] [-p port] [-u username] [-P password] -t topic | -L URL} -e response-topic\n\
             \x20   {-f file | -m message | -n | -s}\n\
             \x20   [-c] [-k keepalive] [-q qos] [-R] [-x session-expiry-interval]\n\
             \x20   [-F format] [-W timeout_secs] [-N] [-v] [--pretty]\n"
        }
    };
    let mut out = format!(
        "{name} {summary}\n{}\n\nUsage: {name} {synopsis}",
        version_line(tool)
    );
    out.push_str(
        "    [-A bind_address] [--nodelay] [-i id] [-I id_prefix] [-d] [--quiet] [-M max_inflight]\n\
         \x20   [-V mqttv5|mqttv311|mqttv31] [-D command identifier value]\n\
         \x20   [--will-topic topic [--will-payload payload] [--will-qos qos] [--will-retain]]\n\
         \x20   [{--cafile file | --capath dir} [--cert file --key file] [--insecure]\n\
         \x20    [--tls-version version] [--ciphers ciphers] [--tls-alpn protocol] [--tls-use-os-certs]]\n",
    );
    out.push_str(&format!("       {name} --help\n\n"));
    let mut options: Vec<(&str, &str)> = vec![
        ("-A", "local address to bind the connection to"),
        ("-c", "keep the session (clean session off); needs -i"),
        ("-d", "print debugging information"),
        (
            "-D",
            "add an MQTT 5 property: -D COMMAND NAME VALUE (switches to MQTT 5)",
        ),
        ("-h", "broker host (default localhost)"),
        ("-i", "client id (default: one chosen by the broker)"),
        ("-I", "client id prefix, followed by the process id"),
        ("-k", "keepalive in seconds, 5-65535 (default 60)"),
        ("-L", "mqtt(s)://[username[:password]@]host[:port]/topic"),
        ("-M", "maximum QoS 1/2 messages in flight (default 20)"),
        ("-p", "broker port (default 1883, or 8883 with TLS)"),
        ("-P", "password"),
        ("-q", "QoS 0, 1 or 2 (default 0)"),
        ("-u", "username"),
        (
            "-V",
            "protocol: mqttv5, mqttv311 or mqttv31 (default mqttv311; rr: mqttv5)",
        ),
        (
            "-x",
            "MQTT 5 session expiry interval in seconds; -1 or \u{221e} for never",
        ),
        ("--help", "print this text"),
        ("--nodelay", "disable Nagle's algorithm"),
        ("--quiet", "print no error messages"),
        ("--unix", "connect through this Unix socket instead of TCP"),
        (
            "--will-topic",
            "topic of the last will (sent by the broker if we vanish)",
        ),
        ("--will-payload", "payload of the last will (default empty)"),
        ("--will-qos", "QoS of the last will"),
        ("--will-retain", "retain the last will"),
        (
            "--cafile",
            "CA certificates (PEM) to verify the broker; turns TLS on",
        ),
        (
            "--capath",
            "directory of CA certificates (PEM); turns TLS on",
        ),
        ("--cert", "client certificate (PEM)"),
        ("--key", "client private key (PEM)"),
        (
            "--insecure",
            "do not check the broker's host name against its certificate",
        ),
        ("--tls-version", "tlsv1.3 or tlsv1.2"),
        ("--ciphers", "cipher suites to allow"),
    ];
    match tool {
        Tool::Pub => options.extend([
            ("-t", "topic to publish to"),
            ("-m", "message payload"),
            ("-f", "send a file's contents as the message"),
            ("-s", "send all of stdin as one message"),
            ("-l", "send each line of stdin as a message"),
            ("-n", "send an empty message"),
            ("-r", "retain the message"),
            ("--repeat", "publish the message N times"),
            ("--repeat-delay", "seconds to wait between repeats"),
        ]),
        Tool::Sub => options.extend([
            ("-t", "topic filter to subscribe to (repeatable)"),
            (
                "-T",
                "topic filter whose messages are not printed (repeatable)",
            ),
            ("-U", "topic filter to unsubscribe from (repeatable)"),
            ("-C", "exit after this many messages"),
            ("-E", "exit once the subscriptions are acknowledged"),
            (
                "-F",
                "output format (%t topic, %p payload, @H strftime fields, \\n escapes, ...)",
            ),
            ("-N", "no newline after each message"),
            ("-R", "skip retained messages"),
            ("-v", "print the topic before the payload"),
            ("-W", "exit with code 27 after this many seconds"),
            ("--pretty", "indented JSON for %j and %J"),
            (
                "--retained-only",
                "print retained messages only; exit at the first live one",
            ),
            ("--remove-retained", "clear the retained messages received"),
            (
                "--retain-as-published",
                "MQTT 5: keep the retain flag as published",
            ),
            (
                "--random-filter",
                "print this percentage of messages, chosen at random",
            ),
        ]),
        Tool::Rr => options.extend([
            ("-t", "topic to send the request to"),
            ("-e", "response topic to wait on"),
            ("-m", "request payload"),
            ("-f", "send a file's contents as the request"),
            ("-s", "send all of stdin as the request"),
            ("-n", "send an empty request"),
            ("-F", "output format, as culex sub's"),
            ("-N", "no newline after the response"),
            ("-R", "skip retained messages"),
            ("-v", "print the topic before the payload"),
            ("-W", "exit with code 27 after this many seconds"),
            ("--pretty", "indented JSON for %j and %J"),
        ]),
    }
    for (flag, about) in options {
        out.push_str(&format!(" {flag:<22} {about}\n"));
    }
    out.push_str("\nculex accepts mosquitto's flags, output and exit codes.\n");
    out
}
