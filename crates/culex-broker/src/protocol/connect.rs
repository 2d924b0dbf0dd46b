//! CONNECT, in named steps: validate, assign an id, authenticate, accept
//! the will, claim the session, answer with CONNACK.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use culex_codec::packet::{ConnAck, Connect};
use culex_codec::{
    check_frame, decode_packet, DecodeError, Packet, Properties, Protocol, QoS, ReasonCode,
};

use super::connection::{
    protocol_tag, too_deep, ClaimOutcome, ClusterClaim, Connection, Handshake, Vouched,
    MQTT_MAX_PACKET, TOPIC_ALIAS_MAXIMUM,
};
use super::error::{Close, Violation};
use crate::auth::backoff::Turn;
use crate::core::message::{slice_or_copy, Message, MessageProps};
use crate::core::Claim;

/// What was settled about a CONNECT before its session is claimed.
pub(super) struct Accepted {
    client_id: Arc<str>,
    assigned: bool,
    keep_alive: u16,
    props: ConnAckProps,
    will: Option<(Box<Message>, u32)>,
    expiry: Option<u32>,
}

/// CONNACK properties decided along the way.
#[derive(Default)]
struct ConnAckProps {
    server_keep_alive: Option<u16>,
}

impl Connection {
    /// Handles the CONNECT once it is complete in `input` (consumed when
    /// handled), answering into `out`. `Err(Close::Refused)` when CONNACK
    /// refused it; other errors close without CONNACK.
    pub fn handle_connect(
        &mut self,
        now: Instant,
        input: &mut BytesMut,
        out: &mut BytesMut,
    ) -> Result<Handshake, Close> {
        let result = self.connect_step(now, input, out);
        self.count_packets();
        result
    }

    fn connect_step(
        &mut self,
        now: Instant,
        input: &mut BytesMut,
        out: &mut BytesMut,
    ) -> Result<Handshake, Close> {
        let frame = match self.pending_connect.take() {
            Some(frame) => frame,
            None => {
                let Some(len) =
                    check_frame(input, self.max_packet_size).map_err(Violation::from)?
                else {
                    return Ok(Handshake::Incomplete);
                };
                self.packets_in += 1;
                input.split_to(len).freeze()
            }
        };
        let c = match decode_packet(&frame, Protocol::V3_1_1) {
            Ok(Packet::Connect(c)) => c,
            Ok(_) => return Err(Violation::FirstPacketNotConnect.into()),
            Err(DecodeError::UnsupportedProtocol { .. }) => {
                // CONNACK 1 then close [MQTT-3.1.2-2].
                return Err(self.refuse(ReasonCode::UnsupportedProtocolVersion, out));
            }
            Err(e) => return Err(Violation::from(e).into()),
        };
        if let Some(at) = self.take_turn(&c, now, out)? {
            self.pending_connect = Some(frame.clone());
            return Ok(Handshake::WaitUntil(at));
        }
        if let Some(claim) = self.on_connect(&c, &frame, now, out)? {
            self.pending_connect = Some(frame.clone());
            return Ok(Handshake::Claim(claim));
        }
        Ok(Handshake::Accepted)
    }

    /// The cluster's answer to [`Handshake::Claim`]: call
    /// [`Connection::handle_connect`] again next.
    pub fn set_cluster_claim(&mut self, outcome: ClaimOutcome) {
        self.claim_outcome = Some(outcome);
    }

    /// The login turn of this client's address (see `auth::backoff`):
    /// `Some(at)` to wait until then; refused with CONNACK 0x9F when its
    /// turns are taken too far ahead.
    fn take_turn(
        &mut self,
        c: &Connect<'_>,
        now: Instant,
        out: &mut BytesMut,
    ) -> Result<Option<Instant>, Close> {
        if self.turn_taken {
            return Ok(None);
        }
        self.turn_taken = true;
        match self.core.auth_backoff().turn(self.peer.ip(), now) {
            Turn::Now => Ok(None),
            Turn::At(at) => Ok(Some(at)),
            Turn::Refused => {
                self.protocol = c.protocol;
                self.problem_info = c.properties.request_problem_information != Some(0);
                tracing::info!(
                    "Client {} from {} refused: too many failed logins from this address.",
                    c.client_id,
                    self.peer.host()
                );
                self.send_connack(
                    false,
                    ReasonCode::ConnectionRateExceeded,
                    Properties::default(),
                    out,
                );
                Err(Close::Refused)
            }
        }
    }

