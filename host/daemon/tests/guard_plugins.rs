//! The split-brain guard plugins (`plugins/disk-lock`, `plugins/quorum`) against real
//! backends, through the real CLI (`wasmalived plugin run --json`) with the daemon's sandbox:
//!
//! - `disk-lock`: two "nodes" (two node ids) sharing a temp directory — one holder, the
//!   other conflicts; renewals bump the generation; expiry lets the other node take over;
//!   garbled lease files; racing processes (exactly one wins); parameter validation; grants;
//! - `quorum` witnesses: TCP listeners and an HTTP server on 127.0.0.1 (majority, tie,
//!   tie-breaker, none, HTTP status, timeouts probed in parallel);
//! - `quorum` etcd: a real etcd (Debian's `etcd-server`, `/usr/bin/etcd`) on 127.0.0.1 with
//!   free ports and a temp data dir: one holder, conflict, lease recovery across processes,
//!   kill -9 of the holder → the other node takes over after the TTL, a revoked lease makes
//!   the holder stand down;
//! - the `examples/split-brain/*.conf` configurations load with their grants.
//!
//! Each `plugin run` is a new process, so `scratch` state lives only within one `--repeat N`
//! run; the plugins recover what they need from the shared directory / etcd otherwise.
//! The plugins are built for wasm32-wasip2 by `make plugins`.

mod cli_support;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use cli_support::{args, closed_port, command, http_server, plugin, run_plugin, Reply, Run, CLI};
use serde_json::Value;
use wasmalived_testkit::TempDir;

// ---------------------------------------------------------------------------------------------
// Running the CLI

/// A `plugin run --repeat N` in the background, its JSON lines read as they come.
struct Background {
    child: Child,
    lines: std::io::Lines<BufReader<ChildStdout>>,
}

