//! Table tests for the mosquitto.conf reader.

use super::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("mosquitto.conf"), &[])
}

fn addrs(listener: &Listener) -> Vec<String> {
    listener.addrs.iter().map(|a| a.to_string()).collect()
}

/// Debian's /etc/mosquitto/mosquitto.conf as shipped (mosquitto 2.0.11-1).
const DEBIAN_STOCK: &str = "\
# Place your local configuration in /etc/mosquitto/conf.d/
#
# A full description of the configuration file is at
# /usr/share/doc/mosquitto/examples/mosquitto.conf.example

pid_file /run/mosquitto/mosquitto.pid

persistence true
persistence_location /var/lib/mosquitto/

log_dest file /var/log/mosquitto/mosquitto.log

include_dir /etc/mosquitto/conf.d
";

#[test]
fn debian_stock_config_loads() {
    let config = parse(DEBIAN_STOCK).unwrap();
    assert!(config.local_only, "the stock file defines no listener");
    assert!(config.security.allow_anonymous);
    assert_eq!(
        config.pid_file,
        Some(PathBuf::from("/run/mosquitto/mosquitto.pid"))
    );
    assert!(config.persistence.enabled);
    assert_eq!(
        config.persistence.location,
        Some(PathBuf::from("/var/lib/mosquitto/"))
    );
    assert_eq!(
        config.log.dest,
        [LogDest::File(PathBuf::from(
            "/var/log/mosquitto/mosquitto.log"
        ))]
    );
    // Persistence is real now: no warning that state is lost on restart.
    assert!(config.persistence.enabled);
    assert!(
        !config.warnings.iter().any(|w| w.contains("persistence")),
        "{:?}",
        config.warnings
    );
}

#[test]
fn empty_file_is_local_only_mode() {
    let config = parse("# nothing\n\n").unwrap();
    assert!(config.local_only);
    assert!(config.security.allow_anonymous);
    assert_eq!(config.listeners.len(), 1);
    assert_eq!(config.listeners[0].port, 1883);
    assert_eq!(
        addrs(&config.listeners[0]),
        ["127.0.0.1:1883", "[::1]:1883"]
    );
    // Defaults of mosquitto 2.0.
    assert_eq!(config.limits.max_inflight_messages, Some(20));
    assert_eq!(config.limits.max_queued_messages, Some(1000));
    assert_eq!(config.limits.max_keepalive, 65535);
    assert_eq!(config.limits.max_topic_levels, 200);
    assert_eq!(config.limits.auth_backoff_max, Duration::from_secs(10));
    assert_eq!(config.limits.max_qos, culex_codec::QoS::ExactlyOnce);
    assert!(config.limits.retain_available);
    assert_eq!(config.security.auto_id_prefix, "auto-");
    assert!(config.security.allow_zero_length_clientid);
    assert_eq!(config.sys_interval, Duration::from_secs(10));
    assert_eq!(config.log.dest, [LogDest::Stderr]);
    assert_eq!(config.log.types, DEFAULT_LOG_TYPES);
    assert!(config.log.connection_messages && config.log.timestamp);
    assert!(!config.presence_events);
    assert!(config.warnings.is_empty());
}

#[test]
fn p_ports_apply_only_in_local_only_mode() {
    let local = Config::parse("", Path::new("m.conf"), &[1884, 1885]).unwrap();
    assert_eq!(
        local.listeners.iter().map(|l| l.port).collect::<Vec<_>>(),
        [1884, 1885]
    );
    let configured = Config::parse("listener 1886\n", Path::new("m.conf"), &[1884]).unwrap();
    assert_eq!(configured.listeners.len(), 1);
    assert_eq!(configured.listeners[0].port, 1886);
    assert!(configured
        .warnings
        .iter()
        .any(|w| w.contains("-p is ignored")));
}

#[test]
fn listeners_and_anonymous_default() {
    let config = parse("listener 1883\nlistener 0 127.0.0.1\nlistener 8883 ::1\n").unwrap();
    assert!(!config.local_only);
    // mosquitto 2: a configured listener means no anonymous clients by default.
    assert!(!config.security.allow_anonymous);
    assert_eq!(config.listeners.len(), 3);
    assert_eq!(addrs(&config.listeners[0]), ["0.0.0.0:1883", "[::]:1883"]);
    assert_eq!(addrs(&config.listeners[1]), ["127.0.0.1:0"]);
    assert_eq!(config.listeners[1].port, 0);
    assert_eq!(addrs(&config.listeners[2]), ["[::1]:8883"]);
    assert!(config.listeners.iter().all(|l| l.security.is_none()));

    let named = parse("listener 1883 localhost\n").unwrap();
    let ips: Vec<IpAddr> = named.listeners[0].addrs.iter().map(|a| a.ip()).collect();
    assert!(ips.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)), "{ips:?}");
    assert!(ips.iter().all(|ip| ip.is_loopback()));
}

