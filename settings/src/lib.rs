//! The cfgd settings model, shared by the daemon, the SDK and the CLI.
//!
//! It knows what a setting is ([`Catalog`], [`Entry`]), what a value is and
//! how every string becomes one ([`Value`], [`value::parse`]: one parser for
//! env, `.env`, `cfg set`, gRPC and profile strings), where values come from
//! ([`Layer`], [`Source`]), which one wins ([`resolve`]), and how the profile
//! layer is stored ([`ProfilesFile`], Prefect's `profiles.toml`).
//!
//! # Layout
//! - [`catalog`] — declared settings: Prefect's whole catalogue (generated,
//!   `config/prefect/catalog.toml`) and cfgd's own (`config/catalog.toml`),
//!   both embedded, and `catalog.d/*.toml`; lookup by name, alias or TOML
//!   path; "did you mean".
//! - [`suggest`] — the bounded "did you mean" search.
//! - [`value`] — typed values, [`Delays`], the parser, masking.
//! - [`render`] — each value's form in a `profiles.toml` and in an
//!   environment, as Prefect reads it back.
//! - [`duration`] — durations as Prefect reads them (seconds, ISO 8601,
//!   `HH:MM:SS`).
//! - [`layer`] — [`LayerKind`] (precedence order), [`Source`] and the layer
//!   builders for env, `.env`, TOML value files and profiles.
//! - [`resolve`](mod@resolve) — layering in precedence order, with shadowing.
//! - [`profiles`] — the `profiles.toml` file and its operations.
//! - [`delta`] — what changed in the profile layer ([`ProfilesDelta`]).
//! - [`configdir`] — reading a whole config dir (the daemon's and the SDK's
//!   offline view).
//! - [`fs`] — atomic, durable file replacement.
//!
//! # Example
//! ```
//! use cfgd_settings::{Catalog, Layer, LayerKind, Layers, resolve};
//!
//! let catalog = Catalog::builtin();
//! let env = Layer::from_env(&catalog, LayerKind::Env, [("PREFECT_TASK_DEFAULT_RETRIES", "3")]).unwrap();
//! let defaults = Layer::defaults(&catalog);
//! let resolution = resolve(&catalog, &Layers::new().with(&defaults).with(&env));
//! let retries = resolution.get("PREFECT_TASKS_DEFAULT_RETRIES").unwrap();
//! assert_eq!(retries.value.as_ref().and_then(|v| v.as_integer()), Some(3));
//! assert_eq!(retries.source.to_string(), "env PREFECT_TASK_DEFAULT_RETRIES");
//! assert_eq!(retries.shadowed[0].source.to_string(), "defaults");
//! ```

pub mod catalog;
pub mod configdir;
pub mod delta;
pub mod duration;
pub mod error;
pub mod fs;
pub mod layer;
pub mod profiles;
pub mod render;
pub mod resolve;
pub mod suggest;
pub mod toml_lines;
pub mod value;

pub use catalog::{Catalog, Entry, Kind};
pub use configdir::{ConfigDir, FileState};
pub use delta::ProfilesDelta;
pub use error::{Errors, SettingsError};
pub use layer::{Layer, LayerKind, Source, Sourced};
pub use profiles::ProfilesFile;
pub use resolve::{Changed, Layers, Resolution, Resolved, resolve};
pub use value::{Delays, MASK, Value};
