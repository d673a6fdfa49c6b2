//! The devnet over TLS with a certificate the test made; the client trusts it only
//! when given the CA.

use super::*;
use qubix_ledger::devnet::tls::self_signed;
use qubix_ledger::devnet::{Devnet, DevnetConfig};
use qubix_ledger::rpc::RpcConfig;

#[tokio::test]
async fn serves_https_that_only_a_client_with_the_ca_trusts() {
    let cert = self_signed(&["127.0.0.1", "localhost", "203.0.113.10"]).unwrap();
    let net = Devnet::start(DevnetConfig {
        tick_period: None,
        tls: Some(cert.devnet_tls()),
        ..DevnetConfig::default()
    })
    .await
    .unwrap();
    assert!(net.url().starts_with("https://127.0.0.1:"), "{}", net.url());
    let trusting = RpcClient::new(RpcConfig {
        ca_pem: Some(cert.cert_pem.clone().into_bytes()),
        ..rpc_config(net.url())
    })
    .unwrap();
    let info = trusting.tick_info().await.unwrap();
    assert_eq!(info.tick, net.tick());

    let err = RpcClient::new(rpc_config(net.url()))
        .unwrap()
        .tick_info()
        .await
        .unwrap_err();
    assert!(matches!(err, RpcError::Tls { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("certificate") && text.contains("ca_pem"),
        "{text}"
    );
    assert!(
        !err.is_transient(),
        "an untrusted certificate is not retried"
    );

    // A certificate for other names does not pass for 127.0.0.1, CA or not.
    let other = self_signed(&["203.0.113.10"]).unwrap();
    let elsewhere = Devnet::start(DevnetConfig {
        tick_period: None,
        tls: Some(other.devnet_tls()),
        ..DevnetConfig::default()
    })
    .await
    .unwrap();
    let err = RpcClient::new(RpcConfig {
        ca_pem: Some(other.cert_pem.into_bytes()),
        ..rpc_config(elsewhere.url())
    })
    .unwrap()
    .tick_info()
    .await
    .unwrap_err();
    assert!(matches!(err, RpcError::Tls { .. }), "{err:?}");
    net.shutdown();
    elsewhere.shutdown();
}

#[tokio::test]
async fn unusable_tls_settings_are_refused_at_start() {
    let cert = self_signed(&["127.0.0.1"]).unwrap();
    let mismatched = self_signed(&["127.0.0.1"]).unwrap();
    for tls in [
        qubix_ledger::devnet::DevnetTls {
            cert_chain_pem: b"nothing".to_vec(),
            key_pem: cert.key_pem.clone().into_bytes(),
        },
        qubix_ledger::devnet::DevnetTls {
            cert_chain_pem: cert.cert_pem.clone().into_bytes(),
            key_pem: b"no key".to_vec(),
        },
        qubix_ledger::devnet::DevnetTls {
            cert_chain_pem: cert.cert_pem.clone().into_bytes(),
            key_pem: mismatched.key_pem.clone().into_bytes(),
        },
    ] {
        let config = DevnetConfig {
            tls: Some(tls),
            ..DevnetConfig::default()
        };
        let err = Devnet::start(config).await.unwrap_err().to_string();
        assert!(
            err.contains("devnet TLS") && err.contains("self_signed"),
            "{err}"
        );
    }
    assert!(self_signed(&[]).is_err());
    assert!(
        !format!("{cert:?}").contains("PRIVATE KEY"),
        "the key never prints"
    );
}
