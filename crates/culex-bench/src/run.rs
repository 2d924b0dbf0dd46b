//! The coordinator of a run: set up every connection, start them together,
//! watch the counters, decide when the run is over, and build the report.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::sync::atomic::{
    AtomicU64,
    Ordering::{AcqRel, Acquire, Relaxed},
};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{sleep, Instant};

use crate::cli::Plan;
use crate::conn::{Conn, ConnError, ConnectParams};
use crate::report::{micros, si, Connections, Cpu, Errors, Latency, Messages, Report, Throughput};
use crate::roles::{Control, Idle, Publisher, Subscriber, Times};
use crate::stats::{new_histogram, new_run_id, peak_rss_kib, CpuTime, Shared, STAMP_LEN};
use crate::BenchError;

/// Longest time allowed for setting up every connection.
const SETUP_TIMEOUT: Duration = Duration::from_secs(120);
/// How often the coordinator looks at the counters.
const TICK: Duration = Duration::from_millis(10);
/// With publishers done, subscribers stop after this long without a message.
const QUIET: Duration = Duration::from_millis(300);
/// Extra time tasks get past the drain before they are aborted.
const GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Idle,
    Publisher,
    Subscriber,
}

impl Kind {
    fn letter(self) -> char {
        match self {
            Kind::Idle => 'c',
            Kind::Publisher => 'p',
            Kind::Subscriber => 's',
        }
    }
}

/// What every client task shares.
struct Ctx {
    plan: Plan,
    /// TLS and WebSocket, as the plan asks.
    link: crate::link::LinkKind,
    addr: SocketAddr,
    /// Where subscribers connect (`addr` unless `--sub-port`).
    sub_addr: SocketAddr,
    shared: Arc<Shared>,
    control: Arc<Control>,
    alive: AtomicU64,
    connect_slots: Semaphore,
    setup: Setup,
    setup_deadline: Instant,
    run_id: u32,
}

/// The outcome of every client's setup, counted by the clients themselves.
/// The coordinator is woken once, by the last one to report, and not once
/// per connection: on two cores those wake-ups would cost as much as the
/// connections.
struct Setup {
    begin: Instant,
    wanted: u64,
    reported: AtomicU64,
    ok: AtomicU64,
    ok_publishers: AtomicU64,
    /// Nanoseconds from `begin` to the last successful setup.
    last_ok_ns: AtomicU64,
    /// Time from `connect` to CONNACK of each connection, in nanoseconds. A
    /// lock is right here: it is taken once per connection, for a few
    /// nanoseconds, and never across an await.
    connect_times: Mutex<Histogram<u64>>,
    all_in: Notify,
}

impl Setup {
    fn connected_in(&self, time: Duration) {
        let ns = u64::try_from(time.as_nanos()).unwrap_or(u64::MAX);
        let mut hist = self.connect_times.lock().unwrap_or_else(|e| e.into_inner());
        hist.saturating_record(ns.max(1));
    }