    /// Settles the CONNECT, claims its session and answers with CONNACK;
    /// in a cluster, first returns the claim the cluster must make.
    fn on_connect(
        &mut self,
        c: &Connect<'_>,
        frame: &Bytes,
        now: Instant,
        out: &mut BytesMut,
    ) -> Result<Option<ClusterClaim>, Close> {
        self.protocol = c.protocol;
        self.bridge = c.bridge;
        self.problem_info = c.properties.request_problem_information != Some(0);
        self.client_max_packet_size = c.properties.maximum_packet_size;
        let mut accepted = match self.claim_pending.take() {
            Some(accepted) => {
                if self.claim_outcome.take() == Some(ClaimOutcome::Unavailable) {
                    tracing::info!(
                        "Client {} refused: the cluster is unreachable and its session would not be safe.",
                        accepted.client_id
                    );
                    return Err(self.refuse(ReasonCode::ServerUnavailable, out));
                }
                *accepted
            }
            None => {
                let accepted = self.validate(c, frame, now, out)?;
                if self.core.is_clustered() {
                    let claim = ClusterClaim {
                        client_id: accepted.client_id.clone(),
                        clean_start: c.clean_start,
                        expiry: accepted.expiry,
                        will: accepted.will.as_ref().map(|(w, d)| (Message::clone(w), *d)),
                    };
                    self.claim_pending = Some(Box::new(accepted));
                    return Ok(Some(claim));
                }
                accepted
            }
        };
        self.out_alias_max = c.properties.topic_alias_maximum.unwrap_or(0);
        let will_log = accepted
            .will
            .as_ref()
            .map(|(w, _)| (w.payload.len(), w.retain, w.qos, w.topic.clone()));
        let claimed = self.core.claim(
            Claim {
                client_id: &accepted.client_id,
                clean_start: c.clean_start,
                expiry: accepted.expiry,
                will: accepted.will.take(),
                username: self.username.clone(),
                listener: self.listener,
                receive_maximum: c.properties.receive_maximum.unwrap_or(u16::MAX),
                conn: self.origin.signal.clone(),
                peer: self.peer.socket_addr(),
                protocol: c.protocol,
                keep_alive: accepted.keep_alive,
            },
            now,
        );
        self.session = Some(claimed.session);
        self.connected = true;
        self.last_seen = now;
        self.log_connected(c, accepted.keep_alive);
        log_will(will_log);
        let props = self.connack_properties(&accepted);
        self.send_connack(claimed.present, ReasonCode::Success, props, out);
        Ok(None)
    }

    /// Every check of a CONNECT before its session is claimed; a refusal
    /// sends its CONNACK and returns `Err(Close::Refused)`.
    fn validate(
        &mut self,
        c: &Connect<'_>,
        frame: &Bytes,
        now: Instant,
        out: &mut BytesMut,
    ) -> Result<Accepted, Close> {
        let v5 = c.protocol.is_v5();
        if v5 && c.properties.authentication_method.is_some() {
            // No enhanced authentication methods are supported [MQTT-4.12.0-1].
            return Err(self.refuse(ReasonCode::BadAuthenticationMethod, out));
        }
        let (client_id, assigned) = self.assign_id(c, out)?;
        self.client_id = client_id.clone();
        self.username = match &self.vouched {
            Vouched::User(name) => Some(name.clone()),
            Vouched::No | Vouched::Missing => c.username.map(Arc::from),
        };
        let mut props = ConnAckProps::default();
        let keep_alive = self.negotiate_keep_alive(c, &mut props);
        self.authenticate(c, now, out)?;
        let will = self.accept_will(c, &client_id, frame, now, out)?;
        let expiry = self.session_expiry(c);
        Ok(Accepted {
            client_id,
            assigned,
            keep_alive,
            props,
            will,
            expiry,
        })
    }

    /// The client id: its own, or one assigned for an empty id. A zero-length
    /// id needs clean session in 3.1.1 [MQTT-3.1.3-8]; 5.0 allows either and
    /// returns the id [MQTT-3.1.3-7].
    fn assign_id(
        &mut self,
        c: &Connect<'_>,
        out: &mut BytesMut,
    ) -> Result<(Arc<str>, bool), Close> {
        if !c.client_id.is_empty() {
            return Ok((Arc::from(c.client_id), false));
        }
        let security = self.core.config().security_of(self.listener);
        if !security.allow_zero_length_clientid
            || (!c.protocol.is_v5() && !c.clean_start)
            || c.protocol == Protocol::V3_1
        {
            return Err(self.refuse(ReasonCode::ClientIdentifierNotValid, out));
        }
        let prefix = &security.auto_id_prefix;
        let id = format!("{prefix}{}", uuid::Uuid::new_v4().hyphenated())
            .to_uppercase()
            .replacen(&prefix.to_uppercase(), prefix, 1);
        Ok((Arc::from(id), true))
    }

