//! `log-normalize [OPTIONS] [PATH]...`: see the crate docs and README.md.

use std::process::ExitCode;

use clap::Parser;
use podmates_logparse::{AccessFormat, Timestamp, time};
use podmates_runtime::{Binary, RuntimeArgs, exit_usage};

use log_normalize::event::Kind;
use log_normalize::parse::Parsers;
use log_normalize::{Access, AddField, Config, Format, Input, Schema, run};

const NAME: &str = "log-normalize";

/// Normalizes nginx, Apache, syslog, JSON, logfmt and CRI logs into JSON lines in one schema
/// (Elastic Common Schema or OpenTelemetry) on stdout. Diagnostics go to stderr.
#[derive(Debug, Parser)]
#[command(name = NAME, version)]
struct Cli {
    /// Files to read to their end, in order; `-` or none: stdin. With --follow: files or globs to
    /// follow. (The environment variable holds one path.)
    #[arg(env = "LOG_NORMALIZE_PATH", value_name = "PATH")]
    paths: Vec<String>,

    /// Follow the paths through rotation and truncation, picking up files that match the globs
    /// later, instead of reading them once.
    #[arg(long, env = "LOG_NORMALIZE_FOLLOW")]
    follow: bool,

    /// With --follow: file where read offsets are kept, so a restart resumes where it stopped.
    #[arg(long, env = "LOG_NORMALIZE_CHECKPOINT_FILE", value_name = "FILE")]
    checkpoint_file: Option<std::path::PathBuf>,

    /// Input format; `auto` detects it line by line.
    #[arg(long, env = "LOG_NORMALIZE_FORMAT", value_enum, default_value_t = Format::Auto)]
    format: Format,

    /// The server's own nginx `log_format` string, e.g.
    /// '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent $request_time'.
    /// Used for access lines (tried first with --format auto).
    #[arg(
        long,
        env = "LOG_NORMALIZE_NGINX_LOG_FORMAT",
        value_name = "LOG_FORMAT",
        conflicts_with = "apache_log_format"
    )]
    nginx_log_format: Option<String>,

    /// The server's own Apache `LogFormat` string, e.g. '%h %l %u %t "%r" %>s %b %D'.
    #[arg(
        long,
        env = "LOG_NORMALIZE_APACHE_LOG_FORMAT",
        value_name = "LOG_FORMAT"
    )]
    apache_log_format: Option<String>,

    /// A dissect pattern for application logs, tried on every line before detection:
    /// `%{@timestamp}#%{level} %{message}`; `%{name:int}` (float, bool) converts, `%{name->}`
    /// skips padding, `%{}` skips a value. `@timestamp`, `message` and `level` fill the schema's
    /// fields; other keys go under `pattern` (ECS) or are attributes (OTel).
    #[arg(long, env = "LOG_NORMALIZE_PATTERN", value_name = "PATTERN")]
    pattern: Option<String>,

    /// With --pattern: the layout of its `@timestamp`, strftime-style
    /// (`%a %b %e %H:%M:%S %Z %Y`); default: RFC 3339, epoch numbers, `date`'s output and
    /// `%Y-%m-%d %H:%M:%S[.%f]`.
    #[arg(long, env = "LOG_NORMALIZE_TIMESTAMP_FORMAT", value_name = "LAYOUT")]
    timestamp_format: Option<String>,

    /// Ship the JSON lines to a syslog receiver over TCP instead of stdout: RFC 5424 messages
    /// with octet counting (RFC 6587), `HOST:PORT`. Reconnects with backoff; at-least-once.
    #[arg(long, env = "LOG_NORMALIZE_SYSLOG_TCP", value_name = "HOST:PORT")]
    syslog_tcp: Option<String>,

    /// Output schema.
    #[arg(long, env = "LOG_NORMALIZE_SCHEMA", value_enum, default_value_t = Schema::Ecs)]
    schema: Schema,

    /// A field added to every line, `key=value` (dotted keys nest in ECS); repeatable. (The
    /// environment variable holds one field.)
    #[arg(
        long = "add-field",
        env = "LOG_NORMALIZE_ADD_FIELD",
        value_name = "KEY=VALUE"
    )]
    add_fields: Vec<String>,

    /// With --schema otel: an attribute of every record's Resource, `key=value`
    /// (`service.namespace=shop`, `k8s.pod.name=...`); repeatable. A syslog line's own host and
    /// program (`host.name`, `service.name`) take precedence. (The environment variable holds
    /// one attribute.)
    #[arg(
        long = "add-resource",
        env = "LOG_NORMALIZE_ADD_RESOURCE",
        value_name = "KEY=VALUE"
    )]
    add_resource: Vec<String>,

    /// Offset from UTC of timestamps logged without a zone (nginx and Apache error logs, RFC 3164
    /// syslog): `+02:00`, `-0700`, `Z`.
    #[arg(
        long,
        env = "LOG_NORMALIZE_TIMEZONE_OFFSET",
        value_name = "OFFSET",
        default_value = "+00:00",
        allow_hyphen_values = true
    )]
    timezone_offset: String,

    /// RFC 3164 syslog timestamps have no year: take the year that puts them at most a month
    /// after this RFC 3339 time (default: now). For reprocessing old logs.
    #[arg(long, env = "LOG_NORMALIZE_YEAR_REFERENCE", value_name = "RFC3339")]
    year_reference: Option<String>,

    /// Longest line normalized as one event, in bytes; a longer line gives one event per piece
    /// of at most this size (cut between UTF-8 characters), so memory stays bounded.
    #[arg(
        long,
        env = "LOG_NORMALIZE_MAX_LINE_BYTES",
        value_name = "BYTES",
        default_value_t = log_normalize::DEFAULT_MAX_LINE_BYTES
    )]
    max_line_bytes: usize,

    #[command(flatten)]
    runtime: RuntimeArgs,
}