    fn report(&self, kind: Kind, ok: bool) {
        if ok {
            let ns = u64::try_from(self.begin.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.last_ok_ns.fetch_max(ns, Relaxed);
            self.ok_publishers
                .fetch_add(u64::from(kind == Kind::Publisher), Relaxed);
            self.ok.fetch_add(1, Relaxed);
        }
        if self.reported.fetch_add(1, AcqRel) + 1 == self.wanted {
            self.all_in.notify_one();
        }
    }
}

/// Runs `plan` against `addr`, its subscribers against `sub_addr` (both
/// already checked against the loopback rule).
pub async fn run(plan: Plan, addr: SocketAddr, sub_addr: SocketAddr) -> Result<Report, BenchError> {
    let setup_begin = Instant::now();
    let cpu_start = CpuTime::now();
    let shared = Arc::new(Shared::new());
    let control = Arc::new(Control::default());
    let wanted = plan.clients();
    let link = link_kind(&plan)?;
    let ctx = Arc::new(Ctx {
        link,
        addr,
        sub_addr,
        shared: shared.clone(),
        control: control.clone(),
        alive: AtomicU64::new(0),
        connect_slots: Semaphore::new(plan.connect_concurrency as usize),
        setup: Setup {
            begin: setup_begin,
            wanted,
            reported: AtomicU64::new(0),
            ok: AtomicU64::new(0),
            ok_publishers: AtomicU64::new(0),
            last_ok_ns: AtomicU64::new(0),
            connect_times: Mutex::new(new_histogram()),
            all_in: Notify::new(),
        },
        setup_deadline: setup_begin + SETUP_TIMEOUT,
        run_id: new_run_id(),
        plan,
    });
    let plan = &ctx.plan;
    let progress = Progress::new(plan.quiet);

    {
        let control = control.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                control.interrupted.store(true, Relaxed);
            }
        });
    }

    let (start_tx, start_rx) = watch::channel(None::<Times>);
    let mut tasks = JoinSet::new();
    let clients = [
        (Kind::Subscriber, plan.subscribers),
        (Kind::Publisher, plan.publishers),
        (Kind::Idle, plan.connections),
    ];
    let mut global = 0usize;
    for (kind, count) in clients {
        for index in 0..count {
            ctx.alive.fetch_add(1, Relaxed);
            tasks.spawn(client(ctx.clone(), kind, index, global, start_rx.clone()));
            global += 1;
        }
    }

    // Setup: every task reports once, by the setup deadline at the latest.
    let setup = &ctx.setup;
    let mut next_print = setup_begin + Duration::from_secs(1);
    while setup.reported.load(Acquire) < wanted {
        tokio::select! {
            () = setup.all_in.notified() => {}
            () = sleep(Duration::from_millis(100)) => {}
        }
        if Instant::now() >= next_print {
            next_print += Duration::from_secs(1);
            let reported = setup.reported.load(Relaxed);
            let ok = setup.ok.load(Relaxed);
            progress.line(&format!(
                "connecting {ok}/{wanted}, {} failed, errors {}",
                reported.saturating_sub(ok),
                shared.error_count.load(Relaxed)
            ));
        }
        // A task that ended without reporting (it cannot, short of a bug)
        // must not hold the run past its setup deadline.
        if control.interrupted.load(Relaxed) || Instant::now() > ctx.setup_deadline + GRACE {
            break;
        }
    }
    let ok_total = setup.ok.load(Relaxed);
    let ok_publishers = setup.ok_publishers.load(Relaxed);
    let failed = setup.reported.load(Relaxed).saturating_sub(ok_total);
    let last_ok = setup_begin + Duration::from_nanos(setup.last_ok_ns.load(Relaxed));
    let connect_s = last_ok.duration_since(setup_begin).as_secs_f64();
    if ok_total == 0 {
        let errors = shared.errors();
        let why = errors
            .keys()
            .next()
            .cloned()
            .unwrap_or_else(|| "interrupted".into());
        return Err(BenchError::NoConnection(why));
    }

    let start = Instant::now();
    let stop_at = start + plan.duration;
    let drain_until = if plan.publishers > 0 {
        stop_at + plan.drain
    } else {
        stop_at
    };
    let times = Times {
        start,
        stop_at,
        drain_until,
    };
    shared.publishers_active.store(ok_publishers, Relaxed);
    let _ = start_tx.send(Some(times));

    let mut total_hist = new_histogram();
    let mut interval_hist = new_histogram();
    let mut active_end: Option<(Instant, CpuTime)> = None;
    let (mut last_received, mut last_change) = (0u64, start);
    let mut next_print = start + Duration::from_secs(1);
    let (mut printed_sent, mut printed_received, mut printed_at) = (0u64, 0u64, start);
    while ctx.alive.load(Relaxed) > 0 {
        sleep(TICK).await;
        let now = Instant::now();
        let interrupted = control.interrupted.load(Relaxed);
        let publishing_over = now >= stop_at || interrupted;
        if publishing_over && active_end.is_none() {
            active_end = Some((now.min(stop_at), CpuTime::now()));
        }
        let received = shared.received.load(Relaxed);
        if received != last_received {
            last_received = received;
            last_change = now;
        }
        if publishing_over && shared.publishers_active.load(Relaxed) == 0 {
            let all_in = plan
                .fanout_factor
                .is_some_and(|f| received >= shared.sent.load(Relaxed).saturating_mul(f));
            if all_in || now.duration_since(last_change) >= QUIET || interrupted {
                control.subscribers_done.store(true, Relaxed);
            }
        }
        if now >= drain_until + GRACE {
            break;
        }
        if now >= next_print {
            next_print += Duration::from_secs(1);
            shared.drain_latencies(&mut interval_hist);
            let _ = total_hist.add(&interval_hist);
            let secs = now.duration_since(printed_at).as_secs_f64().max(1e-3);
            let sent = shared.sent.load(Relaxed);
            let mut line = format!(
                "[{:>4.0}s] conns {}",
                now.duration_since(start).as_secs_f64(),
                shared.connected.load(Relaxed) - shared.disconnected.load(Relaxed),
            );
            if plan.publishers > 0 {
                line += &format!(" sent {}/s", si((sent - printed_sent) as f64 / secs));
            }
            if plan.subscribers > 0 {
                line += &format!(
                    " recv {}/s",
                    si((received - printed_received) as f64 / secs)
                );
            }
            if let Some(l) = Latency::from_histogram(&interval_hist) {
                line += &format!(" p50 {} p99 {}", micros(l.p50), micros(l.p99));
            }
            line += &format!(" errors {}", shared.error_count.load(Relaxed));
            progress.line(&line);
            interval_hist.reset();
            (printed_sent, printed_received, printed_at) = (sent, received, now);
        }
    }
    // Tasks still running past the grace period are stuck: count and abort them.
    let stuck = ctx.alive.load(Relaxed);
    if stuck > 0 {
        shared.error(format!("{stuck} connections did not finish in time"));
    }
    tasks.shutdown().await;
    progress.finish();

    let (end, cpu_end) =
        active_end.unwrap_or_else(|| (Instant::now().min(stop_at), CpuTime::now()));
    shared.drain_latencies(&mut total_hist);
    let elapsed_s = end.duration_since(start).as_secs_f64().max(1e-6);
    // CPU over the whole run, setup included: for conn, setup is the point.
    let cpu = cpu_end.since(cpu_start);
    let cpu_wall_s = end.duration_since(setup_begin).as_secs_f64().max(1e-6);
    let sent = shared.sent.load(Relaxed);
    let received = shared.received.load(Relaxed);
    let expected = plan.fanout_factor.map(|f| sent.saturating_mul(f));
    let errors = shared.errors();
    let connect_latency_us = {
        let hist = setup
            .connect_times
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        Latency::from_histogram(&hist)
    };
    Ok(Report {
        scenario: plan.scenario.name().to_string(),
        target: format!("{}:{}", plan.host, plan.port),
        protocol: plan.protocol.name().to_string(),
        qos: plan.qos as u8,
        payload_size: plan.size,
        rate_per_publisher: plan.rate,
        publishers: plan.publishers,
        subscribers: plan.subscribers,
        share: plan.share.clone(),
        duration_s: plan.duration.as_secs_f64(),
        elapsed_s,
        connections: Connections {
            wanted,
            established: ok_total,
            failed,
            lost: shared.disconnected.load(Relaxed),
            connect_s,
            connect_rate: ok_total as f64 / connect_s.max(1e-6),
            concurrency: plan.connect_concurrency,
            connect_after: if plan.early_connect {
                "connect"
            } else {
                "handshake"
            }
            .to_string(),
            connect_latency_us,
        },
        messages: Messages {
            sent,
            acked: shared.acked.load(Relaxed),
            received,
            stray: shared.stray.load(Relaxed),
            expected,
            delivered_fraction: expected
                .filter(|&e| e > 0)
                .map(|e| received as f64 / e as f64),
        },
        throughput: Throughput {
            sent_per_s: sent as f64 / elapsed_s,
            received_per_s: received as f64 / elapsed_s,
            offered_per_s: plan.rate.map(|r| r * f64::from(plan.publishers)),
        },
        latency_us: Latency::from_histogram(&total_hist),
        errors: Errors {
            total: shared.error_count.load(Relaxed),
            kinds: errors,
        },
        cpu: Cpu {
            user_s: cpu.user,
            system_s: cpu.system,
            core_percent: (cpu.user + cpu.system) / cpu_wall_s * 100.0,
        },
        peak_rss_kib: peak_rss_kib(),
    })
}

