//! mosquitto's acl_file.
//!
//! The format, one directive a line (blank lines and `#` comments skipped):
//! - `user NAME` starts the rules of one user; rules before any `user` line
//!   apply to clients without a user name;
//! - `topic [read|write|readwrite|deny] TOPIC` grants (or denies) access to a
//!   topic or filter, `readwrite` when no access is given;
//! - `pattern [read|write|readwrite|deny] TOPIC` is a rule for every client,
//!   with `%c` replaced by the client id and `%u` by the user name.
//!
//! A check looks at the client's own rules, deny rules first, then at the
//! patterns, deny rules first, as mosquitto 2.0 does; a client that no rule
//! grants access is refused. `$` topics are only matched by
//! rules that begin with `$`, by the usual matching rules [MQTT-4.7.2-1].

use std::collections::HashMap;
use std::path::Path;

/// The access a rule grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Receive messages.
    Read,
    /// Publish messages.
    Write,
}

/// What one rule says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAccess {
    /// `read`.
    Read,
    /// `write`.
    Write,
    /// `readwrite` (also when no access is written).
    ReadWrite,
    /// `deny`.
    Deny,
}

impl RuleAccess {
    fn grants(self, access: Access) -> bool {
        matches!(
            (self, access),
            (RuleAccess::ReadWrite, _)
                | (RuleAccess::Read, Access::Read)
                | (RuleAccess::Write, Access::Write)
        )
    }
}

/// One `topic` or `pattern` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The access it grants or denies.
    pub access: RuleAccess,
    /// The topic or filter, with `%c`/`%u` still in it for patterns.
    pub topic: String,
}

