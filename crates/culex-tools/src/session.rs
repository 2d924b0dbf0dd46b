//! The MQTT side of `culex pub`, `culex sub` and `culex rr`: what each tool
//! does once connected, with mosquitto's messages and exit codes.

use crate::args::{Config, PayloadSource, PropertyTarget, Tool};
use crate::format::{self, Received, Timestamp};
use crate::link::{self, Incoming, Link, LinkError, OwnedMessage};
use culex_client::core::Message;
use culex_codec::topic::TopicFilter;
use culex_codec::{Properties, RetainHandling, SubscriptionOptions};
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

/// Exit code of `-W` when it expires, as mosquitto's tools use.
pub const EXIT_TIMEOUT: u8 = 27;

/// Connects, does the tool's work, and returns the exit code.
pub fn run(
    config: &Config,
    stdin: &mut (dyn BufRead + Send),
    stdout: &mut (dyn Write + Send),
    stderr: &mut (dyn Write + Send),
) -> u8 {
    let mut tool = Run {
        config,
        stdout,
        stderr,
        started: Instant::now(),
    };
    if config.tls.enabled() || config.tls.engine {
        if let Err(message) = crate::tls::check(config) {
            tool.error(&message);
            return 1;
        }
    }
    // MQTT 3.x has no password without a user name [MQTT-3.1.2-22].
    if config.password.is_some() && config.username.is_none() && !link::protocol(config).is_v5() {
        tool.error("Error: Problem setting username and/or password.\n");
        return 1;
    }
    // libmosquitto refuses CONNECT properties outside MQTT 5.
    let connect_properties = config
        .properties
        .iter()
        .any(|p| p.target == PropertyTarget::Connect);
    if connect_properties && !link::protocol(config).is_v5() {
        tool.error("Unable to connect (This feature is not supported.).\n");
        return 1;
    }
    match config.tool {
        Tool::Pub => tool.publish(stdin),
        Tool::Sub => tool.subscribe(),
        Tool::Rr => tool.request(stdin),
    }
}

struct Run<'a> {
    config: &'a Config,
    stdout: &'a mut (dyn Write + Send),
    stderr: &'a mut (dyn Write + Send),
    started: Instant,
}

/// libmosquitto's text for a 3.x CONNACK return code.
fn connack_string(code: u8) -> &'static str {
    match code {
        0 => "Connection Accepted.",
        1 => "Connection Refused: unacceptable protocol version.",
        2 => "Connection Refused: identifier rejected.",
        3 => "Connection Refused: broker unavailable.",
        4 => "Connection Refused: bad user name or password.",
        5 => "Connection Refused: not authorised.",
        _ => "Connection Refused: unknown reason.",
    }
}

/// libmosquitto's text for an MQTT 5 reason code.
pub fn reason_string(code: u8) -> &'static str {
    match code {
        0x00 => "Success",
        0x01 => "Granted QoS 1",
        0x02 => "Granted QoS 2",
        0x04 => "Disconnect with Will Message",
        0x10 => "No matching subscribers",
        0x11 => "No subscription existed",
        0x18 => "Continue authentication",
        0x19 => "Re-authenticate",
        0x80 => "Unspecified error",
        0x81 => "Malformed Packet",
        0x82 => "Protocol Error",
        0x83 => "Implementation specific error",
        0x84 => "Unsupported Protocol Version",
        0x85 => "Client Identifier not valid",
        0x86 => "Bad User Name or Password",
        0x87 => "Not authorized",
        0x88 => "Server unavailable",
        0x89 => "Server busy",
        0x8A => "Banned",
        0x8B => "Server shutting down",
        0x8C => "Bad authentication method",
        0x8D => "Keep Alive timeout",
        0x8E => "Session taken over",
        0x8F => "Topic Filter invalid",
        0x90 => "Topic Name invalid",
        0x91 => "Packet Identifier in use",
        0x92 => "Packet Identifier not found",
        0x93 => "Receive Maximum exceeded",
        0x94 => "Topic Alias invalid",
        0x95 => "Packet too large",
        0x96 => "Message rate too high",
        0x97 => "Quota exceeded",
        0x98 => "Administrative action",
        0x99 => "Payload format invalid",
        0x9A => "Retain not supported",
        0x9B => "QoS not supported",
        0x9C => "Use another server",
        0x9D => "Server moved",
        0x9E => "Shared Subscriptions not supported",
        0x9F => "Connection rate exceeded",
        0xA0 => "Maximum connect time",
        0xA1 => "Subscription identifiers not supported",
        0xA2 => "Wildcard Subscriptions not supported",
        _ => "Unknown reason",
    }
}

