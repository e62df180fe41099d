//! The Debian package: `scripts/build-deb.sh` packages the binary and plugins the suite
//! already built (debug, uncompressed: no release build here); dpkg installs it into a
//! scratch root that knows the host's libc6 and libgcc-s1 (so the package's Depends are
//! checked, not forced); the files are where and as the README says; the installed binary
//! checks the installed sample with the real layout — in a private mount namespace the
//! scratch root's /usr/lib and /etc are laid over the host's, never changing the host's — and
//! finds the stock plugins through the default search path, and a plugin dropped into the
//! administrator's directory shadows the stock one; the installed `tcp` plugin runs under
//! `plugin run`; the man page renders without warnings; purging removes every packaged file
//! and keeps the administrator's own plugin.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use wasmalived_e2e::{plugin_path, wasmalived_bin, LabError, Result};

/// What the package installs, with its mode.
const PACKAGED_FILES: &[(&str, u32)] = &[
    ("usr/sbin/wasmalived", 0o755),
    ("usr/lib/wasmalived/plugins/nginx-process.wasm", 0o644),
    ("usr/lib/wasmalived/plugins/http.wasm", 0o644),
    ("usr/lib/wasmalived/plugins/tcp.wasm", 0o644),
    ("usr/lib/wasmalived/plugins/dns.wasm", 0o644),
    ("usr/lib/wasmalived/plugins/smtp.wasm", 0o644),
    ("usr/lib/wasmalived/plugins/disk-lock.wasm", 0o644),
    ("usr/lib/wasmalived/plugins/quorum.wasm", 0o644),
    ("usr/lib/wasmalived/plugins/file.wasm", 0o644),
    ("lib/systemd/system/wasmalived.service", 0o644),
    ("usr/share/doc/wasmalived/examples/keepalived.conf", 0o644),
    ("usr/share/doc/wasmalived/copyright", 0o644),
    ("usr/share/doc/wasmalived/changelog.gz", 0o644),
    ("usr/share/man/man8/wasmalived.8.gz", 0o644),
];

/// The sample, as installed.
const SAMPLE: &str = "usr/share/doc/wasmalived/examples/keepalived.conf";

/// A scratch directory holding the built package and the scratch root; removed on drop,
/// also when the test fails.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("wasmalived-package-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)
            .map_err(|e| LabError::io(format!("creating {}", dir.display()), e))?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Runs `cmd`, requiring success; returns stdout and stderr together.
fn run(cmd: &mut Command) -> Result<String> {
    let out = output(cmd)?;
    if !out.status.success() {
        return Err(LabError::Command {
            argv: format!("{cmd:?}"),
            status: out.status.to_string(),
            stderr: text(&out),
        });
    }
    Ok(text(&out))
}

