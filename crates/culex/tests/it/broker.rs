//! `culex broker` as a real process: start-up with a mosquitto.conf, the
//! log lines mosquitto users rely on, signals (SIGTERM/SIGINT shut down
//! gracefully, SIGHUP reloads the password file), `pid_file`, local-only
//! mode, config errors, and Debian's stock mosquitto.conf.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use culex_testkit::{free_port, run_with_timeout, tool, wait_for_port, write_file, ChildGuard};

const WAIT: Duration = Duration::from_secs(10);

/// A `culex broker` process whose stdout and stderr lines are collected.
struct Culex {
    child: ChildGuard,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Culex {
    fn start(args: &[&str], dir: &Path) -> Culex {
        let mut child = Command::new(env!("CARGO_BIN_EXE_culex"))
            .arg("broker")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start culex broker");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>);
        let stderr = child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>);
        for stream in [stdout, stderr].into_iter().flatten() {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Culex {
            child: ChildGuard(child),
            lines,
        }
    }

    fn pid(&self) -> String {
        self.child.0.id().to_string()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name}");
    }

    /// Waits (bounded) for a log line containing `needle`.
    fn wait_line(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Some(l) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
            {
                return l.clone();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "no line with {needle:?} in {:#?}",
            self.lines.lock().unwrap()
        );
    }

    /// Waits (bounded) for the process to exit and returns its exit code.
    fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.0.try_wait().expect("try_wait") {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "culex broker did not exit; log: {:#?}",
            self.lines.lock().unwrap()
        );
    }
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&u16::try_from(s.len()).unwrap().to_be_bytes());
    out.extend_from_slice(s);
}

/// An MQTT 3.1.1 CONNECT (clean session, keep alive 60), built by hand.
fn connect_packet(
    client_id: &str,
    login: Option<(&str, &str)>,
    will: Option<(&str, &str)>,
) -> Vec<u8> {
    let mut flags = 0x02u8;
    let mut body = Vec::new();
    put_str(&mut body, b"MQTT");
    body.push(4);
    if will.is_some() {
        flags |= 0x04 | 0x20; // will, QoS 0, retained
    }
    if login.is_some() {
        flags |= 0x80 | 0x40;
    }
    body.push(flags);
    body.extend_from_slice(&[0, 60]);
    put_str(&mut body, client_id.as_bytes());
    if let Some((topic, message)) = will {
        put_str(&mut body, topic.as_bytes());
        put_str(&mut body, message.as_bytes());
    }
    if let Some((user, password)) = login {
        put_str(&mut body, user.as_bytes());
        put_str(&mut body, password.as_bytes());
    }
    let mut packet = vec![0x10];
    let mut len = body.len();
    loop {
        let byte = (len % 128) as u8;
        len /= 128;
        packet.push(if len > 0 { byte | 0x80 } else { byte });
        if len == 0 {
            break;
        }
    }
    packet.extend_from_slice(&body);
    packet
}

/// Connects and returns the stream and the CONNACK return code.
fn mqtt_connect(
    port: u16,
    client_id: &str,
    login: Option<(&str, &str)>,
    will: Option<(&str, &str)>,
) -> (TcpStream, u8) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&connect_packet(client_id, login, will))
        .unwrap();
    let mut connack = [0u8; 4];
    s.read_exact(&mut connack).expect("CONNACK");
    assert_eq!(&connack[..2], &[0x20, 2], "CONNACK header");
    (s, connack[3])
}

/// Whether the broker closed `s` (EOF) within the read timeout.
fn sees_close(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// PINGREQ answered by PINGRESP: the connection is up.
fn ping(s: &mut TcpStream) {
    s.write_all(&[0xC0, 0]).unwrap();
    let mut resp = [0u8; 2];
    s.read_exact(&mut resp).expect("PINGRESP");
    assert_eq!(resp, [0xD0, 0]);
}

fn conf(dir: &Path, port: u16, extra: &str) -> String {
    let path = write_file(
        dir,
        "culex.conf",
        &format!("listener {port} 127.0.0.1\nallow_anonymous true\n{extra}\n"),
    );
    path.display().to_string()
}

/// `culex broker -c FILE` logs mosquitto 2.0's start-up and shut-down lines
/// (with culex's name and version), listens where the file says, and writes
/// `pid_file` while it runs and removes it when it stops.
#[test]
fn starts_from_a_config_file_with_mosquittos_log_lines() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let pid_file = dir.path().join("culex.pid");
    let path = conf(
        dir.path(),
        port,
        &format!("pid_file {}", pid_file.display()),
    );
    let mut broker = Culex::start(&["-c", &path], dir.path());
    broker.wait_line("starting");
    broker.wait_line(&format!("Config loaded from {path}."));
    broker.wait_line(&format!("Opening ipv4 listen socket on port {port}."));
    broker.wait_line("running");
    wait_for_port(port, WAIT);
    let written = std::fs::read_to_string(&pid_file).expect("pid file written");
    assert_eq!(written.trim(), broker.pid());
    broker.signal("TERM");
    assert_eq!(broker.wait_exit(), Some(0));
    broker.wait_line("terminating");
    assert!(!pid_file.exists(), "pid file removed at exit");
}