impl Background {
    fn start(name: &str, args: &[String]) -> Background {
        let mut child = command(name, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {CLI}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        Background {
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// The next run's result (panics at end of output).
    fn next(&mut self) -> Run {
        let line = self
            .lines
            .next()
            .expect("the background run ended early")
            .expect("read a line");
        Run::from_line(None, &line, "")
    }

    /// SIGKILL, as `kill -9`.
    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.kill9();
    }
}

// ---------------------------------------------------------------------------------------------
// disk-lock

/// One disk-lock run of node `node` on `dir` (granted read-write), with extra params.
fn lock(dir: &TempDir, node: &str, lease_ms: &str, extra: &[(&str, &str)]) -> Run {
    let mut params = vec![
        ("dir", dir.str()),
        ("node_id", node),
        ("lease_ms", lease_ms),
        ("renew_margin_ms", "100"),
    ];
    params.extend_from_slice(extra);
    let grant = format!("{}:rw", dir.str());
    run_plugin("disk-lock", &args(&params, &["--dir", &grant]))
}

fn lease_files(dir: &TempDir) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn disk_lock_one_holder_the_other_conflicts_and_renewals_count() {
    let dir = TempDir::new("dl-two");
    let r = lock(&dir, "node-a", "60000", &[]);
    r.expect(0, "ok", "");
    assert_eq!(r.message(), "acquired the lease", "{r}");
    assert_eq!(r.measurement("generation"), 1.0, "{r}");
    assert_eq!(r.measurement("lease_remaining_ms"), 60000.0, "{r}");

    // The other node: conflict, fatal by default, fail when configured.
    let r = lock(&dir, "node-b", "60000", &[]);
    r.expect(2, "fatal", "lease held by `node-a` for another");
    lock(&dir, "node-b", "60000", &[("on_conflict", "fail")]).expect(
        1,
        "fail",
        "lease held by `node-a`",
    );

    // The holder renews: the generation counts up, the file is rewritten as a new one.
    let r = lock(&dir, "node-a", "60000", &[]);
    r.expect(0, "ok", "");
    assert_eq!(r.measurement("generation"), 2.0, "{r}");
    assert_eq!(r.message(), "", "a renewal is silent; {r}");
    let text = fs::read_to_string(dir.path().join("wasmalived.lease.2")).expect("lease file");
    assert!(
        text.starts_with("wasmalived-lease 1\nholder node-a\ngeneration 2\n"),
        "{text}"
    );
    // No temp files are left.
    assert!(
        lease_files(&dir).iter().all(|f| !f.starts_with('.')),
        "{:?}",
        lease_files(&dir)
    );
}

#[test]
fn disk_lock_expiry_lets_the_other_node_take_over() {
    let dir = TempDir::new("dl-expiry");
    lock(&dir, "node-a", "700", &[]).expect(0, "ok", "");
    lock(&dir, "node-b", "700", &[]).expect(2, "fatal", "held by `node-a`");
    // node-a "crashes" (stops renewing): after the lease duration node-b takes over.
    thread::sleep(Duration::from_millis(800));
    let r = lock(&dir, "node-b", "700", &[]);
    r.expect(0, "ok", "");
    assert_eq!(
        r.message(),
        "took over the expired lease of `node-a`",
        "{r}"
    );
    assert_eq!(r.measurement("generation"), 2.0, "{r}");
    // node-a comes back: now it is the one in conflict.
    lock(&dir, "node-a", "700", &[]).expect(2, "fatal", "held by `node-b`");
}

#[test]
fn disk_lock_garbled_lease_is_held_by_an_unknown_node_until_a_lease_old() {
    let dir = TempDir::new("dl-garbled");
    lock(&dir, "node-a", "1000", &[]).expect(0, "ok", "");
    // A newer generation with garbage in it (a torn write by some other writer, a bad disk).
    let garbled = dir.path().join("wasmalived.lease.5");
    fs::write(&garbled, "wasmalived-lease 1\nholder nod").expect("write garbage");
    let r = lock(&dir, "node-a", "1000", &[]);
    r.expect(2, "fatal", "held by an unknown node");
    assert!(r.reason().contains("unreadable lease file"), "{r}");
    // Once its mtime is a lease duration old, it may be taken over.
    let old = SystemTime::now() - Duration::from_secs(5);
    fs::File::options()
        .write(true)
        .open(&garbled)
        .and_then(|f| f.set_modified(old))
        .expect("age the garbled file");
    let r = lock(&dir, "node-a", "1000", &[]);
    r.expect(0, "ok", "");
    assert_eq!(r.measurement("generation"), 6.0, "{r}");
    assert!(r.message().contains("unreadable"), "{r}");
}

#[test]
fn disk_lock_racing_nodes_have_exactly_one_winner() {
    for round in 0..3 {
        let dir = TempDir::new("dl-race");
        let grant = format!("{}:rw", dir.str());
        let children: Vec<Child> = (0..4)
            .map(|i| {
                let node = format!("node-{i}");
                let params = [
                    ("dir", dir.str()),
                    ("node_id", node.as_str()),
                    ("lease_ms", "60000"),
                ];
                command("disk-lock", &args(&params, &["--dir", &grant]))
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn the CLI")
            })
            .collect();
        let runs: Vec<Run> = children
            .into_iter()
            .map(|c| Run::from_output(&c.wait_with_output().expect("wait")))
            .collect();
        let winners = runs.iter().filter(|r| r.verdict() == "ok").count();
        let all: Vec<String> = runs.iter().map(ToString::to_string).collect();
        assert_eq!(winners, 1, "round {round}: {all:#?}");
        assert!(
            runs.iter()
                .filter(|r| r.verdict() != "ok")
                .all(|r| r.code == Some(2) && r.reason().contains("node-")),
            "round {round}: {all:#?}"
        );
    }
}

#[test]
fn disk_lock_repeated_renewals_keep_few_files() {
    let dir = TempDir::new("dl-many");
    let grant = format!("{}:rw", dir.str());
    let params = [("dir", dir.str()), ("node_id", "n1"), ("lease_ms", "60000")];
    let mut bg = Background::start(
        "disk-lock",
        &args(&params, &["--dir", &grant, "--repeat", "20"]),
    );
    for g in 1..=20 {
        let r = bg.next();
        assert_eq!(r.verdict(), "ok", "{r}");
        assert_eq!(r.measurement("generation"), f64::from(g), "{r}");
    }
    let files = lease_files(&dir);
    assert!(
        files.len() <= 9,
        "old generations are cleaned up: {files:?}"
    );
    assert!(
        files.contains(&"wasmalived.lease.20".to_string()),
        "{files:?}"
    );
}

#[test]
fn disk_lock_parameters_are_validated() {
    let dir = TempDir::new("dl-params");
    lock(&dir, "n1", "1000", &[("renew_margin_ms", "1000")]).expect(1, "fail", "renew_margin_ms");
    lock(&dir, "bad id", "1000", &[]).expect(1, "fail", "node_id");
    lock(&dir, "n1", "soon", &[]).expect(1, "fail", "lease_ms");
    lock(&dir, "n1", "1000", &[("on_conflict", "shrug")]).expect(1, "fail", "on_conflict");
    assert!(
        lease_files(&dir).is_empty(),
        "nothing written on bad parameters"
    );
}

#[test]
fn disk_lock_needs_a_writable_grant() {
    let dir = TempDir::new("dl-grant");
    let params = [("dir", dir.str()), ("node_id", "n1"), ("lease_ms", "1000")];
    // Read-only: the lease cannot be taken.
    let r = run_plugin("disk-lock", &args(&params, &["--dir", dir.str()]));
    r.expect(2, "fatal", "cannot take the lease: writing");
    // Not granted at all: the directory does not exist for the plugin.
    let r = run_plugin("disk-lock", &args(&params, &[]));
    r.expect(2, "fatal", "is it granted?");
    assert!(lease_files(&dir).is_empty());
}

// ---------------------------------------------------------------------------------------------
// quorum, witnesses

/// The plugin imports wasi:http and wasi:sockets: both need a grant to load.
fn witness_run(witnesses: &[String], extra: &[(&str, &str)], grants: &[String]) -> Run {
    let mut params: Vec<(&str, &str)> = witnesses.iter().map(|w| ("witness", w.as_str())).collect();
    params.extend_from_slice(extra);
    let mut flags: Vec<&str> = Vec::new();
    for g in grants {
        flags.push(if g.starts_with("http") {
            "--http"
        } else {
            "--tcp"
        });
        flags.push(g.as_str());
    }
    run_plugin("quorum", &args(&params, &flags))
}

/// `tcp:` witnesses and the grants for them (plus an unused HTTP grant the import needs).
fn tcp_witnesses(addrs: &[SocketAddr]) -> (Vec<String>, Vec<String>) {
    let w = addrs.iter().map(|a| format!("tcp:{a}")).collect();
    let mut g: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    g.push("http://127.0.0.1:1/".into());
    (w, g)
}

fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let a = l.local_addr().expect("local addr");
    (l, a)
}

fn closed() -> SocketAddr {
    ([127, 0, 0, 1], closed_port()).into()
}

#[test]
fn quorum_all_witnesses_reached() {
    let ((_l1, a1), (_l2, a2)) = (listener(), listener());
    let (w, g) = tcp_witnesses(&[a1, a2]);
    let r = witness_run(&w, &[], &g);
    r.expect(0, "ok", "");
    assert_eq!(
        (r.measurement("votes"), r.measurement("total")),
        (3.0, 3.0),
        "{r}"
    );
}

#[test]
fn quorum_one_of_two_witnesses_is_still_a_majority() {
    let (_l, up) = listener();
    let down = closed();
    let (w, g) = tcp_witnesses(&[up, down]);
    let r = witness_run(&w, &[], &g);
    r.expect(0, "ok", "");
    assert_eq!(
        (r.measurement("votes"), r.measurement("total")),
        (2.0, 3.0),
        "{r}"
    );
    assert!(
        r.message()
            .contains(&format!("unreachable: tcp:{down} (connection refused)")),
        "{r}"
    );
}

#[test]
fn quorum_no_witness_reached_fails_naming_them() {
    let (d1, d2) = (closed(), closed());
    let (w, g) = tcp_witnesses(&[d1, d2]);
    let r = witness_run(&w, &[], &g);
    r.expect(1, "fail", "no quorum: 1 of 3 votes");
    assert!(
        r.reason()
            .contains(&format!("tcp:{d1} (connection refused)"))
            && r.reason()
                .contains(&format!("tcp:{d2} (connection refused)")),
        "{r}"
    );
    witness_run(&w, &[("on_loss", "fatal")], &g).expect(2, "fatal", "no quorum");
}

#[test]
fn quorum_tie_loses_unless_the_tie_breaker_is_reached() {
    // 3 witnesses: total 4; reaching one of them gives 2 of 4, a tie.
    let (_l, up) = listener();
    let (d1, d2) = (closed(), closed());
    let (w, g) = tcp_witnesses(&[up, d1, d2]);
    witness_run(&w, &[], &g).expect(1, "fail", "2 of 4 votes, tie and no tie_breaker");
    let down_breaker = format!("tcp:{d1}");
    witness_run(&w, &[("tie_breaker", &down_breaker)], &g).expect(
        1,
        "fail",
        "tie without the tie-breaker",
    );
    let up_breaker = format!("tcp:{up}");
    let r = witness_run(&w, &[("tie_breaker", &up_breaker)], &g);
    r.expect(0, "ok", "");
    assert!(r.message().contains("tie won by the tie-breaker"), "{r}");
    // A tie-breaker that is not a witness is a parameter error.
    witness_run(&w, &[("tie_breaker", "tcp:127.0.0.1:9")], &g).expect(
        1,
        "fail",
        "bad parameter tie_breaker",
    );
}

/// The witness HTTP server's routes: `/ok` 200, `/moved` 302, `/down` 503, `/silent…`
/// never answers.
fn route(_method: &str, path: &str) -> Option<Reply> {
    Some(match path {
        "/ok" => (200, "OK", ""),
        "/moved" => (302, "Found", ""),
        "/down" => (503, "Service Unavailable", ""),
        p if p.starts_with("/silent") => {
            thread::sleep(Duration::from_secs(5));
            return None;
        }
        _ => (404, "Not Found", ""),
    })
}

#[test]
fn quorum_http_witnesses_vote_on_2xx_3xx() {
    let addr = http_server(route);
    let url = |p: &str| format!("http://{addr}{p}");
    let grants = vec![format!("http://{addr}/"), "127.0.0.1:1".to_string()];
    let r = witness_run(&[url("/ok"), url("/moved")], &[], &grants);
    r.expect(0, "ok", "");
    assert_eq!(r.measurement("votes"), 3.0, "{r}");
    // One witness answering 503: 1 of 2 is a tie; the reason says why.
    witness_run(&[url("/down")], &[], &grants).expect(1, "fail", "(status 503)");
    // A witness outside the grants is denied by the host, not reached.
    let r = witness_run(
        &[url("/ok")],
        &[],
        &["http://127.0.0.1:1/".into(), "127.0.0.1:1".into()],
    );
    r.expect(1, "fail", "request denied");
}

#[test]
fn quorum_probes_all_witnesses_at_once_within_the_timeout() {
    let addr = http_server(route);
    let silent: Vec<String> = (0..3)
        .map(|i| format!("http://{addr}/silent/{i}"))
        .collect();
    let grants = vec![format!("http://{addr}/"), "127.0.0.1:1".to_string()];
    let started = Instant::now();
    let r = witness_run(&silent, &[("timeout_ms", "400")], &grants);
    let took = started.elapsed();
    r.expect(1, "fail", "no quorum: 1 of 4 votes");
    assert!(r.reason().contains("timeout after 400ms"), "{r}");
    // Three silent witnesses in series would take 1.2 s; in parallel one budget.
    assert!(took < Duration::from_millis(1100), "took {took:?}; {r}");
}

// ---------------------------------------------------------------------------------------------
// quorum, etcd

/// etcd from Debian's etcd-server.
const ETCD: &str = "/usr/bin/etcd";

/// A real single-member etcd on 127.0.0.1 with free ports; killed (and its data removed) on
/// drop.
struct Etcd {
    child: Child,
    port: u16,
    _data: TempDir,
}

impl Etcd {
    fn start() -> Etcd {
        assert!(
            Path::new(ETCD).is_file(),
            "{ETCD} is missing: the etcd tests need Debian's etcd-server (scripts/setup.sh)"
        );
        let data = TempDir::new("etcd");
        let (client, peer) = (closed_port(), closed_port());
        let c = format!("http://127.0.0.1:{client}");
        let p = format!("http://127.0.0.1:{peer}");
        let child = Command::new(ETCD)
            .args(["--name", "default", "--data-dir"])
            .arg(data.path().join("data"))
            .args(["--listen-client-urls", &c, "--advertise-client-urls", &c])
            .args([
                "--listen-peer-urls",
                &p,
                "--initial-advertise-peer-urls",
                &p,
            ])
            .args(["--initial-cluster", &format!("default={p}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {ETCD}: {e}"));
        let mut etcd = Etcd {
            child,
            port: client,
            _data: data,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while etcd.post("/v3/kv/range", r#"{"key":"AA=="}"#).is_none() {
            if let Ok(Some(status)) = etcd.child.try_wait() {
                panic!("etcd exited during start-up: {status}");
            }
            assert!(Instant::now() < deadline, "etcd did not answer within 15 s");
            thread::sleep(Duration::from_millis(100));
        }
        etcd
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// POST a JSON body to the gateway; the answer's JSON, or `None` if etcd is not up.
    fn post(&self, path: &str, body: &str) -> Option<Value> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).ok()?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).ok()?;
        if !answer.starts_with("HTTP/1.1 200") {
            return None;
        }
        let body = answer.split_once("\r\n\r\n")?.1;
        // Possibly chunked: the JSON object is the line starting with `{`.
        let json = body.lines().find(|l| l.starts_with('{'))?;
        serde_json::from_str(json).ok()
    }

