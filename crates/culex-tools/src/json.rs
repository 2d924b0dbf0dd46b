//! The `%j` and `%J` fields: a message as JSON, printed exactly as
//! mosquitto_sub prints it through cJSON (key order, number formatting,
//! string escapes, and `--pretty`'s tab layout).

use crate::format::{MessageProperty, Received, Timestamp};

/// Deepest nesting a `%J` payload may have (cJSON's limit).
const MAX_DEPTH: usize = 1000;

/// A JSON value; objects keep their order and duplicate keys, as cJSON does.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(Vec<u8>),
    Array(Vec<Json>),
    Object(Vec<(Vec<u8>, Json)>),
}

/// The message as a JSON object: `escaped` (`%j`) puts the payload in a
/// string, otherwise (`%J`) the payload must itself be JSON, and `None` is
/// returned when it is not.
pub(crate) fn message(
    message: &Received<'_>,
    time: &Timestamp,
    escaped: bool,
    pretty: bool,
) -> Option<Vec<u8>> {
    let mut root = Vec::new();
    let tst = format!(
        "{}.{:06}Z{}",
        time.local.format("%Y-%m-%dT%H:%M:%S"),
        time.local.timestamp_subsec_micros().min(999_999),
        time.local.format("%z")
    );
    root.push((b"tst".to_vec(), Json::String(tst.into_bytes())));
    root.push((
        b"topic".to_vec(),
        Json::String(message.topic.as_bytes().to_vec()),
    ));
    root.push((b"qos".to_vec(), Json::Number(f64::from(message.qos))));
    root.push((
        b"retain".to_vec(),
        Json::Number(if message.retain { 1.0 } else { 0.0 }),
    ));
    root.push((
        b"payloadlen".to_vec(),
        Json::Number(message.payload.len() as f64),
    ));
    if message.qos > 0 {
        root.push((b"mid".to_vec(), Json::Number(f64::from(message.mid))));
    }
    if !message.properties.is_empty() {
        root.push((b"properties".to_vec(), properties(&message.properties.list)));
    }
    let payload = if message.payload.is_empty() {
        Json::Null
    } else if escaped {
        // mosquitto hands cJSON the payload as a C string.
        let end = message
            .payload
            .iter()
            .position(|b| *b == 0)
            .unwrap_or(message.payload.len());
        Json::String(message.payload.get(..end).unwrap_or_default().to_vec())
    } else {
        parse(message.payload)?
    };
    root.push((b"payload".to_vec(), payload));
    let mut out = Vec::new();
    print(&Json::Object(root), pretty, 0, &mut out);
    Some(out)
}

fn properties(list: &[MessageProperty]) -> Json {
    let mut object: Vec<(Vec<u8>, Json)> = Vec::new();
    let mut user_at: Option<usize> = None;
    for property in list {
        let (name, value): (&str, Json) = match property {
            MessageProperty::PayloadFormat(v) => ("payload-format-indicator", num(*v)),
            MessageProperty::MessageExpiry(v) => ("message-expiry-interval", num(*v)),
            MessageProperty::ContentType(v) => ("content-type", string(v.as_bytes())),
            MessageProperty::ResponseTopic(v) => ("response-topic", string(v.as_bytes())),
            MessageProperty::CorrelationData(v) => ("correlation-data", string(v)),
            MessageProperty::SubscriptionId(v) => ("subscription-identifier", num(*v)),
            MessageProperty::TopicAlias(v) => ("topic-alias", num(*v)),
            MessageProperty::User(key, value) => {
                let index = *user_at.get_or_insert_with(|| {
                    object.push((b"user-properties".to_vec(), Json::Object(Vec::new())));
                    object.len() - 1
                });
                if let Some((_, Json::Object(users))) = object.get_mut(index) {
                    users.push((key.as_bytes().to_vec(), string(value.as_bytes())));
                }
                continue;
            }
        };
        object.push((name.as_bytes().to_vec(), value));
    }
    Json::Object(object)
}

fn num(value: impl Into<f64>) -> Json {
    Json::Number(value.into())
}

/// A string as cJSON stores it: up to the first NUL.
fn string(bytes: &[u8]) -> Json {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    Json::String(bytes.get(..end).unwrap_or_default().to_vec())
}

