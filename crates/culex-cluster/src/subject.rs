//! MQTT topics and filters as NATS subjects, and back.
//!
//! The mapping is total (every valid topic and filter has a subject) and
//! reversible (a subject made from a topic gives that topic back):
//! - one topic level is one NATS token; an empty level is the token `%`;
//! - inside a level, `%`, `.`, `*`, `>`, space, control characters and DEL
//!   are written `%XX` (upper-case hex); all other UTF-8 passes unchanged;
//! - the first token is a namespace: `s` for topics that start with `$`, `u`
//!   for the rest. A filter whose first level is a wildcard maps into `u`
//!   only, so `#` and `+/…` never match `$SYS/…` [MQTT-4.7.2-1];
//! - `+` is `*`; `#` is `>`, and since NATS's `>` needs at least one token,
//!   `a/#` (which also matches `a`) becomes two subjects, `…a` and `…a.>`.
//!
//! [`Subjects`] puts these tokens under the cluster's namespace and checks
//! the length cap that NATS's control line imposes.

use culex_codec::topic::{TopicError, TopicFilter, TopicName};

/// The longest subject this crate sends. NATS limits a protocol line
/// (`HPUB subject reply sizes`) to 4 KiB by default; this leaves room for
/// the rest of the line.
pub const MAX_SUBJECT_LEN: usize = 3584;

/// Why a topic, filter or subject cannot be mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// The topic name is not valid MQTT.
    #[error("invalid topic name: {0}")]
    Topic(TopicError),
    /// The topic filter is not valid MQTT.
    #[error("invalid topic filter: {0}")]
    Filter(TopicError),
    /// The subject would be longer than the cluster allows.
    #[error("topic too long for the cluster: {len} bytes as a subject, at most {max}")]
    TooLong {
        /// The subject's length after escaping.
        len: usize,
        /// [`MAX_SUBJECT_LEN`].
        max: usize,
    },
    /// A subject that no topic of ours maps to.
    #[error("subject is not a mapped topic")]
    NotATopic,
}

/// The subject tokens of a topic name, namespace first (`u.a.b`).
pub fn topic_tokens(topic: &str) -> Result<String, MapError> {
    let name = TopicName::new(topic).map_err(MapError::Topic)?;
    let topic = name.as_str();
    let mut out = String::with_capacity(topic.len() + 2);
    out.push_str(if topic.starts_with('$') { "s" } else { "u" });
    for level in topic.split('/') {
        out.push('.');
        escape_level(level, &mut out);
    }
    Ok(out)
}

/// The subject tokens a filter subscribes to: one pattern, or two for a
/// filter ending in `/#`. A shared filter maps by its inner filter.
pub fn filter_tokens(filter: &str) -> Result<Vec<String>, MapError> {
    let parsed = TopicFilter::new(filter).map_err(MapError::Filter)?;
    let filter = parsed.match_filter();
    if filter == "#" {
        return Ok(vec!["u.>".to_owned()]);
    }
    let mut out = String::with_capacity(filter.len() + 2);
    out.push_str(if filter.starts_with('$') { "s" } else { "u" });
    let mut parent = None;
    for level in filter.split('/') {
        match level {
            "+" => out.push_str(".*"),
            // Validation put `#` last: its parent level is matched too.
            "#" => {
                parent = Some(out.clone());
                out.push_str(".>");
            }
            _ => {
                out.push('.');
                escape_level(level, &mut out);
            }
        }
    }
    Ok(match parent {
        Some(parent) => vec![parent, out],
        None => vec![out],
    })
}

