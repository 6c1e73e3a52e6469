//! A real process receives SIGTERM and drains: the test re-runs its own executable as the child,
//! selecting one of the `child_*` functions below through an environment variable.

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use podmates_runtime::{Binary, RuntimeArgs};

const CHILD_ENV: &str = "PODMATES_RUNTIME_TEST_CHILD";

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    runtime: RuntimeArgs,
}

fn exit_with(code: ExitCode) -> ! {
    std::process::exit(if code == ExitCode::SUCCESS { 0 } else { 1 })
}

/// The child body: waits for cancellation, then takes `cleanup_ms` to finish its work, on a
/// blocking thread when `blocking` (like a libgit2 call stuck in a read).
fn child_main(cleanup_ms: u64, blocking: bool) -> ! {
    let cli = Cli::parse_from([
        "demo",
        "--admin-addr",
        "127.0.0.1:0",
        "--grace-period",
        "1s",
        "--log-level",
        "info",
    ]);
    let binary = Binary {
        name: "demo",
        version: "0.0.1",
        default_admin_addr: "127.0.0.1:0",
        worker_threads: None,
    };
    let code = podmates_runtime::start(binary, &cli.runtime, move |ctx| async move {
        ctx.admin.readiness().set(true);
        tracing::info!("child ready");
        ctx.shutdown.cancelled().await;
        if blocking {
            let sleep = move || std::thread::sleep(Duration::from_millis(cleanup_ms));
            tokio::task::spawn_blocking(sleep).await.unwrap();
        } else {
            tokio::time::sleep(Duration::from_millis(cleanup_ms)).await;
        }
        tracing::info!("child cleanup done");
        Ok::<(), String>(())
    });
    exit_with(code)
}

#[test]
#[ignore = "run as a child process by the tests below"]
fn child_entry() {
    match std::env::var(CHILD_ENV).as_deref() {
        Ok("fast") => child_main(100, false),
        Ok("slow") => child_main(60_000, false),
        Ok("stuck") => child_main(60_000, true),
        _ => {}
    }
}

/// Starts the child, waits for it to be ready, sends SIGTERM; returns (exit success, elapsed since
/// the signal, stderr).
fn run_child(kind: &str) -> (bool, Duration, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["child_entry", "--exact", "--ignored", "--nocapture"])
        .env(CHILD_ENV, kind)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "child exited early: {log}"
        );
        log.push_str(&line);
        if line.contains("child ready") {
            break;
        }
        assert!(Instant::now() < deadline, "child never became ready: {log}");
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let sent = Instant::now();
    let exit = child.wait().unwrap();
    let elapsed = sent.elapsed();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    log.push_str(&rest);
    (exit.success(), elapsed, log)
}

#[test]
fn sigterm_drains_and_exits_cleanly_within_grace() {
    let (ok, elapsed, log) = run_child("fast");
    // A clean exit is the proof that the drain ended inside the 1 s grace (a cut-off drain exits
    // non-zero); the time bound only catches a process that lingers after it, with room for a
    // loaded machine.
    assert!(ok, "clean exit expected: {log}");
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}: {log}");
    assert!(log.contains("SIGTERM"), "{log}");
    assert!(
        log.contains("child cleanup done"),
        "drain let the task finish: {log}"
    );
}

#[test]
fn grace_period_cuts_off_a_stuck_drain() {
    let (ok, elapsed, log) = run_child("slow");
    assert!(
        !ok,
        "a drain cut off by the grace period is not a clean exit: {log}"
    );
    assert!(elapsed >= Duration::from_millis(900), "took {elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}: {log}");
    assert!(log.contains("grace period expired"), "{log}");
    assert!(!log.contains("child cleanup done"), "{log}");
}

#[test]
fn a_thread_stuck_in_a_blocking_call_does_not_outlive_the_grace_period() {
    let (ok, elapsed, log) = run_child("stuck");
    assert!(!ok, "{log}");
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}: {log}");
    assert!(log.contains("grace period expired"), "{log}");
}
