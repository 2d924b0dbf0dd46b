//! Bridges: mosquitto's `connection` blocks, links to remote brokers.
//!
//! A bridge is two MQTT connections glued together by one task: its end on
//! this broker is a protocol `Connection` like any client's, without a
//! socket (`local.rs`); its end on the remote broker is a client
//! connection over TCP or TLS (`remote.rs`). The task relays between them:
//! what the local session delivers for `out` topics goes to the remote,
//! what the remote delivers for `in` topics is published locally, and
//! every acknowledgement goes back the way its message came, with its
//! packet id unchanged. So each QoS flow runs end to end between the two
//! sessions: a QoS 1/2 message is acknowledged to its sender only once the
//! other broker has it; across a reconnect of the link the unacknowledged
//! ones are sent again (DUP), and the receiving session's packet-id state
//! keeps QoS 2 exactly once (given persistent sessions on both sides,
//! `cleansession false`, mosquitto's default for bridges).

mod local;
mod relay;
mod remote;

use std::sync::Arc;
use std::time::{Duration, Instant};

use culex_codec::QoS;

use super::state::{shutdown_requested, Runtime};
use crate::config::bridge::{Bridge, Restart, StartType};
use crate::core::message::Message;
use local::Local;
use relay::{Ended, Relay};
use remote::Remote;

/// How often a lazy bridge looks at what waits for the remote.
const LAZY_POLL: Duration = Duration::from_secs(1);

/// Starts a task for each bridge of the configuration.
pub(crate) fn start(rt: &Arc<Runtime>) {
    for bridge in &rt.core.config().bridges {
        tokio::spawn(run(rt.clone(), bridge.clone()));
    }
}

/// One bridge, until shutdown: connect, relay, back off, again.
async fn run(rt: Arc<Runtime>, bridge: Bridge) {
    let _alive = rt.alive_token();
    let mut shutdown = rt.shutdown.clone();
    let tls = match bridge.tls.as_ref().map(remote::tls_config).transpose() {
        Ok(tls) => tls,
        Err(e) => {
            tracing::error!("Error: bridge {}: {e}; the bridge stays down.", bridge.name);
            return;
        }
    };
    let mut local = match Local::connect(&rt.core, &bridge, Instant::now()) {
        Ok(local) => local,
        Err(e) => {
            tracing::error!("Error: bridge {}: {e}; the bridge stays down.", bridge.name);
            return;
        }
    };
    let mut relay = Relay::new(&bridge);
    let mut attempt: u32 = 0;
    let mut next_address = 0usize;
    notify(&rt, &bridge, false);
    loop {
        if bridge.start_type == StartType::Lazy {
            tokio::select! {
                _ = shutdown_requested(&mut shutdown) => break,
                _ = wait_for_backlog(&rt, &bridge) => {}
            }
        }
        let address = bridge
            .addresses
            .get(next_address % bridge.addresses.len().max(1))
            .cloned()
            .unwrap_or_default();
        tracing::info!(
            "Connecting bridge {} ({}:{})",
            bridge.name,
            address.0,
            address.1
        );
        let connected = tokio::select! {
            _ = shutdown_requested(&mut shutdown) => break,
            r = connect(&bridge, tls.as_ref(), &address, relay.private) => r,
        };
        let ended = match connected {
            Ok(mut remote) => {
                attempt = 0;
                relay.private = remote.private;
                notify(&rt, &bridge, true);
                let ended = match Remote::announce(&mut remote, &bridge).await {
                    Ok(()) => {
                        relay
                            .run(&bridge, &mut local, &mut remote, &mut shutdown)
                            .await
                    }
                    Err(e) => Err(e),
                };
                notify(&rt, &bridge, false);
                ended
            }
            Err(e) => {
                tracing::info!("Bridge {}: connection failed: {e}.", bridge.name);
                Ok(Ended::Lost)
            }
        };
        match ended {
            Ok(Ended::Shutdown) => break,
            Ok(Ended::Idle) => continue,
            Ok(Ended::Lost) => {}
            Err(e) => tracing::info!("Bridge {}: {e}.", bridge.name),
        }
        if local.is_closed() {
            match Local::connect(&rt.core, &bridge, Instant::now()) {
                Ok(l) => local = l,
                Err(e) => {
                    tracing::error!("Error: bridge {}: {e}; the bridge stops.", bridge.name);
                    break;
                }
            }
        }
        if bridge.start_type == StartType::Once {
            tracing::info!("Bridge {} stops: start_type once.", bridge.name);
            break;
        }
        if bridge.round_robin {
            next_address += 1;
        }
        let wait = restart_wait(bridge.restart, attempt);
        attempt = attempt.saturating_add(1);
        tokio::select! {
            _ = shutdown_requested(&mut shutdown) => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
    local.close(Instant::now());
}

/// Connects to the remote, falling back to a plain CONNECT when the remote
/// refuses the bridge bit (`try_private`) as an unsupported protocol.
async fn connect(
    bridge: &Bridge,
    tls: Option<&Arc<rustls::ClientConfig>>,
    (host, port): &(String, u16),
    private: bool,
) -> Result<Remote, remote::RemoteError> {
    let private = private && bridge.try_private;
    match Remote::connect(bridge, tls, (host, *port), private).await {
        Err(remote::RemoteError::Refused(why)) if private && why.contains("protocol version") => {
            tracing::info!(
                "Bridge {}: the remote refused the bridge bit; connecting as a plain client.",
                bridge.name
            );
            Remote::connect(bridge, tls, (host, *port), false).await
        }
        other => other,
    }
}

/// Publishes the bridge's state (`1` up, `0` down), retained, on this
/// broker (`notifications`); the remote gets it from the bridge itself
/// and from its will.
fn notify(rt: &Runtime, bridge: &Bridge, up: bool) {
    if !bridge.notifications {
        return;
    }
    let now = Instant::now();
    let payload = if up { "1" } else { "0" };
    let msg = Message::new(
        &bridge.notification_topic,
        payload,
        QoS::AtLeastOnce,
        true,
        now,
    );
    rt.core.publish(Arc::new(msg), now);
}

/// A lazy bridge connects once `threshold` messages wait for the remote.
async fn wait_for_backlog(rt: &Runtime, bridge: &Bridge) {
    loop {
        let waiting = rt
            .core
            .client(&bridge.local_client_id)
            .map_or(0, |c| c.queued + c.inflight);
        if waiting >= bridge.threshold {
            return;
        }
        tokio::time::sleep(LAZY_POLL).await;
    }
}

/// How long to wait before connecting again after `attempt` failures in a
/// row: constant, or random up to a base doubling per failure, capped.
fn restart_wait(restart: Restart, attempt: u32) -> Duration {
    match restart {
        Restart::Constant(wait) => wait,
        Restart::Backoff { base, cap } => {
            let ceiling = base
                .saturating_mul(1u32 << attempt.min(16))
                .min(cap)
                .max(base);
            let spread = ceiling.saturating_sub(base / 2);
            let jitter = rand::Rng::gen_range(&mut rand::thread_rng(), 0.0..=1.0);
            base / 2 + spread.mul_f64(jitter)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_with_jitter() {
        let restart = Restart::Backoff {
            base: Duration::from_secs(5),
            cap: Duration::from_secs(30),
        };
        for attempt in 0..10 {
            let wait = restart_wait(restart, attempt);
            assert!(wait >= Duration::from_millis(2500) && wait <= Duration::from_secs(30));
        }
        let constant = Restart::Constant(Duration::from_secs(2));
        assert_eq!(restart_wait(constant, 7), Duration::from_secs(2));
    }
}