/// A small PRNG for `--random-filter` (xorshift64*, seeded from the clock).
struct Random(u64);

impl Random {
    fn new() -> Random {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15);
        Random(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

impl Run<'_> {
    fn error(&mut self, text: &str) {
        if !self.config.quiet {
            let _ = self.stderr.write_all(text.as_bytes());
            let _ = self.stderr.flush();
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.config
            .timeout
            .map(|s| self.started + Duration::from_secs(u64::from(s)))
    }

    fn timed_out(&mut self) -> u8 {
        self.error("Timed out\n");
        EXIT_TIMEOUT
    }

    fn v5(&self) -> bool {
        link::protocol(self.config).is_v5()
    }

    /// Reports a failed connection as mosquitto does and returns the exit code.
    fn connect_failed(&mut self, error: LinkError) -> u8 {
        match error {
            LinkError::Connect(text) | LinkError::Lost(text) => {
                self.error(&format!("Error: {text}\n"));
                1
            }
            LinkError::Lookup => {
                self.error("Unable to connect (Lookup error.).\n");
                1
            }
            LinkError::Refused(code) => {
                let v5 = self.v5();
                let number = if v5 { code as u8 } else { code.to_v3_connack() };
                let text = if v5 || self.config.tool == Tool::Rr {
                    reason_string(number)
                } else {
                    connack_string(number)
                };
                self.error(&format!("Connection error: {text}\n"));
                if self.config.tool == Tool::Pub {
                    self.error(if v5 {
                        "Error: A network protocol error occurred when communicating with the broker.\n"
                    } else {
                        "Error: The connection was refused.\n"
                    });
                }
                number
            }
        }
    }

    fn connect(&mut self) -> Result<Link, u8> {
        let id = self.config.client_id();
        let mut link = Link::connect(self.config, &id).map_err(|e| self.connect_failed(e))?;
        self.flush_log(&mut link);
        Ok(link)
    }

    /// Prints `-d`'s debug lines gathered by the link, as libmosquitto does.
    fn flush_log(&mut self, link: &mut Link) {
        self.print_log(std::mem::take(&mut link.log));
    }

    fn print_log(&mut self, lines: Vec<String>) {
        for line in lines {
            let _ = writeln!(self.stdout, "{line}");
        }
        let _ = self.stdout.flush();
    }

    fn poll_link(
        &mut self,
        link: &mut Link,
        wait: Option<Duration>,
    ) -> Result<Vec<Incoming>, LinkError> {
        let result = link.poll(wait);
        self.flush_log(link);
        result
    }

    /// Polls for at most the time `-W` leaves before `deadline`; `None` once
    /// it has run out.
    fn poll_before(
        &mut self,
        link: &mut Link,
        deadline: Option<Instant>,
    ) -> Option<Result<Vec<Incoming>, LinkError>> {
        let wait = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if wait == Some(Duration::ZERO) {
            return None;
        }
        Some(self.poll_link(link, wait))
    }

    /// Ends a run whose `-W` ran out: "Timed out", a DISCONNECT, [`EXIT_TIMEOUT`].
    fn end_timed_out(&mut self, link: Link) -> u8 {
        let code = self.timed_out();
        self.disconnect(link);
        code
    }

    fn print(&mut self, message: &OwnedMessage) {
        let received = Received {
            topic: &message.topic,
            payload: &message.payload,
            qos: message.qos,
            retain: message.retain,
            mid: message.mid,
            properties: &message.properties,
        };
        let mut out = Vec::new();
        let errors = format::render(&self.config.output, &received, &Timestamp::now(), &mut out);
        let _ = self.stdout.write_all(&out);
        let _ = self.stdout.flush();
        for error in errors {
            self.error(&error);
        }
    }

    fn disconnect(&mut self, link: Link) {
        let users = link::user_properties(&self.config.properties, PropertyTarget::Disconnect);
        let lines = link.disconnect(link::properties(
            &self.config.properties,
            PropertyTarget::Disconnect,
            &users,
        ));
        self.print_log(lines);
    }

    /// Waits until the link can take another QoS 1/2 message, handing any
    /// completions to `on_done`.
    fn wait_for_room(&mut self, link: &mut Link, outstanding: &mut Vec<u16>) -> Result<(), u8> {
        let limit = Instant::now() + Duration::from_secs(u64::from(self.config.keepalive) * 2);
        while !link.can_publish() || outstanding.len() >= usize::from(self.config.max_inflight) {
            if Instant::now() >= limit {
                self.error("Error: The connection was lost.\n");
                return Err(1);
            }
            self.settle(link, outstanding, Some(Duration::from_millis(200)))?;
        }
        Ok(())
    }

    /// Handles acknowledgements arriving within `wait`.
    fn settle(
        &mut self,
        link: &mut Link,
        outstanding: &mut Vec<u16>,
        wait: Option<Duration>,
    ) -> Result<(), u8> {
        match self.poll_link(link, wait) {
            Ok(events) => {
                for event in events {
                    if let Incoming::Published { id, reason } = event {
                        outstanding.retain(|o| *o != id);
                        if reason.is_error() {
                            self.error(&format!(
                                "Warning: Publish {id} failed: {}.\n",
                                reason_string(reason as u8)
                            ));
                        }
                    }
                }
                Ok(())
            }
            Err(_) => {
                self.error("Error: The connection was lost.\n");
                Err(1)
            }
        }
    }

    fn send(
        &mut self,
        link: &mut Link,
        payload: &[u8],
        outstanding: &mut Vec<u16>,
    ) -> Result<(), u8> {
        let config = self.config;
        let Some(topic) = config.topic.as_deref() else {
            return Err(1);
        };
        if config.qos > 0 {
            self.wait_for_room(link, outstanding)?;
        }
        let users = link::user_properties(&config.properties, PropertyTarget::Publish);
        let mut message = Message::new(topic, payload, link::qos(config.qos), config.retain);
        message.properties = link::properties(&config.properties, PropertyTarget::Publish, &users);
        let published = link.publish(&message);
        self.flush_log(link);
        match published {
            Ok(Some(id)) => {
                outstanding.push(id);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(_) => {
                self.error("Error: The connection was lost.\n");
                Err(1)
            }
        }
    }

    fn finish_publishing(&mut self, link: &mut Link, outstanding: &mut Vec<u16>) -> Result<(), u8> {
        let limit = Instant::now() + Duration::from_secs(u64::from(self.config.keepalive) * 2);
        while !outstanding.is_empty() {
            if Instant::now() >= limit {
                self.error("Error: The connection was lost.\n");
                return Err(1);
            }
            self.settle(link, outstanding, Some(Duration::from_millis(200)))?;
        }
        Ok(())
    }

    /// Reads the payload of `-m`, `-f`, `-s` or `-n`, with mosquitto's messages.
    fn load_payload(&mut self, stdin: &mut (dyn BufRead + Send)) -> Result<Vec<u8>, u8> {
        match &self.config.payload {
            Some(PayloadSource::Message(m)) => Ok(m.clone()),
            Some(PayloadSource::Null) | None | Some(PayloadSource::StdinLines) => Ok(Vec::new()),
            Some(PayloadSource::File(path)) => match std::fs::read(path) {
                Ok(bytes) if bytes.len() <= 268_435_455 => Ok(bytes),
                Ok(_) => {
                    self.error(&format!(
                        "Error: File must be less than 268435455 bytes.\n\nError loading input file \"{}\".\n",
                        path.display()
                    ));
                    Err(1)
                }
                Err(_) if path.is_dir() => {
                    self.error(&format!(
                        "Error: File must be less than 268435455 bytes.\n\nError loading input file \"{}\".\n",
                        path.display()
                    ));
                    Err(1)
                }
                Err(_) => {
                    self.error(&format!(
                        "Error: Unable to open file \"{}\".\nError loading input file \"{}\".\n",
                        path.display(),
                        path.display()
                    ));
                    Err(1)
                }
            },
            Some(PayloadSource::Stdin) => {
                let mut bytes = Vec::new();
                match stdin.read_to_end(&mut bytes) {
                    Ok(_) => Ok(bytes),
                    Err(_) => {
                        self.error("Error loading input from stdin.\n");
                        Err(1)
                    }
                }
            }
        }
    }

    /// `culex pub`.
    fn publish(&mut self, stdin: &mut (dyn BufRead + Send)) -> u8 {
        let payload = match self.load_payload(stdin) {
            Ok(payload) => payload,
            Err(code) => return code,
        };
        let mut link = match self.connect() {
            Ok(link) => link,
            Err(code) => return code,
        };
        let mut outstanding = Vec::new();
        let result = if self.config.payload == Some(PayloadSource::StdinLines) {
            self.publish_lines(&mut link, stdin, &mut outstanding)
        } else {
            self.publish_repeated(&mut link, &payload, &mut outstanding)
        };
        let result = result.and_then(|()| self.finish_publishing(&mut link, &mut outstanding));
        match result {
            Ok(()) => {
                self.disconnect(link);
                0
            }
            Err(code) => code,
        }
    }

    fn publish_repeated(
        &mut self,
        link: &mut Link,
        payload: &[u8],
        outstanding: &mut Vec<u16>,
    ) -> Result<(), u8> {
        for n in 0..self.config.repeat_count {
            if n > 0 && !self.config.repeat_delay.is_zero() {
                // Keep the connection serviced while waiting.
                let until = Instant::now() + self.config.repeat_delay;
                while Instant::now() < until {
                    self.settle(link, outstanding, Some(until - Instant::now()))?;
                }
            }
            self.send(link, payload, outstanding)?;
        }
        Ok(())
    }

    fn publish_lines(
        &mut self,
        link: &mut Link,
        stdin: &mut (dyn BufRead + Send),
        outstanding: &mut Vec<u16>,
    ) -> Result<(), u8> {
        let mut line = Vec::new();
        loop {
            line.clear();
            match stdin.read_until(b'\n', &mut line) {
                Ok(0) => return Ok(()),
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    let payload = std::mem::take(&mut line);
                    self.send(link, &payload, outstanding)?;
                    line = payload;
                    // Service acknowledgements between lines without waiting.
                    self.settle(link, outstanding, Some(Duration::ZERO))?;
                }
                Err(_) => return Ok(()),
            }
        }
    }

    /// Subscribes to `-t` (and unsubscribes `-U`) on a fresh link; returns
    /// the packet ids awaiting acknowledgement.
    fn start_subscriptions(
        &mut self,
        link: &mut Link,
        topics: &[String],
        qos: u8,
    ) -> Result<Vec<u16>, LinkError> {
        let config = self.config;
        let mut pending = Vec::new();
        // MQTT 3.x has only the QoS bits; -R is then applied on receipt.
        let v5 = self.v5();
        let options = SubscriptionOptions {
            qos: link::qos(qos),
            no_local: false,
            retain_as_published: v5 && config.retain_as_published,
            retain_handling: if v5 && config.no_retain {
                RetainHandling::DoNotSend
            } else {
                RetainHandling::SendAtSubscribe
            },
        };
        let filters: Vec<(TopicFilter<'_>, SubscriptionOptions)> = topics
            .iter()
            .filter_map(|t| TopicFilter::new(t).ok())
            .map(|f| (f, options))
            .collect();
        if !filters.is_empty() {
            let users = link::user_properties(&config.properties, PropertyTarget::Subscribe);
            let mut props = link::properties(&config.properties, PropertyTarget::Subscribe, &users);
            props.subscription_identifiers = culex_codec::Seq::Items(&[]);
            let ids: Vec<u32> = config
                .properties
                .iter()
                .filter(|p| p.target == PropertyTarget::Subscribe && p.id == 0x0B)
                .filter_map(|p| match p.value {
                    crate::args::PropertyValue::VarInt(v) => Some(v),
                    _ => None,
                })
                .collect();
            props.subscription_identifiers = culex_codec::Seq::Items(&ids);
            pending.push(link.subscribe(&filters, props)?);
        }
        if config.tool == Tool::Sub && !config.unsubscribe.is_empty() {
            let filters: Vec<TopicFilter<'_>> = config
                .unsubscribe
                .iter()
                .filter_map(|t| TopicFilter::new(t).ok())
                .collect();
            let users = link::user_properties(&config.properties, PropertyTarget::Unsubscribe);
            let props = link::properties(&config.properties, PropertyTarget::Unsubscribe, &users);
            pending.push(link.unsubscribe(&filters, props)?);
        }
        self.flush_log(link);
        Ok(pending)
    }

    /// `culex sub`: prints messages until `-C`, `-W`, `-E` or
    /// `--retained-only` ends it, reconnecting (and resubscribing) whenever
    /// the broker goes away, as mosquitto_sub does.
    fn subscribe(&mut self) -> u8 {
        let config = self.config;
        let deadline = self.deadline();
        let mut random = Random::new();
        let mut received: u32 = 0;
        let mut ever_connected = false;
        loop {
            let attempt = Link::connect(config, &config.client_id());
            let mut link = match attempt {
                Ok(mut link) => {
                    self.flush_log(&mut link);
                    link
                }
                Err(LinkError::Refused(code)) => {
                    return self.connect_failed(LinkError::Refused(code))
                }
                Err(error) if !ever_connected => return self.connect_failed(error),
                Err(_) => {
                    // The broker is still away: try again in a second.
                    if let Some(code) = self.pause(deadline, Duration::from_secs(1)) {
                        return code;
                    }
                    continue;
                }
            };
            ever_connected = true;
            let mut pending = match self.start_subscriptions(&mut link, &config.topics, config.qos)
            {
                Ok(pending) => pending,
                Err(_) => {
                    if let Some(code) = self.pause(deadline, Duration::from_secs(1)) {
                        return code;
                    }
                    continue;
                }
            };
            let mut removing: Vec<u16> = Vec::new();
            loop {
                let events = match self.poll_before(&mut link, deadline) {
                    None => return self.end_timed_out(link),
                    Some(Ok(events)) => events,
                    Some(Err(_)) => break,
                };
                // Acknowledgements first: a message below may end the run,
                // and the acks that came with it must not be lost.
                let mut messages = Vec::new();
                let mut all_denied = false;
                for event in events {
                    match event {
                        Incoming::Subscribed { id, reasons } => {
                            pending.retain(|p| *p != id);
                            if config.debug {
                                let codes: Vec<String> =
                                    reasons.iter().map(|r| (*r as u8).to_string()).collect();
                                let line = format!("Subscribed (mid: {id}): {}", codes.join(", "));
                                self.print_log(vec![line]);
                            }
                            if !reasons.is_empty() && reasons.iter().all(|r| r.is_error()) {
                                self.error("All subscription requests were denied.\n");
                                all_denied = true;
                            }
                        }
                        Incoming::Unsubscribed { id } => pending.retain(|p| *p != id),
                        Incoming::Published { id, .. } => removing.retain(|r| *r != id),
                        Incoming::Disconnected => {}
                        Incoming::Message(message) => messages.push(message),
                    }
                }
                if all_denied {
                    // Nothing to wait for: mosquitto_sub disconnects too.
                    self.disconnect(link);
                    return 1;
                }
                for message in messages {
                    match self.on_message(
                        &mut link,
                        &message,
                        &mut random,
                        &mut received,
                        &mut removing,
                    ) {
                        Flow::Continue => {}
                        Flow::Exit(code) => {
                            let _ = self.finish_publishing(&mut link, &mut removing);
                            self.disconnect(link);
                            return code;
                        }
                    }
                }
                if config.exit_after_sub && pending.is_empty() {
                    self.disconnect(link);
                    return 0;
                }
            }
            // The connection was lost: reconnect after a pause.
            if let Some(code) = self.pause(deadline, Duration::from_secs(1)) {
                return code;
            }
        }
    }

    /// Sleeps for `pause`, or returns the timeout exit code if `-W` expires first.
    fn pause(&mut self, deadline: Option<Instant>, pause: Duration) -> Option<u8> {
        let until = Instant::now() + pause;
        match deadline {
            Some(d) if d <= until => {
                std::thread::sleep(d.saturating_duration_since(Instant::now()));
                Some(self.timed_out())
            }
            _ => {
                std::thread::sleep(pause);
                None
            }
        }
    }

    fn on_message(
        &mut self,
        link: &mut Link,
        message: &OwnedMessage,
        random: &mut Random,
        received: &mut u32,
        removing: &mut Vec<u16>,
    ) -> Flow {
        let config = self.config;
        if config
            .filter_out
            .iter()
            .any(|f| culex_codec::topic::matches(f, &message.topic))
        {
            return Flow::Continue;
        }
        if config.remove_retained && message.retain {
            let clear = Message::new(&message.topic, &[], link::qos(1), true);
            if link.can_publish() {
                if let Ok(Some(id)) = link.publish(&clear) {
                    removing.push(id);
                }
                self.flush_log(link);
            }
        }
        if config.retained_only && !message.retain {
            return Flow::Exit(0);
        }
        if message.retain && config.no_retain {
            return Flow::Continue;
        }
        if config.random_filter >= 10_000
            || (random.next() % 10_000) < u64::from(config.random_filter)
        {
            self.print(message);
        }
        *received += 1;
        match config.msg_count {
            Some(count) if *received >= count => Flow::Exit(0),
            _ => Flow::Continue,
        }
    }

    /// `culex rr`: subscribe to the response topic, send the request, print
    /// the response.
    fn request(&mut self, stdin: &mut (dyn BufRead + Send)) -> u8 {
        let config = self.config;
        let payload = match self.load_payload(stdin) {
            Ok(payload) => payload,
            Err(code) => return code,
        };
        let deadline = self.deadline();
        let mut link = match self.connect() {
            Ok(link) => link,
            Err(code) => return code,
        };
        let Some(response_topic) = config.response_topic.clone() else {
            return 1;
        };
        let mut pending = match self.start_subscriptions(
            &mut link,
            std::slice::from_ref(&response_topic),
            config.qos,
        ) {
            Ok(pending) => pending,
            Err(_) => {
                self.error("Error: The connection was lost.\n");
                return 1;
            }
        };
        let users = link::user_properties(&config.properties, PropertyTarget::Publish);
        let mut request_props: Properties<'_> =
            link::properties(&config.properties, PropertyTarget::Publish, &users);
        request_props.response_topic = Some(&response_topic);
        let correlation = request_props.correlation_data.map(<[u8]>::to_vec);
        let mut requested = false;
        let mut outstanding = Vec::new();
        loop {
            let events = match self.poll_before(&mut link, deadline) {
                None => return self.end_timed_out(link),
                Some(Ok(events)) => events,
                Some(Err(_)) => {
                    self.error("Error: The connection was lost.\n");
                    return 1;
                }
            };
            for event in events {
                match event {
                    Incoming::Subscribed { id, .. } => pending.retain(|p| *p != id),
                    Incoming::Published { id, .. } => outstanding.retain(|o| *o != id),
                    Incoming::Message(message) => {
                        let matches_request = correlation.is_none()
                            || message.properties.list.iter().any(|p| {
                                matches!(p, crate::format::MessageProperty::CorrelationData(c) if Some(c) == correlation.as_ref())
                            });
                        if message.topic != response_topic || !matches_request {
                            continue;
                        }
                        if message.retain && config.no_retain {
                            continue;
                        }
                        self.print(&message);
                        self.disconnect(link);
                        return 0;
                    }
                    _ => {}
                }
            }
            if !requested && pending.is_empty() {
                requested = true;
                let Some(topic) = config.topic.as_deref() else {
                    return 1;
                };
                let mut message = Message::new(topic, &payload, link::qos(config.qos), false);
                message.properties = request_props;
                let published = link.publish(&message);
                self.flush_log(&mut link);
                match published {
                    Ok(Some(id)) => outstanding.push(id),
                    Ok(None) => {}
                    Err(_) => {
                        self.error("Error: The connection was lost.\n");
                        return 1;
                    }
                }
            }
        }
    }
}

/// Whether `culex sub` goes on after a message.
enum Flow {
    Continue,
    Exit(u8),
}
