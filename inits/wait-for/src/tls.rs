//! TLS client settings from `--ca-file` and `--insecure`, built before the wait starts so that a
//! bad CA file exits 64 instead of failing every attempt.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use podmates_tls::provider;

/// A `--ca-file` that cannot be used, or a TLS setup that failed; the cause is the `source`.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file cannot be read as PEM.
    #[error("--ca-file {}: {source}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The file holds no certificate.
    #[error("--ca-file {}: no PEM certificate in the file", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A certificate rustls refuses as a root.
    #[error("--ca-file {}: {source}", path.display())]
    BadCa {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rustls::Error,
    },
    /// The protocol versions cannot be set up (not expected with ring).
    #[error("TLS setup: {0}")]
    Setup(#[source] rustls::Error),
}

/// The verified configuration: the certificates of `ca_file`, else the system roots; or, with
/// `insecure`, one that accepts any certificate. The error names the flag.
pub fn verified(
    ca_file: Option<&Path>,
    insecure: bool,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    if insecure {
        return unverified();
    }
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(|source| TlsError::Pem {
                    path: path.to_owned(),
                    source,
                })?;
            if certs.is_empty() {
                return Err(TlsError::NoCertificate {
                    path: path.to_owned(),
                });
            }
            for c in certs {
                roots.add(c).map_err(|source| TlsError::BadCa {
                    path: path.to_owned(),
                    source,
                })?;
            }
        }
        None => {
            let (system, added) = podmates_tls::system_roots();
            roots = system;
            if added == 0 {
                tracing::warn!(
                    "no system CA certificates found; https targets will fail verification unless --ca-file is set"
                );
            }
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Setup)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A configuration that accepts any certificate (handshake signatures are still checked).
pub fn unverified() -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let p = provider();
    let config = rustls::ClientConfig::builder_with_provider(p.clone())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Setup)?
        .dangerous()
        .with_custom_certificate_verifier(podmates_tls::accept_any(p))
        .with_no_client_auth();
    Ok(Arc::new(config))
}