#[test]
fn port_and_bind_address_make_the_default_listener() {
    let config = parse("port 1999\n").unwrap();
    assert!(!config.local_only);
    assert_eq!(addrs(&config.listeners[0]), ["0.0.0.0:1999", "[::]:1999"]);
    assert!(config
        .warnings
        .iter()
        .any(|w| w.starts_with("mosquitto.conf:1: port: ") && w.contains("deprecated")));
    let bound = parse("bind_address 127.0.0.1\n").unwrap();
    assert_eq!(addrs(&bound.listeners[0]), ["127.0.0.1:1883"]);
    let both = parse("bind_address ::1\nport 1777\nlistener 1778 127.0.0.1\n").unwrap();
    assert_eq!(
        both.listeners.iter().map(addrs).collect::<Vec<_>>(),
        [vec!["[::1]:1777"], vec!["127.0.0.1:1778"]]
    );
}

#[test]
fn socket_domain_keeps_one_family() {
    let config =
        parse("listener 1883\nsocket_domain ipv4\nlistener 1884\nsocket_domain ipv6\n").unwrap();
    assert_eq!(addrs(&config.listeners[0]), ["0.0.0.0:1883"]);
    assert_eq!(addrs(&config.listeners[1]), ["[::]:1884"]);
    let err = parse("listener 1883 127.0.0.1\nsocket_domain ipv6\n").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("mosquitto.conf:2: socket_domain:"),
        "{err}"
    );
}

#[test]
fn security_and_limits_are_read() {
    let config = parse(
        "listener 1883\n\
         allow_anonymous true\n\
         password_file /etc/mosquitto/pw file\n\
         acl_file acl\n\
         allow_zero_length_clientid false\n\
         auto_id_prefix dev-\n\
         max_inflight_messages 0\n\
         max_queued_messages 5\n\
         max_queued_bytes 1000\n\
         message_size_limit 1024\n\
         max_packet_size 2048\n\
         max_keepalive 120\n\
         max_topic_levels 16\n\
         auth_backoff_max 0\n\
         max_qos 1\n\
         retain_available false\n\
         upgrade_outgoing_qos true\n\
         persistent_client_expiration 2h\n\
         sys_interval 0\n\
         presence_events true\n\
         connection_messages false\n\
         log_timestamp false\n\
         log_timestamp_format %Y-%m-%dT%H:%M:%S %z\n\
         log_dest stdout\n\
         log_dest file /tmp/x y.log\n\
         log_type error\n\
         log_type subscribe\n\
         pid_file /run/c.pid\n",
    )
    .unwrap();
    let s = &config.security;
    assert!(s.allow_anonymous);
    assert_eq!(
        s.password_file,
        Some(PathBuf::from("/etc/mosquitto/pw file"))
    );
    assert_eq!(s.acl_file, Some(PathBuf::from("acl")));
    assert!(!s.allow_zero_length_clientid);
    assert_eq!(s.auto_id_prefix, "dev-");
    let l = &config.limits;
    assert_eq!(l.max_inflight_messages, None);
    assert_eq!(l.max_queued_messages, Some(5));
    assert_eq!(l.max_queued_bytes, Some(1000));
    assert_eq!(l.message_size_limit, Some(1024));
    assert_eq!(l.max_packet_size, Some(2048));
    assert_eq!(l.max_keepalive, 120);
    assert_eq!(l.max_topic_levels, 16);
    assert_eq!(l.auth_backoff_max, Duration::ZERO);
    assert_eq!(l.max_qos, culex_codec::QoS::AtLeastOnce);
    assert!(!l.retain_available);
    assert!(l.upgrade_outgoing_qos);
    assert_eq!(
        config.persistent_client_expiration,
        Some(Duration::from_secs(7200))
    );
    assert_eq!(config.sys_interval, Duration::ZERO);
    assert!(config.presence_events);
    assert!(!config.log.connection_messages && !config.log.timestamp);
    assert_eq!(
        config.log.timestamp_format.as_deref(),
        Some("%Y-%m-%dT%H:%M:%S %z")
    );
    assert_eq!(
        config.log.dest,
        [
            LogDest::Stdout,
            LogDest::File(PathBuf::from("/tmp/x y.log"))
        ]
    );
    assert_eq!(config.log.types, ["error", "subscribe"]);
    assert_eq!(config.pid_file, Some(PathBuf::from("/run/c.pid")));
}