/// SIGTERM and SIGINT shut the broker down gracefully: exit code 0, and a
/// connected client sees its connection closed.
#[test]
fn sigterm_and_sigint_shut_down_gracefully() {
    for signal in ["TERM", "INT"] {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let path = conf(dir.path(), port, "");
        let mut broker = Culex::start(&["-c", &path], dir.path());
        wait_for_port(port, WAIT);
        let (mut client, rc) = mqtt_connect(port, "stays", None, None);
        assert_eq!(rc, 0);
        ping(&mut client);
        broker.signal(signal);
        assert!(
            sees_close(&mut client),
            "SIG{signal}: client sees the close"
        );
        assert_eq!(broker.wait_exit(), Some(0), "SIG{signal}: exit code");
    }
}

/// SIGHUP reloads the password file: a user added after start can log in,
/// and connections made before stay up.
#[test]
fn sighup_reloads_the_password_file() {
    let passwd = tool("mosquitto_passwd");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let pw = dir.path().join("passwords");
    let add = |user: &str, password: &str| {
        let mut cmd = Command::new(&passwd);
        if !pw.exists() {
            cmd.arg("-c");
        }
        let out = run_with_timeout(
            cmd.args(["-b", &pw.display().to_string(), user, password]),
            WAIT,
        );
        assert!(out.status.success(), "mosquitto_passwd: {out:?}");
    };
    add("first", "one");
    let path = write_file(
        dir.path(),
        "culex.conf",
        &format!(
            "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\n",
            pw.display()
        ),
    );
    let broker = Culex::start(&["-c", &path.display().to_string()], dir.path());
    wait_for_port(port, WAIT);
    let (mut first, rc) = mqtt_connect(port, "first", Some(("first", "one")), None);
    assert_eq!(rc, 0);
    let (_, rc) = mqtt_connect(port, "second", Some(("second", "two")), None);
    assert_eq!(rc, 5, "unknown user refused before the reload");

    add("second", "two");
    broker.signal("HUP");
    broker.wait_line("Reloading config.");
    let deadline = Instant::now() + WAIT;
    let mut rc = 5;
    while rc != 0 && Instant::now() < deadline {
        rc = mqtt_connect(port, "second", Some(("second", "two")), None).1;
        if rc != 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert_eq!(rc, 0, "the user added to the file logs in after SIGHUP");
    ping(&mut first);
}

/// SIGHUP also re-reads the TLS certificate: a renewed one is taken, a
/// broken one is refused with mosquitto's error line while the one in use
/// stays, and TLS clients go on connecting throughout.
#[test]
fn sighup_reloads_the_certificate_and_keeps_it_when_broken() {
    let dir = tempfile::tempdir().unwrap();
    let pki = culex_testkit::pki::Pki::new();
    let files = pki.write_to(dir.path());
    let port = free_port();
    let path = write_file(
        dir.path(),
        "culex.conf",
        &format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\ncertfile {}\nkeyfile {}\n",
            files.server.0.display(),
            files.server.1.display()
        ),
    );
    let broker = Culex::start(&["-c", &path.display().to_string()], dir.path());
    wait_for_port(port, WAIT);
    let publish = |message: &str| {
        let out = run_with_timeout(
            Command::new(tool("mosquitto_pub")).args([
                "-h",
                "localhost",
                "-p",
                &port.to_string(),
                "--cafile",
                &files.ca.display().to_string(),
                "-t",
                "tls/reload",
                "-m",
                message,
            ]),
            WAIT,
        );
        assert!(out.status.success(), "{message}: {out:?}");
    };
    publish("before");
    let renewed = pki.new_server("localhost");
    std::fs::write(&files.server.0, &renewed.cert).unwrap();
    std::fs::write(&files.server.1, &renewed.key).unwrap();
    broker.signal("HUP");
    broker.wait_line("Reloading config.");
    publish("renewed");
    std::fs::write(&files.server.0, "not a certificate\n").unwrap();
    broker.signal("HUP");
    let line = broker.wait_line("Error when reloading certificate");
    assert!(
        line.contains(&files.server.0.display().to_string())
            && line.contains("The previous certificate stays in use."),
        "{line}"
    );
    publish("after a broken reload");
}

