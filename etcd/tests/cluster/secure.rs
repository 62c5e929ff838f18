//! TLS with client certificates, and user/password auth whose token is
//! renewed when etcd drops it.

use cfgd_etcd::testing::{Cluster, Options, ServerTls};
use cfgd_etcd::{Client, Config, Credentials, Tls};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

struct Pki {
    ca: String,
    server: (String, String),
    client: (String, String),
}

fn pki() -> Pki {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        server: leaf(vec!["127.0.0.1".into(), "localhost".into()]),
        client: leaf(vec!["cfgd-test-client".into()]),
        ca: ca.pem(),
    }
}

#[tokio::test]
async fn tls_with_a_client_certificate() {
    let pki = pki();
    let tls = ServerTls {
        ca_pem: pki.ca.clone(),
        cert_pem: pki.server.0.clone(),
        key_pem: pki.server.1.clone(),
        client_cert_auth: true,
        client_identity: Some(pki.client.clone()),
    };
    let cluster = Cluster::start_with(Options {
        members: 1,
        tls: Some(tls),
    })
    .await
    .unwrap();
    assert!(cluster.endpoint(0).starts_with("https://"));

    let with_cert = Tls::new(pki.ca.clone()).identity(pki.client.0.clone(), pki.client.1.clone());
    let client = Client::new(Config::new(cluster.endpoints()).tls(with_cert)).unwrap();
    client.put("/tls/k", "v").await.unwrap();
    assert_eq!(client.get("/tls/k").await.unwrap().unwrap().value, b"v");

    // Without a client certificate the member refuses the handshake.
    let without = Config::new(cluster.endpoints())
        .tls(Tls::new(pki.ca.clone()))
        .deadline(std::time::Duration::from_millis(500));
    let without = Client::new(without).unwrap();
    let err = without.get("/tls/k").await.unwrap_err();
    assert!(err.is_unreachable(), "{err}");
}

#[tokio::test]
async fn auth_renews_a_token_etcd_dropped() {
    let cluster = Cluster::start_one().await.unwrap();
    let root = cluster.enable_auth("s3cret").await.unwrap();

    let anonymous = cluster.client().unwrap();
    let err = anonymous.put("/auth/k", "v").await.unwrap_err();
    assert!(
        err.rejected_code().is_some(),
        "refused without credentials: {err}"
    );

    let client = Client::new(cluster.config().credentials(root.clone())).unwrap();
    client.put("/auth/k", "1").await.unwrap();
    // etcd drops every token of a user whose password changes (as when a
    // token expires): the client authenticates again by itself.
    cluster.change_password(&root, "s3cret").await.unwrap();
    client.put("/auth/k", "2").await.unwrap();
    assert_eq!(client.get("/auth/k").await.unwrap().unwrap().value, b"2");

    let wrong = Client::new(
        cluster
            .config()
            .credentials(Credentials::new("root", "nope")),
    )
    .unwrap();
    let err = wrong.get("/auth/k").await.unwrap_err();
    assert!(err.to_string().contains("authentication failed"), "{err}");
}