/// The topic name whose tokens these are: the inverse of [`topic_tokens`].
/// Anything [`topic_tokens`] cannot have produced is refused.
pub fn tokens_topic(tokens: &str) -> Result<String, MapError> {
    let (namespace, levels) = tokens.split_once('.').ok_or(MapError::NotATopic)?;
    let mut topic = String::with_capacity(levels.len());
    for (i, token) in levels.split('.').enumerate() {
        if i > 0 {
            topic.push('/');
        }
        unescape_token(token, &mut topic)?;
    }
    let dollar = topic.starts_with('$');
    match namespace {
        "s" if dollar => {}
        "u" if !dollar => {}
        _ => return Err(MapError::NotATopic),
    }
    TopicName::new(&topic).map_err(|_| MapError::NotATopic)?;
    Ok(topic)
}

/// Whether a character must be written `%XX` inside a token.
fn needs_escape(c: char) -> bool {
    matches!(c, '%' | '.' | '*' | '>' | ' ' | '\u{7f}') || c < ' '
}

fn escape_level(level: &str, out: &mut String) {
    if level.is_empty() {
        out.push('%');
        return;
    }
    for c in level.chars() {
        if needs_escape(c) {
            let byte = u32::from(c);
            out.push('%');
            out.push(hex_digit(byte >> 4));
            out.push(hex_digit(byte & 0x0f));
        } else {
            out.push(c);
        }
    }
}

fn unescape_token(token: &str, out: &mut String) -> Result<(), MapError> {
    if token == "%" {
        return Ok(());
    }
    if token.is_empty() {
        return Err(MapError::NotATopic);
    }
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            if needs_escape(c) {
                return Err(MapError::NotATopic);
            }
            out.push(c);
            continue;
        }
        let high = chars
            .next()
            .and_then(upper_hex)
            .ok_or(MapError::NotATopic)?;
        let low = chars
            .next()
            .and_then(upper_hex)
            .ok_or(MapError::NotATopic)?;
        let decoded = char::from(high << 4 | low);
        // Only the canonical form: a character that needs no escape, or
        // U+0000 (never in a valid topic), is refused.
        if !needs_escape(decoded) || decoded == '\0' {
            return Err(MapError::NotATopic);
        }
        out.push(decoded);
    }
    Ok(())
}

fn hex_digit(nibble: u32) -> char {
    char::from_digit(nibble, 16).map_or('0', |c| c.to_ascii_uppercase())
}

fn upper_hex(c: char) -> Option<u8> {
    match c {
        '0'..='9' => Some(c as u8 - b'0'),
        'A'..='F' => Some(c as u8 - b'A' + 10),
        _ => None,
    }
}

/// The subjects of one cluster namespace: every subject this crate
/// publishes or subscribes to is made here.
#[derive(Debug, Clone)]
pub struct Subjects {
    namespace: String,
}

impl Subjects {
    /// Subjects under `namespace` (already validated by the caller).
    pub fn new(namespace: &str) -> Subjects {
        Subjects {
            namespace: namespace.to_owned(),
        }
    }

    /// The namespace, the first token of every subject.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Where a message published on `topic` is routed: `NS.m.<tokens>`.
    pub fn route(&self, topic: &str) -> Result<String, MapError> {
        self.under("m", &topic_tokens(topic)?)
    }

    /// What a node subscribes to for `filter`: one or two patterns.
    pub fn route_filters(&self, filter: &str) -> Result<Vec<String>, MapError> {
        self.under_each("m", filter_tokens(filter)?)
    }

    /// The topic of a routed message's subject.
    pub fn route_topic(&self, subject: &str) -> Result<String, MapError> {
        self.topic_under("m", subject)
    }

    /// Where a durable (QoS 1/2) message published on `topic` is stored and
    /// routed: `NS.q.<tokens>`, a subject of the `MSGS` stream.
    pub fn durable(&self, topic: &str) -> Result<String, MapError> {
        self.under("q", &topic_tokens(topic)?)
    }

    /// What a node subscribes to for `filter` to receive durable messages,
    /// and the stream filters that select them: one or two patterns.
    pub fn durable_filters(&self, filter: &str) -> Result<Vec<String>, MapError> {
        self.under_each("q", filter_tokens(filter)?)
    }

    /// The topic of a durable message's subject.
    pub fn durable_topic(&self, subject: &str) -> Result<String, MapError> {
        self.topic_under("q", subject)
    }

