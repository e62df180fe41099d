//! keepalived's signal names and numbers (`keepalived --signum=NAME`, `lib/signals.c`
//! `get_signum`), so `kill -s $(wasmalived --signum=DATA) $(cat PIDFILE)` works as it did.

/// What a signal asks of the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonSignal {
    /// `STOP`: SIGTERM, release and exit.
    Stop,
    /// `RELOAD`: SIGHUP, re-read the configuration.
    Reload,
    /// `DATA`: SIGUSR1, write the data dump (`keepalived.data`).
    Data,
    /// `STATS`: SIGUSR2, write the statistics (`keepalived.stats`).
    Stats,
    /// `STATS_CLEAR`: SIGRTMAX−1, write the statistics, then clear them.
    StatsClear,
    /// `JSON`: SIGRTMIN+2, write the status document (`keepalived.json`).
    Json,
}

impl DaemonSignal {
    /// Every signal, in keepalived's `--signum` order.
    pub const ALL: [DaemonSignal; 6] = [
        DaemonSignal::Stop,
        DaemonSignal::Reload,
        DaemonSignal::Data,
        DaemonSignal::Stats,
        DaemonSignal::StatsClear,
        DaemonSignal::Json,
    ];

    /// keepalived's `--signum` name.
    pub fn name(self) -> &'static str {
        match self {
            DaemonSignal::Stop => "STOP",
            DaemonSignal::Reload => "RELOAD",
            DaemonSignal::Data => "DATA",
            DaemonSignal::Stats => "STATS",
            DaemonSignal::StatsClear => "STATS_CLEAR",
            DaemonSignal::Json => "JSON",
        }
    }

    /// The signal by its `--signum` name (exact, upper case, as keepalived compares).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The signal number on this system: keepalived's `lib/signals.h` defines `SIGJSON` as
    /// `SIGRTMIN + 2` and `SIGSTATS_CLEAR` as `SIGRTMAX - 1` (36 and 63 with glibc).
    pub fn number(self) -> i32 {
        match self {
            DaemonSignal::Stop => libc::SIGTERM,
            DaemonSignal::Reload => libc::SIGHUP,
            DaemonSignal::Data => libc::SIGUSR1,
            DaemonSignal::Stats => libc::SIGUSR2,
            DaemonSignal::StatsClear => libc::SIGRTMAX() - 1,
            DaemonSignal::Json => libc::SIGRTMIN() + 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_are_keepalived_s() {
        let numbers: Vec<(&str, i32)> = DaemonSignal::ALL
            .iter()
            .map(|s| (s.name(), s.number()))
            .collect();
        // glibc reserves two real-time signals: SIGRTMIN is 34, SIGRTMAX 64.
        assert_eq!(
            numbers,
            vec![
                ("STOP", 15),
                ("RELOAD", 1),
                ("DATA", 10),
                ("STATS", 12),
                ("STATS_CLEAR", 63),
                ("JSON", 36),
            ]
        );
        assert_eq!(
            DaemonSignal::from_name("STATS_CLEAR"),
            Some(DaemonSignal::StatsClear)
        );
        assert_eq!(DaemonSignal::from_name("data"), None, "case matters");
        assert_eq!(DaemonSignal::from_name("TDUMP"), None);
    }
}
