//! TLS to PostgreSQL, with libpq's `sslmode` names: `disable`; `prefer` (TLS when the server offers it, the
//! driver's default); `require` (TLS or no connection); `verify-ca` (and the certificate chains to a trusted root);
//! `verify-full` (and it names the host). The roots are Mozilla's and the PEM certificates of `sslrootcert`; as in
//! libpq, `require` with `sslrootcert` verifies as `verify-ca` does. The driver knows only the first three modes
//! and no `sslrootcert`: the URL is read for both here and handed on without them.

use std::sync::Arc;

use postgres_rustls::MakeTlsConnector;
use tokio_postgres::config::SslMode;
use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};

/// What a connection's certificate must prove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// The TLS settings of a database URL: its mode, `sslrootcert` (empty: none) and the URL without the two.
#[derive(Debug, PartialEq, Eq)]
pub struct Settings {
    pub mode: Mode,
    pub rootcert: String,
    pub url: String,
}

impl Settings {
    /// Reads `sslmode` and `sslrootcert` out of `url`; an unknown mode is refused, in words that do not repeat the
    /// URL (it may hold a password).
    pub fn parse(url: &str) -> Result<Settings, String> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let (mut mode, mut rootcert, mut rest) = (Mode::Prefer, String::new(), Vec::new());
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=').unwrap_or((pair, "")) {
                ("sslmode", value) => {
                    mode = match value {
                        "disable" => Mode::Disable,
                        "prefer" => Mode::Prefer,
                        "require" => Mode::Require,
                        "verify-ca" => Mode::VerifyCa,
                        "verify-full" => Mode::VerifyFull,
                        other => {
                            let shown: String = other.chars().take(32).collect();
                            return Err(format!(
                                "sslmode '{shown}' is not one of disable, prefer, require, verify-ca, verify-full"
                            ));
                        }
                    }
                }
                ("sslrootcert", value) => rootcert = value.to_string(),
                _ => rest.push(pair),
            }
        }
        if mode == Mode::Require && !rootcert.is_empty() {
            mode = Mode::VerifyCa;
        }
        let url = if rest.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        Ok(Settings { mode, rootcert, url })
    }

    /// The driver's mode: whether TLS is tried, and whether it is required.
    pub fn ssl_mode(&self) -> SslMode {
        match self.mode {
            Mode::Disable => SslMode::Disable,
            Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        }
    }

    /// The connector that checks the server's certificate as the mode says.
    pub fn connector(&self) -> Result<MakeTlsConnector, String> {
        let provider = crate::tls::provider();
        let roots = crate::tls::roots(&self.rootcert, "the database URL's sslrootcert")?;
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| format!("the database URL's sslrootcert: {e}"))?;
        let verifier = Verifier {
            webpki,
            chain: matches!(self.mode, Mode::VerifyCa | Mode::VerifyFull),
            name: self.mode == Mode::VerifyFull,
        };
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("tls: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        postgres_rustls::set_postgresql_alpn(&mut config);
        Ok(MakeTlsConnector::new(tokio_rustls::TlsConnector::from(Arc::new(
            config,
        ))))
    }
}

