//! A client that survives network failures, in the spirit of `umqtt.robust`.

use std::string::{String, ToString};
use std::time::Duration;
use std::vec::Vec;

use super::{Error, MQTTClient};
use crate::QoS;

/// How [`RobustClient`] waits between reconnect attempts: `initial`, doubled
/// after each failure up to `max`; it gives up after `max_attempts` (never
/// when `None`, as umqtt.robust).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// First delay.
    pub initial: Duration,
    /// Largest delay.
    pub max: Duration,
    /// Attempts before the error is returned; `None` retries forever.
    pub max_attempts: Option<u32>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
            max_attempts: None,
        }
    }
}

/// [`MQTTClient`] that, on any I/O failure, reconnects with back-off and
/// retries the operation.
///
/// Unlike umqtt.robust it also restores its subscriptions when the broker did
/// not keep the session (CONNACK Session Present 0): every successful
/// `subscribe` is remembered (and forgotten by `unsubscribe`) and replayed
/// after such a reconnect. A QoS 1/2 publish interrupted by a failure is sent
/// again after the reconnect, so it is delivered at least once.
pub struct RobustClient<'a> {
    inner: MQTTClient<'a>,
    subscriptions: Vec<(String, QoS)>,
    clean_session: bool,
    backoff: Backoff,
    reconnects: u32,
    connected_once: bool,
}

impl std::fmt::Debug for RobustClient<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RobustClient")
            .field("inner", &self.inner)
            .field("subscriptions", &self.subscriptions)
            .field("reconnects", &self.reconnects)
            .finish_non_exhaustive()
    }
}

type Result<T> = core::result::Result<T, Error<std::io::Error>>;

impl<'a> RobustClient<'a> {
    /// Wraps a configured (not yet connected) client.
    pub fn new(inner: MQTTClient<'a>) -> Self {
        RobustClient {
            inner,
            subscriptions: Vec::new(),
            clean_session: true,
            backoff: Backoff::default(),
            reconnects: 0,
            connected_once: false,
        }
    }

    /// Sets the reconnect back-off.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The wrapped client.
    pub fn inner(&mut self) -> &mut MQTTClient<'a> {
        &mut self.inner
    }

    /// How many times the client has reconnected after a failure.
    pub fn reconnects(&self) -> u32 {
        self.reconnects
    }

    /// The subscriptions that would be restored.
    pub fn subscriptions(&self) -> &[(String, QoS)] {
        &self.subscriptions
    }

    /// Sets the message callback.
    pub fn set_callback(&mut self, callback: impl FnMut(&str, &[u8]) + Send + 'a) {
        self.inner.set_callback(callback);
    }

    /// Sets the will.
    pub fn set_last_will(&mut self, topic: &'a str, msg: &'a [u8], retain: bool, qos: QoS) {
        self.inner.set_last_will(topic, msg, retain, qos);
    }

    /// Connects (retrying with back-off), remembering `clean_session` for
    /// reconnects. Returns Session Present.
    pub fn connect(&mut self, clean_session: bool) -> Result<bool> {
        self.clean_session = clean_session;
        self.reconnect_with_backoff()
    }

    /// Sends DISCONNECT; no retry.
    pub fn disconnect(&mut self) -> Result<()> {
        self.inner.disconnect()
    }

    /// Publishes, reconnecting and retrying on failure.
    pub fn publish(
        &mut self,
        topic: &str,
        msg: impl AsRef<[u8]>,
        retain: bool,
        qos: QoS,
    ) -> Result<()> {
        let msg = msg.as_ref();
        self.retry(|c| c.publish(topic, msg, retain, qos))
    }

    /// Subscribes (remembered for restoring), reconnecting and retrying on failure.
    pub fn subscribe(&mut self, topic: &str, qos: QoS) -> Result<QoS> {
        let granted = self.retry(|c| c.subscribe(topic, qos))?;
        self.subscriptions.retain(|(t, _)| t != topic);
        self.subscriptions.push((topic.to_string(), qos));
        Ok(granted)
    }

    /// Unsubscribes (and forgets the subscription).
    pub fn unsubscribe(&mut self, topic: &str) -> Result<()> {
        self.subscriptions.retain(|(t, _)| t != topic);
        self.retry(|c| c.unsubscribe(topic))
    }

    /// Sends PINGREQ, reconnecting on failure.
    pub fn ping(&mut self) -> Result<()> {
        self.retry(|c| c.ping())
    }

    /// `wait_msg`, reconnecting on failure.
    pub fn wait_msg(&mut self) -> Result<()> {
        self.retry(|c| c.wait_msg())
    }

    /// `check_msg`, reconnecting on failure.
    pub fn check_msg(&mut self) -> Result<usize> {
        self.retry(|c| c.check_msg())
    }

    fn retry<T>(&mut self, mut op: impl FnMut(&mut MQTTClient<'a>) -> Result<T>) -> Result<T> {
        let attempts = self.backoff.max_attempts.unwrap_or(u32::MAX).max(1);
        let mut last = None;
        for _ in 0..attempts {
            if !self.inner.is_connected() {
                self.reconnect_with_backoff()?;
            }
            match op(&mut self.inner) {
                Ok(v) => return Ok(v),
                Err(e) if is_connection_failure(&e) => {
                    self.inner.abort();
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(Error::Closed))
    }

    fn reconnect_with_backoff(&mut self) -> Result<bool> {
        let mut delay = self.backoff.initial;
        let attempts = self.backoff.max_attempts.unwrap_or(u32::MAX).max(1);
        let mut last = Error::Closed;
        for attempt in 0..attempts {
            if attempt > 0 {
                std::thread::sleep(delay);
                delay = (delay * 2).min(self.backoff.max);
            }
            match self.try_connect() {
                Ok(present) => return Ok(present),
                Err(e) if is_connection_failure(&e) => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    fn try_connect(&mut self) -> Result<bool> {
        let present = self.inner.connect(self.clean_session)?;
        if self.connected_once {
            self.reconnects = self.reconnects.saturating_add(1);
        }
        self.connected_once = true;
        if !present {
            for (topic, qos) in self.subscriptions.clone() {
                self.inner.subscribe(&topic, qos)?;
            }
        }
        Ok(present)
    }
}

/// Failures that a reconnect may cure.
fn is_connection_failure(e: &Error<std::io::Error>) -> bool {
    matches!(
        e,
        Error::Io(_)
            | Error::Closed
            | Error::Timeout
            | Error::Mqtt(crate::core::Error::KeepAliveTimeout)
            | Error::Mqtt(crate::core::Error::NotConnected)
            | Error::Mqtt(crate::core::Error::ServerDisconnect(_))
    )
}
