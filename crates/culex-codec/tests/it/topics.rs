//! Table tests for the topic grammar ([MQTT-4.7.1-*], [MQTT-4.7.3-*],
//! [MQTT-4.8.2-*]) and for matching ([MQTT 3.1.1, 4.7], [MQTT-4.7.2-1]).

use culex_codec::topic::{matches, TopicError, TopicFilter, TopicName};
use proptest::prelude::*;

#[test]
fn topic_names() {
    let long_ok = "x".repeat(65_535);
    let too_long = "x".repeat(65_536);
    let table: &[(&str, Result<(), TopicError>)] = &[
        ("a", Ok(())),
        ("a/b", Ok(())),
        ("/", Ok(())),
        ("//", Ok(())),
        ("/a", Ok(())),
        ("a/", Ok(())),
        ("$SYS/broker/uptime", Ok(())),
        ("é/x", Ok(())),
        (" ", Ok(())),
        (&long_ok, Ok(())),
        // [MQTT-4.7.3-1] at least one character.
        ("", Err(TopicError::Empty)),
        // [MQTT-3.3.2-2] no wildcards in a topic name.
        ("+", Err(TopicError::WildcardInName)),
        ("a/+", Err(TopicError::WildcardInName)),
        ("a/#", Err(TopicError::WildcardInName)),
        ("a#b", Err(TopicError::WildcardInName)),
        // [MQTT-4.7.3-2] no U+0000.
        ("a\0b", Err(TopicError::NullCharacter)),
        // [MQTT-4.7.3-3] at most 65535 bytes.
        (&too_long, Err(TopicError::TooLong)),
    ];
    for (name, expected) in table {
        assert_eq!(
            TopicName::new(name).map(|n| n.as_str().len()),
            expected.map(|()| name.len()),
            "{name:.20}"
        );
    }
}

#[test]
fn topic_filters() {
    use TopicError::*;
    let table: &[(&str, Result<(), TopicError>)] = &[
        ("#", Ok(())),
        ("+", Ok(())),
        ("+/+", Ok(())),
        ("a/#", Ok(())),
        ("/#", Ok(())),
        ("a/+/b", Ok(())),
        ("+/", Ok(())),
        ("/+", Ok(())),
        ("+/tennis/#", Ok(())),
        ("$SYS/#", Ok(())),
        ("sport/tennis/player1/#", Ok(())),
        ("$share", Ok(())),
        ("$sharex/a", Ok(())),
        ("$share/g/a/b", Ok(())),
        ("$share/g/#", Ok(())),
        ("$share/g/+/x", Ok(())),
        ("$share/g//", Ok(())),
        ("", Err(Empty)),
        ("a\0", Err(NullCharacter)),
        // [MQTT-4.7.1-2] `#` alone and last.
        ("a#", Err(MisplacedMultiLevelWildcard)),
        ("sport/tennis#", Err(MisplacedMultiLevelWildcard)),
        ("sport/tennis/#/ranking", Err(MisplacedMultiLevelWildcard)),
        ("#/a", Err(MisplacedMultiLevelWildcard)),
        ("##", Err(MisplacedMultiLevelWildcard)),
        // [MQTT-4.7.1-3] `+` fills its level.
        ("sport+", Err(MisplacedSingleLevelWildcard)),
        ("+a", Err(MisplacedSingleLevelWildcard)),
        ("a/b+/c", Err(MisplacedSingleLevelWildcard)),
        ("++", Err(MisplacedSingleLevelWildcard)),
        // [MQTT-4.8.2-1] a share name of at least one character, no wildcards.
        ("$share//a", Err(InvalidSharedSubscription)),
        ("$share/g+/a", Err(InvalidSharedSubscription)),
        ("$share/#/a", Err(InvalidSharedSubscription)),
        ("$share/+/a", Err(InvalidSharedSubscription)),
        // [MQTT-4.8.2-2] followed by `/` and a valid filter.
        ("$share/g", Err(InvalidSharedSubscription)),
        ("$share/", Err(InvalidSharedSubscription)),
        ("$share/g/", Err(InvalidSharedSubscription)),
        ("$share/g/a#", Err(InvalidSharedSubscription)),
        ("$share/g/a+", Err(InvalidSharedSubscription)),
    ];
    for (filter, expected) in table {
        assert_eq!(TopicFilter::new(filter).map(|_| ()), *expected, "{filter}");
    }
    assert_eq!(TopicFilter::new(&"a".repeat(65_536)), Err(TooLong));
    assert!(TopicFilter::new(&"a".repeat(65_535)).is_ok());
}

