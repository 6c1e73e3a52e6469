//! The `log-normalize` command line: flags (each also an environment variable) into a checked
//! [`Config`], without I/O.

use clap::Parser;
use podmates_logparse::{AccessFormat, Timestamp, time};
use podmates_runtime::{RuntimeArgs, UsageError};

use log_normalize::event::Kind;
use log_normalize::parse::Parsers;
use log_normalize::{Access, AddField, Config, Format, Input, Schema};

pub(crate) const NAME: &str = "log-normalize";

/// Normalizes nginx, Apache, syslog, JSON, logfmt and CRI logs into JSON lines in one schema
/// (Elastic Common Schema or OpenTelemetry) on stdout. Diagnostics go to stderr.
#[derive(Debug, Parser)]
#[command(name = NAME, version)]
pub(crate) struct Cli {
    /// Files to read to their end, in order; `-` or none: stdin. With --follow: files or globs to
    /// follow. (The environment variable holds one path.)
    #[arg(env = "LOG_NORMALIZE_PATH", value_name = "PATH")]
    pub(crate) paths: Vec<String>,

    /// Follow the paths through rotation and truncation, picking up files that match the globs
    /// later, instead of reading them once.
    #[arg(long, env = "LOG_NORMALIZE_FOLLOW")]
    pub(crate) follow: bool,

    /// With --follow: file where read offsets are kept, so a restart resumes where it stopped.
    #[arg(long, env = "LOG_NORMALIZE_CHECKPOINT_FILE", value_name = "FILE")]
    pub(crate) checkpoint_file: Option<std::path::PathBuf>,

    /// Input format; `auto` detects it line by line.
    #[arg(long, env = "LOG_NORMALIZE_FORMAT", value_enum, default_value_t = Format::Auto)]
    pub(crate) format: Format,

    /// The server's own nginx `log_format` string, e.g.
    /// '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent $request_time'.
    /// Used for access lines (tried first with --format auto).
    #[arg(
        long,
        env = "LOG_NORMALIZE_NGINX_LOG_FORMAT",
        value_name = "LOG_FORMAT",
        conflicts_with = "apache_log_format"
    )]
    pub(crate) nginx_log_format: Option<String>,

    /// The server's own Apache `LogFormat` string, e.g. '%h %l %u %t "%r" %>s %b %D'.
    #[arg(
        long,
        env = "LOG_NORMALIZE_APACHE_LOG_FORMAT",
        value_name = "LOG_FORMAT"
    )]
    pub(crate) apache_log_format: Option<String>,

    /// A dissect pattern for application logs, tried on every line before detection:
    /// `%{@timestamp}#%{level} %{message}`; `%{name:int}` (float, bool) converts, `%{name->}`
    /// skips padding, `%{}` skips a value. `@timestamp`, `message` and `level` fill the schema's
    /// fields; other keys go under `pattern` (ECS) or are attributes (OTel).
    #[arg(long, env = "LOG_NORMALIZE_PATTERN", value_name = "PATTERN")]
    pub(crate) pattern: Option<String>,

    /// With --pattern: the layout of its `@timestamp`, strftime-style
    /// (`%a %b %e %H:%M:%S %Z %Y`); default: RFC 3339, epoch numbers, `date`'s output and
    /// `%Y-%m-%d %H:%M:%S[.%f]`.
    #[arg(long, env = "LOG_NORMALIZE_TIMESTAMP_FORMAT", value_name = "LAYOUT")]
    pub(crate) timestamp_format: Option<String>,

    /// Ship the JSON lines to a syslog receiver over TCP instead of stdout: RFC 5424 messages
    /// with octet counting (RFC 6587), `HOST:PORT`. Reconnects with backoff; at-least-once.
    #[arg(long, env = "LOG_NORMALIZE_SYSLOG_TCP", value_name = "HOST:PORT")]
    pub(crate) syslog_tcp: Option<String>,

    /// Output schema.
    #[arg(long, env = "LOG_NORMALIZE_SCHEMA", value_enum, default_value_t = Schema::Ecs)]
    pub(crate) schema: Schema,

    /// A field added to every line, `key=value` (dotted keys nest in ECS); repeatable. (The
    /// environment variable holds one field.)
    #[arg(
        long = "add-field",
        env = "LOG_NORMALIZE_ADD_FIELD",
        value_name = "KEY=VALUE"
    )]
    pub(crate) add_fields: Vec<String>,

    /// With --schema otel: an attribute of every record's Resource, `key=value`
    /// (`service.namespace=shop`, `k8s.pod.name=...`); repeatable. A syslog line's own host and
    /// program (`host.name`, `service.name`) take precedence. (The environment variable holds
    /// one attribute.)
    #[arg(
        long = "add-resource",
        env = "LOG_NORMALIZE_ADD_RESOURCE",
        value_name = "KEY=VALUE"
    )]
    pub(crate) add_resource: Vec<String>,

    /// Offset from UTC of timestamps logged without a zone (nginx and Apache error logs, RFC 3164
    /// syslog): `+02:00`, `-0700`, `Z`.
    #[arg(
        long,
        env = "LOG_NORMALIZE_TIMEZONE_OFFSET",
        value_name = "OFFSET",
        default_value = "+00:00",
        allow_hyphen_values = true
    )]
    pub(crate) timezone_offset: String,

    /// RFC 3164 syslog timestamps have no year: take the year that puts them at most a month
    /// after this RFC 3339 time (default: now). For reprocessing old logs.
    #[arg(long, env = "LOG_NORMALIZE_YEAR_REFERENCE", value_name = "RFC3339")]
    pub(crate) year_reference: Option<String>,

    /// Longest line normalized as one event, in bytes; a longer line gives one event per piece
    /// of at most this size (cut between UTF-8 characters), so memory stays bounded.
    #[arg(
        long,
        env = "LOG_NORMALIZE_MAX_LINE_BYTES",
        value_name = "BYTES",
        default_value_t = log_normalize::DEFAULT_MAX_LINE_BYTES
    )]
    pub(crate) max_line_bytes: usize,

    #[command(flatten)]
    pub(crate) runtime: RuntimeArgs,
}