#[test]
fn max_connections_global_and_per_listener() {
    let config = parse("max_connections 10\nport 1883\nlistener 1884\nmax_connections -1\nlistener 1885\nmax_connections 3\n")
        .unwrap();
    assert_eq!(config.limits.max_connections, Some(10));
    let per: Vec<Option<usize>> = config.listeners.iter().map(|l| l.max_connections).collect();
    assert_eq!(per, [Some(10), None, Some(3)]);
}

#[test]
fn per_listener_settings_give_each_listener_its_security() {
    let config = parse(
        "per_listener_settings true\n\
         listener 1883 127.0.0.1\n\
         allow_anonymous true\n\
         listener 1884 127.0.0.1\n\
         password_file pw\n\
         mount_point tenant/\n",
    )
    .unwrap();
    assert!(config.per_listener_settings);
    let first = config.listeners[0].security.as_ref().unwrap();
    let second = config.listeners[1].security.as_ref().unwrap();
    assert!(first.allow_anonymous && first.password_file.is_none());
    assert!(!second.allow_anonymous);
    assert_eq!(second.password_file, Some(PathBuf::from("pw")));
    assert_eq!(config.listeners[1].mount_point.as_deref(), Some("tenant/"));
    assert_eq!(
        config.security_for(&config.listeners[1]).password_file,
        Some(PathBuf::from("pw"))
    );
    assert_eq!(config.listeners[0].mount_point, None);

    // Without per_listener_settings, a later allow_anonymous is global.
    let global = parse("listener 1883\nlistener 1884\nallow_anonymous true\n").unwrap();
    assert!(global.security.allow_anonymous);
    assert!(global.listeners.iter().all(|l| l.security.is_none()));
    assert!(global.security_for(&global.listeners[0]).allow_anonymous);
}

#[test]
fn trailing_comments_and_odd_spacing_are_tolerated() {
    let config =
        parse("  listener 1883 # plain MQTT\n\tallow_anonymous\ttrue # for now\nmax_qos 1   \n")
            .unwrap();
    assert_eq!(addrs(&config.listeners[0]), ["0.0.0.0:1883", "[::]:1883"]);
    assert!(config.security.allow_anonymous);
    assert_eq!(config.limits.max_qos, culex_codec::QoS::AtLeastOnce);
    // A '#' inside a value is not a comment.
    let path = parse("password_file /etc/mosquitto/pw#1\n").unwrap();
    assert_eq!(
        path.security.password_file,
        Some(PathBuf::from("/etc/mosquitto/pw#1"))
    );
}