    /// Every durable subject: the `MSGS` stream's subjects.
    pub fn durable_all(&self) -> String {
        format!("{}.q.>", self.namespace)
    }

    /// The stream filters of one consumer that reads the durable messages
    /// matching any of `filters` (MQTT filters, `$share/G/` ignored).
    ///
    /// Older servers refuse filters of one consumer that could both match a
    /// subject, so patterns covered by others are dropped, two that overlap
    /// become one more general pattern, and more than
    /// [`MAX_STREAM_FILTERS`] become `NS.q.u.>` / `NS.q.s.>`; then the
    /// selection is no longer exact.
    pub(crate) fn durable_selection(&self, filters: &[String]) -> Result<Selection, MapError> {
        let mut patterns = Vec::new();
        for filter in filters {
            patterns.extend(self.durable_filters(filter)?);
        }
        patterns.sort();
        patterns.dedup();
        // Making many patterns disjoint costs a cube of their number.
        if patterns.len() > 2 * MAX_STREAM_FILTERS {
            return Ok(self.widen(&patterns));
        }
        let selection = disjoint(patterns);
        if selection.subjects.len() > MAX_STREAM_FILTERS {
            return Ok(self.widen(&selection.subjects));
        }
        Ok(selection)
    }

    /// `NS.q.u.>` and/or `NS.q.s.>`, as the durable `patterns` need.
    fn widen(&self, patterns: &[String]) -> Selection {
        let mut subjects: Vec<String> = patterns
            .iter()
            .filter_map(|subject| {
                let space = subject.split('.').nth(2)?;
                Some(format!("{}.q.{space}.>", self.namespace))
            })
            .collect();
        subjects.sort();
        subjects.dedup();
        Selection {
            subjects,
            exact: false,
        }
    }

    /// Where the retained message of `topic` is kept: `NS.r.<tokens>`.
    pub fn retained(&self, topic: &str) -> Result<String, MapError> {
        self.under("r", &topic_tokens(topic)?)
    }

    /// The stream filters that select retained messages matching `filter`.
    pub fn retained_filters(&self, filter: &str) -> Result<Vec<String>, MapError> {
        self.under_each("r", filter_tokens(filter)?)
    }

    /// The topic of a retained message's subject.
    pub fn retained_topic(&self, subject: &str) -> Result<String, MapError> {
        self.topic_under("r", subject)
    }

    /// Every retained subject: the `RET` stream's subjects.
    pub fn retained_all(&self) -> String {
        format!("{}.r.>", self.namespace)
    }

    /// The offline queue of the session whose key is `session_key`.
    pub fn spool(&self, session_key: &str) -> String {
        format!("{}.sq.{session_key}", self.namespace)
    }

    /// Every offline queue: the `SQ` stream's subjects.
    pub fn spool_all(&self) -> String {
        format!("{}.sq.>", self.namespace)
    }

    /// The control subject of one request kind sent to `node`.
    pub fn control(&self, node: &str, kind: &str) -> String {
        format!("{}.ctl.{node}.{kind}", self.namespace)
    }

    /// Everything a node answers: its single control subscription.
    pub fn control_all(&self, node: &str) -> String {
        format!("{}.ctl.{node}.>", self.namespace)
    }

    fn under(&self, kind: &str, tokens: &str) -> Result<String, MapError> {
        let subject = format!("{}.{kind}.{tokens}", self.namespace);
        if subject.len() > MAX_SUBJECT_LEN {
            return Err(MapError::TooLong {
                len: subject.len(),
                max: MAX_SUBJECT_LEN,
            });
        }
        Ok(subject)
    }

    fn under_each(&self, kind: &str, tokens: Vec<String>) -> Result<Vec<String>, MapError> {
        tokens.iter().map(|t| self.under(kind, t)).collect()
    }