    /// The lease id holding `key` (base64 `key_b64`), if any.
    fn lease_of(&self, key_b64: &str) -> Option<String> {
        let v = self.post("/v3/kv/range", &format!(r#"{{"key":"{key_b64}"}}"#))?;
        v.get("kvs")?
            .get(0)?
            .get("lease")?
            .as_str()
            .map(str::to_string)
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// TTL of the test leases.
const TTL_S: u64 = 2;
/// The arbitration key and its base64 form.
const KEY: &str = "/wasmalived/test";
const KEY_B64: &str = "L3dhc21hbGl2ZWQvdGVzdA==";

fn etcd_args(etcd: &Etcd, node: &str, extra: &[&str]) -> Vec<String> {
    let url = etcd.url();
    let ttl = TTL_S.to_string();
    let params = [
        ("mode", "etcd"),
        ("etcd", url.as_str()),
        ("key", KEY),
        ("node_id", node),
        ("ttl_s", ttl.as_str()),
        ("timeout_ms", "1000"),
    ];
    let http = format!("{url}/v3/");
    let tcp = format!("127.0.0.1:{}", etcd.port);
    let mut flags = vec!["--http", http.as_str(), "--tcp", tcp.as_str()];
    flags.extend_from_slice(extra);
    args(&params, &flags)
}

#[test]
fn quorum_etcd_one_holder_recovery_and_takeover_after_kill9() {
    let etcd = Etcd::start();
    let a = |extra: &[&str]| run_plugin("quorum", &etcd_args(&etcd, "node-a", extra));
    let b = |extra: &[&str]| run_plugin("quorum", &etcd_args(&etcd, "node-b", extra));

    let r = a(&[]);
    r.expect(0, "ok", "");
    assert!(r.message().starts_with(&format!("acquired `{KEY}`")), "{r}");
    assert_eq!(r.measurement("lease_ttl_s"), TTL_S as f64, "{r}");
    let lease = etcd.lease_of(KEY_B64).expect("the key has a lease");

    b(&[]).expect(2, "fatal", "is held by `node-a`");
    let mut fail = etcd_args(&etcd, "node-b", &[]);
    fail.extend(["--param".to_string(), "on_conflict=fail".to_string()]);
    run_plugin("quorum", &fail).expect(1, "fail", "is held by `node-a`");

    // A new process of node-a has no scratch: it recovers the same lease from etcd, and
    // within one process later runs are plain renewals.
    let mut bg = Background::start("quorum", &etcd_args(&etcd, "node-a", &["--repeat", "3"]));
    let first = bg.next();
    assert_eq!(first.verdict(), "ok", "{first}");
    assert!(first.message().starts_with("recovered"), "{first}");
    for _ in 0..2 {
        let r = bg.next();
        assert_eq!((r.verdict(), r.message()), ("ok", ""), "{r}");
    }
    drop(bg);
    assert_eq!(
        etcd.lease_of(KEY_B64).as_deref(),
        Some(lease.as_str()),
        "same lease"
    );

    // node-a keeps the lease alive continuously, then is killed with SIGKILL.
    let mut holder = Background::start(
        "quorum",
        &etcd_args(&etcd, "node-a", &["--repeat", "1000000"]),
    );
    for _ in 0..5 {
        let r = holder.next();
        assert_eq!(r.verdict(), "ok", "{r}");
    }
    b(&[]).expect(2, "fatal", "is held by `node-a`");
    holder.kill9();
    let killed = Instant::now();
    // node-b polls like a check every 200 ms until it takes the key.
    let taken = loop {
        let r = b(&[]);
        if r.verdict() == "ok" {
            assert!(r.message().starts_with("acquired"), "{r}");
            break killed.elapsed();
        }
        r.expect(2, "fatal", "is held by `node-a`");
        assert!(
            killed.elapsed() < Duration::from_secs(TTL_S + 5),
            "node-b did not take the key within TTL + 5 s"
        );
        thread::sleep(Duration::from_millis(200));
    };
    // Not before the lease could expire (minus the time the last keepalive took), not much
    // after the TTL.
    assert!(
        taken >= Duration::from_millis(TTL_S * 1000 - 500),
        "taken after {taken:?}, before the TTL"
    );
    assert!(
        taken <= Duration::from_secs(TTL_S + 3),
        "taken after {taken:?}"
    );
    // node-a comes back: the key is node-b's.
    a(&[]).expect(2, "fatal", "is held by `node-b`");
}

#[test]
fn quorum_etcd_holder_stands_down_when_its_lease_is_revoked() {
    let etcd = Etcd::start();
    let mut holder = Background::start(
        "quorum",
        &etcd_args(&etcd, "node-a", &["--repeat", "1000000"]),
    );
    let r = holder.next();
    assert!(
        r.verdict() == "ok" && r.message().starts_with("acquired"),
        "{r}"
    );
    let lease = etcd.lease_of(KEY_B64).expect("lease");
    etcd.post("/v3/lease/revoke", &format!(r#"{{"ID":"{lease}"}}"#))
        .expect("revoke");
    // Within a few runs the holder notices and stands down once, then takes the free key
    // again with a new lease.
    let mut saw_stand_down = false;
    for _ in 0..10_000 {
        let r = holder.next();
        if r.verdict() == "fatal" {
            assert!(r.reason().contains("standing down"), "{r}");
            saw_stand_down = true;
        } else if saw_stand_down {
            assert_eq!(r.verdict(), "ok", "{r}");
            assert!(r.message().starts_with("acquired"), "{r}");
            break;
        }
    }
    assert!(saw_stand_down, "the holder never stood down");
    holder.kill9();
    assert_ne!(
        etcd.lease_of(KEY_B64),
        Some(lease),
        "a new lease holds the key"
    );
}

#[test]
fn quorum_etcd_unreachable_is_a_conflict_for_a_non_holder() {
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}");
    let params = [
        ("mode", "etcd"),
        ("etcd", url.as_str()),
        ("key", KEY),
        ("node_id", "node-a"),
    ];
    let http = format!("{url}/");
    let tcp = format!("127.0.0.1:{port}");
    let r = run_plugin("quorum", &args(&params, &["--http", &http, "--tcp", &tcp]));
    r.expect(2, "fatal", "cannot take `/wasmalived/test`");
    assert!(r.reason().contains("connection refused"), "{r}");
}

// ---------------------------------------------------------------------------------------------
// The example configurations

/// `wasmalived -t -f CONF` with `extra` arguments: whether it passed, and stdout + stderr.
fn config_check(conf: &Path, extra: &[&std::ffi::OsStr]) -> (bool, String) {
    let out = Command::new(CLI)
        .arg("-t")
        .args(extra)
        .arg("-f")
        .arg(conf)
        .output()
        .expect("run wasmalived -t");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), all)
}

/// `examples/split-brain/NAME` with the plugin dir (and the shared dir) pointed at test
/// paths, checked by `wasmalived -t`: it loads, and each plugin loads with its grants.
#[test]
fn split_brain_examples_load_with_their_grants() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/split-brain");
    let plugins = TempDir::new("ex-plugins");
    let shared = TempDir::new("ex-shared");
    for (name, file) in [("disk-lock", "disk-lock.wasm"), ("quorum", "quorum.wasm")] {
        fs::copy(plugin(name), plugins.path().join(file)).expect("copy plugin");
    }
    let mut seen = 0;
    for entry in fs::read_dir(&examples).expect("examples/split-brain") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "conf") {
            continue;
        }
        seen += 1;
        let text = fs::read_to_string(&path)
            .expect("read example")
            .replace("/etc/wasmalived/plugins", plugins.str())
            .replace("/srv/shared/wasmalived", shared.str());
        let conf = plugins.path().join("test.conf");
        fs::write(&conf, text).expect("write config");
        let (ok, all) = config_check(&conf, &[]);
        assert!(ok, "{}:\n{all}", path.display());
        assert!(
            all.contains("loads with its grants"),
            "{}:\n{all}",
            path.display()
        );
        assert!(all.contains(" 0 warning(s)"), "{}:\n{all}", path.display());
    }
    assert_eq!(seen, 3, "three split-brain examples");
}

/// `wasmalived -t` compiles plugins into the cache the daemon would read: `plugin_cache_dir`
/// when the config sets it, not `--state-dir`'s default.
#[test]
fn config_check_warms_the_configured_plugin_cache_dir() {
    let dir = TempDir::new("t-cache");
    let cache = dir.path().join("cache");
    let state = dir.path().join("state");
    let conf = dir.path().join("test.conf");
    fs::write(
        &conf,
        format!(
            "global_defs {{\n    plugin_cache_dir {}\n}}\nvrrp_script chk {{\n    plugin {}\n}}\n",
            cache.display(),
            plugin("disk-lock").display()
        ),
    )
    .expect("write config");
    let (ok, all) = config_check(&conf, &["--state-dir".as_ref(), state.as_os_str()]);
    assert!(ok, "{all}");
    let cached = fs::read_dir(&cache).map_or(0, |d| d.count());
    assert!(
        cached > 0,
        "nothing compiled into {}:\n{all}",
        cache.display()
    );
    assert!(
        !state.join("plugin-cache").exists(),
        "compiled under --state-dir despite plugin_cache_dir:\n{all}"
    );
}
