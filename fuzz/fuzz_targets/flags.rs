//! The runtime's shared flags (`RuntimeArgs`: durations, admin address, log format and level),
//! parsed through clap as every binary does, and `parse_duration` directly. Input: arguments
//! separated by NUL bytes. Invariant: a bare number of seconds parses to what `f64` says.
#![no_main]

use clap::Parser;
use libfuzzer_sys::fuzz_target;
use podmates_runtime::RuntimeArgs;
use podmates_runtime::args::parse_duration;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    runtime: RuntimeArgs,
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for word in text.split('\0') {
        match parse_duration(word) {
            Ok(d) => {
                if let Ok(secs) = word.trim().parse::<f64>() {
                    assert_eq!(Some(d), std::time::Duration::try_from_secs_f64(secs).ok());
                }
            }
            // Every refusal says why.
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
    let args = std::iter::once("fuzz").chain(text.split('\0'));
    if let Ok(cli) = Cli::try_parse_from(args) {
        let _ = (cli.runtime.no_admin(), cli.runtime.grace_period);
    }
});