    fn topic_under(&self, kind: &str, subject: &str) -> Result<String, MapError> {
        let tokens = subject
            .strip_prefix(self.namespace.as_str())
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|rest| rest.strip_prefix(kind))
            .and_then(|rest| rest.strip_prefix('.'))
            .ok_or(MapError::NotATopic)?;
        tokens_topic(tokens)
    }
}

/// The most subject filters one stream consumer is given.
pub(crate) const MAX_STREAM_FILTERS: usize = 128;

/// Subject patterns no two of which match a common subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Selection {
    /// The patterns, sorted.
    pub(crate) subjects: Vec<String>,
    /// Whether they match exactly the subjects the patterns they were made
    /// from match; if not, they match more.
    pub(crate) exact: bool,
}

/// Makes `patterns` disjoint: duplicates and patterns covered by another go
/// (which changes nothing), then each overlapping pair becomes the least
/// general pattern covering both (which widens the selection).
fn disjoint(mut patterns: Vec<String>) -> Selection {
    let mut exact = true;
    loop {
        patterns.sort();
        patterns.dedup();
        let all = patterns.clone();
        patterns.retain(|p| !all.iter().any(|general| general != p && covers(general, p)));
        let overlap = patterns.iter().enumerate().find_map(|(i, a)| {
            let b = patterns.iter().skip(i + 1).find(|b| collide(a, b))?;
            Some((a.clone(), b.clone()))
        });
        let Some((a, b)) = overlap else {
            return Selection {
                subjects: patterns,
                exact,
            };
        };
        exact = false;
        patterns.retain(|p| *p != a && *p != b);
        patterns.push(join(&a, &b));
    }
}

/// Whether every subject `specific` matches is matched by `general`.
fn covers(general: &str, specific: &str) -> bool {
    let mut specific = specific.split('.');
    for g in general.split('.') {
        let Some(s) = specific.next() else {
            return false;
        };
        if g == ">" {
            return true;
        }
        if s == ">" || (g != "*" && g != s) {
            return false;
        }
    }
    specific.next().is_none()
}

/// Whether some subject is matched by both patterns.
fn collide(a: &str, b: &str) -> bool {
    let (mut a, mut b) = (a.split('.'), b.split('.'));
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(">"), Some(_)) | (Some(_), Some(">")) => return true,
            (Some(x), Some(y)) if x == y || x == "*" || y == "*" => {}
            _ => return false,
        }
    }
}

