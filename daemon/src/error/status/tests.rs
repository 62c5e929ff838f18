use cfgd_settings::{LayerKind, Source};
use tonic_types::StatusExt;

use super::*;

fn decode(s: &Status) -> (tonic_types::ErrorInfo, pb::Problems) {
    let info = s.get_details_error_info().expect("an ErrorInfo");
    let status = tonic_types::pb::Status::decode(s.details()).expect("a google.rpc.Status");
    assert_eq!(
        status.code,
        s.code() as i32,
        "the details agree with the status"
    );
    assert_eq!(status.message, s.message());
    let problems = status
        .details
        .iter()
        .find(|a| a.type_url == pb::Problems::type_url())
        .map(|a| pb::Problems::decode(a.value.as_slice()).expect("cfgd.v1.Problems"))
        .unwrap_or_default();
    (info, problems)
}

fn invalid(name: &str, expected: &str) -> SettingsError {
    SettingsError::InvalidValue {
        name: name.into(),
        at: Source::profile("default"),
        expected: expected.into(),
    }
}

#[test]
fn problems_name_the_setting_as_given_with_its_source_and_what_was_expected() {
    let errors = vec![
        invalid(
            "PREFECT_TASKS_DEFAULT_RETRIES",
            "expected an integer, got \"x\"",
        ),
        SettingsError::UnknownName {
            name: "PREFECT_TASK_DEFAULT_RETRYS".into(),
            suggestion: Some("PREFECT_TASK_DEFAULT_RETRIES".into()),
            at: None,
        },
    ];
    let given = GivenNames::new(vec![(
        "PREFECT_TASKS_DEFAULT_RETRIES".into(),
        "prefect_task_default_retries".into(),
    )]);
    let status = OpError::Invalid(errors).into_status(given);
    assert_eq!(status.code(), Code::InvalidArgument);
    let (info, problems) = decode(&status);
    assert_eq!(
        (info.domain.as_str(), info.reason.as_str()),
        ("cfgd.v1", "INVALID_SETTINGS")
    );
    assert_eq!(problems.omitted, 0);
    let [value, name] = problems.problems.as_slice() else {
        panic!("two problems: {problems:?}")
    };
    assert_eq!(value.kind, pb::ProblemKind::InvalidValue as i32);
    assert_eq!(value.setting, "PREFECT_TASKS_DEFAULT_RETRIES");
    assert_eq!(value.given_name, "prefect_task_default_retries");
    let source = value.source.as_ref().expect("a source");
    assert_eq!(source.layer, pb::Layer::Profile as i32);
    assert_eq!(source.detail, "default");
    assert_eq!(value.expected, "expected an integer, got \"x\"");
    assert_eq!(name.kind, pb::ProblemKind::UnknownName as i32);
    assert_eq!(name.setting, "");
    assert_eq!(name.given_name, "PREFECT_TASK_DEFAULT_RETRYS");
    assert_eq!(name.suggestion, "PREFECT_TASK_DEFAULT_RETRIES");
    assert_eq!(
        status.message(),
        format!("{}\n{}", value.message, name.message),
        "the message says each problem on its own line"
    );
}

#[test]
fn a_file_problem_carries_its_file_and_line() {
    let e = SettingsError::InvalidValue {
        name: "PREFECT_TASKS_DEFAULT_RETRIES".into(),
        at: Source::file(LayerKind::File, "/etc/cfgd/a.toml", Some(3)),
        expected: "expected an integer".into(),
    };
    let [p] = problems(&[e], GivenNames::default()).try_into().unwrap();
    let source = p.source.unwrap();
    assert_eq!(
        (source.layer, source.file.as_str(), source.line),
        (pb::Layer::File as i32, "/etc/cfgd/a.toml", 3)
    );
    assert_eq!(
        p.given_name, "PREFECT_TASKS_DEFAULT_RETRIES",
        "no alias known: the canonical name"
    );
}

/// Bytes the status takes in HTTP/2 trailers, as sent.
fn trailer_bytes(s: &Status) -> usize {
    let details = s.details().len().div_ceil(3) * 4;
    sent_len(s.message()) + details + "grpc-status-details-bin".len() + "grpc-message".len()
}

