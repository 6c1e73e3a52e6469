//! What every podmates binary shares, so that all of them start, log, expose metrics and stop the
//! same way.
//!
//! - [`args`]: the [`RuntimeArgs`] flags flattened into every binary's clap CLI (admin address, log
//!   format and level, grace period), each also settable by environment variable.
//! - [`telemetry`]: tracing to **stderr**, text or JSON. stdout is data for log-tail and
//!   log-normalize, so nothing in this crate ever writes there.
//! - [`shutdown`]: waits for SIGTERM (what the kubelet sends) or SIGINT, cancels a
//!   [`CancellationToken`](tokio_util::sync::CancellationToken) and drains tracked tasks within a
//!   grace period, logging what the grace period cut off.
//! - [`admin`]: the admin HTTP server: `/metrics` (Prometheus text, or OpenMetrics when asked),
//!   `/healthz`, `/readyz`, plus routes a binary adds.
//! - [`start`]: glues the above together: a binary's `main.rs` parses, converts its flags to a
//!   config, opens what it must and calls `start`.

pub mod admin;
pub mod args;
pub mod exposition;
pub mod net;
pub mod shutdown;
pub mod telemetry;

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;

pub use admin::{Admin, Readiness};
pub use args::{LogFormat, RuntimeArgs, UsageError};
pub use shutdown::Shutdown;

/// The exit code for a bad command line or configuration (sysexits.h `EX_USAGE`), as linkerd and
/// most Unix daemons use: the kubelet's `CrashLoopBackOff` then points at the config, not the code.
pub const EX_USAGE: u8 = 64;

/// Prints `error: <msg>` to stderr and exits with [`EX_USAGE`]. For configuration errors found before
/// the runtime starts; the message must name the offending setting.
pub fn exit_usage(binary: &str, msg: impl std::fmt::Display) -> ! {
    eprintln!("{binary}: error: {msg}");
    std::process::exit(i32::from(EX_USAGE))
}

/// Parses the command line like `C::parse_from`, except that an unknown or malformed flag exits
/// with [`EX_USAGE`], like any other configuration error, instead of clap's 2. `--help` and
/// `--version` still print and exit 0.
pub fn parse_args<C, I, T>(args: I) -> C
where
    C: clap::Parser,
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::error::ErrorKind;
    match C::try_parse_from(args) {
        Ok(c) => c,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            e.exit()
        }
        Err(e) => {
            let _ = e.print();
            std::process::exit(i32::from(EX_USAGE))
        }
    }
}

/// Installs the diagnostics on stderr from `--log-format` and `--log-level` (a bad filter exits
/// with [`EX_USAGE`]). [`start`] calls it; a binary whose `main` opens files or sockets calls it
/// first, so that what opening logs is seen. Calling it again is harmless.
pub fn init_telemetry(binary: &str, args: &RuntimeArgs) {
    if let Err(e) = telemetry::init(args.log_format, args.log_level.as_deref()) {
        exit_usage(binary, format_args!("--log-level: {e}"));
    }
}

/// What [`start`] hands to a binary's `run`.
pub struct Context {
    /// Cancellation and task tracking for the drain on SIGTERM.
    pub shutdown: Shutdown,
    /// The admin server's metrics registry and readiness flag.
    pub admin: Admin,
}

/// Describes the binary to [`start`].
#[derive(Debug, Clone, Copy)]
pub struct Binary {
    /// The binary's name, e.g. `log-tail`; also the prefix of its build-info metric.
    pub name: &'static str,
    /// The binary's version, normally `env!("CARGO_PKG_VERSION")`.
    pub version: &'static str,
    /// Where the admin server listens unless `--admin-addr` says otherwise. Each binary has its own
    /// default so that the containers of one pod (one network namespace) never clash. Empty: no
    /// admin server unless `--admin-addr` asks for one (a one-shot init container such as
    /// wait-for has no use for a port of its own).
    pub default_admin_addr: &'static str,
    /// Tokio worker threads, or `None` for one per available core. A binary whose work is a few
    /// small requests sets `Some(1)`: every worker costs a stack and a malloc arena of resident
    /// memory. `TOKIO_WORKER_THREADS` in the environment overrides both.
    pub worker_threads: Option<usize>,
}

