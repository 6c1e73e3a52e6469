//! One attempt at each kind of target. Every check returns `Ok(detail)` when the target is
//! ready and `Err(reason)` saying what failed; the caller bounds it with the per-attempt timeout.

pub mod dns;
pub mod file;
pub mod http;
pub mod mysql;
pub mod postgres;
pub mod redis;
pub mod tcp;

use std::sync::Arc;

use crate::target::{Kind, SslMode, Target};

/// What the checks share: the HTTP expectations, TLS settings and DNS settings.
#[derive(Debug, Clone)]
pub struct Env {
    /// HTTP expectations and request settings.
    pub http: http::HttpSettings,
    /// TLS for https:// and postgres:// with sslmode=verify-*: verified against `--ca-file`
    /// or the system roots, or not at all with `--insecure`. `None` when no target needs it.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// TLS that accepts any certificate (postgres:// with sslmode=require, libpq's meaning).
    pub tls_unverified: Option<Arc<rustls::ClientConfig>>,
    /// Where DNS lookups get their configuration.
    pub dns: dns::DnsSettings,
}

/// Runs one attempt.
pub async fn check(target: &Target, env: &Env) -> Result<String, String> {
    match &target.kind {
        Kind::Tcp { host, port } => tcp::check(host, *port).await,
        Kind::Dns {
            name,
            query,
            server,
        } => dns::check(name, *query, *server, &env.dns).await,
        Kind::Http {
            tls,
            host,
            port,
            path,
            basic_auth,
        } => {
            let tls = if *tls {
                Some(env.tls.clone().ok_or("TLS is not set up")?)
            } else {
                None
            };
            http::check(host, *port, path, basic_auth.as_ref(), tls, &env.http).await
        }
        Kind::File {
            path,
            nonempty,
            contains,
        } => file::check(path, *nonempty, contains.as_deref()).await,
        Kind::Redis {
            host,
            port,
            user,
            password,
            db,
        } => redis::check(host, *port, user.as_deref(), password.as_deref(), *db).await,
        Kind::Postgres {
            host,
            port,
            user,
            password,
            database,
            sslmode,
        } => {
            let tls = match sslmode {
                SslMode::Plain => None,
                SslMode::Require => Some(env.tls_unverified.clone().ok_or("TLS is not set up")?),
                SslMode::Verify => Some(env.tls.clone().ok_or("TLS is not set up")?),
            };
            postgres::check(host, *port, user, password.as_deref(), database, tls).await
        }
        Kind::Mysql {
            host,
            port,
            user,
            password,
            database,
        } => mysql::check(host, *port, user.as_deref(), password, database.as_deref()).await,
    }
}

/// Whether a target needs TLS settings, verified or not.
pub fn needs_tls(target: &Target) -> (bool, bool) {
    match &target.kind {
        Kind::Http { tls: true, .. }
        | Kind::Postgres {
            sslmode: SslMode::Verify,
            ..
        } => (true, false),
        Kind::Postgres {
            sslmode: SslMode::Require,
            ..
        } => (false, true),
        _ => (false, false),
    }
}