#[test]
fn an_answer_about_huge_inputs_stays_small_and_says_how_much_was_left_out() {
    let value = "é".repeat(40_000);
    let errors: Vec<SettingsError> = (0..1000)
        .map(|i| {
            invalid(
                &format!("S_{i}"),
                &format!("expected an integer, got {value:?}"),
            )
        })
        .collect();
    let status = OpError::Invalid(errors).into_status(GivenNames::default());
    assert!(
        trailer_bytes(&status) < 8 << 10,
        "grpc-core accepts 8 KiB of metadata; this takes {} bytes",
        trailer_bytes(&status)
    );
    assert!(sent_len(status.message()) <= MESSAGE_BUDGET);
    assert!(
        status.message().ends_with("more problem(s)"),
        "{}",
        status.message()
    );
    let (_, problems) = decode(&status);
    assert!(!problems.problems.is_empty());
    assert_eq!(problems.problems.len() + problems.omitted as usize, 1000);
    let first = &problems.problems[0];
    assert!(first.expected.len() <= EXPECTED + '…'.len_utf8());
    assert!(first.expected.starts_with("expected an integer, got \"é"));

    let long_name = "N".repeat(10_000);
    let status = OpError::Invalid(vec![SettingsError::UnknownName {
        name: long_name,
        suggestion: None,
        at: None,
    }])
    .into_status(GivenNames::default());
    let (_, problems) = decode(&status);
    assert!(problems.problems[0].given_name.len() <= QUOTE + '…'.len_utf8());
    assert!(status.message().len() < 200, "{}", status.message());
}

#[test]
fn codes_follow_grpcs_conventions() {
    let code = |e: OpError| Status::from(e).code();
    let reason = |e: OpError| Status::from(e).get_details_error_info().unwrap().reason;
    assert_eq!(
        code(OpError::Invalid(vec![invalid("X", "y")])),
        Code::InvalidArgument
    );
    assert_eq!(
        code(OpError::Invalid(vec![SettingsError::NotInProfile {
            name: "X".into(),
            profile: "p".into()
        }])),
        Code::FailedPrecondition
    );
    assert_eq!(
        code(OpError::Settings(SettingsError::ProfileNotFound(
            "p".into()
        ))),
        Code::NotFound
    );
    assert_eq!(
        code(OpError::Settings(SettingsError::ProfileExists("p".into()))),
        Code::AlreadyExists
    );
    assert_eq!(
        code(OpError::Settings(SettingsError::ProfileActive("p".into()))),
        Code::FailedPrecondition
    );
    assert_eq!(
        code(OpError::Settings(SettingsError::ProfileName("/".into()))),
        Code::InvalidArgument
    );
    assert_eq!(
        code(OpError::Conflict {
            expected: 1,
            actual: 2
        }),
        Code::Aborted
    );
    assert_eq!(
        code(OpError::Compacted {
            revision: 1,
            oldest: 5
        }),
        Code::OutOfRange
    );
    assert_eq!(
        code(OpError::Future {
            revision: 9,
            current: 5
        }),
        Code::OutOfRange
    );
    assert_eq!(
        code(OpError::Unauthenticated("no".into())),
        Code::Unauthenticated
    );
    assert_eq!(
        code(OpError::Limit(Limit::Message { len: 9, limit: 4 })),
        Code::ResourceExhausted
    );
    assert_eq!(
        code(OpError::Limit(Limit::Batch { len: 9, limit: 4 })),
        Code::InvalidArgument
    );
    assert_eq!(
        code(OpError::Limit(Limit::EmptyBatch)),
        Code::InvalidArgument
    );
    assert_eq!(code(OpError::ShuttingDown), Code::Unavailable);
    assert_eq!(reason(OpError::ShuttingDown), "SHUTTING_DOWN");
    assert_eq!(
        reason(OpError::Limit(Limit::Names { len: 9, limit: 4 })),
        "LIMIT"
    );
}

#[test]
fn a_conflict_says_both_revisions_in_its_metadata() {
    let info = Status::from(OpError::Conflict {
        expected: 3,
        actual: 7,
    })
    .get_details_error_info()
    .unwrap();
    assert_eq!(info.reason, "REVISION_CONFLICT");
    assert_eq!(info.metadata["expected_revision"], "3");
    assert_eq!(info.metadata["current_revision"], "7");
}