#[test]
fn persistent_client_expiration_units() {
    let table = [
        ("1h", 3600),
        ("2h", 7200),
        ("1d", 86_400),
        ("14d", 14 * 86_400),
        ("1w", 604_800),
        ("1m", 30 * 86_400),
        ("1y", 365 * 86_400),
    ];
    for (value, seconds) in table {
        let config = parse(&format!("persistent_client_expiration {value}\n")).unwrap();
        assert_eq!(
            config.persistent_client_expiration,
            Some(Duration::from_secs(seconds)),
            "{value}"
        );
    }
    // A unit that is not ASCII must be refused, not split mid-character.
    for bad in [
        "1",
        "d",
        "1s",
        "-1d",
        "0d",
        "x1d",
        "99999999999999999y",
        "1é",
        "é",
    ] {
        assert!(
            parse(&format!("persistent_client_expiration {bad}\n")).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn harmless_options_are_accepted_with_warnings() {
    let config = parse(
        "listener 1883\nuser mosquitto\nset_tcp_nodelay true\ncheck_retain_source true\nqueue_qos0_messages false\n\
         memory_limit 0\nwebsockets_log_level 0\nmax_keepalive 60\nprotocol mqtt\nautosave_interval 1800\n\
         autosave_on_changes false\npersistence_file m.db\nlog_facility 5\n",
    )
    .unwrap();
    assert_eq!(config.persistence.autosave_interval, Some(1800));
    assert_eq!(config.persistence.file.as_deref(), Some("m.db"));
    for option in [
        "user",
        "check_retain_source",
        "queue_qos0_messages",
        "memory_limit",
        "websockets_log_level",
    ] {
        assert!(
            config
                .warnings
                .iter()
                .any(|w| w.contains(&format!(": {option}: "))),
            "{option}: {:?}",
            config.warnings
        );
    }
    assert!(!config
        .warnings
        .iter()
        .any(|w| w.contains("set_tcp_nodelay")));
    assert!(!config.warnings.iter().any(|w| w.contains("persistence")));
}

#[test]
fn errors_name_file_line_and_option() {
    let table: &[(&str, &str)] = &[
        ("listener 1883\nfoo bar\n", "mosquitto.conf:2: unknown option 'foo'"),
        ("\n\n\nallow_anonymous maybe\n", "mosquitto.conf:4: allow_anonymous: invalid value 'maybe', expected true or false"),
        ("max_inflight_messages abc\n", "mosquitto.conf:1: max_inflight_messages: invalid value 'abc', expected a number in range"),
        ("max_qos 3\n", "mosquitto.conf:1: max_qos: invalid value '3', expected 0, 1 or 2"),
        ("listener 70000\n", "mosquitto.conf:1: listener: invalid value '70000', expected a number in range"),
        ("listener\n", "mosquitto.conf:1: listener: missing value"),
        ("listener 1883 127.0.0.1 extra\n", "mosquitto.conf:1: listener: too many values in '1883 127.0.0.1 extra'"),
        ("max_packet_size 10\n", "mosquitto.conf:1: max_packet_size: must be at least 20 bytes"),
        ("max_topic_levels 0\n", "mosquitto.conf:1: max_topic_levels: must be at least 1"),
        ("auth_backoff_max 16\n", "mosquitto.conf:1: auth_backoff_max: at most 15 seconds"),
        ("message_size_limit 268435456\n", "mosquitto.conf:1: message_size_limit: 268435456 is above the MQTT maximum of 268435455"),
        ("password_file\n", "mosquitto.conf:1: password_file: missing value"),
        ("password_file a\npassword_file b\n", "mosquitto.conf:2: password_file: duplicate value in configuration"),
        ("log_dest carrier-pigeon\n", "mosquitto.conf:1: log_dest: invalid value 'carrier-pigeon', expected stdout, stderr, syslog, topic, file or none"),
        ("log_dest file\n", "mosquitto.conf:1: log_dest: 'file' needs a file name"),
        ("log_type verbose\n", "mosquitto.conf:1: log_type: invalid value 'verbose', expected debug, error, warning, notice, information, subscribe, unsubscribe, websockets, none or all"),
        ("listener 1883\nallow_anonymous true\nper_listener_settings true\n", "mosquitto.conf:3: per_listener_settings: must be set before any listener or security option"),
        ("sys_interval -1\n", "mosquitto.conf:1: sys_interval: invalid value '-1', expected a number in range"),
        ("mount_point a/#\n", "mosquitto.conf:1: mount_point: invalid mount point 'a/#'"),
        ("listener 1883 no-such-host.invalid\n", "mosquitto.conf:1: listener: cannot resolve 'no-such-host.invalid'"),
        // TLS files are read at their line.
        ("listener 8883\ncafile /etc/ca.pem\n", "mosquitto.conf:2: cafile: cannot read /etc/ca.pem: "),
        ("certfile c\n", "mosquitto.conf:1: certfile: cannot read c: "),
        ("keyfile k\n", "mosquitto.conf:1: keyfile: cannot read k: "),
        // Later features are refused by name.
        ("connection cloud\naddress 1.2.3.4\n", "mosquitto.conf:1: connection: bridge 'cloud' has no topic"),
        ("bridge_protocol_version mqttv311\n", "mosquitto.conf:1: bridge_protocol_version: a bridge option before any 'connection'"),
        ("plugin /usr/lib/x.so\n", "mosquitto.conf:1: option 'plugin' is not supported by culex yet (plugins)"),
        ("auth_plugin /usr/lib/x.so\n", "mosquitto.conf:1: option 'auth_plugin' is not supported by culex yet (plugins)"),
        ("auth_opt_db x\n", "mosquitto.conf:1: option 'auth_opt_db' is not supported by culex yet (plugins)"),
        ("listener 1883 /tmp/mqtt.sock\n", "mosquitto.conf:1: listener: a unix socket listener needs port 0"),
    ];
    for (text, message) in table {
        match parse(text) {
            Ok(_) => panic!("{text:?} was accepted"),
            Err(err) => {
                let shown = err.to_string();
                assert!(
                    shown.starts_with(message),
                    "{text:?}\n got: {shown}\nwant: {message}"
                );
            }
        }
    }
}

#[test]
fn include_dir_reads_conf_files_in_mosquitto_order() {
    let dir = tempfile::tempdir().unwrap();
    let conf_d = dir.path().join("conf.d");
    std::fs::create_dir(&conf_d).unwrap();
    // The man page's example order: 00, 01, A, a, B, b.
    for (port, name) in [
        (10_004, "a.conf"),
        (10_006, "b.conf"),
        (10_002, "01.conf"),
        (10_003, "A.conf"),
        (10_005, "B.conf"),
        (10_001, "00.conf"),
    ] {
        std::fs::write(conf_d.join(name), format!("listener {port} 127.0.0.1\n")).unwrap();
    }
    std::fs::write(conf_d.join("notes.txt"), "not a config\n").unwrap();
    std::fs::write(conf_d.join("x.conf.disabled"), "garbage\n").unwrap();
    let main = dir.path().join("mosquitto.conf");
    std::fs::write(
        &main,
        format!("allow_anonymous true\ninclude_dir {}\n", conf_d.display()),
    )
    .unwrap();
    let config = Config::from_file(&main, &[]).unwrap();
    let ports: Vec<u16> = config.listeners.iter().map(|l| l.port).collect();
    assert_eq!(ports, [10_001, 10_002, 10_003, 10_004, 10_005, 10_006]);
    assert_eq!(config.source, Some(main.clone()));

    // An error in an included file names that file and its line.
    std::fs::write(conf_d.join("c.conf"), "# comment\nbogus_option 1\n").unwrap();
    let err = Config::from_file(&main, &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:2: unknown option 'bogus_option'",
            conf_d.join("c.conf").display()
        )
    );

    // include_dir only counts in the main file.
    std::fs::write(
        conf_d.join("c.conf"),
        format!("include_dir {}\n", dir.path().display()),
    )
    .unwrap();
    let err = Config::from_file(&main, &[]).unwrap_err();
    assert!(
        err.to_string()
            .contains("c.conf:1: include_dir: only allowed in the main configuration file"),
        "{err}"
    );

    let missing = parse("include_dir /nonexistent/conf.d\n").unwrap_err();
    assert!(
        missing
            .to_string()
            .starts_with("mosquitto.conf:1: include_dir: unable to open directory"),
        "{missing}"
    );
}

#[test]
fn missing_file_is_an_io_error() {
    let err = Config::from_file(Path::new("/nonexistent/m.conf"), &[]).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }));
    assert!(
        err.to_string()
            .starts_with("unable to open configuration file /nonexistent/m.conf:"),
        "{err}"
    );
}

