//! A txn's compare decides: of two compare-and-swaps on the same
//! mod_revision, exactly one wins.

use cfgd_etcd::testing::Cluster;
use cfgd_etcd::{Client, Cmp, Compare, Config, Op, Range, Txn};

const ROUNDS: usize = 20;

#[tokio::test]
async fn of_two_racing_compare_and_swaps_exactly_one_wins() {
    let cluster = Cluster::start().await.unwrap();
    // Two writers on different members, as two daemons would be.
    let a = Client::new(Config::new([cluster.endpoint(0)])).unwrap();
    let b = Client::new(Config::new([cluster.endpoint(1)])).unwrap();
    let head = a.put("/cas/head", "0").await.unwrap();
    let mut seen = head.header.unwrap().revision;
    for round in 0..ROUNDS {
        let swap = |who: &str| {
            Txn::new()
                .when([Compare::mod_revision("/cas/head", Cmp::Equal, seen)])
                .and_then([Op::put("/cas/head", format!("{round}-{who}"))])
                .or_else([Op::range(Range::key("/cas/head"))])
        };
        let (ra, rb) = tokio::join!(a.txn(swap("a")), b.txn(swap("b")));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert!(
            ra.succeeded != rb.succeeded,
            "round {round}: a {} b {}",
            ra.succeeded,
            rb.succeeded
        );
        let (winner, loser, name) = if ra.succeeded {
            (ra, rb, "a")
        } else {
            (rb, ra, "b")
        };
        // The loser's failure branch read what the winner wrote.
        let current = &loser
            .ranges()
            .next()
            .expect("the failure branch's range")
            .kvs[0];
        assert_eq!(current.value, format!("{round}-{name}").into_bytes());
        assert_eq!(current.mod_revision, winner.revision);
        seen = winner.revision;
    }
    let last = a.get("/cas/head").await.unwrap().unwrap();
    assert_eq!(last.version, 1 + ROUNDS as i64, "one write per round");
}

#[tokio::test]
async fn absent_guards_a_create() {
    let cluster = Cluster::start_one().await.unwrap();
    let c = cluster.client().unwrap();
    let create = || {
        Txn::new()
            .when([Compare::absent("/cas/epoch")])
            .and_then([Op::put("/cas/epoch", "42")])
    };
    assert!(c.txn(create()).await.unwrap().succeeded);
    assert!(!c.txn(create()).await.unwrap().succeeded);
    let guarded = Txn::new()
        .when([
            Compare::value("/cas/epoch", Cmp::Equal, "42"),
            Compare::version("/cas/epoch", Cmp::Equal, 1),
        ])
        .and_then([Op::delete("/cas/epoch")]);
    assert!(c.txn(guarded).await.unwrap().succeeded);
    assert!(c.get("/cas/epoch").await.unwrap().is_none());
}
