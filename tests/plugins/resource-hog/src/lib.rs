//! Fixture: makes the host allocate memory outside the plugin's linear memory. `what=pollables`
//! (default) keeps creating `wasi:io` pollables (one host resource each) and never drops
//! them; `what=headers` keeps appending 1 KiB headers to one `wasi:http` header set. Proves
//! host-side memory a plugin can make the host allocate is bounded per run: the first is
//! stopped at the run's resource table limit (a trap), the second by the header-set size
//! limit (the host refuses the append; the verdict says after how many).
wit_bindgen::generate!({ path: "../../../wit", world: "check-plugin" });

use exports::wasmalived::plugin::check::Guest;
use wasmalived::plugin::types::{Measurement, Params, Status, Verdict};

/// Far more than any bound the host should allow.
const ATTEMPTS: usize = 1_000_000;

struct ResourceHog;

impl Guest for ResourceHog {
    fn check(params: Params) -> Verdict {
        let what = params
            .iter()
            .find(|(k, _)| k == "what")
            .map_or("pollables", |(_, v)| v.as_str());
        match what {
            "headers" => headers(),
            _ => pollables(),
        }
    }
}

fn pollables() -> Verdict {
    let mut kept = Vec::new();
    for _ in 0..ATTEMPTS {
        kept.push(wasi::clocks::monotonic_clock::subscribe_duration(
            60_000_000_000,
        ));
    }
    verdict(
        Status::Ok,
        format!("the host gave {} pollables", kept.len()),
        kept.len(),
    )
}

fn headers() -> Verdict {
    let fields = wasi::http::types::Fields::new();
    let value = vec![b'a'; 1024];
    for i in 0..ATTEMPTS {
        if fields.append(&format!("x-hog-{i}"), &value).is_err() {
            return verdict(
                Status::Fail(format!("the host refused header {i}")),
                String::new(),
                i,
            );
        }
    }
    verdict(
        Status::Ok,
        format!("the host took {ATTEMPTS} headers"),
        ATTEMPTS,
    )
}

fn verdict(status: Status, message: String, count: usize) -> Verdict {
    Verdict {
        status,
        message: (!message.is_empty()).then_some(message),
        measurements: vec![Measurement {
            name: "count".into(),
            value: count as f64,
        }],
    }
}

export!(ResourceHog);