#[test]
fn local_only_listeners_bind_loopback_of_both_families() {
    let config = Config::local_only(&[]);
    let ips: Vec<IpAddr> = config.listeners[0].addrs.iter().map(|a| a.ip()).collect();
    assert_eq!(
        ips,
        [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        ]
    );
    assert_eq!(LOCAL_ONLY_MESSAGES[0], "Starting in local only mode. Connections will only be possible from clients running on this machine.");
}

/// Debian's annotated example config, installed with mosquitto.
const MOSQUITTO_EXAMPLE: &str = "/usr/share/doc/mosquitto/examples/mosquitto.conf";

#[test]
fn every_option_of_mosquittos_example_config_is_known() {
    let text = std::fs::read_to_string(MOSQUITTO_EXAMPLE).unwrap_or_else(|e| {
        panic!("{MOSQUITTO_EXAMPLE}: {e}; install Debian's mosquitto (scripts/test does)")
    });
    // Options appear commented out: `#option value`.
    let mut options: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix('#'))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter(|word| {
            word.len() > 2
                && word
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit() || c == '.')
        })
        .collect();
    options.sort_unstable();
    options.dedup();
    assert!(options.len() > 80, "{options:?}");
    for option in options {
        // Some words in comments are not options; an option is whatever
        // mosquitto's example sets on a line of its own.
        if !text
            .lines()
            .any(|l| l.starts_with(&format!("#{option} ")) || l == format!("#{option}"))
        {
            continue;
        }
        if let Err(ConfigError::UnknownOption { .. }) = parse(&format!("{option} 1\n")) {
            panic!("'{option}' is unknown");
        }
    }
}

#[test]
fn persistence_mode_chooses_the_durability() {
    use culex_store::Durability;
    let mode =
        |line: &str| parse(&format!("persistence true\n{line}\n")).map(|c| c.persistence.mode);
    assert_eq!(mode("").unwrap(), None);
    assert_eq!(
        mode("persistence_mode sync").unwrap(),
        Some(Durability::Sync)
    );
    assert_eq!(
        mode("persistence_mode periodic 100").unwrap(),
        Some(Durability::Periodic(100))
    );
    let err = mode("persistence_mode sometimes").unwrap_err().to_string();
    assert!(
        err.starts_with("mosquitto.conf:2:") && err.contains("persistence_mode"),
        "{err}"
    );
    assert!(mode("persistence_mode periodic 0").is_err());
}

