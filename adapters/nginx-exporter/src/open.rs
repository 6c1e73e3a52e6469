//! What `main` opens once the flags are checked and telemetry is up: the listeners are bound (a
//! busy port exits 64 naming `--web.listen-address`), the secret files read, TLS set up (or its
//! files checked), so that every problem with the settings is found before the exporter starts.

use std::sync::Arc;

use base64::Engine as _;
use hyper::header::HeaderValue;
use nginx_exporter::Config;
use nginx_exporter::target::ClientSettings;
use nginx_exporter::tls;
use podmates_runtime::UsageError;
use podmates_runtime::args::read_secret;

use crate::cli::{Auth, Settings};

/// A setting that names something that cannot be bound, read or used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    /// A listener or secret file, under its flag.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// A TLS file; the message starts with its flag.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// Binds, reads and builds what `settings` name, into the exporter's [`Config`].
pub(crate) fn open(settings: Settings) -> Result<Config, OpenError> {
    if settings.retries_given {
        tracing::debug!(
            "--nginx.retries/--nginx.retry-interval are ignored: the exporter starts and keeps running whether nginx is up or not"
        );
    }
    let listeners = settings
        .listen
        .iter()
        .map(|a| {
            a.bind()
                .map_err(|e| UsageError::caused("--web.listen-address", e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tls = Arc::new(std::sync::OnceLock::new());
    if settings
        .scrape_uris
        .iter()
        .any(|u| u.starts_with("https://"))
    {
        let config = tls::client_config(&settings.tls)?;
        let _ = tls.set(config);
    } else {
        // Built on first use (by /probe); the files must still be there.
        tls::check_files(&settings.tls)?;
    }
    let authorization = authorization(&settings.auth)?;
    Ok(Config {
        scrape_uris: settings.scrape_uris,
        listeners,
        telemetry_path: settings.telemetry_path,
        nginx_metrics_only: settings.nginx_metrics_only,
        client: ClientSettings {
            timeout: settings.timeout,
            tls,
            tls_settings: settings.tls,
            host_header: settings.host_header,
            authorization,
        },
        const_labels: settings.const_labels,
        access_log: settings.access_log,
        probe_allowed: settings.probe_allowed,
    })
}

/// The `Authorization` header, with the secret files read.
fn authorization(auth: &Auth) -> Result<Option<HeaderValue>, UsageError> {
    match auth {
        Auth::None => Ok(None),
        Auth::Basic {
            user,
            password_file,
        } => {
            let pw = match password_file {
                Some(p) => read_secret(p)
                    .map_err(|e| UsageError::caused("--nginx.basic-auth-password-file", e))?,
                None => String::new(),
            };
            let enc = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"));
            let v = HeaderValue::from_str(&format!("Basic {enc}")).map_err(|e| UsageError {
                flag: "--nginx.basic-auth-user",
                reason: "not a valid header value".to_owned(),
                source: Some(e.into()),
            })?;
            Ok(Some(v))
        }
        Auth::Bearer(f) => {
            let token =
                read_secret(f).map_err(|e| UsageError::caused("--nginx.bearer-token-file", e))?;
            let mut v =
                HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| UsageError {
                    flag: "--nginx.bearer-token-file",
                    reason: "the token is not a valid header value".to_owned(),
                    source: Some(e.into()),
                })?;
            v.set_sensitive(true);
            Ok(Some(v))
        }
    }
}