fn output(cmd: &mut Command) -> Result<Output> {
    cmd.output()
        .map_err(|e| LabError::io(format!("running {cmd:?}"), e))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// An empty dpkg database under `root` that knows the host's C library packages, so the
/// package's computed Depends must be satisfied by them (no `--force-depends`).
fn scratch_root(root: &Path) -> Result<()> {
    let admin = root.join("var/lib/dpkg");
    for dir in ["updates", "info"] {
        fs::create_dir_all(admin.join(dir))
            .map_err(|e| LabError::io(format!("creating {}", admin.display()), e))?;
    }
    let host_libs = run(Command::new("dpkg-query").args(["-s", "libc6", "libgcc-s1"]))?;
    fs::write(admin.join("status"), host_libs)
        .map_err(|e| LabError::io("writing the scratch dpkg status", e))
}

/// Runs the installed binary with `args` as if the package were installed on this host: in
/// a private mount namespace, `root`'s /usr/lib and /etc are laid (read-only overlays) over
/// the host's, so /usr/lib/wasmalived/plugins and /etc/wasmalived/plugins are the
/// package's; the host's own directories are untouched.
fn installed_wasmalived(root: &Path, args: &[&str]) -> Result<Output> {
    // The binary itself runs from the scratch root: the host has no /usr/sbin/wasmalived.
    let script = r#"root=$1; shift
mount -t overlay overlay -o "lowerdir=$root/usr/lib:/usr/lib" /usr/lib &&
mount -t overlay overlay -o "lowerdir=$root/etc:/etc" /etc &&
exec "$root/usr/sbin/wasmalived" "$@""#;
    output(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(script)
            .arg("sh")
            .arg(root)
            .args(args),
    )
}

#[test]
fn the_package_installs_checks_its_sample_runs_a_plugin_and_purges() -> Result<()> {
    let scratch = Scratch::new()?;
    let root = scratch.0.join("root");
    let plugins = plugin_path("tcp")?
        .parent()
        .expect("plugin dir")
        .to_path_buf();

    // Build the .deb from the debug binary and plugins.
    let deb = run(Command::new(workspace_root().join("scripts/build-deb.sh"))
        .arg("--bin")
        .arg(wasmalived_bin()?)
        .arg("--plugins")
        .arg(&plugins)
        .arg("--out")
        .arg(&scratch.0)
        .args(["--compression", "none"]))?;
    let deb = PathBuf::from(deb.trim());
    let info = run(Command::new("dpkg-deb").arg("--info").arg(&deb))?;
    assert!(
        info.contains("Depends: libc6 (>= "),
        "no computed libc6 dependency:\n{info}"
    );
    let contents = run(Command::new("dpkg-deb").arg("--contents").arg(&deb))?;
    assert!(
        !contents.contains("DEBIAN/postinst") && !info.contains(" postinst "),
        "the package has a postinst (it must never start the service):\n{info}"
    );

    // Install into the scratch root; the Depends are checked against the host's libraries.
    scratch_root(&root)?;
    run(Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .arg("--install")
        .arg(&deb))?;
    for (file, mode) in PACKAGED_FILES {
        let path = root.join(file);
        let meta = fs::metadata(&path)
            .map_err(|e| LabError::io(format!("installed {}", path.display()), e))?;
        assert_eq!(meta.permissions().mode() & 0o7777, *mode, "{file}");
        assert!(
            std::os::unix::fs::MetadataExt::uid(&meta) == 0,
            "{file} not owned by root"
        );
    }
    let admin_dir = root.join("etc/wasmalived/plugins");
    assert!(admin_dir.is_dir(), "no administrator's plugin directory");
    assert_eq!(
        fs::read_dir(&admin_dir)
            .map_err(|e| LabError::io("admin dir", e))?
            .count(),
        0,
        "the administrator's plugin directory is not empty"
    );
    let unit = fs::read_to_string(root.join("lib/systemd/system/wasmalived.service"))
        .map_err(|e| LabError::io("reading the unit", e))?;
    assert!(unit.contains("ExecStart=/usr/sbin/wasmalived"), "{unit}");

    // The installed sample checks with the stock plugins from the packaged directory.
    let state = scratch.0.join("state");
    let state = state.to_str().expect("utf-8 path");
    let sample = root.join(SAMPLE);
    let sample = sample.to_str().expect("utf-8 path");
    let out = installed_wasmalived(&root, &["-t", "-f", sample, "--state-dir", state])?;
    let said = text(&out);
    assert!(out.status.success(), "wasmalived -t failed:\n{said}");
    for plugin in ["nginx-process", "http"] {
        assert!(
            said.contains(&format!(
                "(/usr/lib/wasmalived/plugins/{plugin}.wasm) loads"
            )),
            "{plugin} not found in the packaged directory:\n{said}"
        );
    }
    assert!(said.contains("configuration valid"), "{said}");

    // A plugin of the same name in the administrator's directory comes first.
    let own = admin_dir.join("http.wasm");
    fs::copy(root.join("usr/lib/wasmalived/plugins/http.wasm"), &own)
        .map_err(|e| LabError::io("copying http.wasm to the admin dir", e))?;
    let out = installed_wasmalived(&root, &["-t", "-f", sample, "--state-dir", state])?;
    let said = text(&out);
    assert!(out.status.success(), "wasmalived -t failed:\n{said}");
    assert!(
        said.contains("(/etc/wasmalived/plugins/http.wasm) loads")
            && said.contains("(/usr/lib/wasmalived/plugins/nginx-process.wasm) loads"),
        "the administrator's http.wasm does not shadow the packaged one:\n{said}"
    );

    // `plugin run` on an installed plugin: healthy against a listener, failing without one.
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| LabError::io("listen", e))?;
    let address = listener
        .local_addr()
        .map_err(|e| LabError::io("local address", e))?
        .to_string();
    let plugin_run = |root: &Path| {
        output(
            Command::new(root.join("usr/sbin/wasmalived"))
                .args(["plugin", "run"])
                .arg(root.join("usr/lib/wasmalived/plugins/tcp.wasm"))
                .args(["--param", &format!("address={address}")])
                .args(["--tcp", &address])
                .arg("--cache-dir")
                .arg(scratch.0.join("plugin-cache")),
        )
    };
    let up = plugin_run(&root)?;
    assert!(
        up.status.success() && text(&up).contains("verdict:      ok"),
        "{}",
        text(&up)
    );
    drop(listener);
    let down = plugin_run(&root)?;
    assert!(
        !down.status.success() && text(&down).contains("connection refused"),
        "{}",
        text(&down)
    );

    // The installed man page renders without a warning and has its sections.
    let page = run(Command::new("sh").arg("-c").arg(
        "gzip -dc \"$1\" | groff -man -Tutf8 -ww 2>&1 >/dev/null | sed 's/^/groff: /'; gzip -dc \"$1\" | MANWIDTH=80 man -l - 2>&1",
    ).arg("sh").arg(root.join("usr/share/man/man8/wasmalived.8.gz")))?;
    assert!(!page.contains("groff: "), "groff warns:\n{page}");
    for section in [
        "NAME", "SYNOPSIS", "OPTIONS", "COMMANDS", "FILES", "SIGNALS",
    ] {
        assert!(
            page.lines().any(|l| l == section),
            "no {section} section:\n{page}"
        );
    }

    // Purge: every packaged file is gone; the administrator's own plugin (and so its
    // directory) stays.
    run(Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(["--purge", "wasmalived"]))?;
    for (file, _) in PACKAGED_FILES {
        assert!(!root.join(file).exists(), "{file} left after purge");
    }
    assert!(!root.join("usr/lib/wasmalived").exists(), "plugin dir left");
    assert!(own.is_file(), "purge removed the administrator's plugin");
    let status = run(Command::new("dpkg-query")
        .arg(format!(
            "--admindir={}",
            root.join("var/lib/dpkg").display()
        ))
        .args(["-W", "-f", "${db:Status-Abbrev}|", "wasmalived"]))
    .unwrap_or_default();
    assert!(
        status.is_empty() || status.starts_with("pn"),
        "still known to dpkg: {status}"
    );
    Ok(())
}
