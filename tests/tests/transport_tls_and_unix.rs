//! The daemon over TLS (rustls) and over a Unix socket with mode 0600.

use cfgd_sdk::{Assign, Client, Connect};
use cfgd_tests::{RETRIES, TestDaemon};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_trusting_clients_and_refuses_plain_ones() {
    let dir = tempfile::tempdir().unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let files = cfgd::TlsFiles {
        cert: cert_path.clone(),
        key: key_path,
    };
    let daemon = TestDaemon::builder().tls(files, cert_path).start().await;
    assert!(daemon.endpoint.starts_with("https://"));
    let client = daemon.client().await;
    let w = client
        .set(&[(RETRIES.into(), Assign::Raw("2".into()))], None)
        .await
        .unwrap();
    assert_eq!(w.revision, 1);

    // Without the CA there is no https client at all...
    let err = Client::connect_with(&daemon.endpoint, &Connect::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("needs the CA certificate"),
        "{err}"
    );
    // ...and plain HTTP/2 to the TLS port gets no answer.
    let plain = daemon.endpoint.replace("https://", "http://");
    let result = match Client::connect(&plain, None).await {
        Ok(c) => c.status().await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(result.is_err(), "plain HTTP to a TLS port must fail");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_socket_is_private_and_works() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cfgd.sock");
    let daemon = TestDaemon::builder().unix(path.clone()).start().await;
    assert_eq!(daemon.endpoint, format!("unix:{}", path.display()));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let client = daemon.client().await;
    client
        .set(&[(RETRIES.into(), Assign::Raw("1".into()))], None)
        .await
        .unwrap();
    assert_eq!(cfgd_tests::integer(&client, RETRIES).await, Some(1));
    daemon.stop().await;
    assert!(!path.exists(), "the socket is removed on shutdown");
}
