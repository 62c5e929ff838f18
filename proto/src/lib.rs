//! The cfgd wire contract.
//!
//! This crate owns `proto/cfgd/v1/cfgd.proto` and the Rust code `tonic` and
//! `prost` generate from it, nothing else. The SDK and the daemon convert
//! these types to their own at their edges; application code never sees them.
//!
//! # Layout
//! - `proto/cfgd/v1/cfgd.proto` — the `cfgd.v1.Settings` service and its
//!   messages, error details (`cfgd.v1.Problems`, `cfgd.v1.ErrorReason`)
//!   included. `proto/buf.yaml` holds the lint rules it follows.
//! - [`pb`] — the generated messages (each with [`prost::Name`], so an
//!   `Any`'s type URL comes from the type), client (`pb::settings_client`),
//!   server (`pb::settings_server`) and the encoded descriptor set
//!   ([`pb::FILE_DESCRIPTOR_SET`], for server reflection).
//! - [`frame`] — [`frame::WatchFrame`], what the server's `Watch` sends: a
//!   `WatchResponse` encoded once, shared by every watcher it goes to.
//! - [`codec`] — the server's codec: prost with an empty first encode
//!   buffer (a held watch stream keeps its buffer).
//! - `compat/baseline.binpb` — the contract as last recorded, which every
//!   change must stay wire- and JSON-compatible with (`buf breaking`).
//! - `tests/` — every toolchain compiles the contract: the reference
//!   compiler (`grpcio-tools`) and `buf lint`, with no error or warning; and
//!   it stays compatible with the baseline.
//!
//! # Example
//! ```
//! use cfgd_proto::pb;
//! use prost::Name;
//! assert_eq!(pb::Problems::type_url(), "type.googleapis.com/cfgd.v1.Problems");
//! ```

/// Generated protobuf messages and the gRPC client and server for `cfgd.v1`.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("cfgd.v1");

    // The server, generated apart: its `Watch` streams `WatchFrame`s.
    include!(concat!(env!("OUT_DIR"), "/server/cfgd.v1.rs"));

    /// The encoded `FileDescriptorSet` of `cfgd/v1/cfgd.proto`.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("cfgd_descriptor");
}

pub mod codec;
pub mod frame;