/// Checks a server's certificate as far as the mode asks: with `chain`, that it chains to a root; with `name` too,
/// that it names the host. The handshake's signatures are always checked (what encryption without verification
/// still needs: the server holds the key of the certificate it sent).
#[derive(Debug)]
struct Verifier {
    webpki: Arc<WebPkiServerVerifier>,
    chain: bool,
    name: bool,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, tokio_rustls::rustls::Error> {
        if !self.chain {
            return Ok(ServerCertVerified::assertion());
        }
        match self
            .webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(tokio_rustls::rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.name => Ok(ServerCertVerified::assertion()),
            checked => checked,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use tokio_rustls::rustls::pki_types::PrivateKeyDer;
    use tokio_rustls::rustls::{ServerConfig, ServerConnection, StreamOwned};

    use super::*;
    use crate::store::postgres::Target;

    /// A server on 127.0.0.1 that answers PostgreSQL's TLS request with yes, completes the handshake with a
    /// certificate for `localhost` signed by a test CA, and refuses the login over TLS with a message of its own:
    /// a client that gets the message passed the certificate checks. The CA's PEM and the port.
    fn tls_server(logins: usize) -> (String, u16) {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let config = ServerConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
            )
            .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(logins) {
                let mut tcp = stream.unwrap();
                let mut request = [0u8; 8];
                tcp.read_exact(&mut request).unwrap();
                tcp.write_all(b"S").unwrap();
                let mut tls = StreamOwned::new(ServerConnection::new(config.clone()).unwrap(), tcp);
                let mut len = [0u8; 4];
                if tls.read_exact(&mut len).is_err() {
                    continue; // The client refused the certificate.
                }
                let mut startup = vec![0u8; u32::from_be_bytes(len) as usize - 4];
                tls.read_exact(&mut startup).unwrap();
                let fields = b"SFATAL\0C28000\0Mreached over TLS\0\0";
                let mut error = vec![b'E'];
                error.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
                error.extend_from_slice(fields);
                tls.write_all(&error).unwrap();
                tls.flush().unwrap();
            }
        });
        (ca.pem(), port)
    }

    /// What connecting to `url` says: the server's refusal past the checks, or why the client gave up.
    fn attempt(url: &str) -> String {
        match Target::parse(url).unwrap().connect() {
            Ok(_) => "connected".into(),
            Err(e) => e.message,
        }
    }

    #[test]
    fn each_mode_checks_the_certificate_as_far_as_it_says() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, port) = tls_server(6);
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca).unwrap();
        let root = ca_file.display();
        let reached = |url: String| {
            let said = attempt(&url);
            assert!(said.ends_with("reached over TLS"), "{url}: {said}");
        };
        let refused = |url: String, why: &str| {
            let said = attempt(&url);
            assert!(said.contains(why) && !said.contains("secret"), "{url}: {said}");
            assert_eq!(said.lines().count(), 1, "{said}");
        };
        // Encrypted without a check of the certificate; checked against the CA; and for the host's name too.
        reached(format!("postgres://u:secret@localhost:{port}/db?sslmode=require"));
        reached(format!(
            "postgres://u@127.0.0.1:{port}/db?sslmode=verify-ca&sslrootcert={root}"
        ));
        reached(format!(
            "postgres://u@localhost:{port}/db?sslmode=verify-full&sslrootcert={root}"
        ));
        // Not signed by a root of Mozilla's; not issued for 127.0.0.1.
        refused(
            format!("postgres://u:secret@localhost:{port}/db?sslmode=verify-full"),
            "invalid peer certificate: UnknownIssuer",
        );
        refused(
            format!("postgres://u:secret@127.0.0.1:{port}/db?sslmode=verify-full&sslrootcert={root}"),
            "certificate not valid for name \"127.0.0.1\"",
        );
        refused(
            format!("postgres://u:secret@localhost:{port}/db?sslmode=verify-ca"),
            "invalid peer certificate: UnknownIssuer",
        );
        let missing = Target::parse("postgres://u:secret@h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem");
        let e = missing.err().unwrap().message;
        assert!(
            e.contains("sslrootcert: /nonexistent/ca.pem") && !e.contains("secret"),
            "{e}"
        );
    }

    /// Whether the session of `url` is encrypted, as the server sees it; or why it could not be made.
    fn encrypted(url: &str) -> Result<bool, String> {
        let session = std::cell::RefCell::new(Target::parse(url).unwrap().connect().map_err(|e| e.message)?);
        let tx = crate::db::Tx::on_postgres(&session);
        let ssl = tx.query_row(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            crate::db::params![],
            |r| r.get::<bool>(0),
        );
        Ok(ssl.unwrap())
    }

    /// On the test server: `disable` connects in clear; `prefer` and `require` encrypt when the server speaks TLS,
    /// and where it does not, `prefer` connects in clear and `require` is refused in one line that says why (and
    /// not the password). `verify-full` refuses a certificate no root vouches for (the test server's own).
    #[test]
    fn the_test_server_is_used_encrypted_or_not_as_the_mode_says() {
        let Some(_fresh) = crate::db::pg::testing::Fresh::new() else {
            return;
        };
        let url = std::env::var("IPAMD_TEST_DATABASE_URL").unwrap();
        let (base, _) = url.split_once('?').unwrap_or((&url, ""));
        let with_password = base.replacen('@', ":secret@", 1);
        assert_eq!(encrypted(&format!("{base}?sslmode=disable")), Ok(false));
        let speaks_tls = encrypted(&format!("{base}?sslmode=prefer")).unwrap();
        assert_eq!(encrypted(base), Ok(speaks_tls), "prefer is the default");
        let required = encrypted(&format!("{with_password}?sslmode=require"));
        let full = encrypted(&format!("{with_password}?sslmode=verify-full"));
        if speaks_tls {
            assert_eq!(required, Ok(true));
            let said = full.unwrap_err();
            assert!(said.contains("invalid peer certificate"), "{said}");
            assert!(!said.contains("secret") && said.lines().count() == 1, "{said}");
        } else {
            for said in [required.unwrap_err(), full.unwrap_err()] {
                assert!(said.contains("server does not support TLS"), "{said}");
                assert!(!said.contains("secret") && said.lines().count() == 1, "{said}");
            }
        }
    }

    #[test]
    fn the_url_gives_the_mode_and_the_root_and_keeps_the_rest() {
        let s = |url: &str| Settings::parse(url).unwrap();
        let plain = s("postgres://u:secret@h/db");
        assert_eq!(
            (plain.mode, plain.url.as_str()),
            (Mode::Prefer, "postgres://u:secret@h/db")
        );
        let full = s("postgres://u@h/db?connect_timeout=3&sslmode=verify-full&sslrootcert=/etc/ca.pem");
        assert_eq!(
            full,
            Settings {
                mode: Mode::VerifyFull,
                rootcert: "/etc/ca.pem".into(),
                url: "postgres://u@h/db?connect_timeout=3".into(),
            }
        );
        assert_eq!(s("postgres://h/db?sslmode=require").mode, Mode::Require);
        assert_eq!(
            s("postgres://h/db?sslmode=require&sslrootcert=ca.pem").mode,
            Mode::VerifyCa
        );
        assert_eq!(s("postgres://h/db?sslmode=disable").ssl_mode(), SslMode::Disable);
        assert_eq!(s("postgres://h/db?sslmode=verify-ca").ssl_mode(), SslMode::Require);
        let e = Settings::parse("postgres://u:secret@h/db?sslmode=allow").unwrap_err();
        assert!(e.contains("'allow'") && !e.contains("secret"), "{e}");
    }
}