fn parse_offset(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if matches!(s, "Z" | "z" | "UTC" | "utc" | "0") {
        return Ok(0);
    }
    // Reuse the RFC 3339 zone reader on a fixed date.
    let probe = format!("2000-01-01T00:00:00{s}");
    let utc = time::parse_rfc3339("2000-01-01T00:00:00Z", 0).map_err(|e| e.to_string())?;
    let t = time::parse_rfc3339(&probe, 0)
        .map_err(|_| format!("`{s}` is not an offset like +02:00, -0700 or Z"))?;
    Ok(utc.secs - t.secs)
}

fn config(cli: Cli) -> Result<Config, String> {
    let custom = match (&cli.nginx_log_format, &cli.apache_log_format) {
        (Some(f), _) => Some(Access::new(
            AccessFormat::nginx(f).map_err(|e| format!("--nginx-log-format: {e}"))?,
            Kind::NginxCustom,
        )),
        (None, Some(f)) => Some(Access::new(
            AccessFormat::apache(f).map_err(|e| format!("--apache-log-format: {e}"))?,
            Kind::ApacheCustom,
        )),
        (None, None) => None,
    };
    if custom.is_some()
        && !matches!(
            cli.format,
            Format::Auto
                | Format::NginxCombined
                | Format::NginxMain
                | Format::ApacheCommon
                | Format::ApacheCombined
        )
    {
        return Err(format!(
            "--format {:?}: --nginx-log-format and --apache-log-format apply to access logs (use --format auto or an access format)",
            cli.format
        ));
    }
    if cli.max_line_bytes == 0 {
        return Err("--max-line-bytes: must be at least 1".to_owned());
    }
    let offset =
        parse_offset(&cli.timezone_offset).map_err(|e| format!("--timezone-offset: {e}"))?;
    let reference = match &cli.year_reference {
        Some(r) => time::parse_rfc3339(r, 0)
            .map_err(|_| format!("--year-reference: `{r}` is not an RFC 3339 time"))?,
        None => Timestamp::now(),
    };
    if cli.timestamp_format.is_some() && cli.pattern.is_none() {
        return Err("--timestamp-format: only meaningful with --pattern".to_owned());
    }
    let pattern = match &cli.pattern {
        Some(p) => {
            if cli.format != Format::Auto {
                return Err(format!(
                    "--pattern: lines the pattern does not match are detected, so it needs --format auto (not {:?})",
                    cli.format
                ));
            }
            Some(
                log_normalize::Pattern::new(p, cli.timestamp_format.clone())
                    .map_err(|e| format!("--pattern / --timestamp-format: {e}"))?,
            )
        }
        None => None,
    };
    let add_fields = cli
        .add_fields
        .iter()
        .map(|a| AddField::parse(a).map_err(|e| format!("--add-field: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    if !cli.add_resource.is_empty() && cli.schema != Schema::Otel {
        return Err(
            "--add-resource: only meaningful with --schema otel (use --add-field for ECS)"
                .to_owned(),
        );
    }
    let add_resource = cli
        .add_resource
        .iter()
        .map(|a| AddField::parse_resource(a).map_err(|e| format!("--add-resource: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut inputs: Vec<Input> = cli
        .paths
        .iter()
        .map(|p| {
            if p == "-" {
                Input::Stdin
            } else {
                Input::Path(p.clone())
            }
        })
        .collect();
    if cli.follow {
        if inputs.is_empty() || inputs.contains(&Input::Stdin) {
            return Err(
                "--follow: name the files or globs to follow (stdin cannot be followed)".to_owned(),
            );
        }
    } else {
        if cli.checkpoint_file.is_some() {
            return Err("--checkpoint-file: only meaningful with --follow".to_owned());
        }
        if inputs.is_empty() {
            inputs.push(Input::Stdin);
        }
    }
    Ok(Config {
        inputs,
        follow: cli.follow,
        checkpoint_file: cli.checkpoint_file,
        parsers: Parsers::new(cli.format, custom, reference, offset).with_pattern(pattern),
        schema: cli.schema,
        add_fields,
        add_resource,
        syslog_tcp: match cli.syslog_tcp {
            Some(a) if !a.contains(':') || a.ends_with(':') => {
                return Err(format!("--syslog-tcp: `{a}` is not HOST:PORT"));
            }
            other => other,
        },
        max_line_bytes: cli.max_line_bytes,
    })
}

fn main() -> ExitCode {
    let cli: Cli = podmates_runtime::parse_args(std::env::args_os());
    let runtime = cli.runtime.clone();
    let config = config(cli).unwrap_or_else(|e| exit_usage(NAME, e));
    podmates_runtime::start(
        Binary {
            name: NAME,
            version: env!("CARGO_PKG_VERSION"),
            default_admin_addr: "[::]:9102",
            worker_threads: None,
        },
        &runtime,
        move |ctx| run(config, ctx),
    )
}
