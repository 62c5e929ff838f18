//! Arbitrary requests against a real daemon: it never panics or stops
//! answering, and a refused request never changes anything (issue 16,
//! "property tests that feed arbitrary requests to the service").

use cfgd_proto::pb;
use cfgd_proto::pb::settings_client::SettingsClient;
use cfgd_tests::TestDaemon;
use proptest::prelude::*;
use tonic::transport::Channel;

/// Names a client might send: real ones, aliases, near misses, junk.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("PREFECT_TASKS_DEFAULT_RETRIES".to_owned()),
        Just("PREFECT_TASK_DEFAULT_RETRIES".to_owned()),
        Just("PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS".to_owned()),
        Just("PREFECT_FLOW_DEFAULT_RETRY_DELAY_SECONDS".to_owned()),
        Just("PREFECT_TASKS_DEFAULT_RETRY_JITTER_FACTOR".to_owned()),
        Just("PREFECT_API_KEY".to_owned()),
        Just("PREFECT_TASK_DEFAULT_RETRYS".to_owned()),
        Just(String::new()),
        "[A-Z_]{1,40}",
        ".{0,300}",
        "x{2000,5000}",
    ]
}

/// Values: valid and invalid for every type, huge and odd ones.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?[0-9]{1,25}",
        "[0-9]{1,3}(\\.[0-9]{1,3})?(, ?[0-9]{1,3}){0,60}",
        "\\[[0-9, .e-]{0,80}\\]",
        Just("NaN".to_owned()),
        Just("inf".to_owned()),
        Just("true".to_owned()),
        ".{0,200}",
        "k{20000,70000}",
    ]
}

fn profile() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("default".to_owned()),
        Just("dev".to_owned()),
        Just("prod".to_owned()),
        "[a-z]{1,8}",
        ".{0,80}",
    ]
}

#[derive(Debug, Clone)]
enum Req {
    Set(Vec<(String, String)>, Option<u64>),
    Unset(Vec<String>, Option<u64>),
    Create(String, Option<String>),
    Use(String, Option<u64>),
    Delete(String),
    Rename(String, String),
    Rollback(u64, Option<u64>),
    Get(String),
    Snapshot(Vec<String>),
    Validate(Vec<(String, String)>),
}

fn req() -> impl Strategy<Value = Req> {
    let expected = prop::option::of(0u64..40);
    prop_oneof![
        4 => (prop::collection::vec((name(), value()), 0..6), expected.clone()).prop_map(|(a, e)| Req::Set(a, e)),
        2 => (prop::collection::vec(name(), 0..5), expected.clone()).prop_map(|(n, e)| Req::Unset(n, e)),
        1 => (profile(), prop::option::of(profile())).prop_map(|(n, f)| Req::Create(n, f)),
        1 => (profile(), expected.clone()).prop_map(|(n, e)| Req::Use(n, e)),
        1 => profile().prop_map(Req::Delete),
        1 => (profile(), profile()).prop_map(|(a, b)| Req::Rename(a, b)),
        1 => (0u64..60, expected).prop_map(|(r, e)| Req::Rollback(r, e)),
        1 => name().prop_map(Req::Get),
        1 => prop::collection::vec(name(), 0..40).prop_map(Req::Snapshot),
        1 => prop::collection::vec((name(), value()), 0..6).prop_map(Req::Validate),
    ]
}

/// At most 200 characters of a request, for failure messages.
fn short(r: &Req) -> String {
    let s = format!("{r:?}");
    if s.len() <= 200 {
        s
    } else {
        format!(
            "{}… ({} bytes)",
            s.chars().take(200).collect::<String>(),
            s.len()
        )
    }
}

fn assignments(a: Vec<(String, String)>) -> Vec<pb::Assignment> {
    a.into_iter()
        .map(|(name, v)| pb::Assignment {
            name,
            value: Some(pb::assignment::Value::Raw(v)),
        })
        .collect()
}

/// Everything a refused request must leave as it was.
#[derive(Debug, PartialEq)]
struct State {
    revision: u64,
    profiles: Vec<(String, bool, u32)>,
    settings: Vec<String>,
}