/// Why an ACL file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AclError {
    /// The file could not be read.
    #[error("unable to open acl_file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A line that is not a `user`, `topic` or `pattern` directive.
    #[error("acl_file line {line}: {reason}")]
    InvalidLine {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// A parsed ACL file.
#[derive(Debug, Default, Clone)]
pub struct Acl {
    /// Rules for clients without a user name.
    anonymous: Vec<Rule>,
    /// Rules per user name; a user named in several `user` blocks gets all of them.
    users: HashMap<String, Vec<Rule>>,
    /// Patterns for everyone.
    patterns: Vec<Rule>,
}

impl Acl {
    /// Reads and parses an ACL file.
    pub fn load(path: &Path) -> Result<Acl, AclError> {
        let text = std::fs::read_to_string(path).map_err(|source| AclError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Acl::parse(&text)
    }

    /// Parses the text of an ACL file.
    pub fn parse(text: &str) -> Result<Acl, AclError> {
        let mut acl = Acl::default();
        let mut current_user: Option<String> = None;
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let invalid = |reason: &str| AclError::InvalidLine {
                line: index + 1,
                reason: reason.to_string(),
            };
            let (keyword, rest) = split_word(line);
            match keyword {
                "user" => {
                    if rest.is_empty() {
                        return Err(invalid("missing user name"));
                    }
                    acl.users.entry(rest.to_string()).or_default();
                    current_user = Some(rest.to_string());
                }
                "topic" | "pattern" => {
                    let (first, after) = split_word(rest);
                    // As in mosquitto: one word is a topic with `readwrite`;
                    // with more, the first word must be the access type.
                    let (access, topic) = match (first, after.is_empty()) {
                        (_, true) => (RuleAccess::ReadWrite, first),
                        ("read", false) => (RuleAccess::Read, after),
                        ("write", false) => (RuleAccess::Write, after),
                        ("readwrite", false) => (RuleAccess::ReadWrite, after),
                        ("deny", false) => (RuleAccess::Deny, after),
                        (other, false) => {
                            return Err(invalid(&format!("invalid topic access type '{other}'")))
                        }
                    };
                    if topic.is_empty() {
                        return Err(invalid(&format!("missing topic in {keyword} line")));
                    }
                    if !valid_filter(topic) {
                        return Err(invalid(&format!("invalid topic '{topic}'")));
                    }
                    let rule = Rule {
                        access,
                        topic: topic.to_string(),
                    };
                    if keyword == "pattern" {
                        acl.patterns.push(rule);
                    } else {
                        match &current_user {
                            Some(user) => acl.users.entry(user.clone()).or_default().push(rule),
                            None => acl.anonymous.push(rule),
                        }
                    }
                }
                other => return Err(invalid(&format!("unknown directive '{other}'"))),
            }
        }
        Ok(acl)
    }

    /// Whether the client may read or write `topic`.
    pub fn check(
        &self,
        client_id: &str,
        username: Option<&str>,
        topic: &str,
        access: Access,
    ) -> bool {
        self.decide(
            client_id,
            username,
            |rule_topic| culex_codec::topic::matches(rule_topic, topic),
            |rule| rule.grants(access),
        )
    }

    /// Whether the client may subscribe to `filter`: some `read`/`readwrite`
    /// rule must cover every topic the filter matches (a rule `a/#` covers
    /// `a/b/+`), and no `deny` rule may cover it.
    pub fn check_subscribe(&self, client_id: &str, username: Option<&str>, filter: &str) -> bool {
        self.decide(
            client_id,
            username,
            |rule_topic| filter_covers(rule_topic, filter),
            |rule| rule.grants(Access::Read),
        )
    }

    /// mosquitto's order: the client's own rules (denials first), then the
    /// patterns (denials first); the first rule that applies decides.
    /// `applies(rule_topic)` says whether a rule's (substituted) topic
    /// concerns the request.
    fn decide(
        &self,
        client_id: &str,
        username: Option<&str>,
        applies: impl Fn(&str) -> bool,
        grants: impl Fn(RuleAccess) -> bool,
    ) -> bool {
        let direct: &[Rule] = match username {
            None => &self.anonymous,
            Some(name) => self.users.get(name).map(Vec::as_slice).unwrap_or(&[]),
        };
        if let Some(decision) = first_decision(
            direct.iter().map(|r| (r.access, r.topic.as_str())),
            &applies,
            &grants,
        ) {
            return decision;
        }
        if self.patterns.is_empty() {
            return false;
        }
        // A client id or user name with wildcards would widen a pattern to
        // other clients' topics: such clients get nothing from patterns.
        if client_id.contains(['+', '#']) || username.is_some_and(|u| u.contains(['+', '#'])) {
            return false;
        }
        let substituted: Vec<(RuleAccess, String)> = self
            .patterns
            .iter()
            .filter_map(|rule| {
                substitute(&rule.topic, client_id, username).map(|topic| (rule.access, topic))
            })
            .collect();
        first_decision(
            substituted
                .iter()
                .map(|(access, topic)| (*access, topic.as_str())),
            &applies,
            &grants,
        )
        .unwrap_or(false)
    }
}

/// Denials first, then grants: `Some(false)` when a deny rule applies,
/// `Some(true)` when a granting rule applies, `None` when no rule decides.
fn first_decision<'a>(
    rules: impl Iterator<Item = (RuleAccess, &'a str)> + Clone,
    applies: &impl Fn(&str) -> bool,
    grants: &impl Fn(RuleAccess) -> bool,
) -> Option<bool> {
    if rules
        .clone()
        .any(|(access, topic)| access == RuleAccess::Deny && applies(topic))
    {
        return Some(false);
    }
    if rules
        .into_iter()
        .any(|(access, topic)| grants(access) && applies(topic))
    {
        return Some(true);
    }
    None
}

/// A pattern with `%c` and `%u` replaced; None when it has `%u` and the
/// client no user name, so the pattern does not apply.
fn substitute(pattern: &str, client_id: &str, username: Option<&str>) -> Option<String> {
    if !pattern.contains('%') {
        return Some(pattern.to_string());
    }
    let mut out = String::with_capacity(pattern.len() + client_id.len());
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('%', Some('c')) => {
                chars.next();
                out.push_str(client_id);
            }
            ('%', Some('u')) => {
                chars.next();
                out.push_str(username?);
            }
            _ => out.push(c),
        }
    }
    Some(out)
}

fn split_word(text: &str) -> (&str, &str) {
    match text.split_once([' ', '\t']) {
        Some((word, rest)) => (word, rest.trim_start()),
        None => (text, ""),
    }
}

/// A topic filter's level grammar: `#` only alone and last, `+` only alone.
///
/// Not the codec's `TopicFilter::new`: that one also holds a `$share/` rule
/// to the shared-subscription grammar, and a file with a rule such as
/// `topic read $share/#` (which mosquitto loads) must still load.
fn valid_filter(filter: &str) -> bool {
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        if level.contains('#') && (level != "#" || levels.peek().is_some()) {
            return false;
        }
        if level.contains('+') && level != "+" {
            return false;
        }
    }
    !filter.contains('\0')
}

