//! How `culex sub` and `culex rr` print a message: plain, `-v`, `-N`, and
//! mosquitto_sub's `-F` format language, byte for byte as mosquitto 2.0 does.
//!
//! The language: `%` fields with printf-style flags (`-`, `0`), width and
//! precision (`%t %p %l %m %q %r %x %X %A %C %D %E %F %P %R %S %I %U %j %J %%`),
//! `@` fields that go to `strftime` (`@Y`, `@H`, …, `@N` for nanoseconds,
//! `@@` for `@`), and `\` escapes (`\\ \0 \a \e \n \r \t \v`).
//! [`check_format`] validates a format the way mosquitto does on the command
//! line; [`render`] then writes one message.

use crate::json;
use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Local};

/// One MQTT 5 property of a received PUBLISH that the output can show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageProperty {
    /// Payload Format Indicator.
    PayloadFormat(u8),
    /// Message Expiry Interval, seconds.
    MessageExpiry(u32),
    /// Content Type.
    ContentType(String),
    /// Response Topic.
    ResponseTopic(String),
    /// Correlation Data.
    CorrelationData(Vec<u8>),
    /// Subscription Identifier.
    SubscriptionId(u32),
    /// Topic Alias.
    TopicAlias(u16),
    /// User Property (name, value).
    User(String, String),
}

/// The MQTT 5 properties of a received PUBLISH, in the order they arrived
/// (the order `%j` prints them in).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageProperties {
    /// The properties in wire order.
    pub list: Vec<MessageProperty>,
}

impl MessageProperties {
    /// Whether no property is present (a 3.1.1 message, or a bare 5.0 one).
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    fn find<'a, T>(&'a self, pick: impl Fn(&'a MessageProperty) -> Option<T>) -> Option<T> {
        self.list.iter().find_map(pick)
    }

    fn payload_format(&self) -> Option<u8> {
        self.find(|p| match p {
            MessageProperty::PayloadFormat(v) => Some(*v),
            _ => None,
        })
    }

    fn message_expiry(&self) -> Option<u32> {
        self.find(|p| match p {
            MessageProperty::MessageExpiry(v) => Some(*v),
            _ => None,
        })
    }

    fn content_type(&self) -> Option<&str> {
        self.find(|p| match p {
            MessageProperty::ContentType(v) => Some(v.as_str()),
            _ => None,
        })
    }

    fn response_topic(&self) -> Option<&str> {
        self.find(|p| match p {
            MessageProperty::ResponseTopic(v) => Some(v.as_str()),
            _ => None,
        })
    }

    fn correlation_data(&self) -> Option<&[u8]> {
        self.find(|p| match p {
            MessageProperty::CorrelationData(v) => Some(v.as_slice()),
            _ => None,
        })
    }

    fn subscription_id(&self) -> Option<u32> {
        self.find(|p| match p {
            MessageProperty::SubscriptionId(v) => Some(*v),
            _ => None,
        })
    }

    fn topic_alias(&self) -> Option<u16> {
        self.find(|p| match p {
            MessageProperty::TopicAlias(v) => Some(*v),
            _ => None,
        })
    }

    fn user(&self) -> impl Iterator<Item = (&str, &str)> {
        self.list.iter().filter_map(|p| match p {
            MessageProperty::User(k, v) => Some((k.as_str(), v.as_str())),
            _ => None,
        })
    }
}

/// A received message as the output sees it.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    /// Topic name.
    pub topic: &'a str,
    /// Payload bytes.
    pub payload: &'a [u8],
    /// QoS 0, 1 or 2.
    pub qos: u8,
    /// The retain flag as delivered.
    pub retain: bool,
    /// Packet identifier (0 for QoS 0).
    pub mid: u16,
    /// MQTT 5 properties.
    pub properties: &'a MessageProperties,
}

/// The wall-clock time a message is printed at.
#[derive(Debug, Clone, Copy)]
pub struct Timestamp {
    /// Local time.
    pub local: DateTime<Local>,
}

impl Timestamp {
    /// The current time.
    pub fn now() -> Timestamp {
        Timestamp {
            local: Local::now(),
        }
    }

