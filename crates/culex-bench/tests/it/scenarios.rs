//! Every scenario against Debian's mosquitto: the counts must add up.

use std::time::Duration;

use culex_testkit::{run_with_timeout, tool, Mosquitto};

use crate::support::{bench_json, count, num};

/// mosquitto drops QoS 1/2 messages beyond `max_queued_messages` (1000 by
/// default) for a subscriber that falls behind, as one starved of CPU on a
/// busy machine may; 0 lifts the limit, so counts depend on the tool alone.
const UNLIMITED_QUEUES: &str = "max_queued_messages 0";

/// At QoS 1 every message sent is acknowledged and delivered exactly to its
/// pair's subscriber (mosquitto does not duplicate on a healthy connection).
#[test]
fn pairs_at_qos1_deliver_everything_sent() {
    let broker = Mosquitto::start(UNLIMITED_QUEUES);
    let s = bench_json(broker.port, &["pairs", "-c", "2", "-q", "1", "-d", "1s"]);
    let sent = count(&s, "/messages/sent");
    assert!(sent > 0, "nothing sent: {s:#}");
    assert_eq!(count(&s, "/messages/acked"), sent);
    assert_eq!(count(&s, "/messages/received"), sent);
    assert_eq!(count(&s, "/messages/expected"), sent);
    assert_eq!(num(&s, "/messages/delivered_fraction"), 1.0);
    assert_eq!(count(&s, "/connections/established"), 4);
    assert_eq!(count(&s, "/errors/total"), 0);
    assert_eq!(
        count(&s, "/latency_us/count"),
        sent,
        "every payload carries a timestamp"
    );
}

/// QoS 2 over MQTT 5.0: the four-packet exchange completes for every message.
#[test]
fn pairs_at_qos2_over_v5_complete_every_exchange() {
    let broker = Mosquitto::start(UNLIMITED_QUEUES);
    let s = bench_json(
        broker.port,
        &["pairs", "-c", "2", "-q", "2", "-V", "5", "-d", "1s"],
    );
    let sent = count(&s, "/messages/sent");
    assert!(sent > 0);
    assert_eq!(s["protocol"], "5.0");
    assert_eq!(
        count(&s, "/messages/acked"),
        sent,
        "PUBCOMP for every PUBLISH"
    );
    assert_eq!(count(&s, "/messages/received"), sent);
}

/// Fan-out delivers each message once to every subscriber: sent × N.
#[test]
fn fanout_delivers_sent_times_subscribers() {
    let broker = Mosquitto::start(UNLIMITED_QUEUES);
    let s = bench_json(broker.port, &["fanout", "-c", "3", "-q", "1", "-d", "1s"]);
    let sent = count(&s, "/messages/sent");
    assert!(sent > 0);
    assert_eq!(
        (count(&s, "/publishers"), count(&s, "/subscribers")),
        (1, 3)
    );
    assert_eq!(count(&s, "/messages/expected"), sent * 3);
    assert_eq!(count(&s, "/messages/received"), sent * 3);
}

/// With `--share`, mosquitto's shared group takes each message once: the
/// subscribers together receive what was sent.
#[test]
fn shared_fanout_delivers_each_message_once() {
    let broker = Mosquitto::start(UNLIMITED_QUEUES);
    let s = bench_json(
        broker.port,
        &["fanout", "-c", "3", "-q", "1", "--share", "g", "-d", "1s"],
    );
    let sent = count(&s, "/messages/sent");
    assert!(sent > 0);
    assert_eq!(count(&s, "/messages/expected"), sent);
    assert_eq!(count(&s, "/messages/received"), sent);
}

/// Fan-in: messages of all publishers reach the one wildcard subscriber. At a
/// modest fixed rate QoS 0 loses nothing on loopback.
#[test]
fn fanin_at_a_fixed_rate_delivers_every_publisher() {
    let broker = Mosquitto::start("");
    let s = bench_json(
        broker.port,
        &["fanin", "-c", "3", "-q", "0", "-r", "200", "-d", "1s"],
    );
    let sent = count(&s, "/messages/sent");
    // 3 publishers × 200/s × 1 s, give or take the last tick.
    assert!(
        (450..=603).contains(&sent),
        "sent {sent} at 3 × 200 msg/s for 1 s"
    );
    assert_eq!(count(&s, "/messages/received"), sent);
    assert_eq!(num(&s, "/rate_per_publisher"), 200.0);
}

