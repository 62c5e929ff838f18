//! Conversions between the settings model and the wire types. Every value
//! goes out through [`Mask`], the one masking rule.

use cfgd_proto::pb;
use cfgd_settings::{Delays, Entry, LayerKind, Resolved, Source, Value};

use super::mask::Mask;
use crate::hub::View;
use crate::store::{Effective, KeyChange, Origin, Record};

/// A typed value from the wire (to be checked against its entry).
///
/// # Errors
/// A masked value, an absent value, or invalid delays.
pub(crate) fn value_from_pb(v: &pb::Value) -> Result<Value, String> {
    use pb::value::Kind;
    match &v.kind {
        Some(Kind::Integer(i)) => Ok(Value::Integer(*i)),
        Some(Kind::Number(n)) => Ok(Value::Number(*n)),
        Some(Kind::Boolean(b)) => Ok(Value::Boolean(*b)),
        Some(Kind::Text(s)) => Ok(Value::String(s.clone())),
        Some(Kind::Secret(s)) => Ok(Value::Secret(s.clone())),
        Some(Kind::Delays(d)) => {
            let delays = if d.list {
                Delays::list(d.seconds.clone())
            } else {
                match d.seconds.as_slice() {
                    [one] => Delays::scalar(*one),
                    other => Err(format!(
                        "a single delay needs exactly one number, got {}",
                        other.len()
                    )),
                }
            };
            delays.map(Value::Delays)
        }
        Some(Kind::List(l)) => l
            .items
            .iter()
            .map(value_from_pb)
            .collect::<Result<Vec<_>, _>>()
            .map(Value::List),
        Some(Kind::Masked(_)) => {
            Err("a masked value cannot be written; send the secret itself".into())
        }
        None => Err("no value given".into()),
    }
}

fn layer(l: LayerKind) -> pb::Layer {
    match l {
        LayerKind::Defaults => pb::Layer::Defaults,
        LayerKind::Profile => pb::Layer::Profile,
        LayerKind::File => pb::Layer::File,
        LayerKind::DotEnv => pb::Layer::Dotenv,
        // The daemon never produces the SDK-only layers.
        LayerKind::Env | LayerKind::ProcessEnv | LayerKind::CallSite => pb::Layer::Env,
    }
}

/// A source for the wire.
pub(crate) fn source(s: &Source) -> pb::Source {
    pb::Source {
        layer: layer(s.layer) as i32,
        file: s.file.as_deref().unwrap_or_default().to_owned(),
        line: s.line.unwrap_or(0),
        detail: s.detail.clone().unwrap_or_default(),
    }
}

/// One resolved setting for the wire.
pub(crate) fn resolved(r: &Resolved, mask: Mask) -> pb::ResolvedSetting {
    pb::ResolvedSetting {
        name: r.name.to_string(),
        value: Some(mask.value(r.value.as_ref())),
        source: Some(source(&r.source)),
        shadowed: r
            .shadowed
            .iter()
            .map(|s| pb::Shadowed {
                source: Some(source(&s.source)),
                value: Some(mask.value(Some(&s.value))),
            })
            .collect(),
        secret: r.secret,
    }
}

/// A snapshot of `view`, optionally only `names` (canonical).
pub(crate) fn snapshot(view: &View, names: Option<&[String]>, mask: Mask) -> pb::Snapshot {
    let settings = match names {
        None => view.resolution.iter().map(|r| resolved(r, mask)).collect(),
        Some(names) => names
            .iter()
            .filter_map(|n| view.resolution.get(n))
            .map(|r| resolved(r, mask))
            .collect(),
    };
    pb::Snapshot {
        revision: view.revision,
        epoch: view.epoch,
        active_profile: view.active_profile.clone(),
        settings,
    }
}

fn origin(o: Origin) -> pb::Origin {
    match o {
        Origin::Set => pb::Origin::Set,
        Origin::Unset => pb::Origin::Unset,
        Origin::File => pb::Origin::File,
        Origin::Profile => pb::Origin::Profile,
        Origin::Rollback => pb::Origin::Rollback,
        Origin::Startup => pb::Origin::Startup,
        Origin::ProfilesFile => pb::Origin::ProfilesFile,
        Origin::SharedState => pb::Origin::SharedState,
    }
}

fn key_change(c: &KeyChange, mask: Mask) -> pb::KeyChange {
    let side = |e: &Option<Effective>| {
        (
            Some(mask.value(e.as_ref().and_then(|e| e.value.as_ref()))),
            e.as_ref().map(|e| source(&e.source)),
        )
    };
    let (old_value, old_source) = side(&c.old);
    let (new_value, new_source) = side(&c.new);
    pb::KeyChange {
        name: c.name.clone(),
        old_value,
        old_source,
        new_value,
        new_source,
        secret: c.secret,
    }
}

/// A change record for the wire, optionally only the changes to `names`
/// (canonical). `None` when the filter leaves nothing.
pub(crate) fn change(r: &Record, names: Option<&[String]>, mask: Mask) -> Option<pb::Change> {
    let changes: Vec<pb::KeyChange> = r
        .changes
        .iter()
        .filter(|c| names.is_none_or(|n| n.contains(&c.name)))
        .map(|c| key_change(c, mask))
        .collect();
    if names.is_some() && changes.is_empty() {
        return None;
    }
    Some(pb::Change {
        revision: r.revision,
        time_unix_ms: r.time_ms,
        origin: origin(r.origin) as i32,
        detail: r.detail.clone(),
        changes,
        host: r.host.clone().unwrap_or_default(),
    })
}

/// A catalogue entry for the wire.
pub(crate) fn catalog_entry(e: &Entry) -> pb::CatalogEntry {
    pb::CatalogEntry {
        name: e.name.clone(),
        aliases: e.aliases.clone(),
        path: e.path.clone().unwrap_or_default(),
        r#type: e.kind.name().to_owned(),
        default: Some(Mask::HIDE.value(e.default.as_ref())),
        min: e.min,
        max: e.max,
        secret: e.is_secret(),
        description: e.description.clone(),
        file: e.file.as_deref().unwrap_or_default().to_owned(),
        choices: e.choices.clone(),
        items: e.items.map(|k| k.name().to_owned()).unwrap_or_default(),
        min_exclusive: e.min_exclusive,
        max_exclusive: e.max_exclusive,
        optional: e.optional,
        computed: e.computed.clone().unwrap_or_default(),
        case_insensitive: e.case_insensitive,
        comma_lists: e.comma_lists,
        env_only: e.env_only,
    }
}
