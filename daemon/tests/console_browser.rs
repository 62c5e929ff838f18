//! The web console in a real headless chromium, against the real `cfgd`:
//! it stays live without a reload, shows a bad file with its line while
//! the old value stays, writes with the daemon's auth and refusals, draws
//! the new revision and the retry schedule, never receives a secret, and
//! catches up after the daemon restarts. Needs Debian's `chromium` and
//! `chromium-driver` (`.ci/deps.sh` installs them); fails without them.
//!
//! It also makes the screenshot the README shows (`docs/console.png`, when
//! run with `CFGD_SCREENSHOT=update`).

mod web;

use serde_json::json;
use web::{Browser, Daemon, set};

const TOKEN: &str = "console-token";
const SECRET: &str = "pnu_console_hush_4f1b";

/// The cell text of a setting's row.
fn cell(name: &str, class: &str) -> String {
    format!(
        "((document.querySelector('#settings tr[data-name=\"{name}\"] td.{class}') || {{}}).textContent || '')"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_live_writes_with_the_daemons_rules_and_never_sees_a_secret() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("config");
    std::fs::create_dir(&config).unwrap();
    let values = config.join("prefect.toml");
    std::fs::write(&values, "[tasks]\ndefault_retries = 2\n").unwrap();
    let mut daemon = Daemon::start(root.path(), web::args(root.path(), Some(TOKEN)));
    let mut grpc = daemon.client(Some(TOKEN)).await;
    grpc.set(set("PREFECT_API_KEY", SECRET)).await.unwrap();

    let browser = Browser::start().await;
    let console = format!("http://{}/", daemon.http);
    browser.client.goto(&console).await.unwrap();
    browser
        .wait_for(
            "the stream is live",
            "document.getElementById('conn').classList.contains('live')",
        )
        .await;
    browser
        .wait_for(
            "the file's value is shown with its file and line",
            &format!(
                "{} === '2' && {}.includes('prefect.toml, line 2')",
                cell("PREFECT_TASKS_DEFAULT_RETRIES", "value"),
                cell("PREFECT_TASKS_DEFAULT_RETRIES", "from")
            ),
        )
        .await;
    assert_eq!(
        browser.eval(&cell("PREFECT_API_KEY", "value")).await,
        "********",
        "a secret is shown masked"
    );

    // A set from outside appears without a reload.
    let outside = grpc
        .set(set("PREFECT_FLOWS_DEFAULT_RETRIES", "7"))
        .await
        .unwrap()
        .into_inner()
        .revision;
    browser
        .wait_for(
            "an outside set appears",
            &format!("{} === '7'", cell("PREFECT_FLOWS_DEFAULT_RETRIES", "value")),
        )
        .await;
    browser
        .wait_for(
            "the timeline has the outside set",
            &format!("!!document.querySelector('#timeline g[data-revision=\"{outside}\"][data-origin=\"set\"]')"),
        )
        .await;

    // A file edit is a revision of its own, shown as it happens.
    std::fs::write(&values, "[tasks]\ndefault_retries = 3\n").unwrap();
    browser
        .wait_for(
            "a file edit appears",
            &format!(
                "{} === '3' && !!document.querySelector('#timeline g[data-origin=\"file\"]')",
                cell("PREFECT_TASKS_DEFAULT_RETRIES", "value")
            ),
        )
        .await;

    // A bad file: its error with file and line; the old value stays.
    std::fs::write(&values, "[tasks]\ndefault_retries = \"lots\"\n").unwrap();
    browser
        .wait_for(
            "the bad file is shown with its line",
            "[...document.querySelectorAll('#files li.file-error')].some(li => li.textContent.includes('prefect.toml, line 2') && li.textContent.includes('expected an integer') && li.textContent.includes('last good content'))",
        )
        .await;
    assert_eq!(
        browser
            .eval(&cell("PREFECT_TASKS_DEFAULT_RETRIES", "value"))
            .await,
        "3",
        "the last good content stays in force"
    );

    // A set in the page without the token: the daemon's refusal.
    browser
        .type_into("set-name", "PREFECT_TASK_DEFAULT_RETRY_DELAY_SECONDS")
        .await;
    browser.type_into("set-value", "[1, 10, 100]").await;
    browser.click("set-submit").await;
    browser
        .wait_for(
            "the refusal is shown",
            "document.querySelector('#set-result.bad') && document.getElementById('set-result').textContent.includes('cfgd requires a token to set: no token was given')",
        )
        .await;
    assert_eq!(
        browser
            .eval(&cell("PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS", "value"))
            .await,
        "0",
        "nothing was written"
    );

    // With the token: written, shown, drawn.
    browser.type_into("token", TOKEN).await;
    browser.click("set-submit").await;
    browser
        .wait_for(
            "the set is acknowledged",
            "document.querySelector('#set-result.ok') && /revision \\d+/.test(document.getElementById('set-result').textContent)",
        )
        .await;
    let text = browser
        .eval("document.getElementById('set-result').textContent")
        .await;
    let revision: u64 = text
        .as_str()
        .and_then(|t| t.rsplit("revision ").next())
        .and_then(|t| t.trim_end_matches('.').parse().ok())
        .unwrap_or_else(|| panic!("no revision in {text}"));
    browser
        .wait_for(
            "the new value and revision are shown",
            &format!(
                "{} === '[1, 10, 100]' && !!document.querySelector('#timeline g[data-revision=\"{revision}\"][data-origin=\"set\"]')",
                cell("PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS", "value")
            ),
        )
        .await;

    // The typed problems, as cfg set words them; and the shadowing warning.
    browser
        .type_into("set-name", "PREFECT_TASK_DEFAULT_RETRIES")
        .await;
    browser.type_into("set-value", "many").await;
    browser.click("set-submit").await;
    browser
        .wait_for(
            "an invalid value is refused with its problem",
            "document.querySelector('#set-result.bad li[data-kind=\"invalid_value\"]') && document.getElementById('set-result').textContent.includes('Validation error(s) for setting PREFECT_TASK_DEFAULT_RETRIES: expected an integer')",
        )
        .await;
    browser.type_into("set-value", "4").await;
    browser.click("set-submit").await;
    browser
        .wait_for(
            "a shadowed write is warned about",
            "document.querySelector('#set-result.warn .shadow-warning') && document.getElementById('set-result').textContent.includes('is overridden by config file')",
        )
        .await;

    // The retry schedule [1, 10, 100] with factor 0.5, before it is set.
    browser.type_into("sched-retries", "3").await;
    browser.type_into("sched-jitter", "0.5").await;
    browser.click("sched-preview").await;
    browser
        .wait_for(
            "the schedule shows Prefect's bands",
            "(() => { const g = document.querySelector('#schedule g[data-retry=\"2\"]'); return !!g && g.dataset.delay === '10' && Math.abs(g.dataset.low - 6.294) < 0.001 && g.dataset.high === '15'; })()",
        )
        .await;

    // Open the diff of the delays write; roll back to the revision before it.
    browser
        .client
        .execute(
            "document.querySelector(`#timeline g[data-revision=\"${arguments[0]}\"]`).dispatchEvent(new MouseEvent('click', {bubbles: true}))",
            vec![json!(revision)],
        )
        .await
        .unwrap();
    browser
        .wait_for(
            "the diff shows the change",
            "document.getElementById('diff-rows').textContent.includes('PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS') && document.getElementById('diff-rows').textContent.includes('[1, 10, 100]')",
        )
        .await;
    browser
        .client
        .execute(
            "document.querySelector(`#timeline g[data-revision=\"${arguments[0]}\"]`).dispatchEvent(new MouseEvent('click', {bubbles: true}))",
            vec![json!(revision - 1)],
        )
        .await
        .unwrap();
    browser.click("rollback").await;
    browser
        .wait_for(
            "the rollback is made and shown",
            &format!(
                "document.querySelector('#rollback-result.ok') && {} === '0' && !!document.querySelector('#timeline g[data-origin=\"rollback\"]')",
                cell("PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS", "value")
            ),
        )
        .await;

    // Profiles: create one as a copy, switch to it and back, delete it.
    browser.type_into("profile-name", "staging").await;
    browser
        .client
        .execute(
            "document.getElementById('profile-from').value = 'default'; document.querySelector('#profile-form button').click();",
            vec![],
        )
        .await
        .unwrap();
    browser
        .wait_for(
            "the new profile is listed",
            "!!document.querySelector('#profiles li[data-profile=\"staging\"] button.use')",
        )
        .await;
    browser
        .client
        .execute(
            "document.querySelector('#profiles li[data-profile=\"staging\"] button.use').click()",
            vec![],
        )
        .await
        .unwrap();
    browser
        .wait_for(
            "the switch is shown",
            "document.getElementById('active-profile').textContent === 'staging' && !!document.querySelector('#timeline g[data-origin=\"profile\"]')",
        )
        .await;
    browser
        .client
        .execute(
            "window.confirm = () => true; document.querySelector('#profiles li[data-profile=\"default\"] button.use').click()",
            vec![],
        )
        .await
        .unwrap();
    browser
        .wait_for(
            "back on the default profile",
            "document.getElementById('active-profile').textContent === 'default' && !!document.querySelector('#profiles li[data-profile=\"staging\"] button.delete')",
        )
        .await;
    browser
        .client
        .execute("document.querySelector('#profiles li[data-profile=\"staging\"] button.delete').click()", vec![])
        .await
        .unwrap();
    browser
        .wait_for(
            "the profile is gone",
            "!document.querySelector('#profiles li[data-profile=\"staging\"]')",
        )
        .await;

    // The picture the README shows: the diff of the rollback open, the bad
    // file, the schedule, a timeline of every origin made so far.
    browser
        .client
        .execute(
            "const gs = document.querySelectorAll('#timeline g[data-origin=\"rollback\"]'); gs[gs.length - 1].dispatchEvent(new MouseEvent('click', {bubbles: true}))",
            vec![],
        )
        .await
        .unwrap();
    browser
        .wait_for(
            "the rollback's diff is open",
            "document.getElementById('diff-title').textContent.includes('rollback')",
        )
        .await;
    browser.type_into("search", "default_retr").await;
    browser
        .wait_for(
            "the search keeps only matching settings",
            "document.querySelectorAll('#settings tbody tr').length > 0 && !document.querySelector('#settings tr[data-name=\"PREFECT_API_KEY\"]') && !!document.querySelector('#settings tr[data-name=\"PREFECT_TASKS_DEFAULT_RETRIES\"]')",
        )
        .await;
    screenshot(&browser).await;
    browser.type_into("search", "").await;

    // No secret in the DOM, nor in anything the page received.
    let secret_change = grpc
        .set(set("PREFECT_API_KEY", &format!("{SECRET}-2")))
        .await
        .unwrap()
        .into_inner()
        .revision;
    browser
        .wait_for(
            "the secret's change reaches the page (masked)",
            &format!("!!document.querySelector('#timeline g[data-revision=\"{secret_change}\"]')"),
        )
        .await;
    let dom = browser.eval("document.documentElement.outerHTML").await;
    assert!(
        !dom.as_str().unwrap().contains(SECRET),
        "a secret is in the DOM"
    );
    let received = browser.received().await;
    assert!(
        received
            .iter()
            .any(|(what, body)| what.starts_with("event ") && body.contains("PREFECT_API_KEY")),
        "the recording holds the events that carried the secret setting: {:?}",
        received.iter().map(|(w, _)| w).collect::<Vec<_>>()
    );
    assert!(
        received.iter().any(|(what, _)| what.contains("/api/set")),
        "the recording holds the page's own calls"
    );
    for (what, body) in &received {
        assert!(
            !body.contains(SECRET),
            "a secret reached the page in {what}"
        );
    }

    // The daemon restarts: the page notices, reconnects and catches up
    // (a file changed while it was down becomes a start-up revision).
    daemon.terminate();
    browser
        .wait_for(
            "the page sees the daemon go",
            "!document.getElementById('conn').classList.contains('live')",
        )
        .await;
    std::fs::write(&values, "[tasks]\ndefault_retries = 9\n").unwrap();
    daemon = Daemon::restart(root.path(), &daemon);
    browser
        .wait_for(
            "the page catches up after the restart",
            &format!(
                "document.getElementById('conn').classList.contains('live') && {} === '9' && !!document.querySelector('#timeline g[data-origin=\"startup\"]') && !document.querySelector('#files li.file-error')",
                cell("PREFECT_TASKS_DEFAULT_RETRIES", "value")
            ),
        )
        .await;
    // It resumed after its last revision (Last-Event-ID), not from a
    // snapshot: the new daemon sent no resync.
    let metrics = web::get(daemon.http, "/metrics").await.body;
    assert!(
        !metrics.contains("cfgd_watch_resyncs_total{"),
        "the page resynced instead of resuming:\n{metrics}"
    );
    assert!(
        metrics.contains("cfgd_watch_events_total{kind=\"change\"}"),
        "{metrics}"
    );
    let mut grpc = daemon.client(Some(TOKEN)).await;
    grpc.set(set("PREFECT_FLOWS_DEFAULT_RETRIES", "8"))
        .await
        .unwrap();
    browser
        .wait_for(
            "a set after the restart appears",
            &format!("{} === '8'", cell("PREFECT_FLOWS_DEFAULT_RETRIES", "value")),
        )
        .await;
    let revisions = browser
        .eval("[...document.querySelectorAll('#timeline g')].map(g => Number(g.dataset.revision))")
        .await;
    let revisions: Vec<u64> = serde_json::from_value(revisions).unwrap();
    let mut sorted = revisions.clone();
    sorted.dedup();
    assert_eq!(
        sorted, revisions,
        "each revision is drawn once, in order: {revisions:?}"
    );
    assert!(
        revisions.windows(2).all(|w| w[0] < w[1]),
        "in order: {revisions:?}"
    );
    // A refused call shows in Chrome's log as a failed load (the page
    // handles it); anything else is a fault of the page's own.
    let errors: Vec<String> = browser
        .errors()
        .await
        .into_iter()
        .filter(|e| !e.contains("the server responded with a status of"))
        .filter(|e| !e.contains("net::ERR_CONNECTION_REFUSED"))
        .collect();
    assert!(errors.is_empty(), "the page's scripts failed: {errors:#?}");
    browser.close().await;
}

/// Saves the page as the test sees it: always beside the test's temp files,
/// and over `docs/console.png` when `CFGD_SCREENSHOT=update`.
async fn screenshot(browser: &Browser) {
    let png = browser.client.screenshot().await.expect("a screenshot");
    let tmp = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console.png");
    std::fs::write(&tmp, &png).expect("write the screenshot");
    if std::env::var("CFGD_SCREENSHOT").as_deref() == Ok("update") {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/console.png");
        std::fs::create_dir_all(docs.parent().unwrap()).unwrap();
        std::fs::write(&docs, &png).expect("write docs/console.png");
    }
}