/// The latency scenario publishes at its fixed rate and times every message
/// from the stamp in its payload.
#[test]
fn latency_runs_at_a_fixed_rate_and_times_every_message() {
    let broker = Mosquitto::start("");
    let s = bench_json(
        broker.port,
        &["latency", "-c", "2", "-r", "100", "-d", "1s"],
    );
    let sent = count(&s, "/messages/sent");
    assert!(
        (150..=202).contains(&sent),
        "sent {sent} at 2 × 100 msg/s for 1 s"
    );
    assert_eq!(count(&s, "/messages/received"), sent);
    assert_eq!(count(&s, "/latency_us/count"), sent);
    let (p50, p90, p99, max) = (
        num(&s, "/latency_us/p50"),
        num(&s, "/latency_us/p90"),
        num(&s, "/latency_us/p99"),
        num(&s, "/latency_us/max"),
    );
    assert!(0.0 < p50 && p50 <= p90 && p90 <= p99 && p99 <= max, "{s:#}");
}

/// A payload too short for a timestamp still counts, but is not timed.
#[test]
fn short_payloads_are_counted_but_not_timed() {
    let broker = Mosquitto::start(UNLIMITED_QUEUES);
    let s = bench_json(
        broker.port,
        &[
            "pairs", "-c", "1", "-q", "1", "-s", "4", "-r", "50", "-d", "500ms",
        ],
    );
    assert!(count(&s, "/messages/received") > 0);
    assert!(s["latency_us"].is_null(), "{s:#}");
}

/// conn opens every connection asked for and holds them for the duration.
#[test]
fn conn_reaches_n_connections() {
    let broker = Mosquitto::start("");
    let s = bench_json(broker.port, &["conn", "-c", "50", "-d", "500ms"]);
    assert_eq!(count(&s, "/connections/wanted"), 50);
    assert_eq!(count(&s, "/connections/established"), 50);
    assert_eq!(count(&s, "/connections/lost"), 0);
    assert!(num(&s, "/connections/connect_rate") > 0.0);
    assert!(num(&s, "/elapsed_s") >= 0.5);
}

/// Connections spread over several loopback source addresses all connect.
#[test]
fn connections_spread_over_source_addresses() {
    let broker = Mosquitto::start("");
    let s = bench_json(
        broker.port,
        &[
            "conn",
            "-c",
            "12",
            "--source-ips",
            "127.0.0.1-127.0.0.4",
            "-d",
            "300ms",
        ],
    );
    assert_eq!(count(&s, "/connections/established"), 12);
}

/// `pub` and `sub` work as two halves of one measurement in separate runs.
#[test]
fn separate_pub_and_sub_runs_see_the_same_messages() {
    let broker = Mosquitto::start(UNLIMITED_QUEUES);
    let port = broker.port;
    let sub = std::thread::spawn(move || {
        bench_json(
            port,
            &["sub", "-c", "2", "-t", "split/%i", "-q", "1", "-d", "3s"],
        )
    });
    // The subscribers are up within milliseconds; leave ample time on a busy machine.
    std::thread::sleep(Duration::from_millis(1000));
    let p = bench_json(
        port,
        &[
            "pub", "-c", "2", "-t", "split/%i", "-q", "1", "-r", "100", "-d", "500ms",
        ],
    );
    let s = sub.join().expect("sub run");
    let sent = count(&p, "/messages/sent");
    assert!(sent > 0);
    assert_eq!(count(&p, "/messages/acked"), sent);
    assert_eq!(count(&s, "/messages/received"), sent);
    assert_eq!(
        count(&s, "/latency_us/count"),
        sent,
        "stamps are read across processes"
    );
}

/// A message this run did not send (here a retained one, as an earlier run
/// can leave behind) is reported as a stray, not counted as delivered.
#[test]
fn messages_from_elsewhere_are_strays_not_deliveries() {
    let broker = Mosquitto::start(UNLIMITED_QUEUES);
    let port = broker.port.to_string();
    let published = run_with_timeout(
        std::process::Command::new(tool("mosquitto_pub")).args([
            "-p",
            &port,
            "-t",
            "bench/0",
            "-r",
            "-m",
            "left over",
        ]),
        Duration::from_secs(5),
    );
    assert!(published.status.success());
    let s = bench_json(
        broker.port,
        &["pairs", "-c", "1", "-q", "1", "-r", "100", "-d", "500ms"],
    );
    let sent = count(&s, "/messages/sent");
    assert_eq!(count(&s, "/messages/stray"), 1, "{s:#}");
    assert_eq!(count(&s, "/messages/received"), sent);
}