/// Runs a binary: telemetry, the tokio runtime, the admin server, `run`, and the drain on SIGTERM.
///
/// `run` receives a [`Context`]; it should stop when `ctx.shutdown` is cancelled, and may return
/// earlier (a one-shot job). Its error is logged and turned into exit code 1.
pub fn start<F, Fut, E>(binary: Binary, args: &RuntimeArgs, run: F) -> ExitCode
where
    F: FnOnce(Context) -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    init_telemetry(binary.name, args);
    let admin_addr: Option<SocketAddr> = match &args.admin_addr {
        Some(a) => Some(*a),
        None if binary.default_admin_addr.is_empty() => None,
        None => Some(
            binary
                .default_admin_addr
                .parse()
                .expect("built-in default admin address parses"),
        ),
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = binary.worker_threads
        && std::env::var_os("TOKIO_WORKER_THREADS").is_none()
    {
        builder.worker_threads(n.max(1));
    }
    let rt = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let grace = args.grace_period;
    let code = rt.block_on(async move {
        // First of all, so that no SIGTERM can arrive between "ready" and a handler being there.
        let mut signals = shutdown::Signals::install();
        let shutdown = Shutdown::new();
        let admin = Admin::new(binary.name, binary.version);
        if let Some(admin_addr) = admin_addr.filter(|_| !args.no_admin()) {
            let listener = match net::bind_tcp(admin_addr).and_then(tokio::net::TcpListener::from_std) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(addr = %admin_addr, error = %e, "--admin-addr: cannot bind the admin server");
                    return ExitCode::from(EX_USAGE);
                }
            };
            // The bound address, not the configured one: with port 0 (tests) it names the port.
            let bound = listener.local_addr().unwrap_or(admin_addr);
            tracing::info!(addr = %bound, "admin server listening");
            let served = admin.clone();
            let token = shutdown.token();
            shutdown
                .tracker()
                .spawn(async move { served.serve(listener, token).await });
        }
        tracing::info!(version = binary.version, "{} starting", binary.name);
        let ctx = Context {
            shutdown: shutdown.clone(),
            admin,
        };
        let mut main_task = tokio::spawn(run(ctx));
        let result = tokio::select! {
            res = &mut main_task => Some(res),
            sig = signals.recv() => {
                tracing::info!(signal = sig, grace_period = ?grace, "shutting down");
                shutdown.cancel();
                None
            }
        };
        // Either the binary finished on its own or a signal asked it to stop: in both cases the
        // tracked tasks (admin server, connections) are told to stop and given the grace period.
        shutdown.cancel();
        // One grace period in all: what the main task uses is not given again to the others.
        let deadline = tokio::time::Instant::now() + grace;
        let result = match result {
            Some(r) => r,
            None => match tokio::time::timeout_at(deadline, &mut main_task).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::warn!(grace_period = ?grace, "grace period expired before the main task finished");
                    main_task.abort();
                    return ExitCode::FAILURE;
                }
            },
        };
        let drained = shutdown
            .drain(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await;
        match result {
            Ok(Ok(())) if drained => {
                tracing::info!("{} stopped", binary.name);
                ExitCode::SUCCESS
            }
            Ok(Ok(())) => ExitCode::FAILURE,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "{} failed", binary.name);
                ExitCode::FAILURE
            }
            Err(e) => {
                tracing::error!(error = %e, "{} main task died", binary.name);
                ExitCode::FAILURE
            }
        }
    });
    // Everything that was to finish has finished or been given up at the grace period. Dropping
    // the runtime would wait for blocking threads without limit, and one stuck in a system call
    // (a read from a silent server) would keep the process alive past the kubelet's grace; a
    // short wait still lets a blocking write that is just completing (tokio's stdout) finish.
    rt.shutdown_timeout(std::time::Duration::from_millis(500));
    code
}