/// Parses a whole buffer as one JSON value (trailing whitespace allowed),
/// accepting what cJSON accepts.
pub(crate) fn parse(input: &[u8]) -> Option<Json> {
    let mut parser = Parser { input, pos: 0 };
    parser.skip_whitespace();
    let value = parser.value(0)?;
    parser.skip_whitespace();
    (parser.pos == input.len()).then_some(value)
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b) if b <= 32 && b != 0) {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        if self.input.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Option<Json> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'n' if self.literal(b"null") => Some(Json::Null),
            b'f' if self.literal(b"false") => Some(Json::Bool(false)),
            b't' if self.literal(b"true") => Some(Json::Bool(true)),
            b'"' => self.string().map(Json::String),
            b'-' | b'0'..=b'9' => self.number(),
            b'[' => self.array(depth + 1),
            b'{' => self.object(depth + 1),
            _ => None,
        }
    }

    /// Like cJSON: the longest prefix that C's `strtod` takes as a decimal
    /// number, found in one pass (trying each prefix in turn was quadratic
    /// in a payload's length).
    fn number(&mut self) -> Option<Json> {
        let start = self.pos;
        let rest = self.input.get(start..)?;
        let digits = |from: usize| {
            rest.get(from..).map_or(0, |tail| {
                tail.iter().take_while(|b| b.is_ascii_digit()).count()
            })
        };
        let mut end = usize::from(matches!(rest.first(), Some(b'+' | b'-')));
        let whole = digits(end);
        end += whole;
        let mut fraction = 0;
        if rest.get(end) == Some(&b'.') {
            fraction = digits(end + 1);
            end += 1 + fraction;
        }
        if whole + fraction == 0 {
            return None;
        }
        if matches!(rest.get(end), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(rest.get(end + 1), Some(b'+' | b'-')));
            let exponent = digits(end + 1 + sign);
            if exponent > 0 {
                end += 1 + sign + exponent;
            }
        }
        let text = std::str::from_utf8(rest.get(..end)?).ok()?;
        let value = text.parse::<f64>().ok()?;
        self.pos = start + end;
        Some(Json::Number(value))
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = std::str::from_utf8(self.input.get(self.pos..self.pos + 4)?).ok()?;
        let value = u32::from_str_radix(digits, 16).ok()?;
        self.pos += 4;
        Some(value)
    }

    fn string(&mut self) -> Option<Vec<u8>> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let byte = self.peek()?;
            self.pos += 1;
            match byte {
                b'"' => return Some(out),
                b'\\' => {
                    let escape = self.peek()?;
                    self.pos += 1;
                    match escape {
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'"' | b'\\' | b'/' => out.push(escape),
                        b'u' => {
                            let mut code = self.hex4()?;
                            if (0xDC00..0xE000).contains(&code) || code == 0 {
                                return None;
                            }
                            if (0xD800..0xDC00).contains(&code) {
                                if !self.literal(b"\\u") {
                                    return None;
                                }
                                let low = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&low) {
                                    return None;
                                }
                                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                            }
                            let ch = char::from_u32(code)?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return None,
                    }
                }
                0 => return None,
                other => out.push(other),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Option<Json> {
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek()? == b']' {
            self.pos += 1;
            return Some(Json::Array(items));
        }
        loop {
            self.skip_whitespace();
            items.push(self.value(depth)?);
            self.skip_whitespace();
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    return Some(Json::Array(items));
                }
                _ => return None,
            }
        }
    }

    fn object(&mut self, depth: usize) -> Option<Json> {
        self.pos += 1;
        let mut members = Vec::new();
        self.skip_whitespace();
        if self.peek()? == b'}' {
            self.pos += 1;
            return Some(Json::Object(members));
        }
        loop {
            self.skip_whitespace();
            if self.peek()? != b'"' {
                return None;
            }
            let key = self.string()?;
            self.skip_whitespace();
            if self.peek()? != b':' {
                return None;
            }
            self.pos += 1;
            self.skip_whitespace();
            let value = self.value(depth)?;
            members.push((key, value));
            self.skip_whitespace();
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    return Some(Json::Object(members));
                }
                _ => return None,
            }
        }
    }
}

/// Prints a value as cJSON_PrintUnformatted (or cJSON_Print when `pretty`).
pub(crate) fn print(value: &Json, pretty: bool, depth: usize, out: &mut Vec<u8>) {
    match value {
        Json::Null => out.extend_from_slice(b"null"),
        Json::Bool(true) => out.extend_from_slice(b"true"),
        Json::Bool(false) => out.extend_from_slice(b"false"),
        Json::Number(n) => out.extend_from_slice(number(*n).as_bytes()),
        Json::String(s) => print_string(s, out),
        Json::Array(items) => {
            out.push(b'[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.extend_from_slice(if pretty { b", " } else { b"," });
                }
                print(item, pretty, depth + 1, out);
            }
            out.push(b']');
        }
        Json::Object(members) => {
            out.push(b'{');
            if pretty {
                out.push(b'\n');
            }
            for (n, (key, item)) in members.iter().enumerate() {
                if pretty {
                    out.resize(out.len() + depth + 1, b'\t');
                }
                print_string(key, out);
                out.push(b':');
                if pretty {
                    out.push(b'\t');
                }
                print(item, pretty, depth + 1, out);
                if n + 1 < members.len() {
                    out.push(b',');
                }
                if pretty {
                    out.push(b'\n');
                }
            }
            if pretty {
                out.resize(out.len() + depth, b'\t');
            }
            out.push(b'}');
        }
    }
}

