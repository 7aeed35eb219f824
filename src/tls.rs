//! What every TLS client of ipamd shares (webhook deliveries, connections to PostgreSQL): rustls's ring provider and
//! the roots a server's certificate may chain to.

use std::sync::Arc;

use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::RootCertStore;

/// rustls's ring provider. rustls deprecates it for lacking the post-quantum key exchange, which only aws-lc-rs
/// offers, at the price of a C library (and its build) in every build of ipamd. ipamd keeps today's key exchange,
/// as most clients do.
pub fn provider() -> Arc<CryptoProvider> {
    #[allow(deprecated)]
    let provider = tokio_rustls::rustls::crypto::ring::default_provider();
    Arc::new(provider)
}

/// Mozilla's roots (webpki-roots), and the PEM certificates of the file `pem_file` (empty: none). An error names
/// `setting` (where the file was given) and the file, in one line.
pub fn roots(pem_file: &str, setting: &str) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if !pem_file.is_empty() {
        let bad = |e: &dyn std::fmt::Display| format!("{setting}: {pem_file}: {e}");
        let pem = std::fs::read(pem_file).map_err(|e| bad(&e))?;
        let before = roots.len();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
        }
        if roots.len() == before {
            return Err(bad(&"holds no PEM certificate"));
        }
    }
    Ok(roots)
}