#[test]
fn cluster_options_need_each_other_and_valid_values() {
    let config = parse(
        "cluster_servers nats://127.0.0.1:4222, nats://127.0.0.2:4222\ncluster_node node-1\n",
    )
    .unwrap();
    let cluster = config.cluster.unwrap();
    assert_eq!(
        cluster.servers,
        ["nats://127.0.0.1:4222", "nats://127.0.0.2:4222"]
    );
    assert_eq!(
        (cluster.node.as_str(), cluster.namespace.as_str()),
        ("node-1", "culex")
    );
    assert!(parse("").unwrap().cluster.is_none());
    let ns = parse("cluster_servers nats://h:4222\ncluster_node a\ncluster_namespace t_1\n");
    assert_eq!(ns.unwrap().cluster.unwrap().namespace, "t_1");
    for bad in [
        "cluster_servers nats://h:4222\n",
        "cluster_node a\n",
        "cluster_servers http://h:4222\ncluster_node a\n",
        "cluster_servers nats://h:4222\ncluster_node a.b\n",
        "cluster_servers nats://h:4222\ncluster_node a\ncluster_namespace a*b\n",
    ] {
        let err = parse(bad).unwrap_err().to_string();
        assert!(err.starts_with("mosquitto.conf:"), "{bad:?}: {err}");
    }
}

/// Test certificates in a scratch directory, and a CA directory for `capath`.
struct Certs {
    dir: tempfile::TempDir,
    files: culex_testkit::pki::PkiFiles,
    capath: PathBuf,
}

fn certs() -> Certs {
    let dir = tempfile::tempdir().unwrap();
    let pki = culex_testkit::pki::Pki::new();
    let files = pki.write_to(dir.path());
    let capath = dir.path().join("cas");
    std::fs::create_dir(&capath).unwrap();
    std::fs::write(capath.join("ca.pem"), &pki.ca).unwrap();
    Certs { dir, files, capath }
}

impl Certs {
    /// `{cert}`, `{key}`, `{ca}`, `{crl}`, `{capath}`, `{dir}`, `{client_key}`
    /// replaced by paths.
    fn config(&self, text: &str) -> String {
        let f = &self.files;
        text.replace("{cert}", &f.server.0.display().to_string())
            .replace("{key}", &f.server.1.display().to_string())
            .replace("{client_key}", &f.client.1.display().to_string())
            .replace("{ca}", &f.ca.display().to_string())
            .replace("{crl}", &f.crl.display().to_string())
            .replace("{capath}", &self.capath.display().to_string())
            .replace("{dir}", &self.dir.path().display().to_string())
    }
}

#[test]
fn tls_websocket_proxy_and_unix_listeners_are_read() {
    use culex_transport::{CertificateField, ProxyVersion, TlsVersion};
    let certs = certs();
    let config = parse(&certs.config(
        "per_listener_settings true\n\
         listener 8883\n\
         certfile {cert}\n\
         keyfile {key}\n\
         cafile {ca}\n\
         crlfile {crl}\n\
         require_certificate true\n\
         use_identity_as_username true\n\
         tls_version tlsv1.3\n\
         ciphers ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305\n\
         ciphers_tls1.3 TLS_AES_256_GCM_SHA384\n\
         listener 9001\n\
         protocol websockets\n\
         http_dir {dir}\n\
         allow_anonymous true\n\
         listener 8884 127.0.0.1\n\
         protocol websockets\n\
         certfile {cert}\n\
         keyfile {key}\n\
         capath {capath}\n\
         require_certificate true\n\
         use_subject_as_username true\n\
         listener 1884 127.0.0.1\n\
         enable_proxy_protocol 2\n\
         listener 1885\n\
         enable_proxy_protocol 1\n\
         socket_domain ipv4\n\
         listener 0 {dir}/mqtt.sock\n\
         protocol mqtt\n",
    ))
    .unwrap();
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    let [mtls, ws, wss, proxied, proxied_v4, unix] = &config.listeners[..] else {
        panic!("{:?}", config.listeners);
    };
    let tls = mtls.transport.tls.as_ref().unwrap();
    assert_eq!(tls.certfile, certs.files.server.0);
    assert_eq!(tls.keyfile, certs.files.server.1);
    assert_eq!(tls.cafile.as_ref(), Some(&certs.files.ca));
    assert_eq!(tls.crlfile.as_ref(), Some(&certs.files.crl));
    assert!(tls.require_certificate);
    assert_eq!(tls.min_version, TlsVersion::Tls13);
    assert_eq!(
        tls.ciphers.as_deref(),
        Some("ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305")
    );
    assert_eq!(tls.ciphers_tls13.as_deref(), Some("TLS_AES_256_GCM_SHA384"));
    assert_eq!(tls.username_from, Some(CertificateField::CommonName));
    assert!(mtls.transport.websockets.is_none() && mtls.transport.proxy_protocol.is_none());

    let websockets = ws.transport.websockets.as_ref().unwrap();
    assert_eq!(websockets.http_dir.as_deref(), Some(certs.dir.path()));
    assert!(ws.transport.tls.is_none());
    assert!(config.security_for(ws).allow_anonymous && !config.security_for(mtls).allow_anonymous);

    let wss_tls = wss.transport.tls.as_ref().unwrap();
    assert!(wss.transport.websockets.is_some());
    assert_eq!(wss_tls.capath.as_ref(), Some(&certs.capath));
    assert_eq!(wss_tls.username_from, Some(CertificateField::Subject));
    assert_eq!(wss_tls.min_version, TlsVersion::Tls12);

    assert_eq!(proxied.transport.proxy_protocol, Some(ProxyVersion::V2));
    assert_eq!(addrs(proxied), ["127.0.0.1:1884"]);
    assert_eq!(proxied_v4.transport.proxy_protocol, Some(ProxyVersion::V1));
    assert_eq!(addrs(proxied_v4), ["0.0.0.0:1885"]);

    assert_eq!(unix.unix_path, Some(certs.dir.path().join("mqtt.sock")));
    assert!(unix.addrs.is_empty() && unix.port == 0 && unix.transport.is_plain());
    // Every listener's TLS options build (the config checked them at start).
    for listener in &config.listeners {
        culex_transport::Acceptor::new(&listener.transport).unwrap();
    }
}