/// A `--timezone-offset` that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not an offset like +02:00, -0700 or Z")]
pub(crate) struct OffsetError {
    input: String,
    #[source]
    source: time::TimeError,
}

fn parse_offset(s: &str) -> Result<i64, OffsetError> {
    let s = s.trim();
    if matches!(s, "Z" | "z" | "UTC" | "utc" | "0") {
        return Ok(0);
    }
    // Reuse the RFC 3339 zone reader on a fixed date.
    let probe = format!("2000-01-01T00:00:00{s}");
    let at = |t: &str| {
        time::parse_rfc3339(t, 0).map_err(|source| OffsetError {
            input: s.to_owned(),
            source,
        })
    };
    Ok(at("2000-01-01T00:00:00Z")?.secs - at(&probe)?.secs)
}

impl TryFrom<&Cli> for Config {
    type Error = UsageError;

    fn try_from(cli: &Cli) -> Result<Self, UsageError> {
        convert(cli)
    }
}

fn convert(cli: &Cli) -> Result<Config, UsageError> {
    let custom = match (&cli.nginx_log_format, &cli.apache_log_format) {
        (Some(f), _) => Some(Access::new(
            AccessFormat::nginx(f).map_err(|e| UsageError::caused("--nginx-log-format", e))?,
            Kind::NginxCustom,
        )),
        (None, Some(f)) => Some(Access::new(
            AccessFormat::apache(f).map_err(|e| UsageError::caused("--apache-log-format", e))?,
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
        return Err(UsageError::new(
            "--format",
            format!(
                "{:?}: --nginx-log-format and --apache-log-format apply to access logs (use --format auto or an access format)",
                cli.format
            ),
        ));
    }
    if cli.max_line_bytes == 0 {
        return Err(UsageError::new("--max-line-bytes", "must be at least 1"));
    }
    let offset = parse_offset(&cli.timezone_offset)
        .map_err(|e| UsageError::caused("--timezone-offset", e))?;
    let reference = match &cli.year_reference {
        Some(r) => time::parse_rfc3339(r, 0).map_err(|_| {
            UsageError::new("--year-reference", format!("`{r}` is not an RFC 3339 time"))
        })?,
        None => Timestamp::now(),
    };
    if cli.timestamp_format.is_some() && cli.pattern.is_none() {
        return Err(UsageError::new(
            "--timestamp-format",
            "only meaningful with --pattern",
        ));
    }
    let pattern = match &cli.pattern {
        Some(p) => {
            if cli.format != Format::Auto {
                return Err(UsageError::new(
                    "--pattern",
                    format!(
                        "lines the pattern does not match are detected, so it needs --format auto (not {:?})",
                        cli.format
                    ),
                ));
            }
            Some(
                log_normalize::Pattern::new(p, cli.timestamp_format.clone())
                    .map_err(|e| UsageError::caused("--pattern / --timestamp-format", e))?,
            )
        }
        None => None,
    };
    let add_fields = cli
        .add_fields
        .iter()
        .map(|a| AddField::parse(a).map_err(|e| UsageError::caused("--add-field", e)))
        .collect::<Result<Vec<_>, _>>()?;
    if !cli.add_resource.is_empty() && cli.schema != Schema::Otel {
        return Err(UsageError::new(
            "--add-resource",
            "only meaningful with --schema otel (use --add-field for ECS)",
        ));
    }
    let add_resource = cli
        .add_resource
        .iter()
        .map(|a| AddField::parse_resource(a).map_err(|e| UsageError::caused("--add-resource", e)))
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
            return Err(UsageError::new(
                "--follow",
                "name the files or globs to follow (stdin cannot be followed)",
            ));
        }
    } else {
        if cli.checkpoint_file.is_some() {
            return Err(UsageError::new(
                "--checkpoint-file",
                "only meaningful with --follow",
            ));
        }
        if inputs.is_empty() {
            inputs.push(Input::Stdin);
        }
    }
    Ok(Config {
        inputs,
        follow: cli.follow,
        checkpoint_file: cli.checkpoint_file.clone(),
        parsers: Parsers::new(cli.format, custom, reference, offset).with_pattern(pattern),
        schema: cli.schema,
        add_fields,
        add_resource,
        syslog_tcp: match &cli.syslog_tcp {
            Some(a) if !a.contains(':') || a.ends_with(':') => {
                return Err(UsageError::new(
                    "--syslog-tcp",
                    format!("`{a}` is not HOST:PORT"),
                ));
            }
            other => other.clone(),
        },
        max_line_bytes: cli.max_line_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    podmates_runtime::test_flags_documented!(Cli, include_str!("../README.md"));

    fn convert_args(args: &[&str]) -> Result<Config, UsageError> {
        podmates_runtime::args::convert::<Cli, _>(args)
    }

    #[test]
    fn bad_settings_name_their_flag_and_keep_the_cause() {
        for (args, flag, caused) in [
            (
                &["--nginx-log-format", "${oops"][..],
                "--nginx-log-format",
                true,
            ),
            (&["--add-field", "novalue"][..], "--add-field", true),
            (
                &["--timezone-offset", "+25:00"][..],
                "--timezone-offset",
                true,
            ),
            (&["--follow"][..], "--follow", false),
            (&["--syslog-tcp", "host"][..], "--syslog-tcp", false),
            (
                &["--format", "syslog", "--nginx-log-format", "$remote_addr"][..],
                "--format",
                false,
            ),
        ] {
            let e = convert_args(args).unwrap_err();
            assert_eq!(e.flag, flag, "{args:?}: {e}");
            assert!(e.to_string().starts_with(&format!("{flag}: ")), "{e}");
            assert_eq!(
                std::error::Error::source(&e).is_some(),
                caused,
                "{args:?}: {e}"
            );
        }
    }

    #[test]
    fn inputs_default_to_stdin() {
        let c = convert_args(&[]).unwrap();
        assert_eq!(c.inputs, [Input::Stdin]);
        let c = convert_args(&["a.log", "-"]).unwrap();
        assert_eq!(c.inputs, [Input::Path("a.log".to_owned()), Input::Stdin]);
        assert_eq!(
            convert_args(&["--timezone-offset", "-0130"])
                .map(|_| ())
                .ok(),
            Some(())
        );
        assert_eq!(parse_offset("-0130"), Ok(-5400));
        assert_eq!(parse_offset("+02:00"), Ok(7200));
        assert_eq!(parse_offset("Z"), Ok(0));
    }
}
