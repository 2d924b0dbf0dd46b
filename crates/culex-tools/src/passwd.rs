//! `culex passwd`: mosquitto_passwd's flags, messages and exit codes.
//!
//! Writes `user:$7$101$SALT$HASH` lines (PBKDF2-SHA512, as mosquitto 2.0)
//! with the hashing code of [`culex_broker::auth::password`], so the broker
//! and the tool can never disagree about the format. Unlike mosquitto_passwd,
//! `-U` leaves lines that already hold a `$6$`/`$7$` hash alone instead of
//! hashing the hash.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use culex_broker::auth::password::PasswordHash;

/// The help text, printed to stdout on a usage error.
const USAGE: &str = "\
culex passwd is a tool for managing password files for mosquitto and culex.

Usage: culex passwd [-H sha512 | -H sha512-pbkdf2] [-c | -D] passwordfile username
       culex passwd [-H sha512 | -H sha512-pbkdf2] [-c] -b passwordfile username password
       culex passwd -U passwordfile
 -b : run in batch mode to allow passing passwords on the command line.
 -c : create a new password file. This will overwrite existing files.
 -D : delete the username rather than adding/updating its password.
 -H : specify the hashing algorithm. Defaults to sha512-pbkdf2, which is recommended.
      Mosquitto 1.6 and earlier defaulted to sha512.
 -U : update a plain text password file to use hashed passwords.
";

/// Entry point of `culex passwd`; `args` excludes the program and command names.
pub fn passwd_main(args: Vec<OsString>) -> ExitCode {
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    let code = run(&args, &mut TerminalPrompt, &mut stdout, &mut stderr);
    ExitCode::from(code)
}

/// How the password is asked for when it is not on the command line.
trait Prompt {
    /// Shows `prompt` and reads one line without echo.
    fn read(&mut self, prompt: &str) -> std::io::Result<String>;
}

/// The terminal without echo; a plain line from stdin when stdin is not a
/// terminal (so scripts can pipe passwords in, as with mosquitto_passwd).
struct TerminalPrompt;