/// Whether every topic matched by `filter` is also matched by `rule`.
fn filter_covers(rule: &str, filter: &str) -> bool {
    // [MQTT-4.7.2-1]: a rule starting with a wildcard says nothing about `$` topics.
    if filter.starts_with('$') && (rule.starts_with('+') || rule.starts_with('#')) {
        return false;
    }
    let mut rule_levels = rule.split('/');
    let mut filter_levels = filter.split('/');
    loop {
        match (rule_levels.next(), filter_levels.next()) {
            (Some("#"), _) => return true,
            (None, None) => return true,
            (Some(_), None) | (None, Some(_)) => return false,
            (Some("+"), Some(level)) => {
                if level == "#" {
                    return false;
                }
            }
            (Some(r), Some(f)) => {
                if r != f {
                    return false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# anonymous clients
topic read public/#
topic deny public/secret

user alice
topic readwrite alice/#
topic write cmd/+/set
topic read $SYS/broker/uptime

user bob
topic bob/#
topic deny bob/private/#

pattern read clients/%c/in
pattern write clients/%c/out
pattern readwrite users/%u/#
";

    fn acl() -> Acl {
        Acl::parse(FILE).unwrap()
    }

    #[test]
    fn publish_and_receive_table() {
        use Access::{Read, Write};
        let acl = acl();
        let table: &[(&str, Option<&str>, &str, Access, bool)] = &[
            // Rules before the first `user` line are the anonymous ones.
            ("c1", None, "public/news", Read, true),
            ("c1", None, "public/news", Write, false),
            ("c1", None, "public/secret", Read, false),
            ("c1", None, "alice/x", Read, false),
            ("c1", Some("alice"), "public/news", Read, false),
            ("c1", Some("alice"), "alice/x", Write, true),
            ("c1", Some("alice"), "alice", Read, true),
            ("c1", Some("alice"), "cmd/lamp/set", Write, true),
            ("c1", Some("alice"), "cmd/lamp/set", Read, false),
            ("c1", Some("alice"), "cmd/lamp/get", Write, false),
            ("c1", Some("alice"), "$SYS/broker/uptime", Read, true),
            ("c1", Some("bob"), "bob/a", Write, true),
            // Deny rules win over grants.
            ("c1", Some("bob"), "bob/private/diary", Read, false),
            ("c1", Some("bob"), "bob/private", Read, false),
            // Unknown users get only patterns.
            ("c1", Some("carol"), "bob/a", Read, false),
            ("dev7", Some("carol"), "clients/dev7/in", Read, true),
            ("dev7", Some("carol"), "clients/dev7/in", Write, false),
            ("dev7", Some("carol"), "clients/dev8/in", Read, false),
            ("dev7", None, "clients/dev7/out", Write, true),
            ("dev7", Some("carol"), "users/carol/a/b", Write, true),
            ("dev7", Some("carol"), "users/alice/a", Read, false),
            // `%u` never applies to anonymous clients.
            ("dev7", None, "users//a", Read, false),
        ];
        for (client, user, topic, access, expected) in table {
            assert_eq!(
                acl.check(client, *user, topic, *access),
                *expected,
                "{client} {user:?} {topic} {access:?}"
            );
        }
    }

    #[test]
    fn dollar_topics_only_match_dollar_rules() {
        // [MQTT-4.7.2-1]
        let acl = Acl::parse("user root\ntopic #\ntopic read $SYS/#\n").unwrap();
        assert!(acl.check("c", Some("root"), "a/b", Access::Write));
        assert!(!acl.check("c", Some("root"), "$internal/x", Access::Write));
        assert!(acl.check("c", Some("root"), "$SYS/broker/load", Access::Read));
        assert!(!acl.check("c", Some("root"), "$SYS/broker/load", Access::Write));
        let plus = Acl::parse("user root\ntopic +/b\n").unwrap();
        assert!(!plus.check("c", Some("root"), "$x/b", Access::Read));
        assert!(plus.check("c", Some("root"), "x/b", Access::Read));
    }

    #[test]
    fn wildcards_in_client_id_or_user_defeat_patterns() {
        let acl = Acl::parse(
            "pattern readwrite clients/%c/#\npattern read users/%u\nuser w+\ntopic read own\n",
        )
        .unwrap();
        assert!(acl.check("a", None, "clients/a/x", Access::Read));
        for id in ["+", "#", "a+"] {
            assert!(
                !acl.check(id, None, &format!("clients/{id}/x"), Access::Read),
                "{id}"
            );
        }
        assert!(!acl.check("a", Some("#"), "clients/a/x", Access::Read));
        // As in mosquitto 2.0, `/` is allowed and stays a level separator.
        assert!(acl.check("a/b", None, "clients/a/b/x", Access::Read));
        // A user's own rules still apply whatever the name.
        assert!(acl.check("a", Some("w+"), "own", Access::Read));
    }

    #[test]
    fn own_rules_decide_before_patterns() {
        // mosquitto checks the client's rules, then the patterns; denials
        // come first within each.
        let acl = Acl::parse("pattern deny secret/%c\npattern read #\nuser admin\ntopic readwrite #\ntopic deny admin/off\n")
            .unwrap();
        assert!(acl.check("c", Some("admin"), "secret/c", Access::Read));
        assert!(!acl.check("c", Some("admin"), "admin/off", Access::Read));
        assert!(!acl.check("c", Some("guest"), "secret/c", Access::Read));
        assert!(acl.check("c", Some("guest"), "public", Access::Read));
        assert!(!acl.check("c", Some("guest"), "public", Access::Write));
    }

    #[test]
    fn subscribe_table() {
        let acl = acl();
        let table: &[(&str, Option<&str>, &str, bool)] = &[
            ("c", Some("alice"), "alice/#", true),
            ("c", Some("alice"), "alice/b/+", true),
            ("c", Some("alice"), "alice/+/c", true),
            ("c", Some("alice"), "#", false),
            ("c", Some("alice"), "+/x", false),
            // Write-only rules do not allow subscribing.
            ("c", Some("alice"), "cmd/lamp/set", false),
            ("c", Some("alice"), "$SYS/broker/uptime", true),
            ("c", Some("alice"), "$SYS/#", false),
            ("c", None, "public/#", true),
            ("c", None, "public/weather/+", true),
            // A deny rule covering the filter refuses it.
            ("c", None, "public/secret", false),
            ("c", Some("bob"), "bob/private/#", false),
            ("c", Some("bob"), "bob/public/+", true),
            ("dev1", None, "clients/dev1/in", true),
            ("dev1", None, "clients/+/in", false),
            ("dev1", None, "clients/dev1/out", false),
            ("dev1", Some("zed"), "users/zed/#", true),
            ("dev1", Some("zed"), "users/zed", true),
        ];
        for (client, user, filter, expected) in table {
            assert_eq!(
                acl.check_subscribe(client, *user, filter),
                *expected,
                "{client} {user:?} {filter}"
            );
        }
    }

    #[test]
    fn filter_covers_table() {
        let table: &[(&str, &str, bool)] = &[
            ("a/#", "a/b/+", true),
            ("a/#", "a", true),
            ("a/#", "a/#", true),
            ("a/+", "a/b", true),
            ("a/+", "a/+", true),
            ("a/+", "a/#", false),
            ("a/+", "a/b/c", false),
            ("a/b", "a/+", false),
            ("#", "$SYS/x", false),
            ("+/x", "$SYS/x", false),
            ("$SYS/#", "$SYS/x", true),
            ("#", "anything/at/all", true),
            ("a/b", "a/b", true),
            ("a/b", "a/bc", false),
        ];
        for (rule, filter, expected) in table {
            assert_eq!(
                filter_covers(rule, filter),
                *expected,
                "{rule} covers {filter}"
            );
        }
    }

    #[test]
    fn no_rules_means_nothing_allowed() {
        let acl = Acl::parse("# empty\n").unwrap();
        assert!(!acl.check("c", None, "a", Access::Read));
        assert!(!acl.check_subscribe("c", Some("u"), "a"));
    }

    #[test]
    fn topics_with_spaces_and_repeated_users() {
        let acl = Acl::parse("user eve\ntopic read a b/c\nuser other\nuser eve\ntopic write x\n")
            .unwrap();
        assert!(acl.check("c", Some("eve"), "a b/c", Access::Read));
        assert!(acl.check("c", Some("eve"), "x", Access::Write));
        assert!(!acl.check("c", Some("other"), "x", Access::Write));
    }

    #[test]
    fn mosquittos_example_acl_file() {
        let path = Path::new("/usr/share/doc/mosquitto/examples/aclfile.example");
        let acl = Acl::load(path)
            .unwrap_or_else(|e| panic!("{e}; install Debian's mosquitto (scripts/test does)"));
        assert!(acl.check("c", None, "$SYS/broker/uptime", Access::Read));
        assert!(!acl.check("c", None, "$SYS/broker/uptime", Access::Write));
        assert!(!acl.check("c", None, "foo/bar", Access::Read));
        assert!(acl.check("c", Some("roger"), "foo/bar", Access::Write));
        assert!(acl.check("c", Some("roger"), "foo/bar", Access::Read));
        assert!(!acl.check("c", Some("roger"), "$SYS/broker/uptime", Access::Read));
        assert!(acl.check(
            "b1",
            Some("roger"),
            "$SYS/broker/connection/b1/state",
            Access::Write
        ));
        assert!(!acl.check(
            "b1",
            Some("roger"),
            "$SYS/broker/connection/b2/state",
            Access::Write
        ));
    }

    #[test]
    fn shared_subscription_rules_load_as_in_mosquitto() {
        // Checks see the filter inside `$share/GROUP/`, so these rules match
        // nothing, but a file holding them must load.
        for text in ["topic read $share/#\n", "pattern $share/g\n"] {
            assert!(Acl::parse(text).is_ok(), "{text:?}");
        }
    }

    #[test]
    fn errors_name_the_line() {
        for (text, line) in [
            ("topic read a\nfoo bar\n", 2),
            ("\n\nuser\n", 3),
            ("topic\n", 1),
            ("topic reed a/b\n", 1),
            ("pattern deny a/#/b\n", 1),
            ("topic a+\n", 1),
        ] {
            match Acl::parse(text) {
                Err(AclError::InvalidLine { line: got, .. }) => assert_eq!(got, line, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }
}
