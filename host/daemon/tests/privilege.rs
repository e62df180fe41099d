//! Privilege (root only, `--features lab-tests`): notify hooks and remediation commands run as
//! the user the configuration names (hooks: `notify_* "CMD" USER`, else `script_user`) and are
//! refused when others can write them; the control socket answers only root and the daemon's
//! user, whatever its file mode.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use wasmalived::control::{self, StatusBoard};
use wasmalived::notify::{NotifyKind, NotifyScripts, NotifyState};
use wasmalived_config::grants::RemediationCommand;
use wasmalived_config::LoadOptions;
use wasmalived_plugin_host::caps::remediation::Remedy;
use wasmalived_testkit::TempDir;

const NOBODY: u32 = 65534;

fn assert_root() {
    assert_eq!(
        wasmalived_sys::effective_ids().0,
        0,
        "privilege tests switch users: run them as root (make test)"
    );
}

/// A directory everyone may write into (sticky, like /tmp), for the hooks' output.
fn drop_box(tag: &str) -> TempDir {
    let d = TempDir::new(tag);
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    d
}

/// A root-owned script (0755) in a root-owned directory (0755) writing `id -u` into `out`.
fn id_script(dir: &Path, out: &Path, mode: u32) -> PathBuf {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = dir.join("hook.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nid -u > {}\necho \"$@\" >> {}\n",
            out.display(),
            out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(mode)).unwrap();
    script
}

fn config(text: &str) -> wasmalived_config::Config {
    wasmalived_config::parse_str(text, Path::new("privilege.conf"), LoadOptions::default())
        .expect("valid config")
        .config
}

fn instance_conf(global: &str, notify: &str) -> String {
    format!(
        "global_defs {{\n{global}\n}}\nvrrp_instance VI_1 {{\n interface eth0\n \
         virtual_router_id 51\n priority 100\n virtual_ipaddress {{ 192.0.2.10 }}\n {notify}\n}}\n"
    )
}

/// Run the hooks of `VI_1` for MASTER and wait for them.
fn run_master_hooks(scripts: &NotifyScripts) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for command in scripts.commands_for(NotifyKind::Instance, "VI_1", NotifyState::Master, 100)
        {
            let finished = command.run(Some(Duration::from_secs(10))).await.unwrap();
            assert!(finished.exit.success(), "{finished:?}");
        }
    });
}

#[test]
fn notify_hooks_run_as_the_configured_user() {
    assert_root();
    let scripts_dir = TempDir::new("hooks");
    let out_dir = drop_box("hook-out");
    let out = out_dir.path().join("uid");
    let hook = id_script(scripts_dir.path(), &out, 0o755);

    // Named on the hook line: `notify_master "CMD" USER`.
    let c = config(&instance_conf(
        "",
        &format!("notify_master \"{}\" nobody", hook.display()),
    ));
    let (scripts, errors) = NotifyScripts::prepare("VI_1", &c.instances[0].notify, &c.global);
    assert!(errors.is_empty(), "{errors:?}");
    run_master_hooks(&scripts);
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().next(), Some("65534"), "{text}");

    // Not named: the global script_user applies (the generic hook gets keepalived's args).
    std::fs::remove_file(&out).unwrap();
    let c = config(&instance_conf(
        "script_user nobody",
        &format!("notify \"{}\"", hook.display()),
    ));
    let (scripts, errors) = NotifyScripts::prepare("VI_1", &c.instances[0].notify, &c.global);
    assert!(errors.is_empty(), "{errors:?}");
    run_master_hooks(&scripts);
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text, "65534\nINSTANCE VI_1 MASTER 100\n");
}

#[test]
fn notify_hooks_others_can_write_are_refused_with_script_security() {
    assert_root();
    let out_dir = drop_box("hook-out");
    let out = out_dir.path().join("uid");
    // World-writable hook file.
    let writable = TempDir::new("hooks-ww");
    let hook = id_script(writable.path(), &out, 0o777);
    let c = config(&instance_conf(
        "enable_script_security",
        &format!("notify_master \"{}\"", hook.display()),
    ));
    let (scripts, errors) = NotifyScripts::prepare("VI_1", &c.instances[0].notify, &c.global);
    assert!(scripts.master.is_none(), "an unsafe hook must not run");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("notify_master") && errors[0].contains("hook.sh"),
        "{errors:?}"
    );
    // A root-owned hook in a directory the hook's user owns: that user could swap it.
    let user_dir = TempDir::new("hooks-user");
    let hook = id_script(user_dir.path(), &out, 0o755);
    std::os::unix::fs::chown(user_dir.path(), Some(NOBODY), Some(NOBODY)).unwrap();
    let c = config(&instance_conf(
        "enable_script_security",
        &format!("notify_master \"{}\"", hook.display()),
    ));
    let (scripts, errors) = NotifyScripts::prepare("VI_1", &c.instances[0].notify, &c.global);
    assert!(scripts.master.is_none());
    assert!(errors[0].contains("65534"), "{errors:?}");
    assert!(!out.exists(), "nothing ran");
}

#[test]
fn remediation_runs_as_its_user_and_is_refused_when_unsafe() {
    assert_root();
    let scripts_dir = TempDir::new("remedy");
    let out_dir = drop_box("remedy-out");
    let out = out_dir.path().join("uid");
    let script = id_script(scripts_dir.path(), &out, 0o755);
    let cmd = |user: Option<&str>| RemediationCommand {
        id: "restart".into(),
        argv: vec![script.display().to_string()],
        timeout: Duration::from_secs(10),
        user: user.map(|u| wasmalived_config::RunAs {
            user: u.into(),
            group: None,
        }),
    };
    let remedy = Remedy::prepare(&cmd(Some("nobody"))).expect("vetted");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(remedy.run()), Ok(0));
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().next(), Some("65534"), "{text}");
    // Writable by others: refused at load, whatever the user.
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = Remedy::prepare(&cmd(None)).unwrap_err();
    assert!(err.contains("everyone"), "{err}");
}

/// Connect to the control socket as `uid` and return what the daemon answers to `status`.
fn status_as(uid: u32, state_dir: &Path) -> String {
    let socket = control::socket_path(state_dir);
    let client = format!(
        "import socket\ns = socket.socket(socket.AF_UNIX)\ns.settimeout(5)\n\
         s.connect({:?})\ntry:\n    s.sendall(b'status\\n')\nexcept OSError:\n    pass\n\
         print(s.makefile().read())\n",
        socket.display().to_string()
    );
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", &client])
        .uid(uid)
        .gid(uid)
        .output()
        .expect("python3");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn the_control_socket_answers_only_root_and_the_daemons_user() {
    assert_root();
    let state = TempDir::new("control");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    let board = StatusBoard::new(Path::new("/etc/wasmalived.conf"));
    let task = rt
        .block_on(async { control::serve(state.path(), board, tx, cancel.clone()) })
        .expect("serve");
    // Make the socket reachable by everyone: only the peer check stands in the way.
    std::fs::set_permissions(state.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        control::socket_path(state.path()),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    let answer = status_as(NOBODY, state.path());
    assert!(
        answer.contains("refused: uid 65534"),
        "a non-root client must be refused: {answer}"
    );
    assert!(!answer.contains("\"instances\""), "{answer}");
    let answer = status_as(0, state.path());
    assert!(
        answer.contains("\"instances\""),
        "root is answered: {answer}"
    );
    cancel.cancel();
    rt.block_on(task).unwrap();
}
