//! TLS for the gateway's listener: a rustls server configuration built from a PEM certificate
//! chain and private key, served with the `ring` crypto provider.
//!
//! The daemon reads the files named by `s3_gateway.tls` and hands their bytes here, so this
//! crate never touches the filesystem. Only HTTP/1.1 is offered over ALPN, as over plain TCP.
//! The private key is held by rustls alone; nothing here logs or prints it.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use zeroize::Zeroizing;

/// Why a certificate and key could not become a TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is not PEM or holds a malformed certificate.
    #[error("the certificate file is not a valid PEM certificate chain")]
    InvalidCertificate(#[source] pem::Error),
    /// The certificate file holds no `CERTIFICATE` block.
    #[error("the certificate file holds no PEM certificate")]
    NoCertificate,
    /// The key file holds no usable private key (PKCS#8, PKCS#1 or SEC1 PEM).
    #[error("the key file holds no PEM private key (PKCS#8, RSA or EC)")]
    InvalidKey(#[source] pem::Error),
    /// rustls refused the pair, e.g. a key that does not match the certificate.
    #[error("the certificate and key were refused")]
    Rejected(#[source] rustls::Error),
}

/// A ready TLS server configuration; cheap to clone.
#[derive(Clone)]
pub struct TlsConfig {
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The configuration holds the private key; show nothing of it.
        f.write_str("TlsConfig { .. }")
    }
}

impl TlsConfig {
    /// Builds the configuration from a PEM certificate chain (leaf first) and a PEM private key.
    /// The key's bytes are wiped once parsed.
    ///
    /// # Errors
    /// [`TlsError`] naming which of the two is unusable, or that rustls refused the pair.
    pub fn from_pem(cert_chain: &[u8], private_key: Vec<u8>) -> Result<Self, TlsError> {
        let private_key = Zeroizing::new(private_key);
        let certs = CertificateDer::pem_slice_iter(cert_chain)
            .collect::<Result<Vec<_>, _>>()
            .map_err(TlsError::InvalidCertificate)?;
        if certs.is_empty() {
            return Err(TlsError::NoCertificate);
        }
        let key = PrivateKeyDer::from_pem_slice(&private_key).map_err(TlsError::InvalidKey)?;

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Rejected)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(TlsError::Rejected)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// The acceptor that performs the server side of handshakes.
    pub(crate) fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(name: &str) -> (String, String) {
        let cert = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        (cert.cert.pem(), cert.signing_key.serialize_pem())
    }

    #[test]
    fn a_matching_pair_builds() {
        let (cert, key) = pair("localhost");
        assert!(TlsConfig::from_pem(cert.as_bytes(), key.clone().into_bytes()).is_ok());
        let shown = format!(
            "{:?}",
            TlsConfig::from_pem(cert.as_bytes(), key.clone().into_bytes()).unwrap()
        );
        assert_eq!(shown, "TlsConfig { .. }");
    }

    #[test]
    fn each_bad_input_is_named() {
        let (cert, key) = pair("localhost");
        let (_, other_key) = pair("elsewhere");
        assert!(matches!(
            TlsConfig::from_pem(b"", key.clone().into_bytes()),
            Err(TlsError::NoCertificate)
        ));
        assert!(matches!(
            TlsConfig::from_pem(cert.as_bytes(), b"not a key".to_vec()),
            Err(TlsError::InvalidKey(_))
        ));
        assert!(matches!(
            TlsConfig::from_pem(key.as_bytes(), key.clone().into_bytes()),
            Err(TlsError::NoCertificate)
        ));
        assert!(matches!(
            TlsConfig::from_pem(cert.as_bytes(), other_key.clone().into_bytes()),
            Err(TlsError::Rejected(_))
        ));
        let broken = cert.replace("MII", "M!I");
        assert!(matches!(
            TlsConfig::from_pem(broken.as_bytes(), key.clone().into_bytes()),
            Err(TlsError::InvalidCertificate(_))
        ));
    }
}
