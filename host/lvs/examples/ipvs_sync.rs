//! Drives the kernel's IPVS connection-sync daemons through the IPVS backend, for the VM test
//! (`tests/vm/ipvs/init`; the daemon's `lvs_sync_daemon` wiring is the director's):
//!
//! ```text
//! ipvs_sync start master|backup INTERFACE SYNC_ID
//! ipvs_sync stop master|backup
//! ipvs_sync list
//! ```

use std::process::ExitCode;

use wasmalived_lvs::ipvs::{Ipvs, SyncDaemon, SyncState};

fn state(word: &str) -> Result<SyncState, String> {
    match word {
        "master" => Ok(SyncState::Master),
        "backup" => Ok(SyncState::Backup),
        other => Err(format!("'{other}': expected master or backup")),
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let mut ipvs = Ipvs::open().map_err(|e| e.to_string())?;
    match args {
        [cmd, st, interface, id] if cmd == "start" => {
            let daemon = SyncDaemon {
                state: state(st)?,
                interface: interface.clone(),
                sync_id: id.parse().map_err(|e| format!("sync id '{id}': {e}"))?,
                max_len: None,
                group: None,
                port: None,
                ttl: None,
            };
            ipvs.start_sync_daemon(&daemon).map_err(|e| e.to_string())
        }
        [cmd, st] if cmd == "stop" => ipvs.stop_sync_daemon(state(st)?).map_err(|e| e.to_string()),
        [cmd] if cmd == "list" => {
            for d in ipvs.sync_daemons().map_err(|e| e.to_string())? {
                println!(
                    "{} {} {} group {} port {} ttl {} maxlen {}",
                    d.state.name(),
                    d.interface,
                    d.sync_id,
                    d.group.map_or("-".into(), |g| g.to_string()),
                    d.port.map_or("-".into(), |p| p.to_string()),
                    d.ttl.map_or("-".into(), |t| t.to_string()),
                    d.max_len.map_or("-".into(), |l| l.to_string()),
                );
            }
            Ok(())
        }
        _ => Err(
            "usage: ipvs_sync start master|backup INTERFACE SYNC_ID | stop master|backup | list"
                .into(),
        ),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ipvs_sync: {e}");
            ExitCode::FAILURE
        }
    }
}