    /// 5.0 clients are told to use `max_keepalive` through Server Keep
    /// Alive when they ask for more, or for none (65535 by default, as
    /// mosquitto 2.0 does) [MQTT-3.2.2-21]; 3.x clients keep their own
    /// value, as with mosquitto 2.0. Returns the value the client asked for.
    fn negotiate_keep_alive(&mut self, c: &Connect<'_>, props: &mut ConnAckProps) -> u16 {
        let max_keepalive = self.core.config().limits.max_keepalive;
        let mut keep_alive = c.keep_alive;
        if c.protocol.is_v5() && (keep_alive > max_keepalive || keep_alive == 0) {
            keep_alive = max_keepalive;
            props.server_keep_alive = Some(max_keepalive);
        }
        if keep_alive > 0 {
            self.keepalive = Some(Duration::from_millis(u64::from(keep_alive) * 1500));
        }
        c.keep_alive
    }

    /// Checks the credentials; a failure counts for the address's back-off.
    /// A username the client certificate vouches for needs no password.
    fn authenticate(
        &mut self,
        c: &Connect<'_>,
        now: Instant,
        out: &mut BytesMut,
    ) -> Result<(), Close> {
        let accepted = match self.vouched {
            Vouched::User(_) => true,
            Vouched::Missing => false,
            Vouched::No => {
                let login = self
                    .core
                    .policy(self.listener)
                    .login(c.username, c.password);
                login == crate::auth::Login::Accepted
            }
        };
        if let Some(delay) = self
            .core
            .auth_backoff()
            .record(self.peer.ip(), accepted, now)
        {
            tracing::info!(
                "Repeated failed logins from {}: its next attempts are checked one at a time, {} ms apart.",
                self.peer.host(),
                delay.as_millis()
            );
        }
        if accepted {
            return Ok(());
        }
        // Bad credentials: 5 in 3.x, 0x87 in 5.0, as mosquitto does.
        let refused = self.refuse(ReasonCode::NotAuthorized, out);
        if self.core.config().log.connection_messages {
            tracing::info!("Client {} disconnected, not authorised.", self.client_id);
        }
        Err(refused)
    }

    /// The will, if the CONNECT has one the broker can take. A will outside
    /// the client's ACL is accepted and dropped when it fires, as mosquitto
    /// does.
    fn accept_will(
        &mut self,
        c: &Connect<'_>,
        client_id: &Arc<str>,
        frame: &Bytes,
        now: Instant,
        out: &mut BytesMut,
    ) -> Result<Option<(Box<Message>, u32)>, Close> {
        let Some(w) = &c.will else {
            return Ok(None);
        };
        let v5 = c.protocol.is_v5();
        let limits = &self.core.config().limits;
        if too_deep(w.topic.as_str(), limits.max_topic_levels) {
            if !v5 {
                // 3.x has no CONNACK code for it: closed as mosquitto closes
                // on a topic past its level limit.
                return Err(Violation::WillTopicTooDeep(limits.max_topic_levels).into());
            }
            return Err(self.refuse(ReasonCode::TopicNameInvalid, out));
        }
        if v5 && w.qos > limits.max_qos {
            return Err(self.refuse(ReasonCode::QoSNotSupported, out));
        }
        if v5 && w.retain && !limits.retain_available {
            return Err(self.refuse(ReasonCode::RetainNotSupported, out));
        }
        let topic = match &self.mount {
            Some(mount) => Arc::from(format!("{mount}{}", w.topic.as_str())),
            None => Arc::from(w.topic.as_str()),
        };
        let will = Message {
            topic,
            payload: slice_or_copy(frame, w.payload),
            qos: w.qos.min(limits.max_qos),
            retain: w.retain && limits.retain_available,
            props: MessageProps::from_properties(&w.properties, frame),
            received: now,
            origin: Some(client_id.clone()),
        };
        Ok(Some((
            Box::new(will),
            w.properties.will_delay_interval.unwrap_or(0),
        )))
    }

