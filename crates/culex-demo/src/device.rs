//! `culex device`: one simulated board as its own process, drawn in the
//! terminal, with a key as its button.
//!
//! On a terminal the board is a status line redrawn in place; the space bar
//! is the button (held down while the key is, on terminals that report key
//! releases; otherwise each press toggles it) and `q` quits. When standard
//! input is not a terminal the board reads commands, one per line (`press`,
//! `release`, `toggle`, `quit`), and prints one line per change, which is
//! what scripts and tests want.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::args::{self, ArgError};
use crate::board::{Board, BoardConfig, Link, Pins, Signal};

const USAGE: &str = "\
usage: culex device --name NAME --peer PEER [-h HOST] [-p PORT]

One simulated ESP32 board running the MQTT tutorial's program: it publishes
its button (GPIO0, 1 released, 0 pressed) to NAME/btn/0 twice a second and
lights its LED (GPIO2) while PEER/btn/0 says 0.

  --name NAME   the board's client id and topic prefix (default blue)
  --peer PEER   the board whose button lights this LED (default green,
                or blue when NAME is green)
  -h HOST       the broker (default localhost)
  -p PORT       the broker's port (default 1883)
  --help        this text

Keys: space presses the button (hold it, or press again to release where the
terminal cannot report key releases), q quits. Without a terminal, standard
input takes the lines press, release, toggle and quit.";

/// The options of `culex device`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceOptions {
    /// The board: its name, peer and broker.
    pub board: BoardConfig,
}

impl DeviceOptions {
    /// Parses the arguments after `culex device`; `Ok(None)` asks for the usage text.
    pub fn parse(args: &[String]) -> Result<Option<DeviceOptions>, ArgError> {
        let mut name = None;
        let mut peer = None;
        let mut host = "localhost".to_owned();
        let mut port = 1883;
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--help" => return Ok(None),
                "--name" | "-n" => name = Some(args::value(arg, it.next())?),
                "--peer" => peer = Some(args::value(arg, it.next())?),
                "-h" | "--host" => host = args::value(arg, it.next())?,
                "-p" | "--port" => port = args::port(arg, it.next())?,
                other => return Err(ArgError::Unknown(other.to_owned())),
            }
        }
        let name = name.unwrap_or_else(|| "blue".to_owned());
        let peer =
            peer.unwrap_or_else(|| if name == "green" { "blue" } else { "green" }.to_owned());
        args::check_board_name(&name)?;
        args::check_board_name(&peer)?;
        Ok(Some(DeviceOptions {
            board: BoardConfig {
                name,
                peer,
                host,
                port,
            },
        }))
    }
}

/// Entry point of `culex device`.
pub fn main(args: Vec<std::ffi::OsString>) -> std::process::ExitCode {
    let options = match args::parse_or_exit("device", USAGE, args, DeviceOptions::parse) {
        Ok(options) => options,
        Err(code) => return code,
    };
    let result = if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        run_terminal(&options)
    } else {
        let stdin = Box::new(std::io::BufReader::new(std::io::stdin()));
        run_lines(&options, stdin, &mut std::io::stdout())
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("culex device: {err}");
            std::process::ExitCode::from(1)
        }
    }
}

/// Runs the board with commands read from `input`, one per line, printing
/// one line to `out` for each change, until `quit`.
///
/// End of input does not stop the board: like a board without a keyboard it
/// runs on until the process is stopped.
pub fn run_lines(
    options: &DeviceOptions,
    input: Box<dyn BufRead + Send>,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let signal = Signal::new();
    let board = Board::start(options.board.clone(), Arc::clone(&signal))?;
    let quit = Arc::new(AtomicBool::new(false));
    let reader = std::thread::Builder::new()
        .name("device-input".into())
        .spawn({
            let pins = Arc::clone(board.pins());
            let quit = Arc::clone(&quit);
            let signal = Arc::clone(&signal);
            move || read_commands(input, &pins, &quit, &signal)
        })?;
    // The reader thread may stay blocked on input after `quit`; it holds
    // only its own handles, so it is left to end with the process.
    drop(reader);

    writeln!(
        out,
        "{}: board started, broker {}:{}",
        options.board.name, options.board.host, options.board.port
    )?;
    out.flush()?;
    let mut shown = Shown::default();
    let mut generation = signal.generation();
    while !quit.load(Ordering::SeqCst) {
        for line in shown.changes(&options.board.name, board.pins()) {
            writeln!(out, "{line}")?;
        }
        out.flush()?;
        generation = signal.wait_past(generation, Duration::from_millis(200));
    }
    board.stop();
    writeln!(out, "{}: stopped", options.board.name)?;
    out.flush()
}

