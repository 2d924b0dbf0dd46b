//! `culex broker`: mosquitto's command line.

pub use crate::config::cli_args::{load_config, parse_args, BrokerArgs, HELP_EXIT_CODE, USAGE};

/// Entry point of `culex broker`; `args` excludes the program and command names.
///
/// Parses mosquitto's flags, loads the configuration, sets up logging, then
/// runs the broker on a multi-threaded tokio runtime until SIGINT or SIGTERM
/// (graceful shutdown). SIGHUP reloads the password and ACL files and the
/// TLS certificates.
///
/// `-d` detaches: the process starts itself again without `-d`, in its own
/// process group with standard streams closed, and returns at once (the
/// workspace forbids the `unsafe` a classic fork would need).
pub fn main(args: Vec<std::ffi::OsString>) -> std::process::ExitCode {
    use std::process::ExitCode;
    let parsed = match parse_args(&args) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("{message}");
            eprintln!("{USAGE}");
            return ExitCode::from(1);
        }
    };
    if parsed.help {
        println!("{USAGE}");
        return ExitCode::from(HELP_EXIT_CODE);
    }
    let config = match load_config(&parsed) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::from(1);
        }
    };
    if parsed.test_config {
        println!("Configuration file is OK.");
        return ExitCode::SUCCESS;
    }
    if parsed.daemon {
        return daemonize(&args);
    }
    if let Err(e) = crate::log::init(&config.log) {
        eprintln!("Error: unable to open log file: {e}");
        return ExitCode::from(1);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::from(1);
        }
    };
    let code = match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        // A socket that cannot be opened was already reported as mosquitto does.
        Err(crate::BrokerError::Bind { .. }) => ExitCode::from(1),
        Err(e) => {
            tracing::error!("Error: {e}");
            ExitCode::from(1)
        }
    };
    drop(runtime);
    crate::log::flush();
    code
}

const VERSION: &str = env!("CARGO_PKG_VERSION");

async fn run(config: crate::config::Config) -> Result<(), crate::BrokerError> {
    use tokio::signal::unix::{signal, SignalKind};
    tracing::info!("culex version {VERSION} starting");
    match &config.source {
        Some(path) => tracing::info!("Config loaded from {}.", path.display()),
        None => tracing::info!("{}", crate::config::USING_DEFAULT_CONFIG_MESSAGE),
    }
    for warning in &config.warnings {
        tracing::warn!("Warning: {warning}");
    }
    if config.local_only {
        for line in crate::config::LOCAL_ONLY_MESSAGES {
            tracing::info!("{line}");
        }
    }
    let pid_file = config.pid_file.clone();
    if let Some(path) = &pid_file {
        if let Err(e) = std::fs::write(path, format!("{}\n", std::process::id())) {
            tracing::error!("Error: Unable to write pid file {}: {e}", path.display());
        }
    }
    let broker = crate::Broker::start(config).await?;
    tracing::info!("culex version {VERSION} running");
    let (mut hup, mut int, mut term) = match (
        signal(SignalKind::hangup()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(h), Ok(i), Ok(t)) => (h, i, t),
        _ => {
            tracing::error!("Error: unable to install signal handlers");
            broker.shutdown().await;
            return Ok(());
        }
    };
    loop {
        tokio::select! {
            _ = hup.recv() => {
                tracing::info!("Reloading config.");
                if let Err(e) = broker.reload() {
                    tracing::error!("Error: {e}");
                }
            }
            _ = int.recv() => break,
            _ = term.recv() => break,
        }
    }
    tracing::info!("culex version {VERSION} terminating");
    broker.shutdown().await;
    if let Some(path) = &pid_file {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

fn daemonize(args: &[std::ffi::OsString]) -> std::process::ExitCode {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, ExitCode, Stdio};
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("Error: unable to find the culex executable: {e}");
            return ExitCode::from(1);
        }
    };
    let rest: Vec<&std::ffi::OsString> = args
        .iter()
        .filter(|a| *a != "-d" && *a != "--daemon")
        .collect();
    // `culex broker -d …` restarts as `culex broker …`; a binary that is the
    // broker itself (the example) gets the arguments alone.
    let mut command = Command::new(exe);
    if std::env::args_os().nth(1).is_some_and(|a| a == "broker") {
        command.arg("broker");
    }
    let spawned = command
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    match spawned {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: unable to start the daemon: {e}");
            ExitCode::from(1)
        }
    }
}
