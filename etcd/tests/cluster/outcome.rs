//! A write that may have been applied is reported as such, never sent again
//! elsewhere.

use cfgd_etcd::testing::Cluster;

use crate::{a_follower, client_starting_at, client_without};

#[tokio::test]
async fn a_put_held_by_a_hung_member_is_outcome_unknown_and_not_sent_elsewhere() {
    let cluster = Cluster::start().await.unwrap();
    let held = a_follower(&cluster).await;
    let client = client_starting_at(&cluster, held);
    // The connection to `held` is up, so the next put goes out on it.
    client.put("/u/warm", "1").await.unwrap();

    cluster.hang(held).unwrap();
    let err = client.put("/u/held", "1").await.unwrap_err();
    assert!(err.is_outcome_unknown(), "{err}");
    assert_eq!(err.attempts().len(), 1, "sent to one member only: {err}");
    assert_eq!(err.attempts()[0].member, cluster.endpoint(held));
    assert!(err.to_string().contains("it may still be applied"), "{err}");

    // The other members never saw it (the hung member has not read it).
    let others = client_without(&cluster, held);
    assert!(others.get("/u/held").await.unwrap().is_none());
    // The next call goes to another member.
    assert_ne!(client.current_endpoint(), cluster.endpoint(held));
    client.put("/u/next", "1").await.unwrap();
    cluster.resume(held).unwrap();
}

#[tokio::test]
async fn a_read_held_by_a_hung_member_moves_on() {
    let cluster = Cluster::start().await.unwrap();
    let held = a_follower(&cluster).await;
    let client = client_starting_at(&cluster, held);
    client.put("/r/k", "v").await.unwrap();
    cluster.hang(held).unwrap();
    let kv = client
        .get("/r/k")
        .await
        .unwrap()
        .expect("read through another member");
    assert_eq!(kv.value, b"v");
    cluster.resume(held).unwrap();
}