impl Prompt for TerminalPrompt {
    fn read(&mut self, prompt: &str) -> std::io::Result<String> {
        if std::io::stdin().is_terminal() {
            return rpassword::prompt_password(prompt);
        }
        let mut out = std::io::stdout();
        out.write_all(prompt.as_bytes())?;
        out.flush()?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        // mosquitto_passwd ends the prompt line itself when input is piped.
        out.write_all(b"\n")?;
        let trimmed = line.strip_suffix('\n').unwrap_or(&line);
        let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
        Ok(trimmed.to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HashKind {
    Sha512,
    Pbkdf2,
}

#[derive(Debug, PartialEq, Eq)]
enum Action {
    /// Add or update a user (creating the file with `-c`).
    Set {
        file: PathBuf,
        user: String,
        password: Option<String>,
        create: bool,
    },
    /// `-D`.
    Delete { file: PathBuf, user: String },
    /// `-U`.
    Update { file: PathBuf },
}

/// A failure: the message for stderr (empty for a bare usage) and the exit code.
struct Failure {
    message: String,
    code: u8,
}

fn fail(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        code: 1,
    }
}

fn run(
    args: &[OsString],
    prompt: &mut dyn Prompt,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> u8 {
    let result = parse(args).and_then(|parsed| match parsed {
        None => {
            let _ = stdout.write_all(USAGE.as_bytes());
            Err(Failure {
                message: String::new(),
                code: 1,
            })
        }
        Some((action, kind)) => execute(action, kind, prompt),
    });
    match result {
        Ok(warning) => {
            if let Some(w) = warning {
                let _ = writeln!(stderr, "{w}");
            }
            0
        }
        Err(Failure { message, code }) => {
            if !message.is_empty() {
                let _ = writeln!(stderr, "{message}");
            }
            code
        }
    }
}

/// `Ok(None)` asks for the usage text.
fn parse(args: &[OsString]) -> Result<Option<(Action, HashKind)>, Failure> {
    let (mut create, mut delete, mut batch, mut update) = (false, false, false, false);
    let mut kind = HashKind::Pbkdf2;
    let mut index = 0;
    while let Some(arg) = args.get(index) {
        match arg.to_str() {
            Some("-c") => create = true,
            Some("-D") => delete = true,
            Some("-b") => batch = true,
            Some("-U") => update = true,
            Some("-H") => {
                index += 1;
                let Some(value) = args.get(index) else {
                    return Err(fail(
                        "Error: -H argument given but not enough other arguments.",
                    ));
                };
                kind = match value.to_str() {
                    Some("sha512") => HashKind::Sha512,
                    Some("sha512-pbkdf2") => HashKind::Pbkdf2,
                    _ => {
                        return Err(fail(format!(
                            "Error: Unknown hash type '{}'",
                            value.to_string_lossy()
                        )))
                    }
                };
            }
            _ => break,
        }
        index += 1;
    }
    let rest = args.get(index..).unwrap_or(&[]);
    if create && delete {
        return Err(fail("Error: -c and -D cannot be used together."));
    }
    if create && update {
        return Err(fail("Error: -c and -U cannot be used together."));
    }
    if delete && batch {
        return Err(fail("Error: -b and -D cannot be used together."));
    }
    if delete && update {
        return Err(fail("Error: -D and -U cannot be used together."));
    }

    let file = |i: usize| rest.get(i).map(PathBuf::from);
    let text = |i: usize| -> Result<Option<String>, Failure> {
        match rest.get(i) {
            None => Ok(None),
            Some(value) => value
                .to_str()
                .map(|s| Some(s.to_string()))
                .ok_or_else(|| fail("Error: Arguments must be valid UTF-8.")),
        }
    };
    let action = if update {
        if rest.len() != 1 {
            return Err(fail("Error: -U argument given but password file missing."));
        }
        file(0).map(|file| Action::Update { file })
    } else if delete {
        if rest.len() != 2 {
            return Err(fail(
                "Error: -D argument given but password file or username missing.",
            ));
        }
        match (file(0), text(1)?) {
            (Some(file), Some(user)) => Some(Action::Delete { file, user }),
            _ => None,
        }
    } else {
        let needed = if batch { 3 } else { 2 };
        // Like mosquitto_passwd, -c tolerates trailing arguments; without it
        // the count must be exact.
        let count_ok = if create {
            rest.len() >= needed
        } else {
            rest.len() == needed
        };
        if !count_ok {
            if create {
                return Err(fail(
                    "Error: -c argument given but password file or username missing.",
                ));
            }
            return Ok(None);
        }
        let password = if batch { text(2)? } else { None };
        match (file(0), text(1)?) {
            (Some(file), Some(user)) => Some(Action::Set {
                file,
                user,
                password,
                create,
            }),
            _ => None,
        }
    };
    let Some(action) = action else {
        return Ok(None);
    };
    if let Action::Set { user, .. } | Action::Delete { user, .. } = &action {
        if user.contains(':') {
            return Err(fail("Error: Username must not contain the ':' character."));
        }
    }
    Ok(Some((action, kind)))
}

/// Carries out the action; `Ok(Some(w))` succeeded with a warning for stderr.
fn execute(
    action: Action,
    kind: HashKind,
    prompt: &mut dyn Prompt,
) -> Result<Option<String>, Failure> {
    match action {
        Action::Set {
            file,
            user,
            password,
            create,
        } => {
            // Read the file before asking, so a typo in its name fails fast.
            let existing = if create { String::new() } else { read(&file)? };
            let password = match password {
                Some(password) => password,
                None => ask(prompt)?,
            };
            let line = format!("{user}:{}", hash(kind, password.as_bytes()));
            let mut lines: Vec<String> = Vec::new();
            let mut replaced = false;
            for existing_line in existing.lines() {
                if line_user(existing_line) == Some(user.as_str()) {
                    if !replaced {
                        lines.push(line.clone());
                        replaced = true;
                    }
                } else {
                    lines.push(existing_line.to_string());
                }
            }
            if !replaced {
                lines.push(line);
            }
            write(&file, &lines, create)?;
            Ok(None)
        }
        Action::Delete { file, user } => {
            let existing = read(&file)?;
            let kept: Vec<String> = existing
                .lines()
                .filter(|l| line_user(l) != Some(user.as_str()))
                .map(str::to_string)
                .collect();
            if kept.len() == existing.lines().count() {
                return Err(fail(format!(
                    "Warning: User {user} not found in password file."
                )));
            }
            write(&file, &kept, false)?;
            Ok(None)
        }
        Action::Update { file } => {
            let existing = read(&file)?;
            let mut lines = Vec::new();
            for (index, existing_line) in existing.lines().enumerate() {
                if is_blank_or_comment(existing_line) {
                    lines.push(existing_line.to_string());
                    continue;
                }
                let Some((user, secret)) = existing_line.split_once(':') else {
                    return Err(fail(format!(
                        "Error: Corrupt password file at line {}.",
                        index + 1
                    )));
                };
                let secret = secret.strip_suffix('\r').unwrap_or(secret);
                if PasswordHash::parse(secret).is_ok() {
                    lines.push(existing_line.to_string());
                } else {
                    lines.push(format!("{user}:{}", hash(kind, secret.as_bytes())));
                }
            }
            write(&file, &lines, false)?;
            Ok(None)
        }
    }
}

fn ask(prompt: &mut dyn Prompt) -> Result<String, Failure> {
    let unreadable = |e: std::io::Error| fail(format!("Error: Unable to read password: {e}."));
    let first = prompt.read("Password: ").map_err(unreadable)?;
    if first.is_empty() {
        return Err(fail("Error: Empty password."));
    }
    let second = prompt.read("Reenter password: ").map_err(unreadable)?;
    if first != second {
        return Err(Failure {
            message: "Error: Passwords do not match.".to_string(),
            code: 2,
        });
    }
    Ok(first)
}

fn hash(kind: HashKind, password: &[u8]) -> PasswordHash {
    match kind {
        HashKind::Pbkdf2 => PasswordHash::generate(password),
        HashKind::Sha512 => {
            let mut salt = [0u8; culex_broker::auth::password::SALT_LEN];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
            PasswordHash::sha512(password, &salt)
        }
    }
}

fn is_blank_or_comment(line: &str) -> bool {
    let trimmed = line.trim();
    trimmed.is_empty() || trimmed.starts_with('#')
}

/// The user a line is about, if it is a user line.
fn line_user(line: &str) -> Option<&str> {
    if is_blank_or_comment(line) {
        return None;
    }
    Some(
        line.split_once(':')
            .map_or(line.trim_end(), |(user, _)| user),
    )
}

/// An I/O error as the C library words it, without Rust's "(os error N)".
fn os_message(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(cut) => text.get(..cut).unwrap_or(&text).to_string(),
        None => text,
    }
}

fn read(file: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(file).map_err(|e| cannot_open(file, &e))
}

fn cannot_open(file: &Path, e: &std::io::Error) -> Failure {
    fail(format!(
        "Error: Unable to open password file {}. {}.",
        file.display(),
        os_message(e)
    ))
}

/// Rewrites the file in place, keeping its owner and permissions as
/// mosquitto_passwd does.
fn write(file: &Path, lines: &[String], create: bool) -> Result<(), Failure> {
    let mut text = lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    let opened = OpenOptions::new()
        .write(true)
        .truncate(true)
        .create(create)
        .open(file);
    let mut handle = opened.map_err(|e| {
        if create {
            fail(format!(
                "Error: Unable to open file {} for writing. {}.",
                file.display(),
                os_message(&e)
            ))
        } else {
            cannot_open(file, &e)
        }
    })?;
    handle
        .write_all(text.as_bytes())
        .and_then(|()| handle.flush())
        .map_err(|e| {
            fail(format!(
                "Error: Unable to write password file {}. {}.",
                file.display(),
                os_message(&e)
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use culex_broker::auth::password::PasswordFile;

    struct Scripted(Vec<&'static str>);

    impl Prompt for Scripted {
        fn read(&mut self, _prompt: &str) -> std::io::Result<String> {
            if self.0.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "no more input",
                ));
            }
            Ok(self.0.remove(0).to_string())
        }
    }

    /// Runs with scripted answers; returns (exit code, stdout, stderr).
    fn passwd(args: &[&str], answers: Vec<&'static str>) -> (u8, String, String) {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(&args, &mut Scripted(answers), &mut out, &mut err);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn argument_errors_match_mosquitto_passwd() {
        let table: &[(&[&str], u8, &str)] = &[
            (&["-c", "-D", "f", "u"], 1, "Error: -c and -D cannot be used together.\n"),
            (&["-c", "-U", "f"], 1, "Error: -c and -U cannot be used together.\n"),
            (&["-D", "-b", "f", "u"], 1, "Error: -b and -D cannot be used together.\n"),
            (&["-D", "-U", "f"], 1, "Error: -D and -U cannot be used together.\n"),
            (&["-c"], 1, "Error: -c argument given but password file or username missing.\n"),
            (&["-D", "f"], 1, "Error: -D argument given but password file or username missing.\n"),
            (&["-U"], 1, "Error: -U argument given but password file missing.\n"),
            (&["-U", "f", "x"], 1, "Error: -U argument given but password file missing.\n"),
            (&["-H"], 1, "Error: -H argument given but not enough other arguments.\n"),
            (&["-H", "md5", "-b", "f", "u", "p"], 1, "Error: Unknown hash type 'md5'\n"),
            (&["-b", "f", "a:b", "p"], 1, "Error: Username must not contain the ':' character.\n"),
            (&["-b", "/nonexistent/pw", "u", "p"], 1, "Error: Unable to open password file /nonexistent/pw. No such file or directory.\n"),
            (&["-c", "-b", "/nonexistent/pw", "u", "p"], 1, "Error: Unable to open file /nonexistent/pw for writing. No such file or directory.\n"),
        ];
        for (args, code, stderr) in table {
            let (got_code, out, err) = passwd(args, vec![]);
            assert_eq!((got_code, err.as_str()), (*code, *stderr), "{args:?}");
            assert!(out.is_empty(), "{args:?}");
        }
    }

    #[test]
    fn wrong_argument_counts_print_usage() {
        for args in [
            &[][..],
            &["f"],
            &["-b", "f", "u"],
            &["-b", "f", "u", "p", "extra"],
            &["f", "u", "x"],
        ] {
            let (code, out, err) = passwd(args, vec![]);
            assert_eq!(code, 1, "{args:?}");
            assert!(out.contains("Usage: culex passwd"), "{args:?}");
            assert!(err.is_empty(), "{args:?}");
        }
    }

    #[test]
    fn interactive_asks_twice() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        let path = file.to_str().unwrap();
        assert_eq!(passwd(&["-c", path, "u"], vec!["s3cret", "s3cret"]).0, 0);
        assert!(PasswordFile::load(&file).unwrap().verify("u", b"s3cret"));
        let (code, _, err) = passwd(&[path, "u"], vec!["one", "two"]);
        assert_eq!(
            (code, err.as_str()),
            (2, "Error: Passwords do not match.\n")
        );
        let (code, _, err) = passwd(&[path, "u"], vec![""]);
        assert_eq!((code, err.as_str()), (1, "Error: Empty password.\n"));
        // Failed attempts leave the file as it was.
        assert!(PasswordFile::load(&file).unwrap().verify("u", b"s3cret"));
    }

    #[test]
    fn add_update_delete_keep_other_lines() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        let path = file.to_str().unwrap();
        assert_eq!(passwd(&["-c", "-b", path, "alice", "a1"], vec![]).0, 0);
        std::fs::write(
            &file,
            format!("# team\n{}", std::fs::read_to_string(&file).unwrap()),
        )
        .unwrap();
        assert_eq!(passwd(&["-b", path, "bob", "b1"], vec![]).0, 0);
        assert_eq!(passwd(&["-b", path, "alice", "a2"], vec![]).0, 0);
        let text = std::fs::read_to_string(&file).unwrap();
        let users: Vec<&str> = text.lines().map(|l| l.split(':').next().unwrap()).collect();
        assert_eq!(users, ["# team", "alice", "bob"]);
        let parsed = PasswordFile::parse(&text);
        assert!(parsed.verify("alice", b"a2") && !parsed.verify("alice", b"a1"));
        assert!(parsed.verify("bob", b"b1"));

        assert_eq!(passwd(&["-D", path, "alice"], vec![]).0, 0);
        let (code, _, err) = passwd(&["-D", path, "alice"], vec![]);
        assert_eq!(
            (code, err.as_str()),
            (1, "Warning: User alice not found in password file.\n")
        );
        let parsed = PasswordFile::load(&file).unwrap();
        assert!(!parsed.contains("alice") && parsed.verify("bob", b"b1"));
    }

    #[test]
    fn sha512_on_request() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        assert_eq!(
            passwd(
                &["-H", "sha512", "-c", "-b", file.to_str().unwrap(), "u", "p"],
                vec![]
            )
            .0,
            0
        );
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.starts_with("u:$6$"), "{text}");
        assert!(PasswordFile::parse(&text).verify("u", b"p"));
    }

    #[test]
    fn update_hashes_plain_lines_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        let hashed = format!("old:{}", PasswordHash::generate(b"kept"));
        std::fs::write(&file, format!("plain:text pw\n# note\n{hashed}\n")).unwrap();
        assert_eq!(passwd(&["-U", file.to_str().unwrap()], vec![]).0, 0);
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("plain:$7$101$"), "{text}");
        assert_eq!(&lines[1..], ["# note", hashed.as_str()]);
        let parsed = PasswordFile::parse(&text);
        assert!(parsed.verify("plain", b"text pw") && parsed.verify("old", b"kept"));

        std::fs::write(&file, "good:pw\nno colon here\n").unwrap();
        let (code, _, err) = passwd(&["-U", file.to_str().unwrap()], vec![]);
        assert_eq!(
            (code, err.as_str()),
            (1, "Error: Corrupt password file at line 2.\n")
        );
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "good:pw\nno colon here\n"
        );
    }
}
