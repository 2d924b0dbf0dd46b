//! Topic names, topic filters and matching ([MQTT 3.1.1, 4.7] and
//! [MQTT 5.0, 4.7-4.8]).

/// The prefix of a shared subscription filter ([MQTT 5.0, 4.8.2]).
const SHARE_PREFIX: &str = "$share/";

/// The longest string a UTF-8 string field can carry.
const MAX_LEN: usize = 65_535;

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
    /// The empty topic name of a 5.0 PUBLISH that relies on a topic alias.
    pub const EMPTY: TopicName<'a> = TopicName("");

    /// Validates a topic name.
    pub fn new(name: &'a str) -> Result<TopicName<'a>, TopicError> {
        if name.is_empty() {
            return Err(TopicError::Empty);
        }
        if name.len() > MAX_LEN {
            return Err(TopicError::TooLong);
        }
        for &byte in name.as_bytes() {
            match byte {
                0 => return Err(TopicError::NullCharacter),
                b'+' | b'#' => return Err(TopicError::WildcardInName),
                _ => {}
            }
        }
        Ok(TopicName(name))
    }

    /// Wraps a string the caller has already validated.
    pub(crate) const fn from_validated(name: &'a str) -> TopicName<'a> {
        TopicName(name)
    }

    /// Whether this is the empty name of a PUBLISH that uses a topic alias.
    pub const fn is_empty(&self) -> bool {
        self.0.is_empty()
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
        if filter.len() > MAX_LEN {
            return Err(TopicError::TooLong);
        }
        if filter.as_bytes().contains(&0) {
            return Err(TopicError::NullCharacter);
        }
        match filter.strip_prefix(SHARE_PREFIX) {
            None => validate_filter(filter)?,
            Some(rest) => {
                let (group, inner) = rest
                    .split_once('/')
                    .ok_or(TopicError::InvalidSharedSubscription)?;
                // [MQTT-4.8.2-1]: a non-empty share name without `/`, `+` or `#`.
                if group.is_empty() || group.contains(['+', '#']) {
                    return Err(TopicError::InvalidSharedSubscription);
                }
                // [MQTT-4.8.2-2]: followed by a valid, non-empty filter.
                validate_filter(inner).map_err(|_| TopicError::InvalidSharedSubscription)?;
            }
        }
        Ok(TopicFilter(filter))
    }

    /// Wraps a string the caller has already validated.
    pub(crate) const fn from_validated(filter: &'a str) -> TopicFilter<'a> {
        TopicFilter(filter)
    }

    /// The whole filter as written, `$share/…` prefix included.
    pub const fn as_str(&self) -> &'a str {
        self.0
    }

    /// For `$share/GROUP/FILTER`, the group name.
    pub fn share_group(&self) -> Option<&'a str> {
        let rest = self.0.strip_prefix(SHARE_PREFIX)?;
        rest.split_once('/').map(|(group, _)| group)
    }

    /// The filter messages are matched against: without any `$share/GROUP/` prefix.
    pub fn match_filter(&self) -> &'a str {
        match self.0.strip_prefix(SHARE_PREFIX) {
            Some(rest) => rest.split_once('/').map_or(rest, |(_, inner)| inner),
            None => self.0,
        }
    }

    /// Whether the filter contains `+` or `#`.
    pub fn has_wildcards(&self) -> bool {
        self.match_filter().contains(['+', '#'])
    }

    /// Whether this filter matches `topic`; a filter starting with a wildcard
    /// never matches a topic starting with `$` [MQTT-4.7.2-1].
    pub fn matches(&self, topic: TopicName<'_>) -> bool {
        matches(self.match_filter(), topic.as_str())
    }
}

/// Checks the level grammar of a (non-shared) filter: non-empty, `#` alone in
/// the last level, `+` alone in its level.
fn validate_filter(filter: &str) -> Result<(), TopicError> {
    if filter.is_empty() {
        return Err(TopicError::Empty);
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        if level.contains('#') && (level != "#" || levels.peek().is_some()) {
            return Err(TopicError::MisplacedMultiLevelWildcard);
        }
        if level.contains('+') && level != "+" {
            return Err(TopicError::MisplacedSingleLevelWildcard);
        }
    }
    Ok(())
}

impl core::fmt::Display for TopicError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.rule())
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TopicError {}

impl TopicError {
    /// The rule broken, citing the specification.
    pub const fn rule(self) -> &'static str {
        match self {
            TopicError::Empty => "[MQTT-4.7.3-1] topic name or filter is empty",
            TopicError::TooLong => "[MQTT-4.7.3-3] topic name or filter longer than 65535 bytes",
            TopicError::NullCharacter => "[MQTT-4.7.3-2] topic name or filter contains U+0000",
            TopicError::WildcardInName => "[MQTT-3.3.2-2] topic name contains a wildcard",
            TopicError::MisplacedMultiLevelWildcard => {
                "[MQTT-4.7.1-2] `#` must be alone in the last level of a topic filter"
            }
            TopicError::MisplacedSingleLevelWildcard => {
                "[MQTT-4.7.1-3] `+` must occupy a whole level of a topic filter"
            }
            TopicError::InvalidSharedSubscription => {
                "[MQTT-4.8.2-1] [MQTT-4.8.2-2] shared subscription needs a share name without \
                 `/`, `+` or `#` and a valid filter"
            }
        }
    }
}

/// Matches an already-validated filter (without `$share/` prefix) against an
/// already-validated topic name, by the rules of [`TopicFilter::matches`].
///
/// It never allocates and never panics, whatever it is given. `+` matches
/// one level, empty ones included; `#` matches the rest, the parent level
/// included (`sport/#` matches `sport`). An empty topic matches nothing.
pub fn matches(filter: &str, topic: &str) -> bool {
    let (filter, topic) = (filter.as_bytes(), topic.as_bytes());
    if topic.is_empty() {
        return false;
    }
    // [MQTT-4.7.2-1]: `$` topics are out of reach of a leading wildcard.
    if topic.first() == Some(&b'$') && matches!(filter.first(), Some(b'+' | b'#')) {
        return false;
    }
    let mut filter_levels = filter.split(|&b| b == b'/');
    let mut topic_levels = topic.split(|&b| b == b'/');
    loop {
        match (filter_levels.next(), topic_levels.next()) {
            (Some(b"#"), _) => return true,
            (Some(b"+"), Some(_)) => {}
            (Some(f), Some(t)) => {
                if f != t {
                    return false;
                }
            }
            (None, None) => return true,
            _ => return false,
        }
    }
}
