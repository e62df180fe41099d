//! Label values as the exposition format needs them, and the plugins' measurement names made
//! safe to export.
//!
//! `prometheus-client` writes label values as given, so every value goes through [`Text`]:
//! `\`, `"` and line feeds escaped (OpenMetrics ABNF), and at most [`MAX_LABEL_VALUE`] bytes.
//! Plugins choose their measurement names; [`exported_measurements`] maps them to
//! `[a-zA-Z0-9_]`, keeps at most [`MAX_MEASUREMENTS_PER_CHECK`] per check and says how many it
//! left out (over the cap, or a name that collides with one kept after sanitising).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};

/// Longest label value exported, in bytes (longer ones are cut on a character boundary and
/// end with `…`).
pub const MAX_LABEL_VALUE: usize = 128;
/// Longest measurement name exported, in bytes.
pub const MAX_MEASUREMENT_NAME: usize = 64;
/// Measurement series exported per check.
pub const MAX_MEASUREMENTS_PER_CHECK: usize = 32;

/// A label value, escaped and bounded when encoded.
#[derive(Debug, Clone)]
pub struct Text<'a>(pub Cow<'a, str>);

/// A label value borrowed from the snapshot, or owned (a number, a sanitised name).
pub fn text<'a>(value: impl Into<Cow<'a, str>>) -> Text<'a> {
    Text(value.into())
}

impl EncodeLabelValue for Text<'_> {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        let mut written = 0;
        for c in self.0.chars() {
            if written + c.len_utf8() > MAX_LABEL_VALUE {
                return encoder.write_str("…");
            }
            written += c.len_utf8();
            match c {
                '\\' => encoder.write_str("\\\\")?,
                '"' => encoder.write_str("\\\"")?,
                '\n' => encoder.write_str("\\n")?,
                c => encoder.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// A measurement name reduced to `[a-zA-Z0-9_]` (anything else becomes `_`) and
/// [`MAX_MEASUREMENT_NAME`] bytes; `None` if nothing is left.
pub fn sanitize_measurement_name(name: &str) -> Option<String> {
    let clean: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(MAX_MEASUREMENT_NAME)
        .collect();
    (!clean.is_empty()).then_some(clean)
}

/// The measurements of one check as exported: sanitised names (the first of colliding
/// names wins, in name order) with their values, at most [`MAX_MEASUREMENTS_PER_CHECK`];
/// and how many measurements were left out.
pub fn exported_measurements(measurements: &BTreeMap<String, f64>) -> (Vec<(String, f64)>, u64) {
    let mut seen = BTreeSet::new();
    let mut kept = Vec::new();
    let mut left_out = 0;
    for (name, value) in measurements {
        match sanitize_measurement_name(name) {
            Some(clean)
                if kept.len() < MAX_MEASUREMENTS_PER_CHECK && seen.insert(clean.clone()) =>
            {
                kept.push((clean, *value))
            }
            _ => left_out += 1,
        }
    }
    (kept, left_out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::registry::Registry;

    /// How `Text` comes out in an exposition.
    fn exposed(value: &str) -> String {
        #[derive(Clone, Debug, Hash, PartialEq, Eq)]
        struct L(String);
        impl prometheus_client::encoding::EncodeLabelSet for L {
            fn encode(
                &self,
                encoder: &mut prometheus_client::encoding::LabelSetEncoder,
            ) -> Result<(), std::fmt::Error> {
                use prometheus_client::encoding::EncodeLabel;
                ("v", text(self.0.as_str())).encode(encoder.encode_label())
            }
        }
        let family = Family::<L, Gauge>::default();
        family.get_or_create(&L(value.to_owned())).set(1);
        let mut registry = Registry::default();
        registry.register("t", "t", family);
        let mut out = String::new();
        encode(&mut out, &registry).unwrap();
        let line = out
            .lines()
            .find(|l| l.starts_with("t{"))
            .unwrap()
            .to_owned();
        line["t{v=\"".len()..line.len() - "\"} 1".len()].to_owned()
    }

    #[test]
    fn label_values_are_escaped_and_bounded() {
        assert_eq!(exposed("plain"), "plain");
        assert_eq!(exposed("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let long = "é".repeat(100);
        let out = exposed(&long);
        assert_eq!(out, format!("{}…", "é".repeat(MAX_LABEL_VALUE / 2)));
    }

    #[test]
    fn measurement_names_keep_only_safe_characters() {
        assert_eq!(
            sanitize_measurement_name("latency_ms").as_deref(),
            Some("latency_ms")
        );
        assert_eq!(
            sanitize_measurement_name("p99 latency (ms)").as_deref(),
            Some("p99_latency__ms_")
        );
        assert_eq!(sanitize_measurement_name("größe").as_deref(), Some("gr__e"));
        assert_eq!(sanitize_measurement_name(""), None);
        let long = "x".repeat(200);
        assert_eq!(
            sanitize_measurement_name(&long).map(|n| n.len()),
            Some(MAX_MEASUREMENT_NAME)
        );
    }

    #[test]
    fn measurements_are_capped_per_check_and_collisions_left_out() {
        let mut m: BTreeMap<String, f64> = (0..40)
            .map(|i| (format!("m{i:02}"), f64::from(i)))
            .collect();
        m.insert("a-b".into(), 1.0);
        m.insert("a.b".into(), 2.0);
        m.insert("".into(), 3.0);
        let (kept, left_out) = exported_measurements(&m);
        assert_eq!(kept.len(), MAX_MEASUREMENTS_PER_CHECK);
        // "" sorts first and is left out; "a-b" wins over "a.b" (name order).
        assert_eq!(kept[0], ("a_b".to_owned(), 1.0));
        assert_eq!(kept[1], ("m00".to_owned(), 0.0));
        assert_eq!(left_out, (m.len() - MAX_MEASUREMENTS_PER_CHECK) as u64);
        let names: BTreeSet<&str> = kept.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.len(), kept.len(), "no name exported twice");
    }
}
