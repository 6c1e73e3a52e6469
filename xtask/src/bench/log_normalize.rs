//! `cargo xtask bench log-normalize`: log-normalize against Debian's `lognormalizer`
//! (liblognorm) on nginx combined lines, in one run.
//!
//! Generates N nginx `combined` lines (default 1M, about 130 MB), then times, each reading the
//! file on stdin and writing to /dev/null: `cat` (the floor), `lognormalizer -e json` with a
//! one-rule rulebase (strings only), and log-normalize with `--format nginx-combined` and
//! `--format auto`, in both schemas (typed fields, UTC timestamps). Each is run `--runs` times
//! (default 3), in rounds, and its best wall and CPU times are kept. CPU time (user + system,
//! from the kernel's accounting of waited-for children) gives the one-core rate, which shared
//! machines disturb far less than wall time; both are printed.
//!
//! Options: `--lines N`, `--runs R`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The rulebase: one rule for nginx combined, as liblognorm's documentation writes them.
const RULEBASE: &str = "version=2\n\
rule=:%client:word% %ident:word% %auth:word% [%timestamp:char-to:]%] \"%request:char-to:\"%\" %status:number% %bytes:number% \"%referrer:char-to:\"%\" \"%agent:char-to:\"%\"\n";

struct Candidate {
    name: String,
    program: PathBuf,
    args: Vec<String>,
}

struct Figures {
    wall: f64,
    cpu: f64,
}