#[test]
fn tls_options_stay_with_their_listener_with_or_without_per_listener_settings() {
    let certs = certs();
    for per_listener in ["true", "false"] {
        let config = parse(&certs.config(&format!(
            "per_listener_settings {per_listener}\n\
             certfile {{cert}}\nkeyfile {{key}}\nport 8883\n\
             listener 1883\n\
             listener 8884\ncertfile {{cert}}\nkeyfile {{key}}\n"
        )))
        .unwrap();
        let tls: Vec<bool> = config
            .listeners
            .iter()
            .map(|l| l.transport.tls.is_some())
            .collect();
        assert_eq!(
            tls,
            [true, false, true],
            "per_listener_settings {per_listener}"
        );
    }
}

#[test]
fn transport_errors_name_file_line_and_reason() {
    let certs = certs();
    let table: &[(&str, &str)] = &[
        ("listener 8883\ncertfile {key}\n", "mosquitto.conf:2: certfile: {key}: no certificate in the file"),
        ("listener 8883\nkeyfile {cert}\n", "mosquitto.conf:2: keyfile: {cert}: no private key in the file (an encrypted key is not supported)"),
        ("listener 8883\ncrlfile {ca}\n", "mosquitto.conf:2: crlfile: {ca}: no certificate revocation list in the file"),
        ("listener 8883\ncapath {dir}/nothing\n", "mosquitto.conf:2: capath: cannot read {dir}/nothing: "),
        ("listener 8883\ncertfile {cert}\n", "mosquitto.conf:2: certfile: TLS on this listener needs both certfile and keyfile"),
        ("listener 8883\ncafile {ca}\n", "mosquitto.conf:2: cafile: TLS on this listener needs both certfile and keyfile"),
        ("listener 1883\nuse_identity_as_username true\n", "mosquitto.conf:2: use_identity_as_username: needs certfile and keyfile on this listener (culex has no pre-shared-key TLS)"),
        ("listener 8883\ncertfile {cert}\nkeyfile {key}\nrequire_certificate true\n", "mosquitto.conf:4: require_certificate: needs cafile or capath to check client certificates against"),
        ("listener 8883\ncertfile {cert}\nkeyfile {client_key}\n", "mosquitto.conf:2: certfile: {cert} and {client_key}: "),
        ("listener 8883\nciphers RC4-MD5:DES-CBC3-SHA\n", "mosquitto.conf:2: ciphers: none of 'RC4-MD5:DES-CBC3-SHA' is offered by culex (rustls); it offers ECDHE-ECDSA-AES256-GCM-SHA384:"),
        ("listener 8883\nciphers HIGH:fast\n", "mosquitto.conf:2: ciphers: unknown cipher or alias 'fast'"),
        ("listener 8883\nciphers_tls1.3 TLS_AES_128_CCM_8_SHA256\n", "mosquitto.conf:2: ciphers_tls1.3: none of 'TLS_AES_128_CCM_8_SHA256' is offered by culex (rustls)"),
        ("listener 8883\ntls_version tlsv1\n", "mosquitto.conf:2: tls_version: invalid value 'tlsv1', expected tlsv1.3, tlsv1.2 or tlsv1.1"),
        ("listener 8883\ndhparamfile /etc/dh.pem\n", "mosquitto.conf:2: dhparamfile: not possible with rustls, which has no finite-field Diffie-Hellman"),
        ("listener 8883\ntls_engine pkcs11\n", "mosquitto.conf:2: tls_engine: OpenSSL engines are not possible: culex's TLS is rustls"),
        ("listener 8883\ntls_keyform engine\n", "mosquitto.conf:2: tls_keyform: OpenSSL engines are not possible: culex's TLS is rustls"),
        ("listener 8883\npsk_hint hint\n", "mosquitto.conf:2: psk_hint: pre-shared-key TLS is not possible with rustls"),
        ("psk_file /etc/psk\n", "mosquitto.conf:1: psk_file: pre-shared-key TLS is not possible with rustls"),
        ("listener 9001\nprotocol http\n", "mosquitto.conf:2: protocol: invalid value 'http', expected mqtt or websockets"),
        ("listener 9001\nhttp_dir {cert}\n", "mosquitto.conf:2: http_dir: '{cert}' is not a directory"),
        ("listener 1883\nenable_proxy_protocol 3\n", "mosquitto.conf:2: enable_proxy_protocol: invalid value '3', expected 1 or 2"),
        ("listener 0 /tmp/m.sock\nsocket_domain ipv4\n", "mosquitto.conf:2: socket_domain: a unix socket listener has no IP domain"),
    ];
    for (text, message) in table {
        let (text, message) = (certs.config(text), certs.config(message));
        match parse(&text) {
            Ok(_) => panic!("{text:?} was accepted"),
            Err(err) => {
                let shown = err.to_string();
                assert!(
                    shown.starts_with(&message),
                    "{text:?}\n got: {shown}\nwant: {message}"
                );
            }
        }
    }
}