/// `culex broker -p PORT` without a config runs mosquitto 2's local-only
/// mode and says so with mosquitto's lines.
#[test]
fn port_without_config_runs_local_only_mode() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut broker = Culex::start(&["-p", &port.to_string()], dir.path());
    broker.wait_line(
        "Starting in local only mode. Connections will only be possible from clients running on this machine.",
    );
    broker
        .wait_line("Create a configuration file which defines a listener to allow remote access.");
    broker.wait_line(
        "For more details see https://mosquitto.org/documentation/authentication-methods/",
    );
    wait_for_port(port, WAIT);
    let (_client, rc) = mqtt_connect(port, "local", None, None);
    assert_eq!(rc, 0, "anonymous clients allowed in local-only mode");
    broker.signal("TERM");
    assert_eq!(broker.wait_exit(), Some(0));
}

/// An unknown option stops start-up with a non-zero exit, naming the file,
/// the line and the option.
#[test]
fn unknown_option_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let path = write_file(
        dir.path(),
        "bad.conf",
        &format!("listener {port} 127.0.0.1\n# a comment\nno_such_option 1\n"),
    );
    let out = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_culex"))
            .args(["broker", "-c", &path.display().to_string()])
            .current_dir(dir.path()),
        WAIT,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:3", path.display())) && stderr.contains("no_such_option"),
        "{stderr}"
    );
}

/// Debian's stock /etc/mosquitto/mosquitto.conf, with its paths moved into
/// a temporary directory (pid file, persistence location, conf.d) and
/// `log_dest stdout` for its log file, starts; the listener comes from a
/// conf.d file, as Debian users add it.
#[test]
fn debian_stock_config_starts() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = dir.path();
    std::fs::create_dir(base.join("conf.d")).unwrap();
    std::fs::create_dir(base.join("data")).unwrap();
    write_file(
        &base.join("conf.d"),
        "local.conf",
        &format!("listener {port} 127.0.0.1\nallow_anonymous true\n"),
    );
    // The stock file as Debian ships it (mosquitto 2.0 package).
    let stock = "# Place your local configuration in /etc/mosquitto/conf.d/\n\
        #\n\
        # A full description of the configuration file is at\n\
        # /usr/share/doc/mosquitto/examples/mosquitto.conf.example\n\
        \n\
        pid_file /run/mosquitto/mosquitto.pid\n\
        \n\
        persistence true\n\
        persistence_location /var/lib/mosquitto/\n\
        \n\
        log_dest file /var/log/mosquitto/mosquitto.log\n\
        \n\
        include_dir /etc/mosquitto/conf.d\n";
    let moved = stock
        .replace(
            "/run/mosquitto/mosquitto.pid",
            &base.join("mosquitto.pid").display().to_string(),
        )
        .replace(
            "/var/lib/mosquitto/",
            &format!("{}/", base.join("data").display()),
        )
        .replace(
            "log_dest file /var/log/mosquitto/mosquitto.log",
            "log_dest stdout",
        )
        .replace(
            "/etc/mosquitto/conf.d",
            &base.join("conf.d").display().to_string(),
        );
    let path = write_file(base, "mosquitto.conf", &moved);
    let mut broker = Culex::start(&["-c", &path.display().to_string()], base);
    broker.wait_line("running");
    wait_for_port(port, WAIT);
    let (_client, rc) = mqtt_connect(port, "debian", None, None);
    assert_eq!(rc, 0);
    assert!(base.join("mosquitto.pid").exists());
    broker.signal("TERM");
    assert_eq!(broker.wait_exit(), Some(0));
}

/// On SIGTERM the wills of connected clients are published, as mosquitto
/// 2.0 does at shutdown (`src/mosquitto.c`: `context__send_will` for every
/// client after the main loop ends): with `persistence true`, a retained
/// will is there after a restart.
#[test]
fn sigterm_publishes_the_wills_of_connected_clients() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let path = conf(
        dir.path(),
        port,
        &format!(
            "persistence true\npersistence_location {}/",
            dir.path().display()
        ),
    );
    let mut broker = Culex::start(&["-c", &path], dir.path());
    wait_for_port(port, WAIT);
    let (_holder, rc) = mqtt_connect(port, "holder", None, Some(("will/holder", "offline")));
    assert_eq!(rc, 0);
    broker.signal("TERM");
    assert_eq!(broker.wait_exit(), Some(0));

    let mut broker = Culex::start(&["-c", &path], dir.path());
    wait_for_port(port, WAIT);
    let out = run_with_timeout(
        Command::new(tool("mosquitto_sub")).args([
            "-p",
            &port.to_string(),
            "-t",
            "will/holder",
            "-C",
            "1",
            "-W",
            "5",
        ]),
        WAIT,
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "offline\n", "{out:?}");
    broker.signal("TERM");
    assert_eq!(broker.wait_exit(), Some(0));
}
