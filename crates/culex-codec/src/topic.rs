//! Topic names, topic filters and matching ([MQTT 3.1.1, 4.7] and
//! [MQTT 5.0, 4.7-4.8]).

/// Why a topic name or filter is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicError {
    /// Empty where it must have at least one character [MQTT-4.7.3-1].
    Empty,
    /// Longer than 65535 bytes [MQTT-4.7.3-3].
    TooLong,
    /// Contains U+0000 [MQTT-4.7.3-2].
    NullCharacter,
    /// A topic name contains `+` or `#` [MQTT-3.3.2-2].
    WildcardInName,
    /// `#` is not alone in the last level [MQTT-4.7.1-2].
    MisplacedMultiLevelWildcard,
    /// `+` is not alone in its level [MQTT-4.7.1-3].
    MisplacedSingleLevelWildcard,
    /// `$share/` without a valid share name or filter [MQTT-4.8.2-1], [MQTT-4.8.2-2].
    InvalidSharedSubscription,
}

/// A validated topic name: no wildcards, no U+0000, at most 65535 bytes.
///
/// Empty only where a 5.0 PUBLISH carries a topic alias; [`TopicName::new`]
/// refuses the empty string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName<'a>(&'a str);

impl<'a> TopicName<'a> {
    /// Validates a topic name.
    pub fn new(name: &'a str) -> Result<TopicName<'a>, TopicError> {
        crate::reason::todo_codec()
    }

    /// The topic as a string.
    pub const fn as_str(&self) -> &'a str {
        self.0
    }
}

/// A validated topic filter, possibly a shared subscription
/// `$share/GROUP/FILTER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicFilter<'a>(&'a str);

impl<'a> TopicFilter<'a> {
    /// Validates a topic filter, including the shared-subscription form.
    pub fn new(filter: &'a str) -> Result<TopicFilter<'a>, TopicError> {
        crate::reason::todo_codec()
    }

    /// The whole filter as written, `$share/…` prefix included.
    pub const fn as_str(&self) -> &'a str {
        self.0
    }

    /// For `$share/GROUP/FILTER`, the group name.
    pub fn share_group(&self) -> Option<&'a str> {
        crate::reason::todo_codec()
    }

    /// The filter messages are matched against: without any `$share/GROUP/` prefix.
    pub fn match_filter(&self) -> &'a str {
        crate::reason::todo_codec()
    }

    /// Whether the filter contains `+` or `#`.
    pub fn has_wildcards(&self) -> bool {
        crate::reason::todo_codec()
    }

    /// Whether this filter matches `topic`; a filter starting with a wildcard
    /// never matches a topic starting with `$` [MQTT-4.7.2-1].
    pub fn matches(&self, topic: TopicName<'_>) -> bool {
        crate::reason::todo_codec()
    }
}

/// Matches an already-validated filter (without `$share/` prefix) against an
/// already-validated topic name, by the rules of [`TopicFilter::matches`].
pub fn matches(filter: &str, topic: &str) -> bool {
    crate::reason::todo_codec()
}
