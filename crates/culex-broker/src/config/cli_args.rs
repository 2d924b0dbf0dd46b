//! `culex broker`'s command line, with mosquitto 2.0's flags and messages:
//! `[-c FILE] [-d] [-h] [-p PORT]... [-v]`.

use std::ffi::OsString;
use std::path::PathBuf;

use super::{Config, ConfigError};

/// The parsed command line of `culex broker`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerArgs {
    /// `-c FILE`, `--config-file FILE`.
    pub config_file: Option<PathBuf>,
    /// Each `-p PORT`, `--port PORT`, in order; used only in local-only mode.
    pub ports: Vec<u16>,
    /// `-v`, `--verbose`: every log type, including per-packet debug lines.
    pub verbose: bool,
    /// `-d`, `--daemon`: detach after starting.
    pub daemon: bool,
    /// `--test-config`: read the configuration, report, and exit.
    pub test_config: bool,
    /// `-h`, `--help`: print [`USAGE`] and exit.
    pub help: bool,
}

/// The help text printed for `-h` and after an argument error.
pub const USAGE: &str = "\
culex broker is an MQTT v5.0/v3.1.1/v3.1 broker that reads mosquitto's configuration.

Usage: culex broker [-c config_file] [-d] [-h] [-p port] [-v] [--test-config]

 -c : specify the broker config file.
 -d : put the broker into the background after starting.
 -h : display this help.
 -p : start the broker listening on the specified port.
      Not recommended in conjunction with the -c option.
 -v : verbose mode - enable all logging types. This overrides
      any logging options given in the config file.
 --test-config : read the configuration, report any error and exit.
";

/// The exit code of `-h`, as mosquitto's.
pub const HELP_EXIT_CODE: u8 = 3;

/// Parses the arguments after `culex broker`. An error is the message to
/// print (mosquitto's wording, starting with `Error: `).
pub fn parse_args(args: &[OsString]) -> Result<BrokerArgs, String> {
    let mut parsed = BrokerArgs::default();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let Some(arg) = arg.to_str() else {
            return Err(format!(
                "Error: Unknown option '{}'.",
                arg.to_string_lossy()
            ));
        };
        match arg {
            "-c" | "--config-file" => {
                let file = iter
                    .next()
                    .ok_or("Error: -c argument given, but no config file specified.")?;
                parsed.config_file = Some(PathBuf::from(file));
            }
            "-p" | "--port" => {
                let value = iter
                    .next()
                    .ok_or("Error: -p argument given, but no port specified.")?;
                let value = value.to_string_lossy();
                match value.parse::<u16>() {
                    Ok(port) if port > 0 => parsed.ports.push(port),
                    _ => return Err(format!("Error: Invalid port specified ({value}).")),
                }
            }
            "-d" | "--daemon" => parsed.daemon = true,
            "-v" | "--verbose" => parsed.verbose = true,
            "-h" | "--help" => parsed.help = true,
            "--test-config" => parsed.test_config = true,
            other => return Err(format!("Error: Unknown option '{other}'.")),
        }
    }
    Ok(parsed)
}

/// The configuration the arguments ask for: the `-c` file, or mosquitto 2's
/// defaults (local-only mode on the `-p` ports); `-v` turns on every log type.
pub fn load_config(args: &BrokerArgs) -> Result<Config, ConfigError> {
    let mut config = match &args.config_file {
        Some(path) => Config::from_file(path, &args.ports)?,
        None => Config::local_only(&args.ports),
    };
    if args.verbose {
        config.log.verbose = true;
        config.log.types = super::LOG_TYPES.iter().map(|t| t.to_string()).collect();
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn flags_table() {
        let parsed = parse_args(&args(&[
            "-c", "m.conf", "-p", "1884", "-p", "1885", "-v", "-d",
        ]))
        .unwrap();
        assert_eq!(
            parsed,
            BrokerArgs {
                config_file: Some(PathBuf::from("m.conf")),
                ports: vec![1884, 1885],
                verbose: true,
                daemon: true,
                test_config: false,
                help: false,
            }
        );
        assert_eq!(parse_args(&[]).unwrap(), BrokerArgs::default());
        assert!(parse_args(&args(&["-h"])).unwrap().help);
        assert!(parse_args(&args(&["--help"])).unwrap().help);
        assert!(parse_args(&args(&["--test-config"])).unwrap().test_config);
        let long = parse_args(&args(&[
            "--config-file",
            "x",
            "--port",
            "7",
            "--verbose",
            "--daemon",
        ]))
        .unwrap();
        assert_eq!(
            (long.ports, long.verbose, long.daemon),
            (vec![7], true, true)
        );
    }

    #[test]
    fn errors_use_mosquitto_wording() {
        let table: &[(&[&str], &str)] = &[
            (
                &["-c"],
                "Error: -c argument given, but no config file specified.",
            ),
            (&["-p"], "Error: -p argument given, but no port specified."),
            (&["-p", "0"], "Error: Invalid port specified (0)."),
            (&["-p", "70000"], "Error: Invalid port specified (70000)."),
            (&["-p", "x"], "Error: Invalid port specified (x)."),
            (&["-x"], "Error: Unknown option '-x'."),
            (&["extra"], "Error: Unknown option 'extra'."),
        ];
        for (list, message) in table {
            assert_eq!(parse_args(&args(list)).unwrap_err(), *message, "{list:?}");
        }
    }

    #[test]
    fn no_file_is_local_only_on_the_p_ports() {
        let config =
            load_config(&parse_args(&args(&["-p", "1884", "-p", "1885", "-v"])).unwrap()).unwrap();
        assert!(config.local_only);
        assert!(config.security.allow_anonymous);
        let ports: Vec<u16> = config.listeners.iter().map(|l| l.port).collect();
        assert_eq!(ports, [1884, 1885]);
        assert!(config.log.verbose);
        assert!(config.log.types.iter().any(|t| t == "debug"));
        let addrs: Vec<String> = config.listeners[0]
            .addrs
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(addrs, ["127.0.0.1:1884", "[::1]:1884"]);
    }

    #[test]
    fn missing_file_is_an_error_naming_it() {
        let err = load_config(&parse_args(&args(&["-c", "/nonexistent/culex.conf"])).unwrap())
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/culex.conf"), "{err}");
    }
}
