//! Verdicts: what one check run returns (`wasmalived:plugin/types.verdict`).
//!
//! ```
//! use wasmalived_plugin_sdk::Verdict;
//!
//! let v = Verdict::fail("3 of 5 backends down")
//!     .with_message("backend-2, backend-4, backend-5")
//!     .measure("up", 2.0)
//!     .measure("latency_ms", 12.5);
//! assert_eq!(v.reason(), Some("3 of 5 backends down"));
//! assert_eq!(v.measurement("up"), Some(2.0));
//! ```

/// The outcome of one run.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// Healthy.
    Ok,
    /// Unhealthy; counts towards the check's `fall`. The string says why.
    Fail(String),
    /// Stand down now (stop-self): every instance tracking the check enters Fault at once.
    Fatal(String),
}

/// A named numeric measurement (shown by `wasmalived status` and `plugin run`).
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// e.g. `latency_ms`.
    pub name: String,
    /// The value.
    pub value: f64,
}

/// The verdict of one run: a status, an optional message and measurements.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Healthy, unhealthy or stand down.
    pub status: Status,
    /// A short human-readable message (logs and status), optional.
    pub message: Option<String>,
    /// Named measurements, in the order added.
    pub measurements: Vec<Measurement>,
}

impl Verdict {
    /// A verdict with `status`, no message and no measurements.
    pub fn new(status: Status) -> Verdict {
        Verdict {
            status,
            message: None,
            measurements: Vec::new(),
        }
    }

    /// Healthy.
    pub fn ok() -> Verdict {
        Verdict::new(Status::Ok)
    }

    /// Unhealthy, because of `reason`.
    pub fn fail(reason: impl Into<String>) -> Verdict {
        Verdict::new(Status::Fail(reason.into()))
    }

    /// Stand down now, because of `reason`.
    pub fn fatal(reason: impl Into<String>) -> Verdict {
        Verdict::new(Status::Fatal(reason.into()))
    }

    /// `fail(reason)` or `fatal(reason)`, as a configuration chose (`on_conflict fatal`).
    pub fn failing(fatal: bool, reason: impl Into<String>) -> Verdict {
        if fatal {
            Verdict::fatal(reason)
        } else {
            Verdict::fail(reason)
        }
    }

    /// With a message.
    pub fn with_message(mut self, message: impl Into<String>) -> Verdict {
        self.message = Some(message.into());
        self
    }

    /// With a message if there is one.
    pub fn with_message_opt(mut self, message: Option<String>) -> Verdict {
        self.message = message;
        self
    }

    /// With one more measurement.
    pub fn measure(mut self, name: impl Into<String>, value: f64) -> Verdict {
        self.measurements.push(Measurement {
            name: name.into(),
            value,
        });
        self
    }

    /// With these measurements added.
    pub fn with_measurements(
        mut self,
        measurements: impl IntoIterator<Item = Measurement>,
    ) -> Verdict {
        self.measurements.extend(measurements);
        self
    }

    /// Whether the status is `ok`.
    pub fn is_ok(&self) -> bool {
        self.status == Status::Ok
    }

    /// `ok`, `fail` or `fatal`.
    pub fn kind(&self) -> &'static str {
        match self.status {
            Status::Ok => "ok",
            Status::Fail(_) => "fail",
            Status::Fatal(_) => "fatal",
        }
    }

    /// The reason of a `fail` or `fatal`.
    pub fn reason(&self) -> Option<&str> {
        match &self.status {
            Status::Ok => None,
            Status::Fail(r) | Status::Fatal(r) => Some(r),
        }
    }

    /// The value of measurement `name` (the first one of that name).
    pub fn measurement(&self, name: &str) -> Option<f64> {
        self.measurements
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.value)
    }
}

impl Measurement {
    /// A measurement.
    pub fn new(name: impl Into<String>, value: f64) -> Measurement {
        Measurement {
            name: name.into(),
            value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders() {
        let v = Verdict::ok().measure("count", 2.0).with_message("fine");
        assert!(v.is_ok());
        assert_eq!((v.kind(), v.reason()), ("ok", None));
        assert_eq!(v.message.as_deref(), Some("fine"));
        assert_eq!(v.measurement("count"), Some(2.0));
        assert_eq!(v.measurement("other"), None);
        let v = Verdict::failing(true, "lost").with_message_opt(None);
        assert_eq!((v.kind(), v.reason()), ("fatal", Some("lost")));
        let v = Verdict::failing(false, "down").with_measurements([Measurement::new("a", 1.0)]);
        assert_eq!(v.status, Status::Fail("down".into()));
        assert_eq!(v.measurements, vec![Measurement::new("a", 1.0)]);
    }
}