/// The least general pattern (of this simple kind) that covers both.
fn join(a: &str, b: &str) -> String {
    let (mut a, mut b) = (a.split('.'), b.split('.'));
    let mut tokens: Vec<&str> = Vec::new();
    loop {
        match (a.next(), b.next()) {
            (None, None) => break,
            // Different lengths: the shorter one's last token opens up.
            (None, Some(_)) | (Some(_), None) => {
                tokens.pop();
                tokens.push(">");
                break;
            }
            (Some(">"), _) | (_, Some(">")) => {
                tokens.push(">");
                break;
            }
            (Some(x), Some(y)) => tokens.push(if x == y { x } else { "*" }),
        }
    }
    tokens.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_map_to_tokens_and_back() {
        let table = [
            ("a", "u.a"),
            ("a/b/c", "u.a.b.c"),
            ("a.b/c", "u.a%2Eb.c"),
            ("/lead", "u.%.lead"),
            ("a//b", "u.a.%.b"),
            ("tr/", "u.tr.%"),
            ("/", "u.%.%"),
            ("x/*/>", "u.x.%2A.%3E"),
            ("100%/x", "u.100%25.x"),
            ("%", "u.%25"),
            ("a b/\tc\u{7f}", "u.a%20b.%09c%7F"),
            ("温度/室", "u.温度.室"),
            ("$SYS/up", "s.$SYS.up"),
            ("$", "s.$"),
            ("a$/b", "u.a$.b"),
        ];
        for (topic, tokens) in table {
            assert_eq!(topic_tokens(topic).as_deref(), Ok(tokens), "{topic}");
            assert_eq!(tokens_topic(tokens).as_deref(), Ok(topic), "{tokens}");
        }
    }

    #[test]
    fn filters_map_to_patterns() {
        let table: [(&str, &[&str]); 12] = [
            ("#", &["u.>"]),
            ("+", &["u.*"]),
            ("a/#", &["u.a", "u.a.>"]),
            ("a/+/b", &["u.a.*.b"]),
            ("+/lead", &["u.*.lead"]),
            ("+/#", &["u.*", "u.*.>"]),
            ("$SYS/#", &["s.$SYS", "s.$SYS.>"]),
            ("$SYS/+/x", &["s.$SYS.*.x"]),
            ("a//#", &["u.a.%", "u.a.%.>"]),
            ("a.b/*", &["u.a%2Eb.%2A"]),
            ("$share/g/a/#", &["u.a", "u.a.>"]),
            ("$share/g/#", &["u.>"]),
        ];
        for (filter, patterns) in table {
            assert_eq!(
                filter_tokens(filter),
                Ok(patterns.iter().map(|p| p.to_string()).collect()),
                "{filter}"
            );
        }
    }

    #[test]
    fn invalid_input_is_refused() {
        assert!(matches!(topic_tokens(""), Err(MapError::Topic(_))));
        assert!(matches!(topic_tokens("a/+"), Err(MapError::Topic(_))));
        assert!(matches!(filter_tokens("a/#/b"), Err(MapError::Filter(_))));
        assert!(matches!(
            filter_tokens("$share/g"),
            Err(MapError::Filter(_))
        ));
        for tokens in [
            "", "u", "x.a", "u.", "u.a..b", "u.%2", "u.%2e", "u.%41", "u.%00", "u.a b", "u.a*",
            "u.$a", "s.a", "u.*", "u.%GG",
        ] {
            assert_eq!(tokens_topic(tokens), Err(MapError::NotATopic), "{tokens:?}");
        }
    }

    #[test]
    fn subjects_carry_the_namespace_and_the_cap() {
        let subjects = Subjects::new("culex");
        assert_eq!(subjects.route("a/b").as_deref(), Ok("culex.m.u.a.b"));
        assert_eq!(subjects.route_topic("culex.m.u.a.b").as_deref(), Ok("a/b"));
        assert_eq!(
            subjects.route_topic("culex.r.u.a.b"),
            Err(MapError::NotATopic)
        );
        assert_eq!(
            subjects.route_topic("culexx.m.u.a"),
            Err(MapError::NotATopic)
        );
        assert_eq!(
            subjects.retained_filters("a/#"),
            Ok(vec!["culex.r.u.a".to_owned(), "culex.r.u.a.>".to_owned()])
        );
        let long = "a".repeat(MAX_SUBJECT_LEN);
        assert!(matches!(
            subjects.route(&long),
            Err(MapError::TooLong { .. })
        ));
        // Escaping triples a `.`: the cap is on the subject, not the topic.
        let dots = ".".repeat(1200);
        assert!(matches!(
            subjects.route(&dots),
            Err(MapError::TooLong { .. })
        ));
        assert!(subjects.route(&".".repeat(1100)).is_ok());
    }

    #[test]
    fn durable_subjects_are_a_kind_of_their_own() {
        let subjects = Subjects::new("culex");
        assert_eq!(subjects.durable("a/b").as_deref(), Ok("culex.q.u.a.b"));
        assert_eq!(
            subjects.durable_topic("culex.q.u.a.b").as_deref(),
            Ok("a/b")
        );
        assert_eq!(
            subjects.durable_topic("culex.m.u.a.b"),
            Err(MapError::NotATopic)
        );
        assert_eq!(
            subjects.route_topic("culex.q.u.a.b"),
            Err(MapError::NotATopic)
        );
        assert_eq!(
            subjects.durable_filters("$share/g/$SYS/#"),
            Ok(vec![
                "culex.q.s.$SYS".to_owned(),
                "culex.q.s.$SYS.>".to_owned()
            ])
        );
        assert_eq!(subjects.durable_all(), "culex.q.>");
    }

    #[test]
    fn stream_selections_are_disjoint() {
        let table: [(&[&str], &[&str], bool); 9] = [
            (&["a/b"], &["n.q.u.a.b"], true),
            (
                &["a/#", "a/b", "a/+", "a/#"],
                &["n.q.u.a", "n.q.u.a.>"],
                true,
            ),
            (
                &["#", "a/b", "$SYS/#"],
                &["n.q.s.$SYS", "n.q.s.$SYS.>", "n.q.u.>"],
                true,
            ),
            (&["+/+", "a/b/c"], &["n.q.u.*.*", "n.q.u.a.b.c"], true),
            (&["a/+/c", "+/b/c"], &["n.q.u.*.*.c"], false),
            (&["a/+", "+/b", "c"], &["n.q.u.*.*", "n.q.u.c"], false),
            (&["x/a/#", "x/+/b"], &["n.q.u.x.*.>", "n.q.u.x.a"], false),
            (
                &["+/+/#", "a"],
                &["n.q.u.*.*", "n.q.u.*.*.>", "n.q.u.a"],
                true,
            ),
            (&[], &[], true),
        ];
        let subjects = Subjects::new("n");
        for (filters, expected, exact) in table {
            let filters: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
            let selection = subjects.durable_selection(&filters).expect("valid");
            assert_eq!(selection.subjects, expected, "{filters:?}");
            assert_eq!(selection.exact, exact, "{filters:?}");
            for (i, a) in selection.subjects.iter().enumerate() {
                for b in selection.subjects.iter().skip(i + 1) {
                    assert!(!collide(a, b), "{a} and {b} overlap");
                }
            }
        }
        let many: Vec<String> = (0..=MAX_STREAM_FILTERS)
            .map(|i| format!("t/{i}"))
            .chain(["$x".to_owned()])
            .collect();
        let wide = subjects.durable_selection(&many).expect("valid");
        assert_eq!(wide.subjects, ["n.q.s.>", "n.q.u.>"]);
        assert!(!wide.exact);
        assert!(subjects.durable_selection(&["a/#/b".to_owned()]).is_err());
    }

    #[test]
    fn patterns_cover_collide_and_join() {
        let table = [
            // (a, b, a covers b, collide, join)
            ("u.>", "u.a.*", true, true, "u.>"),
            ("u.*", "u.a", true, true, "u.*"),
            ("u.a", "u.*", false, true, "u.*"),
            ("u.*", "u.>", false, true, "u.>"),
            ("u.*", "u.*.>", false, false, "u.>"),
            ("u.a.>", "u.*.b", false, true, "u.*.>"),
            ("u.a", "u.b", false, false, "u.*"),
            ("u.a", "u.a.b", false, false, "u.>"),
            ("s.$x", "u.>", false, false, "*.>"),
        ];
        for (a, b, a_covers_b, overlap, joined) in table {
            assert_eq!(covers(a, b), a_covers_b, "{a} covers {b}");
            assert_eq!(collide(a, b), overlap, "{a} collides with {b}");
            assert_eq!(collide(b, a), overlap, "{b} collides with {a}");
            assert_eq!(join(a, b), joined, "{a} join {b}");
            assert!(covers(&join(a, b), a) && covers(&join(a, b), b));
        }
    }

    #[test]
    fn every_ascii_level_round_trips() {
        for byte in 1u8..=0x7f {
            let c = char::from(byte);
            if c == '/' || c == '+' || c == '#' {
                continue;
            }
            let topic = format!("x{c}/{c}");
            let tokens = topic_tokens(&topic).expect("valid topic");
            assert!(!tokens.contains(' ') && tokens.split('.').all(|t| !t.is_empty()));
            assert_eq!(tokens_topic(&tokens).as_deref(), Ok(topic.as_str()));
        }
    }
}