async fn state(c: &mut SettingsClient<Channel>) -> State {
    let status = c.status(pb::StatusRequest {}).await.unwrap().into_inner();
    let profiles = c
        .list_profiles(pb::ListProfilesRequest {})
        .await
        .unwrap()
        .into_inner()
        .profiles
        .into_iter()
        .map(|p| (p.name, p.active, p.settings))
        .collect();
    let settings = c
        .inspect_profile(pb::InspectProfileRequest {
            name: String::new(),
            reveal_secrets: true,
        })
        .await
        .unwrap()
        .into_inner()
        .entries
        .into_iter()
        .map(|e| format!("{}={:?}", e.name, e.value))
        .collect();
    State {
        revision: status.revision,
        profiles,
        settings,
    }
}

/// Sends `r`; `Ok(true)` when the daemon accepted a write.
async fn send(c: &mut SettingsClient<Channel>, r: Req) -> Result<bool, tonic::Status> {
    match r {
        Req::Set(a, e) => c
            .set(pb::SetRequest {
                assignments: assignments(a),
                expected_revision: e,
                ..Default::default()
            })
            .await
            .map(|_| true),
        Req::Unset(names, e) => c
            .unset(pb::UnsetRequest {
                names,
                expected_revision: e,
                ..Default::default()
            })
            .await
            .map(|_| true),
        Req::Create(name, from) => c
            .create_profile(pb::CreateProfileRequest { name, from })
            .await
            .map(|_| true),
        Req::Use(name, e) => c
            .use_profile(pb::UseProfileRequest {
                name,
                expected_revision: e,
            })
            .await
            .map(|_| true),
        Req::Delete(name) => c
            .delete_profile(pb::DeleteProfileRequest { name })
            .await
            .map(|_| true),
        Req::Rename(from, to) => c
            .rename_profile(pb::RenameProfileRequest { from, to })
            .await
            .map(|_| true),
        Req::Rollback(revision, e) => c
            .rollback(pb::RollbackRequest {
                revision,
                expected_revision: e,
            })
            .await
            .map(|_| true),
        Req::Get(name) => c
            .get(pb::GetRequest {
                name,
                reveal_secrets: false,
                ..Default::default()
            })
            .await
            .map(|_| false),
        Req::Snapshot(names) => c
            .snapshot(pb::SnapshotRequest {
                names,
                reveal_secrets: false,
                ..Default::default()
            })
            .await
            .map(|_| false),
        Req::Validate(a) => c
            .validate(pb::ValidateRequest {
                assignments: assignments(a),
            })
            .await
            .map(|_| false),
    }
}

#[test]
fn arbitrary_requests_never_panic_and_refused_ones_change_nothing() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (daemon, client) = rt.block_on(async {
        let daemon = TestDaemon::builder().start().await;
        let client = SettingsClient::connect(format!("http://127.0.0.1:{}", daemon.port()))
            .await
            .unwrap();
        (daemon, client)
    });
    let config = ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    };
    proptest!(config, |(reqs in prop::collection::vec(req(), 1..8))| {
        let mut c = client.clone();
        rt.block_on(async {
            for r in reqs {
                let before = state(&mut c).await;
                let writes = matches!(r, Req::Set(..) | Req::Unset(..) | Req::Create(..)
                    | Req::Use(..) | Req::Delete(..) | Req::Rename(..) | Req::Rollback(..));
                match send(&mut c, r.clone()).await {
                    Err(status) => {
                        let code = status.code();
                        let what = format!("{} -> {:?}: {:.200}", short(&r), code, status.message());
                        prop_assert!(code != tonic::Code::Internal && code != tonic::Code::Unknown, "{}", what);
                        let after = state(&mut c).await;
                        prop_assert!(after == before, "refused {} changed state", what);
                    }
                    Ok(_) if !writes => {
                        prop_assert!(state(&mut c).await == before, "the read {} changed state", short(&r));
                    }
                    Ok(_) => {
                        let after = state(&mut c).await;
                        prop_assert!(after.revision <= before.revision + 1, "one write, one revision at most");
                    }
                }
            }
            Ok(())
        })?;
    });
    // Still answering.
    rt.block_on(async {
        let mut c = client.clone();
        state(&mut c).await;
        daemon.stop().await;
    });
}