    /// Session lifetime after disconnect: `None` is forever.
    fn session_expiry(&mut self, c: &Connect<'_>) -> Option<u32> {
        if c.protocol.is_v5() {
            let secs = c.properties.session_expiry_interval.unwrap_or(0);
            self.connect_expiry = secs;
            (secs != u32::MAX).then_some(secs)
        } else if c.clean_start {
            Some(0)
        } else {
            self.core
                .config()
                .persistent_client_expiration
                .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
        }
    }

    /// Refuses the CONNECT with `reason` (CONNACK without properties but a
    /// Reason String).
    fn refuse(&mut self, reason: ReasonCode, out: &mut BytesMut) -> Close {
        self.send_connack(false, reason, Properties::default(), out);
        Close::Refused
    }

    /// mosquitto's line, with the username that ACLs see (a certificate's
    /// with `use_identity_as_username`).
    fn log_connected(&self, c: &Connect<'_>, keep_alive: u16) {
        if !self.core.config().log.connection_messages {
            return;
        }
        let user = match &self.username {
            Some(u) => format!(", u'{u}'"),
            None => String::new(),
        };
        tracing::info!(
            "New client connected from {} as {} ({}, c{}, k{}{}).",
            self.peer,
            self.client_id,
            protocol_tag(c.protocol),
            u8::from(c.clean_start),
            keep_alive,
            user
        );
    }

    /// The properties of a successful 5.0 CONNACK.
    fn connack_properties<'a>(&self, accepted: &'a Accepted) -> Properties<'a> {
        let mut props = Properties::default();
        if !self.protocol.is_v5() {
            return props;
        }
        let limits = &self.core.config().limits;
        props.server_keep_alive = accepted.props.server_keep_alive;
        props.assigned_client_identifier = accepted.assigned.then_some(&*accepted.client_id);
        props.topic_alias_maximum = Some(TOPIC_ALIAS_MAXIMUM);
        if self.receive_maximum() < u16::MAX {
            props.receive_maximum = Some(self.receive_maximum());
        }
        if limits.max_qos != QoS::ExactlyOnce {
            props.maximum_qos = Some(limits.max_qos as u8);
        }
        if !limits.retain_available {
            props.retain_available = Some(0);
        }
        if self.max_packet_size < MQTT_MAX_PACKET {
            props.maximum_packet_size = Some(self.max_packet_size);
        }
        props
    }

    fn send_connack(
        &mut self,
        session_present: bool,
        reason: ReasonCode,
        properties: Properties<'_>,
        out: &mut BytesMut,
    ) {
        // Session present is 0 on refusal [MQTT-3.2.2-4].
        let session_present = session_present && reason == ReasonCode::Success;
        let mut properties = if self.protocol.is_v5() {
            properties
        } else {
            Properties::default()
        };
        if reason != ReasonCode::Success && properties.reason_string.is_none() {
            let text = refusal_text(reason);
            if self.reason_string_allowed(text) {
                properties.reason_string = Some(text);
            }
        }
        self.encode(
            &Packet::ConnAck(ConnAck {
                session_present,
                reason,
                properties,
            }),
            out,
        );
        let code = if self.protocol.is_v5() {
            reason as u8
        } else {
            reason.to_v3_connack()
        };
        tracing::debug!(
            "Sending CONNACK to {} ({}, {})",
            self.client_id,
            u8::from(session_present),
            code
        );
    }
}

fn log_will(will: Option<(usize, bool, QoS, Arc<str>)>) {
    match will {
        Some((len, retain, qos, topic)) => {
            tracing::debug!(
                "Will message specified ({len} bytes) (r{}, q{}).",
                u8::from(retain),
                qos as u8
            );
            tracing::debug!("\t{topic}");
        }
        None => tracing::debug!("No will message specified."),
    }
}

/// The Reason String of a CONNACK refusal (5.0).
fn refusal_text(reason: ReasonCode) -> &'static str {
    match reason {
        ReasonCode::BadAuthenticationMethod => "authentication method not supported",
        ReasonCode::ClientIdentifierNotValid => "client identifier not valid",
        ReasonCode::NotAuthorized => "not authorised",
        ReasonCode::QoSNotSupported => "will QoS above the server's maximum QoS",
        ReasonCode::RetainNotSupported => "retained will, but retain is not available",
        ReasonCode::UnsupportedProtocolVersion => "unsupported protocol version",
        ReasonCode::TopicNameInvalid => "will topic has too many levels",
        ReasonCode::ConnectionRateExceeded => "too many failed logins from this address",
        _ => "",
    }
}