/// One client: connect (and subscribe), report, wait for the start, run its role.
async fn client(
    ctx: Arc<Ctx>,
    kind: Kind,
    index: u32,
    global: usize,
    mut start_rx: watch::Receiver<Option<Times>>,
) {
    let _alive = AliveGuard(&ctx.alive);
    let plan = &ctx.plan;
    let shared = &ctx.shared;
    let client_id = format!("{}-{}{}", plan.client_id_prefix, kind.letter(), index);
    let source = match plan.source_ips.len() {
        0 => None,
        n => plan.source_ips.get(global % n).copied(),
    };
    let keep_alive = (plan.duration + plan.drain + SETUP_TIMEOUT + Duration::from_secs(30))
        .as_secs()
        .min(u64::from(u16::MAX)) as u16;
    let params = ConnectParams {
        addr: match kind {
            Kind::Subscriber => ctx.sub_addr,
            _ => ctx.addr,
        },
        source,
        protocol: plan.protocol.protocol(),
        client_id: &client_id,
        keep_alive,
        persistent: plan.persistent && kind == Kind::Subscriber,
        username: plan.username.as_deref(),
        password: plan.password.as_deref(),
        deadline: ctx.setup_deadline,
        early: plan.early_connect,
        link: &ctx.link,
    };
    let setup = async {
        let _slot = ctx.connect_slots.acquire().await;
        let began = Instant::now();
        let mut conn = Conn::connect(&params).await.map_err(|e| ("connect", e))?;
        ctx.setup.connected_in(began.elapsed());
        if kind == Kind::Subscriber {
            conn.subscribe(&plan.subscribe_filter(index), plan.qos, ctx.setup_deadline)
                .await
                .map_err(|e| ("subscribe", e))?;
        }
        Ok::<Conn, (&str, ConnError)>(conn)
    };
    let mut conn = match setup.await {
        Ok(conn) => {
            shared.connected.fetch_add(1, Relaxed);
            ctx.setup.report(kind, true);
            conn
        }
        Err((stage, e)) => {
            shared.error(format!("{stage}: {}", e.kind()));
            ctx.setup.report(kind, false);
            return;
        }
    };
    let times = match start_rx.wait_for(Option::is_some).await {
        Ok(times) => *times,
        Err(_) => None,
    };
    let Some(times) = times else { return };
    let result = match kind {
        Kind::Publisher => {
            let window = plan.inflight.min(conn.receive_maximum);
            // At a fixed rate, publishers are spread evenly over one period
            // rather than all sending in the same instant.
            let mut paced = times;
            if let Some(rate) = plan.rate {
                let period = 1.0 / rate;
                let offset = period * f64::from(index) / f64::from(plan.publishers.max(1));
                paced.start += Duration::from_secs_f64(offset);
            }
            let mut role = Publisher::new(
                shared.clone(),
                ctx.control.clone(),
                paced,
                plan.publish_topic(index),
                plan.qos,
                plan.size,
                ctx.run_id,
                plan.rate,
                window,
            );
            let result = conn.drive(&mut role).await;
            shared.publishers_active.fetch_sub(1, Relaxed);
            result
        }
        Kind::Subscriber => {
            // Without publishers in this run, drain_until is stop_at, and
            // whatever arrives counts: it comes from another process.
            let own_run = (plan.publishers > 0 && plan.size >= STAMP_LEN).then_some(ctx.run_id);
            let end = times.drain_until;
            let mut role =
                Subscriber::new(shared.clone(), ctx.control.clone(), global, end, own_run);
            conn.drive(&mut role).await
        }
        Kind::Idle => {
            let mut role = Idle::new(shared.clone(), ctx.control.clone(), times.stop_at);
            conn.drive(&mut role).await
        }
    };
    if let Err(e) = result {
        shared.disconnected.fetch_add(1, Relaxed);
        shared.error(e.kind());
    }
}

