//! Command-line parsing shared by `culex device` and `culex demo`.
//!
//! The flags are few and follow mosquitto's tools (`-h` is the host, not
//! help), so they are parsed by hand.

use std::ffi::OsString;
use std::process::ExitCode;

/// A bad command line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgError {
    /// A flag nobody knows.
    #[error("unknown option '{0}'")]
    Unknown(String),
    /// A flag without its value.
    #[error("option '{0}' needs a value")]
    Missing(String),
    /// A value that does not fit its flag.
    #[error("bad value '{value}' for '{flag}': {why}")]
    Invalid {
        /// The flag.
        flag: String,
        /// The value given.
        value: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// An argument that is not UTF-8.
    #[error("arguments must be UTF-8")]
    NotUtf8,
}

/// The options of `culex COMMAND`, or the exit code when the command ends
/// at once: after `--help` printed `usage`, or after a bad command line.
pub(crate) fn parse_or_exit<T>(
    command: &str,
    usage: &str,
    args: Vec<OsString>,
    parse: impl FnOnce(&[String]) -> Result<Option<T>, ArgError>,
) -> Result<T, ExitCode> {
    match utf8(args).and_then(|args| parse(&args)) {
        Ok(Some(options)) => Ok(options),
        Ok(None) => {
            println!("{usage}");
            Err(ExitCode::SUCCESS)
        }
        Err(err) => Err(fail(command, &err, usage)),
    }
}

fn utf8(args: Vec<OsString>) -> Result<Vec<String>, ArgError> {
    args.into_iter()
        .map(|arg| arg.into_string().map_err(|_| ArgError::NotUtf8))
        .collect()
}

pub(crate) fn value(flag: &str, value: Option<&String>) -> Result<String, ArgError> {
    value
        .cloned()
        .ok_or_else(|| ArgError::Missing(flag.to_owned()))
}

pub(crate) fn port(flag: &str, given: Option<&String>) -> Result<u16, ArgError> {
    let text = value(flag, given)?;
    text.parse().map_err(|_| ArgError::Invalid {
        flag: flag.to_owned(),
        value: text,
        why: "not a port number",
    })
}

/// A board name becomes a client id and the first level of a topic, so it
/// must be one plain topic level.
pub(crate) fn check_board_name(name: &str) -> Result<(), ArgError> {
    let why = if name.is_empty() {
        Some("empty")
    } else if name.contains(['/', '+', '#']) {
        Some("a board name is one topic level: no '/', '+' or '#'")
    } else if name.starts_with('$') {
        Some("topics starting with '$' are reserved")
    } else if name.chars().any(char::is_control) || name.len() > 64 {
        Some("use at most 64 printable characters")
    } else {
        None
    };
    match why {
        Some(why) => Err(ArgError::Invalid {
            flag: "board name".into(),
            value: name.to_owned(),
            why,
        }),
        None => Ok(()),
    }
}

fn fail(command: &str, err: &ArgError, usage: &str) -> ExitCode {
    eprintln!("culex {command}: {err}\n\n{usage}");
    ExitCode::from(1)
}
