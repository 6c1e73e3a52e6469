//! TLS client settings from `--ca-file` and `--insecure`, built before the wait starts so that a
//! bad CA file exits 64 instead of failing every attempt.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use podmates_tls::provider;

/// The verified configuration: the certificates of `ca_file`, else the system roots; or, with
/// `insecure`, one that accepts any certificate. The error names the flag.
pub fn verified(
    ca_file: Option<&Path>,
    insecure: bool,
) -> Result<Arc<rustls::ClientConfig>, String> {
    if insecure {
        return unverified();
    }
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "--ca-file {}: no PEM certificate in the file",
                    path.display()
                ));
            }
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
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
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A configuration that accepts any certificate (handshake signatures are still checked).
pub fn unverified() -> Result<Arc<rustls::ClientConfig>, String> {
    let p = provider();
    let config = rustls::ClientConfig::builder_with_provider(p.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(podmates_tls::accept_any(p))
        .with_no_client_auth();
    Ok(Arc::new(config))
}