fn read_commands(input: Box<dyn BufRead + Send>, pins: &Pins, quit: &AtomicBool, signal: &Signal) {
    for line in input.lines() {
        let Ok(line) = line else { break };
        match line.trim() {
            "press" | "p" | "0" => pins.press(),
            "release" | "r" | "1" => pins.release(),
            "toggle" | "t" => pins.set_pressed(!pins.pressed()),
            "quit" | "q" | "exit" => {
                quit.store(true, Ordering::SeqCst);
                signal.notify();
                return;
            }
            "" => {}
            other => {
                eprintln!("culex device: unknown command '{other}' (press, release, toggle, quit)")
            }
        }
    }
}

/// What the line-mode output last reported, so it prints only changes.
#[derive(Debug, Default)]
struct Shown {
    link: Option<Link>,
    pressed: Option<bool>,
    led: Option<bool>,
}

impl Shown {
    fn changes(&mut self, name: &str, pins: &Pins) -> Vec<String> {
        let mut lines = Vec::new();
        let link = pins.link();
        if self.link != Some(link) {
            match (link, pins.last_error()) {
                (Link::Connecting, Some(error)) => {
                    lines.push(format!("{name}: connecting ({error})"))
                }
                _ => lines.push(format!("{name}: {}", link.as_str())),
            }
            self.link = Some(link);
        }
        let pressed = pins.pressed();
        if self.pressed != Some(pressed) {
            let word = if pressed { "pressed" } else { "released" };
            lines.push(format!(
                "{name}: button {word} (GPIO0={})",
                pins.button_value()
            ));
            self.pressed = Some(pressed);
        }
        let led = pins.led_on();
        if self.led != Some(led) {
            let word = if led { "on" } else { "off" };
            lines.push(format!("{name}: LED {word} (GPIO2={})", u8::from(led)));
            self.led = Some(led);
        }
        lines
    }
}

/// Runs the board with the terminal in raw mode, redrawing one status line.
fn run_terminal(options: &DeviceOptions) -> std::io::Result<()> {
    use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};

    let signal = Signal::new();
    let board = Board::start(options.board.clone(), Arc::clone(&signal))?;
    let terminal = RawTerminal::enter()?;
    let mut out = std::io::stdout();
    let name = &options.board.name;
    writeln!(
        out,
        "culex device {name}: an ESP32 running the MQTT tutorial, broker {}:{}, peer {}\r",
        options.board.host, options.board.port, options.board.peer
    )?;
    let hint = if terminal.reports_releases {
        "hold space to press BOOT, q quits"
    } else {
        "space presses/releases BOOT, q quits"
    };
    let mut drawn = String::new();
    loop {
        let line = status_line(name, &options.board.peer, board.pins(), hint);
        if line != drawn {
            write!(out, "\r\x1b[2K{line}")?;
            out.flush()?;
            drawn = line;
        }
        if !event::poll(Duration::from_millis(40))? {
            continue;
        }
        let Event::Key(key) = event::read()? else {
            continue;
        };
        let quit = matches!(key.code, KeyCode::Char('q') | KeyCode::Esc)
            || (key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL));
        if quit && key.kind == KeyEventKind::Press {
            break;
        }
        if key.code == KeyCode::Char(' ') {
            match (terminal.reports_releases, key.kind) {
                (true, KeyEventKind::Press) => board.pins().press(),
                (true, KeyEventKind::Release) => board.pins().release(),
                (false, KeyEventKind::Press) => board.pins().set_pressed(!board.pins().pressed()),
                _ => {}
            }
        }
    }
    write!(out, "\r\n")?;
    board.stop();
    drop(terminal);
    Ok(())
}

