//! TLS toward nginx, from `--nginx.ssl-verify`, `--nginx.ssl-ca-cert`, `--nginx.ssl-client-cert`
//! and `--nginx.ssl-client-key`, with the Go exporter's semantics: without verification any server
//! certificate is accepted; with it, the CA file (when given) replaces the system roots.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The TLS settings of the command line.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// Verify nginx's certificate.
    pub verify: bool,
    /// PEM CA bundle to verify against instead of the system roots.
    pub ca_cert: Option<PathBuf>,
    /// PEM client certificate (chain) for mutual TLS.
    pub client_cert: Option<PathBuf>,
    /// PEM private key of the client certificate.
    pub client_key: Option<PathBuf>,
}

/// A TLS setting that cannot be used; the message names the flag, the cause is its `source`.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be opened.
    #[error("{flag} {}: {source}", path.display())]
    Open {
        /// The flag naming the file.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file cannot be read as PEM.
    #[error("{flag} {}: {source}", path.display())]
    Pem {
        /// The flag naming the file.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// A certificate file holds no certificate.
    #[error("{flag} {}: no PEM certificate in the file", path.display())]
    NoCertificate {
        /// The flag naming the file.
        flag: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// A CA certificate rustls refuses.
    #[error("--nginx.ssl-ca-cert {}: {source}", path.display())]
    BadCa {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rustls::Error,
    },
    /// The client certificate and key do not go together.
    #[error("--nginx.ssl-client-cert/--nginx.ssl-client-key: {0}")]
    ClientAuth(#[source] rustls::Error),
    /// The protocol versions cannot be set up (not expected with ring).
    #[error("TLS setup: {0}")]
    Setup(#[source] rustls::Error),
}

fn read_certs(flag: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|source| TlsError::Pem {
            flag,
            path: path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            flag,
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// Checks that the files the settings name can be read, without setting TLS up.
pub fn check_files(s: &TlsSettings) -> Result<(), TlsError> {
    for (flag, path) in [
        ("--nginx.ssl-ca-cert", &s.ca_cert),
        ("--nginx.ssl-client-cert", &s.client_cert),
        ("--nginx.ssl-client-key", &s.client_key),
    ] {
        if let Some(p) = path {
            std::fs::File::open(p).map_err(|source| TlsError::Open {
                flag,
                path: p.clone(),
                source,
            })?;
        }
    }
    Ok(())
}

/// Builds the client configuration shared by the https targets.
pub fn client_config(s: &TlsSettings) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Setup)?;
    let builder = if s.verify {
        let mut roots = RootCertStore::empty();
        if let Some(ca) = &s.ca_cert {
            for c in read_certs("--nginx.ssl-ca-cert", ca)? {
                roots.add(c).map_err(|source| TlsError::BadCa {
                    path: ca.clone(),
                    source,
                })?;
            }
        } else {
            let (system, added) = podmates_tls::system_roots();
            roots = system;
            if added == 0 {
                tracing::warn!(
                    "no system CA certificates found; https targets will fail verification unless --nginx.ssl-ca-cert is set"
                );
            }
        }
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(podmates_tls::accept_any(provider))
    };
    let config = match (&s.client_cert, &s.client_key) {
        (Some(cert), Some(key)) => {
            let chain = read_certs("--nginx.ssl-client-cert", cert)?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Pem {
                flag: "--nginx.ssl-client-key",
                path: key.clone(),
                source,
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(TlsError::ClientAuth)?
        }
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) | (None, Some(_)) => {
            // The Go exporter ignores a lone half silently; keep starting, but say so.
            tracing::warn!(
                "--nginx.ssl-client-cert and --nginx.ssl-client-key must be set together; sending no client certificate"
            );
            builder.with_no_client_auth()
        }
    };
    Ok(Arc::new(config))
}