#[test]
fn shared_subscription_parts() {
    let f = TopicFilter::new("$share/group/sport/+/x").unwrap();
    assert_eq!(f.share_group(), Some("group"));
    assert_eq!(f.match_filter(), "sport/+/x");
    assert_eq!(f.as_str(), "$share/group/sport/+/x");
    assert!(f.has_wildcards());

    let plain = TopicFilter::new("sport/tennis").unwrap();
    assert_eq!(plain.share_group(), None);
    assert_eq!(plain.match_filter(), "sport/tennis");
    assert!(!plain.has_wildcards());
    assert!(TopicFilter::new("#").unwrap().has_wildcards());
}

/// (filter, topic, matches), mostly the examples of [MQTT 3.1.1, 4.7.1] and
/// [MQTT 5.0, 4.7.2].
const MATCHES: &[(&str, &str, bool)] = &[
    ("sport/tennis/player1/#", "sport/tennis/player1", true),
    (
        "sport/tennis/player1/#",
        "sport/tennis/player1/ranking",
        true,
    ),
    (
        "sport/tennis/player1/#",
        "sport/tennis/player1/score/wimbledon",
        true,
    ),
    ("sport/#", "sport", true),
    ("sport/tennis/+", "sport/tennis/player1", true),
    ("sport/tennis/+", "sport/tennis/player2", true),
    ("sport/tennis/+", "sport/tennis/player1/ranking", false),
    ("sport/+", "sport", false),
    ("sport/+", "sport/", true),
    ("+/+", "/finance", true),
    ("/+", "/finance", true),
    ("+", "/finance", false),
    ("+/b", "/b", true),
    ("a/+/c", "a//c", true),
    ("#", "/", true),
    ("#", "a", true),
    ("#", "a/b/c", true),
    ("+", "a", true),
    ("a/b", "a/b", true),
    ("a/b", "a/c", false),
    ("a", "a/b", false),
    ("a/b", "a", false),
    ("a/b/", "a/b", false),
    ("A", "a", false),
    ("é/+", "é/x", true),
    ("é/+", "e/x", false),
    // [MQTT-4.7.2-1] leading wildcards never match `$` topics.
    ("#", "$SYS/x", false),
    ("+/monitor/Clients", "$SYS/monitor/Clients", false),
    ("+", "$SYS", false),
    ("$SYS/#", "$SYS/monitor/Clients", true),
    ("$SYS/monitor/+", "$SYS/monitor/Clients", true),
    ("$SYS", "$SYS", true),
    ("a/#", "a/$x", true),
];

#[test]
fn matching_table() {
    for &(filter, topic, expected) in MATCHES {
        assert_eq!(matches(filter, topic), expected, "{filter} vs {topic}");
        let f = TopicFilter::new(filter).unwrap();
        let t = TopicName::new(topic).unwrap();
        assert_eq!(f.matches(t), expected, "{filter} vs {topic}");
        // A shared subscription matches by its inner filter.
        let shared = format!("$share/g/{filter}");
        let shared = TopicFilter::new(&shared).unwrap();
        assert_eq!(shared.matches(t), expected, "$share/g/{filter} vs {topic}");
    }
}

#[test]
fn empty_topic_of_an_alias_matches_nothing() {
    assert!(!TopicFilter::new("#").unwrap().matches(TopicName::EMPTY));
    assert!(!TopicFilter::new("+").unwrap().matches(TopicName::EMPTY));
}

fn topic_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-c$é ]{0,3}", 1..5)
        .prop_map(|levels| levels.join("/"))
        .prop_filter("topic names are not empty", |t| !t.is_empty())
}

proptest! {
    #[test]
    fn matching_never_panics_on_any_input(filter in "\\PC{0,12}", topic in "\\PC{0,12}") {
        let _ = matches(&filter, &topic);
    }

    #[test]
    fn a_topic_used_as_filter_matches_itself(topic in topic_strategy()) {
        prop_assert!(matches(&topic, &topic));
    }

    #[test]
    fn hash_matches_every_topic_not_starting_with_dollar(topic in topic_strategy()) {
        prop_assert_eq!(matches("#", &topic), !topic.starts_with('$'));
    }

    #[test]
    fn plus_levels_match_exactly_that_many_levels(topic in topic_strategy(), n in 1usize..5) {
        let filter = vec!["+"; n].join("/");
        let levels = topic.split('/').count();
        prop_assert_eq!(matches(&filter, &topic), levels == n && !topic.starts_with('$'));
    }
}
