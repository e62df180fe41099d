//! `wasmalived -t` against `keepalived -t` on keepalived's own LVS sample configurations
//! (`tests/keepalived-samples/`, copied from keepalived's `doc/samples`): where keepalived
//! accepts a sample, wasmalived accepts it; where keepalived complains, wasmalived names the
//! same problem. The stock checker plugins are put where the sample's `plugin_dir` points.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use wasmalived_e2e::{plugin_path, wasmalived_bin, LabError, Result};

/// What keepalived says (exit status) and what wasmalived must say about the same thing.
struct Expect {
    sample: &'static str,
    /// `keepalived -t`'s exit status (0: accepted; 5: accepted with config warnings here).
    keepalived: i32,
    /// `wasmalived -t`'s exit status.
    wasmalived: i32,
    /// Text wasmalived's output must contain (what keepalived warned about, or the refusal).
    says: &'static [&'static str],
}

const SAMPLES: &[Expect] = &[
    Expect {
        sample: "keepalived.conf.sample",
        keepalived: 0,
        wasmalived: 0,
        says: &[],
    },
    Expect {
        sample: "keepalived.conf.HTTP_GET.port",
        keepalived: 0,
        wasmalived: 0,
        says: &[],
    },
    Expect {
        sample: "keepalived.conf.PING_CHECK",
        keepalived: 0,
        wasmalived: 0,
        says: &[],
    },
    Expect {
        sample: "keepalived.conf.UDP_CHECK",
        keepalived: 0,
        wasmalived: 0,
        says: &[],
    },
    Expect {
        sample: "keepalived.conf.inhibit",
        keepalived: 0,
        wasmalived: 0,
        says: &[],
    },
    Expect {
        sample: "keepalived.conf.misc_check",
        keepalived: 0,
        wasmalived: 0,
        says: &[],
    },
    Expect {
        sample: "keepalived.conf.misc_check_arg",
        keepalived: 0,
        wasmalived: 0,
        says: &[],
    },
    Expect {
        sample: "keepalived.conf.quorum",
        keepalived: 0,
        wasmalived: 0,
        says: &[],
    },
    Expect {
        sample: "keepalived.conf.status_code",
        keepalived: 0,
        wasmalived: 0,
        says: &[],
    },
    Expect {
        sample: "keepalived.conf.virtual_server_group",
        keepalived: 0,
        wasmalived: 0,
        says: &[],
    },
    Expect {
        sample: "keepalived.conf.virtualhost",
        keepalived: 0,
        wasmalived: 0,
        says: &[],
    },
    // keepalived: "Initial state master is incompatible with AH authentication".
    Expect {
        sample: "keepalived.conf.SSL_GET",
        keepalived: 5,
        wasmalived: 0,
        says: &["auth_type AH", "SSL_GET verifies no certificate"],
    },
    // keepalived: "protocol specified for fwmark - protocol will be ignored".
    Expect {
        sample: "keepalived.conf.fwmark",
        keepalived: 5,
        wasmalived: 0,
        says: &["ignores `protocol` for a fwmark service"],
    },
    Expect {
        sample: "keepalived.conf.IPv6",
        keepalived: 0,
        wasmalived: 0,
        says: &[],
    },
];

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("keepalived-samples")
}

/// The sample with `plugin_dir DIR` in its `global_defs`, on the line that opens it so every
/// other line keeps its number (a block is added on the first line if it has none).
fn with_plugin_dir(text: &str, dir: &Path) -> String {
    let setting = format!(" plugin_dir {}", dir.display());
    match text.find("global_defs {") {
        Some(i) => {
            let at = i + "global_defs {".len();
            format!("{}{setting}{}", &text[..at], &text[at..])
        }
        None => format!("global_defs {{{setting} }} {text}"),
    }
}

fn exit_of(cmd: &mut Command) -> Result<(i32, String)> {
    let out = cmd
        .output()
        .map_err(|e| LabError::io(format!("running {cmd:?}"), e))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.code().unwrap_or(-1), text))
}

#[test]
fn config_test_agrees_with_keepalived_on_its_lvs_samples() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("wasmalived-samples-{}", std::process::id()));
    let plugins = dir.join("plugins");
    fs::create_dir_all(&plugins).map_err(|e| LabError::io("creating the sample dir", e))?;
    for (krate, file) in [
        ("tcp", "tcp.wasm"),
        ("http", "http.wasm"),
        ("dns", "dns.wasm"),
        ("smtp", "smtp.wasm"),
    ] {
        fs::copy(plugin_path(krate)?, plugins.join(file))
            .map_err(|e| LabError::io(format!("copying {file}"), e))?;
    }
    let bin = wasmalived_bin()?;
    let mut failures = Vec::new();
    for e in SAMPLES {
        let original = samples_dir().join(e.sample);
        let (k, k_text) = exit_of(
            Command::new("keepalived")
                .arg("-t")
                .arg("-f")
                .arg(&original),
        )?;
        let text = fs::read_to_string(&original)
            .map_err(|err| LabError::io(format!("reading {}", original.display()), err))?;
        let copy = dir.join(e.sample);
        fs::write(&copy, with_plugin_dir(&text, &plugins))
            .map_err(|err| LabError::io(format!("writing {}", copy.display()), err))?;
        let (w, w_text) = exit_of(
            Command::new(&bin)
                .arg("-t")
                .arg("-f")
                .arg(&copy)
                .arg("--state-dir")
                .arg(&dir),
        )?;
        eprintln!("{}: keepalived -t {k}, wasmalived -t {w}", e.sample);
        if k != e.keepalived {
            failures.push(format!(
                "{}: keepalived -t exited {k}, expected {}:\n{k_text}",
                e.sample, e.keepalived
            ));
        }
        if w != e.wasmalived || e.says.iter().any(|s| !w_text.contains(s)) {
            failures.push(format!(
                "{}: wasmalived -t exited {w} (expected {}) and should say {:?}:\n{w_text}",
                e.sample, e.wasmalived, e.says
            ));
        }
    }
    let _ = fs::remove_dir_all(&dir);
    if failures.is_empty() {
        Ok(())
    } else {
        Err(LabError::check(failures.join("\n\n")))
    }
}
