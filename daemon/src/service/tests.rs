//! The service called directly, as tonic-health's tests call theirs: no
//! socket, no transport; a real writer, hub and file store on temp dirs.
//! What every handler refuses, and the one masking rule, seen through the
//! service's own answers.

use std::collections::VecDeque;
use std::sync::Arc;

use cfgd_proto::pb;
use cfgd_proto::pb::settings_server::Settings;
use cfgd_settings::ConfigDir;
use futures_util::StreamExt;
use prost::{Message, Name};
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

use super::*;
use crate::core::ProfileLimits;
use crate::store::FileStore;
use crate::store::etcd::StoreConfig;

const TOKEN: &str = "s3cret-token";
const RETRIES: &str = "PREFECT_TASKS_DEFAULT_RETRIES";
const KEY: &str = "PREFECT_API_KEY";

/// A service over fresh dirs, as `serve` builds it, minus the listener.
struct Fixture {
    service: SettingsService,
    _lock: std::fs::File,
    _dir: tempfile::TempDir,
}

fn fixture(token: Option<&str>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (config, state) = (dir.path().join("config"), dir.path().join("state"));
    std::fs::create_dir(&config).unwrap();
    let lock = crate::startup::create_state_dir(&state).unwrap();
    let config_dir = ConfigDir::load(&config);
    let local = FileStore::new(&state, &state.join("profiles.toml"));
    let (mut store, opened) = crate::fleet::start::open(&StoreConfig::File, local).unwrap();
    let started = crate::startup::recover(
        &mut *store,
        &config_dir,
        &Arc::default(),
        ProfileLimits::default(),
        opened.numbering,
    )
    .unwrap();
    let view = crate::writer::build_view(
        &started.core,
        &store.profiles_path(),
        &crate::writer::StoreHealth::default(),
    );
    let history: VecDeque<_> = started.records.into_iter().map(Arc::new).collect();
    let hub = Arc::new(Hub::new(view, started.base, history, 64));
    let retention = crate::writer::Retention {
        records: 100,
        bytes: 1 << 20,
    };
    let (writer, _thread) = crate::writer::spawn(
        started.core,
        store,
        hub.clone(),
        retention,
        started.profiles,
    );
    let defaults = crate::Config::new(Vec::new());
    let (_, reload) = tokio::sync::watch::channel(crate::reload::ReloadStatus::default());
    let info = Info {
        listen: "in-process".into(),
        config_dir: config.display().to_string(),
        state_dir: state.display().to_string(),
        profiles_path: state.join("profiles.toml").display().to_string(),
        started_ms: 0,
        reload,
        connections: crate::transport::Connections::new(defaults.connections),
    };
    let fleet = Arc::new(crate::fleet::Fleet::new(
        String::new(),
        info.listen.clone(),
        hub.clone(),
        opened.state.clone(),
        None,
    ));
    let service = SettingsService::new(
        hub,
        writer,
        Auth::new(token.map(str::to_owned)),
        defaults.limits,
        info,
        fleet,
    );
    Fixture {
        service,
        _lock: lock,
        _dir: dir,
    }
}

/// `message`, sent with `token` (if any) as the bearer token.
fn with_token<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut r = Request::new(message);
    if let Some(t) = token {
        r.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    r
}

fn get(name: &str, reveal: bool) -> pb::GetRequest {
    pb::GetRequest {
        name: name.into(),
        reveal_secrets: reveal,
        ..Default::default()
    }
}

fn set(name: &str, raw: &str) -> pb::SetRequest {
    pb::SetRequest {
        assignments: vec![pb::Assignment {
            name: name.into(),
            value: Some(pb::assignment::Value::Raw(raw.into())),
        }],
        ..Default::default()
    }
}

/// The problems a refusal carries in its details.
fn problems(s: &Status) -> Vec<pb::Problem> {
    let status = tonic_types::pb::Status::decode(s.details()).expect("a google.rpc.Status");
    status
        .details
        .iter()
        .find(|a| a.type_url == pb::Problems::type_url())
        .map(|a| pb::Problems::decode(a.value.as_slice()).expect("cfgd.v1.Problems"))
        .unwrap_or_default()
        .problems
}

fn reason(s: &Status) -> String {
    s.get_details_error_info().expect("an ErrorInfo").reason
}

fn kind(setting: Option<pb::ResolvedSetting>) -> Option<pb::value::Kind> {
    setting.and_then(|s| s.value).and_then(|v| v.kind)
}

async fn revision(f: &Fixture) -> u64 {
    f.service
        .status(Request::new(pb::StatusRequest {}))
        .await
        .unwrap()
        .into_inner()
        .revision
}

