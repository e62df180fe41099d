//! The lease record and its on-disk text form.
//!
//! ```text
//! wasmalived-lease 1
//! holder node-a
//! generation 7
//! written_ms 1712345668901
//! expires_ms 1712345678901
//! checksum 5f0c6a3e9b1d2c47
//! ```
//! Times are wall-clock milliseconds since the Unix epoch, by the writer's clock. `checksum`
//! is FNV-1a 64 of every byte before the `checksum` line: a file that does not parse, whose
//! checksum does not match, or whose generation differs from its file name is *unreadable*
//! (see `decide.rs` for what that means).

use std::fmt::Write as _;

/// First line of every lease file (format version 1).
const MAGIC: &str = "wasmalived-lease 1";

/// One lease: who holds it until when, and which generation it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The holder's `node_id`.
    pub holder: String,
    /// Increases by one with every write (acquire or renew).
    pub generation: u64,
    /// When it was written (writer's wall clock, ms since the epoch).
    pub written_ms: u64,
    /// When it expires (writer's wall clock, ms since the epoch).
    pub expires_ms: u64,
}

impl Lease {
    /// The file's text.
    pub fn encode(&self) -> String {
        let mut s = format!(
            "{MAGIC}\nholder {}\ngeneration {}\nwritten_ms {}\nexpires_ms {}\n",
            self.holder, self.generation, self.written_ms, self.expires_ms
        );
        let sum = fnv1a64(s.as_bytes());
        let _ = writeln!(s, "checksum {sum:016x}");
        s
    }

    /// Parse a file's text; the error says what is wrong.
    pub fn decode(text: &str) -> Result<Lease, String> {
        let body_end = text
            .rfind("checksum ")
            .ok_or("no checksum line (truncated?)")?;
        let (body, sum_line) = text.split_at(body_end);
        let sum = sum_line
            .strip_prefix("checksum ")
            .and_then(|s| s.strip_suffix('\n'))
            .and_then(|s| u64::from_str_radix(s, 16).ok())
            .ok_or("bad checksum line")?;
        if sum != fnv1a64(body.as_bytes()) {
            return Err("checksum mismatch".into());
        }
        let mut lines = body.lines();
        if lines.next() != Some(MAGIC) {
            return Err(format!("not a `{MAGIC}` file"));
        }
        let mut field = |key: &str| -> Result<&str, String> {
            lines
                .next()
                .and_then(|l| l.strip_prefix(key))
                .and_then(|l| l.strip_prefix(' '))
                .ok_or_else(|| format!("missing `{key}`"))
        };
        let holder = field("holder")?.to_string();
        let number = |s: &str, key: &str| s.parse::<u64>().map_err(|_| format!("bad `{key}`"));
        let generation = number(field("generation")?, "generation")?;
        let written_ms = number(field("written_ms")?, "written_ms")?;
        let expires_ms = number(field("expires_ms")?, "expires_ms")?;
        if holder.is_empty() {
            return Err("empty holder".into());
        }
        Ok(Lease {
            holder,
            generation,
            written_ms,
            expires_ms,
        })
    }
}

/// FNV-1a, 64 bit: a cheap integrity check against torn or garbled files (not security).
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease() -> Lease {
        Lease {
            holder: "node-a".into(),
            generation: 7,
            written_ms: 1_712_345_668_901,
            expires_ms: 1_712_345_678_901,
        }
    }

    #[test]
    fn round_trips() {
        let text = lease().encode();
        assert!(
            text.starts_with("wasmalived-lease 1\nholder node-a\n"),
            "{text}"
        );
        assert_eq!(Lease::decode(&text), Ok(lease()));
    }

    #[test]
    fn truncated_or_garbled_is_refused() {
        let text = lease().encode();
        for cut in [0, 10, text.len() / 2, text.len() - 1] {
            assert!(Lease::decode(&text[..cut]).is_err(), "cut at {cut}");
        }
        let flipped = text.replace("generation 7", "generation 8");
        assert_eq!(
            Lease::decode(&flipped),
            Err("checksum mismatch".to_string())
        );
        assert!(Lease::decode("garbage\nchecksum 00\n").is_err());
    }
}
