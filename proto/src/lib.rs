//! The cfgd wire contract.
//!
//! This crate owns `proto/cfgd/v1/cfgd.proto` and the Rust code `tonic` and
//! `prost` generate from it, nothing else. The SDK and the daemon convert
//! these types to their own at their edges; application code never sees them.
//!
//! # Layout
//! - `proto/cfgd/v1/cfgd.proto` — the `cfgd.v1.Settings` service and its messages.
//! - [`pb`] — the generated messages, client (`pb::settings_client`) and
//!   server (`pb::settings_server`).

/// Generated protobuf messages and the gRPC client and server for `cfgd.v1`.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("cfgd.v1");
}