#[tokio::test]
async fn get_refuses_an_unknown_or_oversized_name_saying_which() {
    let f = fixture(None);
    let err = f
        .service
        .get(Request::new(get("PREFECT_TASKS_DEFAULT_RETRIE", false)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(reason(&err), "INVALID_SETTINGS");
    let [p] = &problems(&err)[..] else {
        panic!("one problem: {err:?}")
    };
    assert_eq!(p.given_name, "PREFECT_TASKS_DEFAULT_RETRIE");
    assert_eq!(p.setting, "", "an unknown name has no canonical one");
    assert_eq!(p.suggestion, RETRIES);

    let long = "X".repeat(crate::Config::new(Vec::new()).limits.max_name_len + 1);
    let err = f
        .service
        .get(Request::new(get(&long, false)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(reason(&err), "LIMIT");
}

#[tokio::test]
async fn an_alias_reads_its_canonical_setting() {
    let f = fixture(None);
    let answer = f
        .service
        .get(Request::new(get("PREFECT_TASK_DEFAULT_RETRIES", false)))
        .await
        .unwrap()
        .into_inner();
    let setting = answer.setting.unwrap();
    assert_eq!(setting.name, RETRIES);
    assert_eq!(
        setting.value.and_then(|v| v.kind),
        Some(pb::value::Kind::Integer(0))
    );
}

#[tokio::test]
async fn writes_need_the_token_and_a_refused_write_changes_nothing() {
    let f = fixture(Some(TOKEN));
    let before = revision(&f).await;
    for token in [None, Some("not-the-token")] {
        let err = f
            .service
            .set(with_token(set(RETRIES, "3"), token))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
        assert_eq!(reason(&err), "UNAUTHENTICATED");
        let err = f
            .service
            .unset(with_token(
                pb::UnsetRequest {
                    names: vec![RETRIES.into()],
                    ..Default::default()
                },
                token,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    }
    assert_eq!(
        revision(&f).await,
        before,
        "a refused write makes no revision"
    );
    let written = f
        .service
        .set(with_token(set(RETRIES, "3"), Some(TOKEN)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(written.revision, before + 1);
}

#[tokio::test]
async fn a_bad_value_is_refused_with_the_setting_the_name_as_given_and_what_was_expected() {
    let f = fixture(None);
    let before = revision(&f).await;
    let err = f
        .service
        .set(Request::new(set("prefect_task_default_retries", "lots")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let [p] = &problems(&err)[..] else {
        panic!("one problem: {err:?}")
    };
    assert_eq!(p.setting, RETRIES);
    assert_eq!(p.given_name, "prefect_task_default_retries");
    assert!(p.expected.contains("integer"), "{p:?}");
    // A typed value of the wrong type, and an assignment without a value,
    // are refused naming their setting.
    let mut typed = set(RETRIES, "1");
    typed.assignments[0].value = Some(pb::assignment::Value::Typed(pb::Value {
        kind: Some(pb::value::Kind::Text("three".into())),
    }));
    let mut empty = set("PREFECT_FLOWS_DEFAULT_RETRIES", "1");
    empty.assignments[0].value = None;
    let mut both = empty.clone();
    both.assignments.push(typed.assignments[0].clone());
    for (request, setting) in [(typed, RETRIES), (empty, "PREFECT_FLOWS_DEFAULT_RETRIES")] {
        let err = f.service.set(Request::new(request)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        let named: Vec<_> = problems(&err).into_iter().map(|p| p.setting).collect();
        assert_eq!(named, [setting], "{err:?}");
    }
    // Both in one batch: the refusal names both, not only the missing one.
    let err = f.service.set(Request::new(both)).await.unwrap_err();
    let mut named: Vec<_> = problems(&err).into_iter().map(|p| p.setting).collect();
    named.sort();
    assert_eq!(named, ["PREFECT_FLOWS_DEFAULT_RETRIES", RETRIES], "{err:?}");
    assert_eq!(
        revision(&f).await,
        before,
        "a refused batch makes no revision"
    );
}

#[tokio::test]
async fn a_secret_is_masked_unless_asked_for_by_an_authorised_caller() {
    let f = fixture(Some(TOKEN));
    let written = f
        .service
        .set(with_token(set(KEY, "pnu_hush"), Some(TOKEN)))
        .await
        .unwrap()
        .into_inner();
    // The write's own answer never reveals.
    assert!(
        !format!("{written:?}").contains("pnu_hush"),
        "a write's answer shows the secret: {written:?}"
    );
    let masked = Some(pb::value::Kind::Masked(pb::Masked {}));
    // Not asked, with or without the token: masked.
    for token in [None, Some(TOKEN)] {
        let a = f.service.get(with_token(get(KEY, false), token)).await;
        assert_eq!(kind(a.unwrap().into_inner().setting), masked);
    }
    // Asked without the token: refused, not masked.
    let err = f
        .service
        .get(with_token(get(KEY, true), None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    // Asked with it: in clear.
    let a = f.service.get(with_token(get(KEY, true), Some(TOKEN))).await;
    assert_eq!(
        kind(a.unwrap().into_inner().setting),
        Some(pb::value::Kind::Secret("pnu_hush".into()))
    );
    // The snapshot and the history follow the same rule.
    let snap = f
        .service
        .snapshot(with_token(
            pb::SnapshotRequest {
                names: vec![KEY.into()],
                ..Default::default()
            },
            Some(TOKEN),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!format!("{snap:?}").contains("pnu_hush"), "{snap:?}");
    let history = f
        .service
        .history(with_token(pb::HistoryRequest::default(), Some(TOKEN)))
        .await
        .unwrap()
        .into_inner();
    assert!(!format!("{history:?}").contains("pnu_hush"), "{history:?}");
}

fn watch(names: &[&str], reveal: bool) -> pb::WatchRequest {
    pb::WatchRequest {
        after_revision: Some(0),
        names: names.iter().map(|n| (*n).to_owned()).collect(),
        reveal_secrets: reveal,
        ..Default::default()
    }
}

#[tokio::test]
async fn watch_refuses_an_unknown_name_and_revealing_without_the_token() {
    let f = fixture(Some(TOKEN));
    let Err(err) = f
        .service
        .watch(with_token(watch(&["PREFECT_NO_SUCH_SETTING"], false), None))
        .await
    else {
        panic!("a watch of an unknown name opened")
    };
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(problems(&err)[0].given_name, "PREFECT_NO_SUCH_SETTING");
    let Err(err) = f.service.watch(with_token(watch(&[], true), None)).await else {
        panic!("a revealing watch opened without the token")
    };
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
}

#[tokio::test]
async fn a_watch_masks_secrets_unless_it_may_reveal_them() {
    let f = fixture(Some(TOKEN));
    f.service
        .set(with_token(set(KEY, "pnu_hush"), Some(TOKEN)))
        .await
        .unwrap();
    let change = |reveal: bool| {
        let service = f.service.clone();
        async move {
            let mut stream = service
                .watch(with_token(watch(&[KEY], reveal), Some(TOKEN)))
                .await
                .unwrap()
                .into_inner();
            let event = stream.next().await.unwrap().unwrap().decode().unwrap();
            let Some(pb::watch_response::Event::Change(c)) = event.event else {
                panic!("the set, from revision 0: {event:?}")
            };
            assert_eq!(c.changes[0].name, KEY);
            c.changes[0].new_value.clone().and_then(|v| v.kind)
        }
    };
    assert_eq!(
        change(false).await,
        Some(pb::value::Kind::Masked(pb::Masked {}))
    );
    assert_eq!(
        change(true).await,
        Some(pb::value::Kind::Secret("pnu_hush".into()))
    );
}

#[tokio::test]
async fn a_live_change_is_encoded_once_for_the_watchers_it_reaches_whole() {
    use cfgd_proto::frame::WatchFrame;
    let f = fixture(Some(TOKEN));
    let open = |names: &[&str], reveal: bool| {
        let service = f.service.clone();
        let request = pb::WatchRequest {
            after_revision: None,
            ..watch(names, reveal)
        };
        async move {
            let mut stream = service
                .watch(with_token(request, Some(TOKEN)))
                .await
                .unwrap()
                .into_inner();
            let first = stream.next().await.unwrap().unwrap().decode().unwrap();
            assert!(
                matches!(first.event, Some(pb::watch_response::Event::Resync(_))),
                "{first:?}"
            );
            stream
        }
    };
    let mut all = open(&[], false).await;
    let mut both = open(&[RETRIES, KEY], false).await;
    let mut key_only = open(&[KEY], false).await;
    let mut revealed = open(&[], true).await;
    let request = pb::SetRequest {
        assignments: [(KEY, "pnu_hush"), (RETRIES, "4")]
            .into_iter()
            .map(|(name, raw)| pb::Assignment {
                name: name.into(),
                value: Some(pb::assignment::Value::Raw(raw.into())),
            })
            .collect(),
        ..Default::default()
    };
    f.service
        .set(with_token(request, Some(TOKEN)))
        .await
        .unwrap();
    let next = async |s: &mut WatchStream| -> WatchFrame { s.next().await.unwrap().unwrap() };
    let (all, both, key_only, revealed) = (
        next(&mut all).await,
        next(&mut both).await,
        next(&mut key_only).await,
        next(&mut revealed).await,
    );
    let changes = |frame: &WatchFrame| {
        let Some(pb::watch_response::Event::Change(c)) = frame.decode().unwrap().event else {
            panic!("a change: {frame:?}")
        };
        c.changes
            .into_iter()
            .map(|k| (k.name, k.new_value.and_then(|v| v.kind)))
            .collect::<Vec<_>>()
    };
    assert_eq!(changes(&all).len(), 2);
    assert_eq!(
        all.as_bytes().as_ptr(),
        both.as_bytes().as_ptr(),
        "a filter that takes in the whole change sends the bytes encoded once"
    );
    assert_eq!(changes(&key_only).len(), 1, "{:?}", changes(&key_only));
    let secret = |frame: &WatchFrame| {
        changes(frame)
            .into_iter()
            .find(|(name, _)| name == KEY)
            .and_then(|(_, v)| v)
    };
    assert_eq!(secret(&all), Some(pb::value::Kind::Masked(pb::Masked {})));
    assert_eq!(secret(&key_only), secret(&all));
    assert_eq!(
        secret(&revealed),
        Some(pb::value::Kind::Secret("pnu_hush".into())),
        "the encoding shared by masked watchers is not the revealing one"
    );
}