/// CPU seconds used by this process's waited-for children so far (`cutime + cstime` from
/// /proc/self/stat, in clock ticks of 1/100 s on Linux).
fn children_cpu() -> Result<f64, String> {
    let stat = std::fs::read_to_string("/proc/self/stat").map_err(|e| e.to_string())?;
    // Fields after the command name (which may contain spaces) start after the last `)`.
    let rest = &stat[stat.rfind(')').ok_or("bad /proc/self/stat")? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    // rest[0] is field 3 (state); cutime and cstime are fields 16 and 17.
    let ticks = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok((ticks(16) + ticks(17)) / 100.0)
}

/// Runs a command with the stdin it was given (unlike `sh::output`, which closes it) and
/// returns its stdout.
fn output_of(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    if !out.status.success() {
        return Err(format!("{:?} failed: {}", cmd.get_program(), out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn time_one(c: &Candidate, input: &Path) -> Result<Figures, String> {
    let before = children_cpu()?;
    let start = Instant::now();
    let status = Command::new(&c.program)
        .args(&c.args)
        .stdin(File::open(input).map_err(|e| e.to_string())?)
        .stdout(File::create("/dev/null").map_err(|e| e.to_string())?)
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", c.name))?;
    let wall = start.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!("{} failed: {status}", c.name));
    }
    Ok(Figures {
        wall,
        cpu: children_cpu()? - before,
    })
}

/// `day/Mon/year:hh:mm:ss +0000` for seconds since the epoch (std only: civil-from-days).
fn time_local(secs: u64) -> String {
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (secs / 86_400) as i64;
    let sod = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{day:02}/{}/{year}:{:02}:{:02}:{:02} +0000",
        MON[(month - 1) as usize],
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

fn generate(path: &Path, lines: u64) -> Result<u64, String> {
    const AGENTS: [&str; 3] = [
        "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101",
        "curl/8.5.0",
        "kube-probe/1.31",
    ];
    const STATUS: [u16; 8] = [200, 200, 200, 200, 304, 404, 200, 500];
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path).map_err(|e| e.to_string())?);
    let mut bytes = 0u64;
    let start = 1_795_312_000u64;
    let mut t = String::new();
    for i in 0..lines {
        // About ten requests per second of log time, so consecutive lines share their second as
        // they do in real logs.
        if i % 10 == 0 {
            t = time_local(start + i / 10);
        }
        let line = format!(
            "10.{}.{}.{} - - [{t}] \"GET /api/v1/items/{}?page={} HTTP/1.1\" {} {} \"-\" \"{}\"\n",
            i % 7,
            i / 7 % 250,
            i % 250,
            i % 5000,
            i % 17,
            STATUS[(i % 8) as usize],
            (i * 7919) % 50_000,
            AGENTS[(i % 3) as usize],
        );
        bytes += line.len() as u64;
        w.write_all(line.as_bytes()).map_err(|e| e.to_string())?;
    }
    w.flush().map_err(|e| e.to_string())?;
    Ok(bytes)
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut lines: u64 = 1_000_000;
    let mut runs: u32 = 3;
    super::options(args, |a, v| {
        match a {
            "--lines" => lines = super::number(a, v)?,
            "--runs" => runs = super::number::<u32>(a, v)?.max(1),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    let ours = super::release_binary("log-normalize")?;
    let lognormalizer = PathBuf::from("/usr/bin/lognormalizer");
    if !lognormalizer.exists() {
        return Err("lognormalizer is missing (Debian package liblognorm-utils)".to_owned());
    }

    let dir = std::env::temp_dir().join(format!(
        "podmates-bench-log-normalize-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let input = dir.join("access.log");
    let rulebase = dir.join("combined.rulebase");
    std::fs::write(&rulebase, RULEBASE).map_err(|e| e.to_string())?;
    eprintln!("generating {lines} nginx combined lines ...");
    let bytes = generate(&input, lines)?;
    eprintln!("{:.1} MB in {}", bytes as f64 / 1e6, input.display());

    // Both must actually parse the lines: check a sample before timing.
    let sample = dir.join("sample.log");
    let head: String = std::fs::read_to_string(&input)
        .map_err(|e| e.to_string())?
        .lines()
        .take(1000)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&sample, head).map_err(|e| e.to_string())?;
    let ln_out = output_of(
        Command::new(&lognormalizer)
            .args(["-r", &rulebase.to_string_lossy(), "-e", "json"])
            .stdin(File::open(&sample).map_err(|e| e.to_string())?),
    )?;
    if ln_out.lines().count() != 1000 || ln_out.contains("unparsed-data") {
        return Err("lognormalizer did not parse the sample with the rulebase".to_owned());
    }
    let ours_out = output_of(
        Command::new(&ours)
            .args(["--no-admin-server", "--format", "nginx-combined"])
            .stdin(File::open(&sample).map_err(|e| e.to_string())?),
    )?;
    if ours_out.lines().count() != 1000 || ours_out.contains("\"error\"") {
        return Err("log-normalize did not parse the sample".to_owned());
    }

    let mut candidates = vec![
        Candidate {
            name: "cat (floor)".to_owned(),
            program: PathBuf::from("cat"),
            args: vec![],
        },
        Candidate {
            name: "lognormalizer -e json".to_owned(),
            program: lognormalizer,
            args: vec![
                "-r".into(),
                rulebase.to_string_lossy().into_owned(),
                "-e".into(),
                "json".into(),
            ],
        },
    ];
    for format in ["nginx-combined", "auto"] {
        for schema in ["ecs", "otel"] {
            candidates.push(Candidate {
                name: format!("log-normalize {format} {schema}"),
                program: ours.clone(),
                args: vec![
                    "--no-admin-server".into(),
                    "--log-level".into(),
                    "warn".into(),
                    "--format".into(),
                    format.into(),
                    "--schema".into(),
                    schema.into(),
                ],
            });
        }
    }

    // Rounds over all candidates rather than all runs of one candidate after another: load from
    // elsewhere on a shared machine then falls on every candidate alike.
    let mut best: Vec<Option<Figures>> = candidates.iter().map(|_| None).collect();
    for round in 1..=runs {
        for (c, b) in candidates.iter().zip(best.iter_mut()) {
            let f = time_one(c, &input)?;
            eprintln!(
                "round {round}: {:<34} wall {:>6.2}s  cpu {:>6.2}s",
                c.name, f.wall, f.cpu
            );
            // The best of each measure, independently.
            *b = Some(match b.take() {
                None => f,
                Some(x) => Figures {
                    wall: x.wall.min(f.wall),
                    cpu: x.cpu.min(f.cpu),
                },
            });
        }
    }
    let results: Vec<(String, Figures)> = candidates
        .iter()
        .zip(best)
        .map(|(c, b)| (c.name.clone(), b.expect("at least one run")))
        .collect();
    let _ = std::fs::remove_dir_all(&dir);

    let rate = |secs: f64| {
        if secs > 0.0 {
            lines as f64 / secs
        } else {
            f64::INFINITY
        }
    };
    let base_cpu = rate(results[1].1.cpu);
    let base_wall = rate(results[1].1.wall);
    println!();
    println!(
        "{lines} nginx combined lines, {:.0} MB, best of {runs}",
        bytes as f64 / 1e6
    );
    println!(
        "| {:<34} | {:>12} | {:>10} | {:>12} | {:>10} |",
        "command", "lines/s cpu", "vs ln cpu", "lines/s wall", "vs ln wall"
    );
    println!(
        "|{}|{}|{}|{}|{}|",
        "-".repeat(36),
        "-".repeat(14),
        "-".repeat(12),
        "-".repeat(14),
        "-".repeat(12)
    );
    for (name, f) in &results {
        println!(
            "| {:<34} | {:>12.0} | {:>9.2}x | {:>12.0} | {:>9.2}x |",
            name,
            rate(f.cpu),
            rate(f.cpu) / base_cpu,
            rate(f.wall),
            rate(f.wall) / base_wall
        );
    }
    Ok(())
}
