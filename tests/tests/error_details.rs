//! Refusals carry typed details and stay small: each problem names the
//! setting, the name as given, the source and what was expected; an answer
//! about a huge input quotes only a prefix of it (a 60 KB echo once made
//! the answer too large for the client, which saw `h2 protocol error`); a
//! request over the message limit is RESOURCE_EXHAUSTED; the names and the
//! "did you mean" work per request are bounded.

use cfgd_sdk::{Assign, Code, Error, ProblemKind};
use cfgd_settings::Source;
use cfgd_tests::{RETRIES, TestDaemon};

fn rejected(e: Error) -> (Code, Vec<cfgd_sdk::Problem>) {
    match e {
        Error::Rejected { code, problems, .. } => (code, problems),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_refused_set_names_each_setting_as_given_with_source_and_expectation() {
    let daemon = TestDaemon::builder().start().await;
    let client = daemon.client().await;
    let err = client
        .set(
            &[
                (
                    "prefect_task_default_retries".into(),
                    Assign::Raw("x".into()),
                ),
                (
                    "PREFECT_TASK_DEFAULT_RETRYS".into(),
                    Assign::Raw("1".into()),
                ),
            ],
            None,
        )
        .await
        .unwrap_err();
    let (code, problems) = rejected(err);
    assert_eq!(code, Code::InvalidArgument);
    let [value, name] = problems.as_slice() else {
        panic!("{problems:?}")
    };
    assert_eq!(value.kind, ProblemKind::InvalidValue);
    assert_eq!(value.setting.as_deref(), Some(RETRIES));
    assert_eq!(value.given_name, "prefect_task_default_retries");
    assert_eq!(value.source, Some(Source::profile("default")));
    assert!(value.expected.contains("integer"), "{}", value.expected);
    assert_eq!(name.kind, ProblemKind::UnknownName);
    assert_eq!(name.setting, None);
    assert_eq!(
        name.suggestion.as_deref(),
        Some("PREFECT_TASK_DEFAULT_RETRIES")
    );
    daemon.stop().await;
}

#[tokio::test]
async fn an_error_about_a_huge_value_reaches_the_client_as_itself() {
    let daemon = TestDaemon::builder().start().await;
    let client = daemon.client().await;
    let err = client
        .set(&[(RETRIES.into(), Assign::Raw("x".repeat(60_000)))], None)
        .await
        .unwrap_err();
    let message = err.to_string();
    let (code, problems) = rejected(err);
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.len() < 1024, "{} bytes", message.len());
    assert!(
        problems[0]
            .expected
            .starts_with("expected an integer, got \"xxx")
    );
    assert!(problems[0].expected.len() < 200);
    daemon.stop().await;
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_resource_exhausted() {
    let daemon = TestDaemon::builder().start().await;
    let client = daemon.client().await;
    // 80 values of 60 KB: each within the value limit, 4.8 MB in all.
    let batch: Vec<(String, Assign)> = (0..80)
        .map(|_| (RETRIES.to_owned(), Assign::Raw("1".repeat(60_000))))
        .collect();
    let (code, problems) = rejected(client.set(&batch, None).await.unwrap_err());
    assert_eq!(code, Code::ResourceExhausted);
    assert_eq!(problems[0].kind, ProblemKind::Limit);
    assert_eq!(problems[0].expected, format!("at most {} bytes", 4 << 20));
    assert_eq!(cfgd_tests::integer(&client, RETRIES).await, Some(0));
    daemon.stop().await;
}

#[tokio::test]
async fn names_per_request_are_capped_and_few_unknown_names_get_a_suggestion() {
    let daemon = TestDaemon::builder().start().await;
    let client = daemon.client().await;
    let too_many: Vec<String> = (0..1001).map(|i| format!("NO_SUCH_{i}")).collect();
    let (code, problems) = rejected(client.snapshot(&too_many, false).await.unwrap_err());
    assert_eq!(code, Code::InvalidArgument);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].kind, ProblemKind::Limit);
    let err = match client.watch(None, None, &too_many, false).await {
        Err(e) => e,
        Ok(_) => panic!("a watch on 1001 names is refused"),
    };
    assert_eq!(rejected(err).1[0].kind, ProblemKind::Limit);

    let typos: Vec<String> = (0..12)
        .map(|_| "PREFECT_TASK_DEFAULT_RETRYS".to_owned())
        .collect();
    let (_, problems) = rejected(client.snapshot(&typos, false).await.unwrap_err());
    assert_eq!(problems.len(), 12);
    let suggested = problems.iter().filter(|p| p.suggestion.is_some()).count();
    assert_eq!(
        suggested, 8,
        "only the first unknown names get a did-you-mean"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn validate_answers_every_problem_field_by_field_without_writing() {
    use cfgd_proto::pb;
    let daemon = TestDaemon::builder().start().await;
    let mut raw = pb::settings_client::SettingsClient::connect(daemon.endpoint.clone())
        .await
        .expect("connect");
    let assign = |name: &str, raw: &str| pb::Assignment {
        name: name.into(),
        value: Some(pb::assignment::Value::Raw(raw.into())),
    };
    let answer = raw
        .validate(pb::ValidateRequest {
            assignments: vec![
                assign("PREFECT_FLOW_DEFAULT_RETRIES", "-1"),
                assign("PREFECT_TASKS_DEFAULT_RETRIES", "2"),
                assign("NOPE", "1"),
            ],
        })
        .await
        .expect("Validate answers")
        .into_inner();
    let problems: Vec<pb::Problem> = answer
        .errors
        .iter()
        .map(|e| e.problem.clone().expect("a typed problem"))
        .collect();
    assert_eq!(problems.len(), 2, "{answer:?}");
    assert_eq!(problems[0].kind, pb::ProblemKind::InvalidValue as i32);
    assert_eq!(problems[0].setting, "PREFECT_FLOWS_DEFAULT_RETRIES");
    assert_eq!(problems[0].given_name, "PREFECT_FLOW_DEFAULT_RETRIES");
    assert_eq!(answer.errors[0].name, "PREFECT_FLOW_DEFAULT_RETRIES");
    assert_eq!(problems[1].kind, pb::ProblemKind::UnknownName as i32);
    assert_eq!(problems[1].given_name, "NOPE");
    let client = daemon.client().await;
    assert_eq!(
        client.status().await.unwrap().revision,
        0,
        "nothing was written"
    );
    daemon.stop().await;
}
