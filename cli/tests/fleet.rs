//! `cfg fleet` and `cfg set --wait`: which hosts and services run which
//! revision, and a set that returns once every live host and each of its
//! services has applied it (naming those that have not), on a real etcd
//! cluster with two and three daemons, and with the file store.

use cfgd_etcd::testing::Cluster;
use cfgd_sdk::{Options, Settings};
use cfgd_tests::blocking::Daemon;
use cfgd_tests::cli::PATIENCE;
use cfgd_tests::fleet::store_on as store;

const RETRIES: &str = "PREFECT_TASKS_DEFAULT_RETRIES";

fn etcd() -> (tokio::runtime::Runtime, Cluster) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let cluster = rt.block_on(cfgd_tests::fleet::cluster());
    (rt, cluster)
}

fn on(cluster: &Cluster, host: &str) -> Daemon {
    Daemon::builder()
        .store(store(cluster.endpoints(), host))
        .start_blocking()
}

/// A service on `daemon`: a live `Settings` named `service`, connected.
fn service(daemon: &Daemon, service: &str) -> Settings {
    daemon.block_on(async {
        let mut options = Options::isolated(&daemon.endpoint);
        options.service = service.to_owned();
        let s = Settings::connect(options);
        tokio::time::timeout(PATIENCE, s.connected())
            .await
            .expect("the service connects");
        s
    })
}

#[test]
fn set_wait_returns_once_every_live_host_and_its_services_have_the_change() {
    let (_rt, cluster) = etcd();
    let a = on(&cluster, "a");
    let b = on(&cluster, "b");
    let api = service(&b, "api");

    let out = a.cfg(&["set", "--wait=20s", &format!("{RETRIES}=3")]);
    let stdout = out.ok();
    assert!(
        stdout.contains("Set 'PREFECT_TASKS_DEFAULT_RETRIES' to '3'."),
        "{stdout}"
    );
    assert!(
        stdout.contains("Applied on 2 host(s) and 1 service(s)."),
        "{stdout}"
    );
    assert_eq!(
        api.get_i64(RETRIES),
        Some(3),
        "the service on the other host runs it"
    );

    let fleet = b.cfg(&["fleet"]);
    let text = fleet.ok();
    assert!(
        text.contains("2 host(s) share the profile layer; newest shared revision 1."),
        "{text}"
    );
    assert!(text.contains("a at 127.0.0.1:"), "{text}");
    assert!(text.contains("b (answered) at 127.0.0.1:"), "{text}");
    assert!(text.contains("api "), "{text}");
    assert!(text.contains(": revision 1\n"), "{text}");
    let json = b.cfg(&["fleet", "-o", "json"]).json();
    assert_eq!(json["shared"], true);
    let hosts = json["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 2);
    let services = hosts[1]["services"].as_array().unwrap();
    assert_eq!(services[0]["service"], "api");
    assert_eq!(services[0]["revision"], 1 << 24);
    assert_eq!(services[0]["connected"], true);

    // JSON output carries the wait's result.
    let json = a
        .cfg(&["set", "--wait=20s", "-o", "json", &format!("{RETRIES}=4")])
        .json();
    assert_eq!(json["fleet"]["applied"], true);
    assert_eq!(json["fleet"]["hosts"], 2);
    drop(api);
}

#[test]
fn set_wait_names_a_host_that_does_not_apply_the_change() {
    let (rt, cluster) = etcd();
    let a = on(&cluster, "a");
    // C talks to one follower; hanging it cuts C off while its fleet
    // entry lives on for the lease's TTL (10 s): a live host that cannot
    // apply anything.
    let leader = rt.block_on(cluster.leader()).expect("a leader");
    let follower = (leader + 1) % 3;
    let c = Daemon::builder()
        .store(store(vec![cluster.endpoint(follower).to_owned()], "c"))
        .start_blocking();
    let first = a.cfg(&["set", "--wait=20s", &format!("{RETRIES}=1")]);
    assert!(first.ok().contains("Applied on 2 host(s)"), "{first:?}");

    cluster.hang(follower).unwrap();
    let out = a.cfg(&["set", "--wait=2s", &format!("{RETRIES}=2")]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout
            .contains("Set 'PREFECT_TASKS_DEFAULT_RETRIES' to '2'."),
        "the change was made; it says so: {out:?}"
    );
    let stderr = &out.stderr;
    assert!(
        stderr.contains("is not applied everywhere within 2s"),
        "{stderr}"
    );
    assert!(
        stderr.contains("host c is at revision 1 (wanted 2)"),
        "names the host: {stderr}"
    );
    assert!(!stderr.contains("host a "), "{stderr}");
    cluster.resume(follower).unwrap();
    drop(c);
}

#[test]
fn with_the_file_store_the_fleet_is_one_daemon_and_its_services() {
    let d = Daemon::start();
    let worker = service(&d, "worker");
    let out = d.cfg(&["set", "--wait=20s", &format!("{RETRIES}=5")]);
    assert!(
        out.ok().contains("Applied on 1 host(s) and 1 service(s)."),
        "{out:?}"
    );
    assert_eq!(worker.get_i64(RETRIES), Some(5));
    let text = d.cfg(&["fleet"]);
    let text = text.ok();
    assert!(
        text.contains("One daemon (file store), at revision 1."),
        "{text}"
    );
    assert!(text.contains("  worker "), "{text}");
    assert!(text.contains(": revision 1\n"), "{text}");
    // A service that goes away leaves (after a short grace), and --wait
    // no longer waits for it.
    drop(worker);
    let out = d.cfg(&["set", "--wait=20s", &format!("{RETRIES}=6")]);
    assert!(out.ok().contains("Applied on 1 host(s)"), "{out:?}");
}

#[test]
fn a_bad_wait_timeout_is_refused_before_anything_is_written() {
    let d = Daemon::start();
    let stderr = d.cfg(&["set", "--wait=soon", &format!("{RETRIES}=5")]);
    assert!(
        stderr.fails().contains("Invalid --wait timeout \"soon\""),
        "{stderr:?}"
    );
    assert_eq!(d.revision(), 0, "nothing was written");
}