/// The terminal's status line: the LED, the button and the link.
fn status_line(name: &str, peer: &str, pins: &Pins, hint: &str) -> String {
    let led = if pins.led_on() {
        "\x1b[1;94m●\x1b[0m LED on "
    } else {
        "\x1b[2m○\x1b[0m LED off"
    };
    let button = if pins.pressed() {
        "\x1b[1;7m BOOT \x1b[0m pressed "
    } else {
        "[BOOT] released"
    };
    let link = match pins.link() {
        Link::Online => "\x1b[32monline\x1b[0m".to_owned(),
        Link::Connecting => match pins.last_error() {
            Some(error) => format!("\x1b[33mconnecting\x1b[0m ({error})"),
            None => "\x1b[33mconnecting\x1b[0m".to_owned(),
        },
        Link::Off => "off".to_owned(),
    };
    format!(
        "\x1b[1m{name}\x1b[0m  {led}  {button}  GPIO0={}  peer {peer}  {link}  \x1b[2m{hint}\x1b[0m",
        pins.button_value()
    )
}

/// Raw mode (and key-release reports where the terminal has them) for as
/// long as it lives.
struct RawTerminal {
    reports_releases: bool,
}

impl RawTerminal {
    fn enter() -> std::io::Result<RawTerminal> {
        use crossterm::event::{KeyboardEnhancementFlags, PushKeyboardEnhancementFlags};
        crossterm::terminal::enable_raw_mode()?;
        let reports_releases =
            crossterm::terminal::supports_keyboard_enhancement().unwrap_or(false);
        if reports_releases {
            crossterm::execute!(
                std::io::stdout(),
                PushKeyboardEnhancementFlags(KeyboardEnhancementFlags::REPORT_EVENT_TYPES)
            )?;
        }
        crossterm::execute!(std::io::stdout(), crossterm::cursor::Hide)?;
        Ok(RawTerminal { reports_releases })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if self.reports_releases {
            let _ = crossterm::execute!(
                std::io::stdout(),
                crossterm::event::PopKeyboardEnhancementFlags
            );
        }
        let _ = crossterm::execute!(std::io::stdout(), crossterm::cursor::Show);
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<DeviceOptions>, ArgError> {
        DeviceOptions::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn parses_the_tutorial_flags() {
        let options = parse(&[
            "--name", "green", "--peer", "blue", "-h", "10.0.0.2", "-p", "1884",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            options.board,
            BoardConfig {
                name: "green".into(),
                peer: "blue".into(),
                host: "10.0.0.2".into(),
                port: 1884
            }
        );
        let defaults = parse(&["--name", "green"]).unwrap().unwrap();
        assert_eq!(
            (defaults.board.peer.as_str(), defaults.board.port),
            ("blue", 1883)
        );
        assert!(parse(&["--help"]).unwrap().is_none());
    }

    #[test]
    fn refuses_bad_flags() {
        assert!(matches!(parse(&["--nope"]), Err(ArgError::Unknown(_))));
        assert!(matches!(parse(&["-p", "x"]), Err(ArgError::Invalid { .. })));
        assert!(matches!(parse(&["--name"]), Err(ArgError::Missing(_))));
        assert!(matches!(
            parse(&["--name", "a/b"]),
            Err(ArgError::Invalid { .. })
        ));
        assert!(matches!(
            parse(&["--peer", "+"]),
            Err(ArgError::Invalid { .. })
        ));
    }

    #[test]
    fn line_mode_reports_each_change_once() {
        let pins = Pins::new(Signal::new());
        let mut shown = Shown::default();
        let first = shown.changes("blue", &pins);
        assert_eq!(
            first,
            [
                "blue: connecting",
                "blue: button released (GPIO0=1)",
                "blue: LED off (GPIO2=0)"
            ]
        );
        assert!(shown.changes("blue", &pins).is_empty());
        pins.press();
        pins.set_led(true);
        assert_eq!(
            shown.changes("blue", &pins),
            ["blue: button pressed (GPIO0=0)", "blue: LED on (GPIO2=1)"]
        );
    }

    #[test]
    fn the_status_line_draws_the_led_and_the_button() {
        let pins = Pins::new(Signal::new());
        let line = status_line("blue", "green", &pins, "hint");
        assert!(line.contains("LED off") && line.contains("released") && line.contains("GPIO0=1"));
        assert!(line.contains("connecting") && line.contains("peer green"));
        pins.press();
        pins.set_led(true);
        crate::board::set_link(&pins, Link::Online, None);
        let line = status_line("blue", "green", &pins, "hint");
        assert!(line.contains("LED on") && line.contains("pressed") && line.contains("GPIO0=0"));
        assert!(line.contains("online"));
    }
}
