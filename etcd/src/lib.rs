//! `cfgd-etcd`: a small etcd v3 client that stays correct when members die,
//! hang or lose their leader — the adapter every etcd user ends up writing
//! (scale-out.md §2, §6.4, §7), written once for cfgd's fleet store and for
//! `bench/`.
//!
//! It owns etcd's v3 protos (a wire-compatible subset, compiled with
//! `protox`, no `protoc`) and, on top of them:
//! - **failover** over one connection per member with a sticky current
//!   member, moving on when a member cannot take a call;
//! - **errors that say what was tried** ([`Error`]): each member and its
//!   answer, since when the cluster has been unreachable, and whether a
//!   write may still be applied — [`Error::OutcomeUnknown`] is never
//!   retried behind the caller's back;
//! - a **resuming watch** ([`Watch`]) that notices silent members with
//!   progress requests, resumes without loss or repeats, and reports a
//!   compacted start revision ([`WatchEvent::Compacted`]);
//! - a **lease keeper** ([`LeaseKeeper`]), **txn helpers** ([`Txn`]),
//!   linearizable and serializable reads ([`Range`]), TLS and user/password
//!   auth ([`Tls`], [`Credentials`]);
//! - behind the `testing` feature, a real 3-member etcd cluster on loopback
//!   for tests (`testing::Cluster`).
//!
//! # Layout
//! - `proto/etcd.proto` — the etcd v3 subset (`KV`, `Watch`, `Lease`,
//!   `Cluster.MemberList`, `Maintenance.Status`, `Auth`), Apache-2.0, from etcd.
//! - [`pb`] — the code generated from it.
//! - [`config`] — [`Config`]: endpoints, timeouts, [`Tls`], [`Credentials`].
//! - `client` — [`Client`]: the sticky member, the failover loop every
//!   unary call goes through, the auth token.
//! - `member` — one member's channel, and the look at its socket that
//!   tells a connection the member closed before a call is sent on it.
//! - `classify` — what a failed try means: never sent, maybe applied,
//!   stale token, or etcd's answer.
//! - [`error`] — [`Error`] and [`Attempt`].
//! - `kv` — put, get, [`Range`], delete, compact, member status and list.
//! - `txn` — [`Txn`], [`Compare`], [`Op`], [`TxnResult`].
//! - `watch` — [`Watch`], [`WatchEvent`].
//! - `lease` — [`Lease`], [`LeaseKeeper`], [`LeaseLost`].
//! - `testing` (feature `testing`) — the real-etcd cluster harness.
//!
//! # Example
//! A compare-and-swap, then a watch that sees it (`Cluster` starts a real
//! 3-member etcd; `etcd` must be on the PATH, see `.ci/deps.sh`):
//! ```
//! # #[cfg(feature = "testing")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use cfgd_etcd::{Cmp, Compare, Op, Txn, WatchEvent};
//!
//! let cluster = cfgd_etcd::testing::Cluster::start().await?;
//! let client = cluster.client()?;
//! let created = client.put("/demo/head", "1").await?.header.unwrap().revision;
//! let mut watch = client.watch_prefix("/demo/", created + 1);
//!
//! // Write only if nobody wrote since we read head.
//! let cas = Txn::new()
//!     .when([Compare::mod_revision("/demo/head", Cmp::Equal, created)])
//!     .and_then([Op::put("/demo/head", "2"), Op::put("/demo/log/2", "set x")]);
//! assert!(client.txn(cas.clone()).await?.succeeded);
//! assert!(!client.txn(cas).await?.succeeded, "head moved on: the same swap fails");
//!
//! let Some(Ok(WatchEvent::Events { events, .. })) = watch.next().await else { panic!() };
//! assert_eq!(events.len(), 2, "one txn, one revision, both puts");
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "testing"))]
//! # fn main() {}
//! ```

mod classify;
mod client;
pub mod config;
pub mod error;
mod kv;
mod lease;
mod member;
#[cfg(feature = "testing")]
pub mod testing;
mod txn;
mod watch;

pub use client::Client;
pub use config::{Config, Credentials, Tls};
pub use error::{Attempt, Error};
pub use kv::{Range, prefix_end};
pub use lease::{Lease, LeaseKeeper, LeaseLost};
pub use txn::{Cmp, Compare, Op, Txn, TxnResult};
pub use watch::{Watch, WatchEvent};

/// The code generated from `proto/etcd.proto`: etcd's messages and the
/// gRPC clients (`kv_client`, `watch_client`, `lease_client`,
/// `cluster_client`, `maintenance_client`, `auth_client`).
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("etcdserverpb");
}