#[test]
fn transport_options_that_change_little_are_accepted_with_warnings() {
    let certs = certs();
    let config = parse(&certs.config(
        "listener 8883\ncertfile {cert}\nkeyfile {key}\n\
         tls_version tlsv1.1\n\
         ciphers AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256\n\
         crlfile {crl}\n\
         use_subject_as_username true\n\
         tls_keyform pem\n\
         listener 1883\nhttp_dir {dir}\nrequire_certificate false\ntls_version tlsv1.2\n",
    ))
    .unwrap();
    let expect = [
        "mosquitto.conf:4: tls_version: TLS 1.1 is not offered",
        "mosquitto.conf:5: ciphers: not offered, rustls has no such suites: AES128-SHA",
        "mosquitto.conf:7: use_subject_as_username: without require_certificate true",
        "mosquitto.conf:6: crlfile: has no effect without require_certificate true",
        "mosquitto.conf:10: http_dir: has no effect: the listener's protocol is mqtt",
    ];
    assert_eq!(config.warnings.len(), expect.len(), "{:?}", config.warnings);
    for (warning, want) in config.warnings.iter().zip(expect) {
        assert!(warning.starts_with(want), "{warning}\nwant: {want}");
    }
    assert!(config.listeners[1].transport.is_plain());
}

/// culex's admin HTTP listener: loopback by default, its own certfile,
/// keyfile and (per listener) password file, administrators from anywhere.
#[test]
fn http_listener_and_its_options() {
    let config = parse("listener 1883\nallow_anonymous true\n").unwrap();
    assert!(config.http.is_none(), "off by default");

    let config = parse("password_file /etc/pw\nhttp_admin alice\nhttp_listener 8080\n").unwrap();
    let http = config.http.unwrap();
    assert_eq!(http.addr.to_string(), "127.0.0.1:8080");
    assert_eq!(http.admins, ["alice"]);
    assert_eq!(http.password_file, Some(PathBuf::from("/etc/pw")));
    assert!(!http.is_tls());

    let text = "per_listener_settings true\n\
                listener 1883\npassword_file /etc/mqtt.pw\n\
                http_listener 8443 0.0.0.0\ncertfile /c.pem\nkeyfile /k.pem\npassword_file /etc/admin.pw\n\
                http_admin alice bob\n\
                listener 1884\nallow_anonymous true\n";
    let config = parse(text).unwrap();
    let http = config.http.clone().unwrap();
    assert_eq!(http.addr.to_string(), "0.0.0.0:8443");
    assert_eq!(http.certfile, Some(PathBuf::from("/c.pem")));
    assert_eq!(http.keyfile, Some(PathBuf::from("/k.pem")));
    assert_eq!(http.password_file, Some(PathBuf::from("/etc/admin.pw")));
    assert_eq!(http.admins, ["alice", "bob"]);
    assert_eq!(config.listeners.len(), 2);
    assert!(
        config.security_of(1).allow_anonymous,
        "options after listener are its own"
    );

    for bad in [
        "http_listener 8080\nhttp_listener 8081\n",
        "http_listener x\n",
        "http_listener 8080\nmount_point a/\n",
        "http_listener 8080\ncertfile /a\ncertfile /b\n",
        "http_admin\n",
    ] {
        let err = parse(bad).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { .. }), "{bad}: {err}");
    }
    let config = parse("http_admin alice\n").unwrap();
    assert!(config.warnings.iter().any(|w| w.contains("http_admin")));
}