/// Counts a client task as alive until it ends, however it ends.
struct AliveGuard<'a>(&'a AtomicU64);

impl Drop for AliveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// The live progress line on stderr: rewritten in place on a terminal, one
/// line per second otherwise.
struct Progress {
    enabled: bool,
    terminal: bool,
}

impl Progress {
    fn new(quiet: bool) -> Progress {
        Progress {
            enabled: !quiet,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn line(&self, text: &str) {
        if !self.enabled {
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = if self.terminal {
            write!(err, "\r\x1b[K{text}")
        } else {
            writeln!(err, "{text}")
        };
        let _ = err.flush();
    }

    fn finish(&self) {
        if self.enabled && self.terminal {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// The layers `plan` asks for: TLS to `host` with its CA file, WebSocket.
fn link_kind(plan: &Plan) -> Result<crate::link::LinkKind, BenchError> {
    let tls = match &plan.tls {
        None => None,
        Some(cafile) => {
            let config = crate::link::LinkKind::tls_config(cafile).map_err(BenchError::Usage)?;
            let name = rustls::pki_types::ServerName::try_from(plan.host.clone())
                .map_err(|e| BenchError::Usage(format!("--host for TLS: {e}")))?;
            Some((config, name))
        }
    };
    Ok(crate::link::LinkKind {
        tls,
        websocket: plan.ws.then(|| format!("{}:{}", plan.host, plan.port)),
    })
}
