//! The `#[task(...)]` and `#[flow(...)]` attribute macros of `cfgd-sdk`.