    fn nanos(&self) -> u32 {
        // chrono encodes a leap second as nanos >= 1e9; print it as 999999999.
        self.local.timestamp_subsec_nanos().min(999_999_999)
    }
}

/// Output options shared by `culex sub` and `culex rr`.
#[derive(Debug, Clone, Default)]
pub struct OutputOptions {
    /// `-F`: the format, already checked by [`check_format`].
    pub format: Option<Vec<u8>>,
    /// `-v`: `topic payload`.
    pub verbose: bool,
    /// Not `-N`: end each message with a newline.
    pub eol: bool,
    /// `--pretty`: indented JSON for `%j`/`%J`.
    pub pretty: bool,
}

/// Checks a `-F` format as mosquitto does, returning its error line (with
/// trailing newline) when the format is invalid.
pub fn check_format(format: &[u8]) -> Result<(), String> {
    const INCOMPLETE: &str = "Error: Incomplete format specifier.\n";
    let len = format.len();
    let at = |i: usize| format.get(i).copied().unwrap_or(0);
    let mut i = 0;
    while i < len {
        match at(i) {
            b'%' => {
                if i + 1 == len {
                    return Err(INCOMPLETE.into());
                }
                if matches!(at(i + 1), b'0' | b'-') {
                    i += 1;
                    if i + 1 == len {
                        return Err(INCOMPLETE.into());
                    }
                }
                while at(i + 1).is_ascii_digit() {
                    i += 1;
                    if i + 1 == len {
                        return Err(INCOMPLETE.into());
                    }
                }
                if at(i + 1) == b'.' {
                    i += 1;
                    if i + 1 == len {
                        return Err(INCOMPLETE.into());
                    }
                    while at(i + 1).is_ascii_digit() {
                        i += 1;
                        if i + 1 == len {
                            return Err(INCOMPLETE.into());
                        }
                    }
                }
                let conversion = at(i + 1);
                if !b"%ACDEFIlmPpqRSrtjJUxX".contains(&conversion) {
                    return Err(format!(
                        "Error: Invalid format specifier '{}'.\n",
                        char::from(conversion)
                    ));
                }
                i += 1;
            }
            b'@' => {
                if i + 1 == len {
                    return Err(INCOMPLETE.into());
                }
                i += 1;
            }
            b'\\' => {
                if i + 1 == len {
                    return Err("Error: Incomplete escape specifier.\n".into());
                }
                let escape = at(i + 1);
                if !b"\\0aenrtv".contains(&escape) {
                    return Err(format!(
                        "Error: Invalid escape specifier '{}'.\n",
                        char::from(escape)
                    ));
                }
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Writes one message to `out` as mosquitto_sub would print it. Returns the
/// error lines mosquitto prints to stderr for fields it cannot print (`%J`
/// with a payload that is not JSON); like mosquitto, the rest of the line is
/// still printed.
pub fn render(
    options: &OutputOptions,
    message: &Received<'_>,
    time: &Timestamp,
    out: &mut Vec<u8>,
) -> Vec<String> {
    let mut errors = Vec::new();
    if let Some(format) = &options.format {
        render_format(format, options, message, time, out, &mut errors);
        return errors;
    }
    if options.verbose {
        if message.payload.is_empty() {
            if options.eol {
                out.extend_from_slice(message.topic.as_bytes());
                out.extend_from_slice(b" (null)\n");
            }
        } else {
            out.extend_from_slice(message.topic.as_bytes());
            out.push(b' ');
            out.extend_from_slice(message.payload);
            if options.eol {
                out.push(b'\n');
            }
        }
    } else if !message.payload.is_empty() {
        out.extend_from_slice(message.payload);
        if options.eol {
            out.push(b'\n');
        }
    }
    errors
}

/// The largest width or precision a `%` field honours. A longer one from the
/// command line would otherwise ask for an allocation the size of the number
/// (and `format!` panics on widths above `u16::MAX`).
const MAX_WIDTH: usize = u16::MAX as usize;

/// Flags, width and precision of one `%` field.
#[derive(Debug, Clone, Copy)]
struct Spec {
    left: bool,
    zero: bool,
    width: usize,
    precision: Option<usize>,
}

fn render_format(
    format: &[u8],
    options: &OutputOptions,
    message: &Received<'_>,
    time: &Timestamp,
    out: &mut Vec<u8>,
    errors: &mut Vec<String>,
) {
    let len = format.len();
    let at = |i: usize| format.get(i).copied().unwrap_or(0);
    let mut i = 0;
    while i < len {
        match at(i) {
            b'%' => {
                let mut spec = Spec {
                    left: false,
                    zero: false,
                    width: 0,
                    precision: None,
                };
                if i + 1 < len {
                    i += 1;
                    if at(i) == b'-' {
                        spec.left = true;
                        if i + 1 < len {
                            i += 1;
                        }
                    }
                    if at(i) == b'0' {
                        spec.zero = true;
                        if i + 1 < len {
                            i += 1;
                        }
                    }
                    while i + 1 < len && at(i).is_ascii_digit() {
                        spec.width = spec
                            .width
                            .saturating_mul(10)
                            .saturating_add(usize::from(at(i) - b'0'));
                        i += 1;
                    }
                    spec.width = spec.width.min(MAX_WIDTH);
                    if at(i) == b'.' && i + 1 < len {
                        i += 1;
                        let mut precision = 0usize;
                        while i + 1 < len && at(i).is_ascii_digit() {
                            precision = precision
                                .saturating_mul(10)
                                .saturating_add(usize::from(at(i) - b'0'));
                            i += 1;
                        }
                        spec.precision = Some(precision.min(MAX_WIDTH));
                    }
                    if let Err(error) = field(at(i), spec, options, message, time, out) {
                        errors.push(error);
                    }
                }
            }
            b'@' => {
                if i + 1 < len {
                    i += 1;
                    match at(i) {
                        b'@' => out.push(b'@'),
                        b'N' => out.extend_from_slice(format!("{:09}", time.nanos()).as_bytes()),
                        conversion => strftime_field(conversion, time, out),
                    }
                }
            }
            b'\\' => {
                if i + 1 < len {
                    i += 1;
                    let byte = match at(i) {
                        b'\\' => Some(b'\\'),
                        b'0' => Some(0),
                        b'a' => Some(0x07),
                        b'e' => Some(0x1b),
                        b'n' => Some(b'\n'),
                        b'r' => Some(b'\r'),
                        b't' => Some(b'\t'),
                        b'v' => Some(0x0b),
                        _ => None,
                    };
                    out.extend(byte);
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    if options.eol {
        out.push(b'\n');
    }
}

fn field(
    conversion: u8,
    spec: Spec,
    options: &OutputOptions,
    message: &Received<'_>,
    time: &Timestamp,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let props = message.properties;
    match conversion {
        b'%' => out.push(b'%'),
        b'A' => int_or_blank(props.topic_alias().map(i64::from), spec, out),
        b'C' => match props.content_type() {
            Some(value) => string(value.as_bytes(), spec, out),
            None => blank(b' ', spec.width, out),
        },
        b'D' => {
            if let Some(data) = props.correlation_data() {
                out.extend_from_slice(data);
            }
        }
        b'E' => int_or_blank(
            props.message_expiry().map(|v| i64::from(v as i32)),
            spec,
            out,
        ),
        b'F' => int_or_blank(props.payload_format().map(i64::from), spec, out),
        b'I' => {
            let text = time.local.format("%Y-%m-%dT%H:%M:%S%z").to_string();
            string(text.as_bytes(), spec, out);
        }
        b'j' | b'J' => {
            let escaped = conversion == b'j';
            match json::message(message, time, escaped, options.pretty) {
                Some(text) => out.extend_from_slice(&text),
                None => {
                    return Err(format!(
                        "Error: Message payload is not valid JSON on topic {}.\n",
                        message.topic
                    ))
                }
            }
        }
        b'l' => int(message.payload.len() as i64, spec, out),
        b'm' => int(i64::from(message.mid), spec, out),
        b'P' => {
            for (n, (name, value)) in props.user().enumerate() {
                if n > 0 {
                    out.push(b' ');
                }
                out.extend_from_slice(name.as_bytes());
                out.push(b':');
                out.extend_from_slice(value.as_bytes());
            }
        }
        b'p' => payload(message.payload, Hex::None, spec, out),
        b'q' => out.push(b'0' + message.qos),
        b'R' => {
            if let Some(topic) = props.response_topic() {
                string(topic.as_bytes(), spec, out);
            }
        }
        b'r' => out.push(if message.retain { b'1' } else { b'0' }),
        b'S' => int_or_blank(
            props.subscription_id().map(|v| i64::from(v as i32)),
            spec,
            out,
        ),
        b't' => string(message.topic.as_bytes(), spec, out),
        b'U' => {
            let text = format!("{}.{:09}", time.local.timestamp(), time.nanos());
            out.extend_from_slice(text.as_bytes());
        }
        b'x' => payload(message.payload, Hex::Lower, spec, out),
        b'X' => payload(message.payload, Hex::Upper, spec, out),
        _ => {}
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hex {
    None,
    Lower,
    Upper,
}

/// The payload, padded as mosquitto pads it. A width truncates the payload
/// to that many bytes; in hex it then shows half as many bytes (so that the
/// digits fit the width). A `-` with no width pads with as many spaces as
/// the payload is long, because mosquitto hands `printf` a negative width.
fn payload(payload: &[u8], hex: Hex, spec: Spec, out: &mut Vec<u8>) {
    let mut shown = payload.len();
    let pad_len: i64 = if spec.width > 0 {
        shown = shown.min(spec.width);
        if hex == Hex::None {
            spec.width as i64 - shown as i64
        } else {
            shown /= 2;
            spec.width as i64 - 2 * shown as i64
        }
    } else {
        -(shown as i64)
    };
    let shown_bytes = payload.get(..shown).unwrap_or(payload);
    if !spec.left {
        let fill = if spec.zero { b'0' } else { b' ' };
        for _ in 0..pad_len.max(0) {
            out.push(fill);
        }
    }
    match hex {
        Hex::None => out.extend_from_slice(shown_bytes),
        Hex::Lower => {
            for byte in shown_bytes {
                out.extend_from_slice(format!("{byte:02x}").as_bytes());
            }
        }
        Hex::Upper => {
            for byte in shown_bytes {
                out.extend_from_slice(format!("{byte:02X}").as_bytes());
            }
        }
    }
    if spec.left {
        for _ in 0..pad_len.unsigned_abs() {
            out.push(b' ');
        }
    }
}

fn blank(fill: u8, width: usize, out: &mut Vec<u8>) {
    out.resize(out.len() + width, fill);
}

fn int_or_blank(value: Option<i64>, spec: Spec, out: &mut Vec<u8>) {
    match value {
        Some(value) => int(value, spec, out),
        None => blank(if spec.zero { b'0' } else { b' ' }, spec.width, out),
    }
}

/// An integer as printf's `%d`, `%-*d`, `%0*d` or `%*d` prints it.
fn int(value: i64, spec: Spec, out: &mut Vec<u8>) {
    let width = spec.width;
    let text = if spec.left {
        format!("{value:<width$}")
    } else if spec.zero {
        format!("{value:0width$}")
    } else {
        format!("{value:>width$}")
    };
    out.extend_from_slice(text.as_bytes());
}

/// A string as printf's `%*.*s` prints it: precision truncates bytes, width pads.
fn string(value: &[u8], spec: Spec, out: &mut Vec<u8>) {
    let shown = match spec.precision {
        Some(precision) => value.get(..precision).unwrap_or(value),
        None => value,
    };
    let pad = spec.width.saturating_sub(shown.len());
    if !spec.left {
        blank(b' ', pad, out);
    }
    out.extend_from_slice(shown);
    if spec.left {
        blank(b' ', pad, out);
    }
}

/// One `@` field: `strftime` with `%` and the conversion character. A
/// conversion glibc's strftime does not know is printed as written, as glibc
/// does; `%Z` of a zero offset is `UTC`, as glibc prints it.
fn strftime_field(conversion: u8, time: &Timestamp, out: &mut Vec<u8>) {
    const GLIBC: &[u8] = b"aAbBcCdDeFgGhHIjklmMnpPrRsStTuUVwWxXyYzZ%";
    if !GLIBC.contains(&conversion) {
        out.push(b'%');
        out.push(conversion);
        return;
    }
    if conversion == b'Z' && time.local.offset().local_minus_utc() == 0 {
        out.extend_from_slice(b"UTC");
        return;
    }
    let pattern = format!("%{}", char::from(conversion));
    if StrftimeItems::new(&pattern).any(|item| matches!(item, Item::Error)) {
        out.push(b'%');
        out.push(conversion);
    } else {
        out.extend_from_slice(time.local.format(&pattern).to_string().as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn time() -> Timestamp {
        let local = Local
            .timestamp_opt(1_700_000_000, 123_456_789)
            .single()
            .expect("valid time");
        Timestamp { local }
    }

    /// Renders `format` (which must pass [`check_format`]) for a QoS 1
    /// retained message with id 42, without a trailing newline.
    fn rendered(format: &str, topic: &str, payload: &[u8], props: &MessageProperties) -> Vec<u8> {
        let message = Received {
            topic,
            payload,
            qos: 1,
            retain: true,
            mid: 42,
            properties: props,
        };
        let options = OutputOptions {
            format: Some(format.as_bytes().to_vec()),
            eol: false,
            ..OutputOptions::default()
        };
        assert_eq!(check_format(format.as_bytes()), Ok(()), "format {format:?}");
        let mut out = Vec::new();
        assert!(render(&options, &message, &time(), &mut out).is_empty());
        out
    }

    /// Checks each `(format, payload, expect)` for a message on `a/b` with
    /// one property of each kind `%` can show.
    fn check(table: &[(&str, &[u8], &[u8])]) {
        let props = MessageProperties {
            list: vec![
                MessageProperty::User("k".into(), "v".into()),
                MessageProperty::ContentType("text/plain".into()),
                MessageProperty::CorrelationData(b"cd".to_vec()),
                MessageProperty::ResponseTopic("re/sp".into()),
                MessageProperty::User("a".into(), "b".into()),
                MessageProperty::PayloadFormat(1),
                MessageProperty::MessageExpiry(60),
                MessageProperty::SubscriptionId(7),
            ],
        };
        for (format, payload, expect) in table {
            assert_eq!(
                String::from_utf8_lossy(&rendered(format, "a/b", payload, &props)),
                String::from_utf8_lossy(expect),
                "format {format:?}"
            );
        }
    }

    #[test]
    fn percent_fields() {
        let table: &[(&str, &[u8], &[u8])] = &[
            ("%t", b"hi", b"a/b"),
            ("%p", b"hi", b"hi"),
            ("%l", b"hello", b"5"),
            ("%m", b"x", b"42"),
            ("%q", b"x", b"1"),
            ("%r", b"x", b"1"),
            ("%x", b"\x01\xff", b"01ff"),
            ("%X", b"\x01\xff", b"01FF"),
            ("%C", b"", b"text/plain"),
            ("%D", b"", b"cd"),
            ("%E", b"", b"60"),
            ("%F", b"", b"1"),
            ("%R", b"", b"re/sp"),
            ("%S", b"", b"7"),
            ("%P", b"", b"k:v a:b"),
            ("%A", b"", b""),
            ("%5A|", b"", b"     |"),
            ("%05A|", b"", b"00000|"),
            ("%%", b"", b"%"),
            ("100%% %t", b"", b"100% a/b"),
        ];
        check(table);
    }

    #[test]
    fn widths_and_precision() {
        let table: &[(&str, &[u8], &[u8])] = &[
            ("[%10t]", b"", b"[       a/b]"),
            ("[%-10t]", b"", b"[a/b       ]"),
            ("[%.1t]", b"", b"[a]"),
            ("[%5.2t]", b"", b"[   a/]"),
            ("[%-5.2t]", b"", b"[a/   ]"),
            ("[%5l]", b"abc", b"[    3]"),
            ("[%-5l]", b"abc", b"[3    ]"),
            ("[%05l]", b"abc", b"[00003]"),
            ("[%8p]", b"abc", b"[     abc]"),
            ("[%08p]", b"abc", b"[00000abc]"),
            ("[%-8p]", b"abc", b"[abc     ]"),
            ("[%2p]", b"abcdef", b"[ab]"),
            ("[%-p]", b"abc", b"[abc   ]"),
            ("[%8x]", b"abcdef", b"[  616263]"),
            ("[%-08x]", b"ab", b"[61      ]"),
        ];
        check(table);
    }

    #[test]
    fn huge_widths_are_capped_instead_of_panicking() {
        let huge = "9".repeat(30);
        for conversion in ["l", "t", "p", "x", "A", "C"] {
            let format = format!("%{huge}.{huge}{conversion}");
            let out = rendered(&format, "a/b", b"abc", &MessageProperties::default());
            assert!(out.len() <= MAX_WIDTH, "%{conversion}: {} bytes", out.len());
        }
        check(&[(
            "[%70000l]",
            b"abc",
            format!("[{:>MAX_WIDTH$}]", 3).as_bytes(),
        )]);
    }

    #[test]
    fn precision_cuts_multibyte_topics_by_bytes_as_printf_does() {
        let props = MessageProperties::default();
        for (format, expect) in [
            ("[%.1t]", &b"[\xc3]"[..]),
            ("[%4.3t]", b"[ \xc3\xa9/]"),
            ("[%2p]", b"[\xe2\x82]"),
            ("[%3x]", b"[ e2]"),
        ] {
            let out = rendered(format, "\u{e9}/x", "\u{20ac}".as_bytes(), &props);
            assert_eq!(out, expect, "format {format:?}");
        }
    }

    #[test]
    fn escapes_and_time() {
        let table: &[(&str, &[u8], &[u8])] = &[
            (r"a\tb\nc\\d", b"", b"a\tb\nc\\d"),
            (r"\0\a\e\r\v", b"", b"\0\x07\x1b\r\x0b"),
            ("@@", b"", b"@"),
            ("@N", b"", b"123456789"),
            ("@s", b"", b"1700000000"),
            ("%U", b"", b"1700000000.123456789"),
        ];
        check(table);
        let year = time().local.format("%Y").to_string();
        check(&[("@Y", b"", year.as_bytes())]);
    }

    #[test]
    fn plain_and_verbose() {
        let props = MessageProperties::default();
        let cases: &[(bool, bool, &[u8], &[u8])] = &[
            (false, true, b"hi", b"hi\n"),
            (false, false, b"hi", b"hi"),
            (false, true, b"", b""),
            (true, true, b"hi", b"a/b hi\n"),
            (true, true, b"", b"a/b (null)\n"),
            (true, false, b"", b""),
            (true, false, b"hi", b"a/b hi"),
        ];
        for (verbose, eol, payload, expect) in cases {
            let message = Received {
                topic: "a/b",
                payload,
                qos: 0,
                retain: false,
                mid: 0,
                properties: &props,
            };
            let options = OutputOptions {
                verbose: *verbose,
                eol: *eol,
                ..OutputOptions::default()
            };
            let mut out = Vec::new();
            assert!(render(&options, &message, &time(), &mut out).is_empty());
            assert_eq!(
                &out, expect,
                "verbose {verbose} eol {eol} payload {payload:?}"
            );
        }
    }

    #[test]
    fn invalid_formats_give_mosquittos_messages() {
        let table: &[(&str, &str)] = &[
            ("%", "Error: Incomplete format specifier.\n"),
            ("%-", "Error: Incomplete format specifier.\n"),
            ("%5", "Error: Incomplete format specifier.\n"),
            ("%5.", "Error: Incomplete format specifier.\n"),
            ("%5.3", "Error: Incomplete format specifier.\n"),
            ("x@", "Error: Incomplete format specifier.\n"),
            ("%z", "Error: Invalid format specifier 'z'.\n"),
            ("\\", "Error: Incomplete escape specifier.\n"),
            ("\\z", "Error: Invalid escape specifier 'z'.\n"),
        ];
        for (format, message) in table {
            assert_eq!(
                check_format(format.as_bytes()),
                Err(message.to_string()),
                "{format:?}"
            );
        }
    }
}
