//! AWS SDK clients. Locally `AWS_ENDPOINT_URL` points them at moto_server or LocalStack.
//!
//! The SDK's HTTPS client trusts the Amazon Trust Services roots compiled into the binary
//! (`shared/certs/amazon-trust-services.pem`: Amazon Root CA 1–4 and Starfield Services Root G2,
//! which every AWS endpoint's certificate chains to) instead of the system's certificate store,
//! which its default client reads and parses at the first request of every cold start. An
//! HTTPS `AWS_ENDPOINT_URL` must therefore chain to an Amazon root; an `http://` one (moto,
//! LocalStack) uses no TLS at all.

use aws_config::{
    BehaviorVersion, ConfigLoader, Region, SdkConfig,
    environment::EnvironmentVariableCredentialsProvider,
};
use aws_smithy_http_client::{
    Builder, ConnectorBuilder,
    proxy::ProxyConfig,
    tls::{Provider, TlsContext, TrustStore, rustls_provider::CryptoMode},
};

use crate::config::AwsConfig;

/// The roots the SDK's HTTPS client trusts (see the module's doc).
const AMAZON_ROOTS_PEM: &[u8] = include_bytes!("../../certs/amazon-trust-services.pem");

/// Loads the SDK configuration once; build every client from it.
pub async fn sdk_config(config: &AwsConfig) -> SdkConfig {
    let mut loader = trusting_amazon_roots(
        aws_config::defaults(BehaviorVersion::latest()).region(Region::new(config.region.clone())),
    );
    if credentials_in_env() {
        // Lambda puts the role's credentials there. The default chain would find them there
        // too, first, but builds its profile, web-identity, ECS and IMDS providers beforehand.
        loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
    }
    if let Some(endpoint) = &config.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// Whether the environment holds credentials (an access key and its secret).
fn credentials_in_env() -> bool {
    ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
        .iter()
        .all(|name| std::env::var(name).is_ok_and(|value| !value.trim().is_empty()))
}

/// Gives the loader the SDK's default HTTPS client (rustls with aws-lc, proxies from the
/// environment) with [`AMAZON_ROOTS_PEM`] as its only trust store.
fn trusting_amazon_roots(loader: ConfigLoader) -> ConfigLoader {
    let trust = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(AMAZON_ROOTS_PEM);
    // Building a context only stores the PEM (parsed when the first connector is built), so it
    // does not fail today; should it ever, the SDK's own trust store serves.
    let tls = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .unwrap_or_else(|err| {
            tracing::warn!(error = %err, "the Amazon roots were refused; using the system's");
            TlsContext::default()
        });
    loader.http_client(
        Builder::new().build_with_connector_fn(move |settings, components| {
            let mut connector = ConnectorBuilder::default()
                .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
                .tls_context(tls.clone());
            connector.set_connector_settings(settings.cloned());
            if let Some(components) = components {
                connector.set_sleep_impl(components.sleep_impl());
            }
            connector.set_proxy_config(Some(ProxyConfig::from_env()));
            connector.build()
        }),
    )
}

pub fn dynamodb(sdk: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(sdk)
}

pub fn sqs(sdk: &SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(sdk)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use rustls::pki_types::{CertificateDer, pem::PemObject};

    use super::*;

    /// The SDK parses the file only at the first connection, and panics on a bad certificate:
    /// every one must parse and be a usable trust anchor.
    #[test]
    fn the_compiled_in_roots_are_the_five_amazon_roots() {
        let certificates: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(AMAZON_ROOTS_PEM)
                .collect::<Result<_, _>>()
                .unwrap();
        assert_eq!(certificates.len(), 5);
        let mut roots = rustls::RootCertStore::empty();
        for certificate in certificates {
            roots.add(certificate).unwrap();
        }
        let names: Vec<String> = roots
            .roots
            .iter()
            .map(|root| String::from_utf8_lossy(root.subject.as_ref()).into_owned())
            .collect();
        for expected in [
            "Amazon Root CA 1",
            "Amazon Root CA 2",
            "Amazon Root CA 3",
            "Amazon Root CA 4",
            "Starfield Services Root Certificate Authority - G2",
        ] {
            assert!(
                names.iter().any(|name| name.contains(expected)),
                "{expected} missing"
            );
        }
    }
}