fn print_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &byte in s {
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=31 => out.extend_from_slice(format!("\\u{byte:04x}").as_bytes()),
            _ => out.push(byte),
        }
    }
    out.push(b'"');
}

/// A number as cJSON prints it: as an integer when it equals its C `int`
/// conversion, else `%1.15g`, or `%1.17g` when 15 digits do not round-trip.
fn number(value: f64) -> String {
    if !value.is_finite() {
        return "null".into();
    }
    let as_int = if value >= f64::from(i32::MAX) {
        i32::MAX
    } else if value <= f64::from(i32::MIN) {
        i32::MIN
    } else {
        value as i32
    };
    if value == f64::from(as_int) && !(value == 0.0 && value.is_sign_negative()) {
        return as_int.to_string();
    }
    let short = format_g(value, 15);
    match short.parse::<f64>() {
        Ok(back) if (back - value).abs() <= back.abs().max(value.abs()) * f64::EPSILON => short,
        _ => format_g(value, 17),
    }
}

/// C's `%.{precision}g`.
fn format_g(value: f64, precision: usize) -> String {
    if value == 0.0 {
        return if value.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let scientific = format!("{:.*e}", precision - 1, value);
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if exponent < -4 || exponent >= precision as i32 {
        let mantissa = trim_zeros(mantissa);
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs())
    } else {
        let decimals = (precision as i32 - 1 - exponent).max(0) as usize;
        trim_zeros(&format!("{value:.decimals$}")).to_string()
    }
}

fn trim_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(input: &str, pretty: bool) -> String {
        let value = parse(input.as_bytes()).expect("valid json");
        let mut out = Vec::new();
        print(&value, pretty, 0, &mut out);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn numbers_print_as_cjson_does() {
        let table = [
            (1.0, "1"),
            (2.5, "2.5"),
            (1000.0, "1000"),
            (0.1, "0.1"),
            (12_345_678_901_234.0, "12345678901234"),
            (1e300, "1e+300"),
            (-2.5e-7, "-2.5e-07"),
            (1.0 / 3.0, "0.33333333333333331"),
            (-0.0, "-0"),
            (3e9, "3000000000"),
        ];
        for (value, expect) in table {
            assert_eq!(number(value), expect, "{value}");
        }
    }

    #[test]
    fn reprints_like_cjson() {
        assert_eq!(
            round_trip(
                r#" {"a": [1, 2.50, 1e3, "x\u00e9"], "b": {}, "c": [], "d": null} "#,
                false
            ),
            "{\"a\":[1,2.5,1000,\"x\u{e9}\"],\"b\":{},\"c\":[],\"d\":null}"
        );
        assert_eq!(
            round_trip(r#"{"b": {}, "f": {"g": [1, true]}}"#, true),
            "{\n\t\"b\":\t{\n\t},\n\t\"f\":\t{\n\t\t\"g\":\t[1, true]\n\t}\n}"
        );
        assert_eq!(
            round_trip(r#""a\"b\\c\td\u0001""#, false),
            r#""a\"b\\c\td\u0001""#
        );
    }

    #[test]
    fn numbers_take_the_longest_prefix_strtod_takes() {
        let table: &[(&str, Option<f64>, usize)] = &[
            ("12", Some(12.0), 2),
            ("-1.5e3", Some(-1500.0), 6),
            ("1e", Some(1.0), 1),
            ("1e+", Some(1.0), 1),
            ("2.5e-1x", Some(0.25), 6),
            ("1.", Some(1.0), 2),
            ("1.2.3", Some(1.2), 3),
            ("1-2", Some(1.0), 1),
            ("1e5e5", Some(1e5), 3),
            ("-", None, 0),
            ("-.", None, 0),
            ("-e5", None, 0),
        ];
        for (input, value, used) in table {
            let mut parser = Parser {
                input: input.as_bytes(),
                pos: 0,
            };
            let parsed = parser.number();
            assert_eq!(parsed, value.map(Json::Number), "{input:?}");
            if value.is_some() {
                assert_eq!(parser.pos, *used, "{input:?}");
            }
        }
    }

    #[test]
    fn a_long_run_of_number_characters_parses_in_one_pass() {
        // Trying every prefix of the run took time quadratic in its length:
        // one payload of this shape held `%j` for minutes.
        let run = "1".repeat(100_000) + &"e".repeat(100_000);
        assert_eq!(parse(run.as_bytes()), None);
        let run = "-".to_string() + &"e".repeat(200_000);
        assert_eq!(parse(run.as_bytes()), None);
    }

    #[test]
    fn rejects_what_cjson_rejects() {
        for input in [
            "",
            "abc",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "1 2",
            "\"unterminated",
            "[1]x",
        ] {
            assert_eq!(parse(input.as_bytes()), None, "{input:?}");
        }
        let deep = "[".repeat(MAX_DEPTH + 2) + &"]".repeat(MAX_DEPTH + 2);
        assert_eq!(parse(deep.as_bytes()), None);
    }
}
