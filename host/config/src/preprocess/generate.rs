//! Generators: `~SEQ(var, start, step, end) TEMPLATE`, `~SEQx(...)` (hexadecimal values)
//! and `~LST(var, v1, v2, ...)` / `~LST({a, b}, {1, 2}, {3, 4}) TEMPLATE`, as keepalived
//! 2.2.7 parses them (`add_seq`, `add_lst`).
//!
//! A generator line is replaced by its template, once per value, with the variable(s)
//! defined as parameters before each copy is read (so `$var` / `${var}` in the template
//! take the values). A template may itself start with a generator, which nests: the inner
//! one runs to its end for each value of the outer one.
//!
//! `~SEQ` takes one to three numbers, each as C's `strtol(.., 0)` reads it (so `0x90` is
//! hexadecimal and a leading `0` octal), after parameter substitution:
//! - `(var, end)`: from 1 (or -1 when `end` < 0) to `end`, step ±1;
//! - `(var, start, end)`: step 1 or -1 towards `end`;
//! - `(var, start, step, end)`: `step` must not be 0 nor point away from `end`.
//!
//! The first value is always produced; the next ones while they do not pass `end`.

use crate::source::MappedLine;

/// A parsed generator, ready to produce its copies.
#[derive(Debug, Clone)]
pub(crate) struct Generator {
    kind: Kind,
    /// The text after the specification.
    template: MappedLine,
}

#[derive(Debug, Clone)]
enum Kind {
    Seq {
        var: String,
        next: i64,
        step: i64,
        last: i64,
        hex: bool,
        done: bool,
    },
    List {
        vars: Vec<String>,
        /// Value sets still to produce, in order.
        sets: std::collections::VecDeque<Vec<String>>,
    },
}

/// Why a generator line is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum GeneratorError {
    /// Malformed `~SEQ(...)`.
    #[error("invalid ~SEQ specification")]
    Seq,
    /// `~SEQ` with a zero step or a step that moves away from the end.
    #[error("invalid ~SEQ values: the step is 0 or moves away from the end")]
    SeqValues,
    /// `~SEQx` with a negative bound.
    #[error("~SEQx is only valid for positive numbers")]
    SeqHexNegative,
    /// A `~SEQ` parameter is a multi-line definition.
    #[error("a ~SEQ parameter is a multi-line definition")]
    SeqMultiline,
    /// Malformed `~LST(...)`.
    #[error("invalid ~LST specification")]
    List,
    /// A `~LST` value set has more values than there are variables.
    #[error("~LST specification has too many values")]
    ListTooManyValues,
}

/// One copy of a generator's template: the definitions to make, then the line.
#[derive(Debug, Clone)]
pub(crate) struct Copy {
    /// `(variable, value)` pairs to define before the line is read.
    pub(crate) assignments: Vec<(String, String)>,
    /// The template.
    pub(crate) line: MappedLine,
}

impl Iterator for Generator {
    type Item = Copy;

    fn next(&mut self) -> Option<Copy> {
        let assignments = match &mut self.kind {
            Kind::Seq {
                var,
                next,
                step,
                last,
                hex,
                done,
            } => {
                if *done {
                    return None;
                }
                let value = if *hex {
                    format!("{:x}", *next)
                } else {
                    next.to_string()
                };
                match next.checked_add(*step) {
                    Some(n) if (*step > 0 && n <= *last) || (*step < 0 && n >= *last) => *next = n,
                    _ => *done = true,
                }
                vec![(var.clone(), value)]
            }
            Kind::List { vars, sets } => {
                let set = sets.pop_front()?;
                vars.iter().cloned().zip(set).collect()
            }
        };
        Some(Copy {
            assignments,
            line: self.template.clone(),
        })
    }
}

/// Whether `line` is a generator line (`~SEQ…` or `~LST…`).
pub(crate) fn is_generator(line: &MappedLine) -> bool {
    line.starts_with("~SEQ") || line.starts_with("~LST")
}

/// Parses a `~SEQ` line. `substitute` replaces parameters in the numbers (keepalived
/// substitutes them before reading); it returns `None` for a multi-line definition.
pub(crate) fn parse_seq(
    line: &MappedLine,
    substitute: impl FnOnce(&MappedLine) -> Option<String>,
) -> Result<Generator, GeneratorError> {
    let chars = line.chars();
    let mut p = 4; // "~SEQ"
    let hex = chars.get(p) == Some(&'x');
    if hex {
        p += 1;
    }
    p = skip_blanks(chars, p);
    if chars.get(p) != Some(&'(') {
        return Err(GeneratorError::Seq);
    }
    p = skip_blanks(chars, p + 1);
    let var_start = p;
    while chars
        .get(p)
        .is_some_and(|c| !matches!(c, ' ' | '\t' | ',' | ')'))
    {
        p += 1;
    }
    let var: String = chars[var_start..p].iter().collect();
    p = skip_blanks(chars, p);
    if var.is_empty() || matches!(chars.get(p), None | Some(')')) {
        return Err(GeneratorError::Seq);
    }
    // keepalived steps over the character after the variable (normally the ',').
    p = skip_blanks(chars, p + 1);
    let close = line.find_from(p, ')').ok_or(GeneratorError::Seq)?;
    let params = substitute(&line.slice(p..close + 1)).ok_or(GeneratorError::SeqMultiline)?;
    let (start, step, end) = seq_numbers(&params)?;
    if hex && (start < 0 || end < 0) {
        return Err(GeneratorError::SeqHexNegative);
    }
    let rest = skip_blanks(chars, close + 1);
    Ok(Generator {
        kind: Kind::Seq {
            var,
            next: start,
            step,
            last: end,
            hex,
            done: false,
        },
        template: line.slice(rest..line.len()),
    })
}

/// `start, step, end` from the text after the variable, through `)`.
fn seq_numbers(text: &str) -> Result<(i64, i64, i64), GeneratorError> {
    let chars: Vec<char> = text.chars().collect();
    let (one, mut p) = strtol0(&chars, 0);
    p = skip_blanks(&chars, p);
    if chars.get(p) == Some(&')') {
        let end = one;
        return Ok((
            if end < 0 { -1 } else { 1 },
            if end < 1 { -1 } else { 1 },
            end,
        ));
    }
    if chars.get(p) != Some(&',') {
        return Err(GeneratorError::Seq);
    }
    let (two, q) = strtol0(&chars, p + 1);
    p = skip_blanks(&chars, q);
    if chars.get(p) == Some(&')') {
        return Ok((one, if one <= two { 1 } else { -1 }, two));
    }
    if chars.get(p) != Some(&',') {
        return Err(GeneratorError::Seq);
    }
    let (three, q) = strtol0(&chars, p + 1);
    p = skip_blanks(&chars, q);
    if chars.get(p) != Some(&')') {
        return Err(GeneratorError::Seq);
    }
    let (start, step, end) = (one, two, three);
    if step == 0 || (start < end && step < 0) || (start > end && step > 0) {
        return Err(GeneratorError::SeqValues);
    }
    Ok((start, step, end))
}

/// C's `strtol(s + from, &end, 0)`: blanks, sign, `0x` hex / leading-`0` octal / decimal.
/// Returns the value (0 when no digits) and the index after what was read.
fn strtol0(chars: &[char], from: usize) -> (i64, usize) {
    let mut p = from;
    while chars.get(p).is_some_and(|c| c.is_whitespace()) {
        p += 1;
    }
    let negative = chars.get(p) == Some(&'-');
    if matches!(chars.get(p), Some('-' | '+')) {
        p += 1;
    }
    let (radix, digits_from) = if chars.get(p) == Some(&'0')
        && matches!(chars.get(p + 1), Some('x' | 'X'))
        && chars.get(p + 2).is_some_and(char::is_ascii_hexdigit)
    {
        (16, p + 2)
    } else if chars.get(p) == Some(&'0') {
        (8, p)
    } else {
        (10, p)
    };
    let mut q = digits_from;
    let mut value: i64 = 0;
    while let Some(d) = chars.get(q).and_then(|c| c.to_digit(radix)) {
        value = value
            .saturating_mul(i64::from(radix))
            .saturating_add(i64::from(d));
        q += 1;
    }
    if q == digits_from && radix != 8 {
        return (0, from);
    }
    (if negative { -value } else { value }, q)
}

/// Parses a `~LST` line.
pub(crate) fn parse_list(line: &MappedLine) -> Result<Generator, GeneratorError> {
    let chars = line.chars();
    let err = GeneratorError::List;
    let mut p = skip_blanks(chars, 4); // "~LST"
    if chars.get(p) != Some(&'(') {
        return Err(err);
    }
    p = skip_blanks(chars, p + 1);
    let mut end_char = ',';
    if chars.get(p) == Some(&'{') {
        end_char = '}';
        p = skip_blanks(chars, p + 1);
    }
    let mut vars = Vec::new();
    loop {
        let start = p;
        while chars
            .get(p)
            .is_some_and(|c| !matches!(c, ' ' | '\t' | ',' | '}'))
        {
            p += 1;
        }
        vars.push(chars[start..p].iter().collect::<String>());
        p = skip_blanks(chars, p);
        match chars.get(p) {
            Some(c) if *c == end_char => break,
            Some(',') => p = skip_blanks(chars, p + 1),
            _ => return Err(err),
        }
    }
    if chars.get(p) == Some(&'}') {
        p = skip_blanks(chars, p + 1);
    }
    if chars.get(p) != Some(&',') {
        return Err(err);
    }
    p = skip_blanks(chars, p + 1);
    let mut sets = std::collections::VecDeque::new();
    loop {
        let mut end_char = ',';
        if chars.get(p) == Some(&'{') {
            end_char = '}';
            p = skip_blanks(chars, p + 1);
        }
        let mut set = Vec::new();
        loop {
            let start = p;
            while chars
                .get(p)
                .is_some_and(|c| !matches!(c, ' ' | '\t' | ',' | '}' | ')'))
            {
                p += 1;
            }
            set.push(chars[start..p].iter().collect::<String>());
            p = skip_blanks(chars, p);
            match chars.get(p) {
                Some(c) if *c == end_char || (*c == ')' && end_char == ',') => break,
                Some(',') => p = skip_blanks(chars, p + 1),
                _ => return Err(err),
            }
            if set.len() > vars.len() - 1 {
                return Err(GeneratorError::ListTooManyValues);
            }
        }
        set.resize(vars.len(), String::new());
        sets.push_back(set);
        if chars.get(p) == Some(&'}') && end_char == '}' {
            p = skip_blanks(chars, p + 1);
        }
        match chars.get(p) {
            Some(')') => break,
            Some(',') => p = skip_blanks(chars, p + 1),
            _ => return Err(err),
        }
    }
    let rest = skip_blanks(chars, p + 1);
    Ok(Generator {
        kind: Kind::List { vars, sets },
        template: line.slice(rest..line.len()),
    })
}

fn skip_blanks(chars: &[char], mut p: usize) -> usize {
    while chars.get(p).is_some_and(|c| *c == ' ' || *c == '\t') {
        p += 1;
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Span;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    fn line(text: &str) -> MappedLine {
        let file: Arc<Path> = Arc::from(PathBuf::from("t.conf"));
        MappedLine::verbatim(text, Span::new(file, 1, 1))
    }

    /// `var=value,...|template` per copy.
    fn copies(g: Result<Generator, GeneratorError>) -> Vec<String> {
        match g {
            Ok(g) => g
                .map(|c| {
                    let a: Vec<String> = c
                        .assignments
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    format!("{}|{}", a.join(","), c.line.text())
                })
                .collect(),
            Err(e) => vec![format!("error: {e}")],
        }
    }

    fn seq(text: &str) -> Vec<String> {
        copies(parse_seq(&line(text), |p| Some(p.text())))
    }

    fn values(text: &str) -> Vec<String> {
        seq(text)
            .iter()
            .map(|c| c.split(['=', '|']).nth(1).unwrap_or_default().to_owned())
            .collect()
    }

    #[test]
    fn seq_forms_from_the_man_page() {
        assert_eq!(
            seq("~SEQ(SUBNET, 0, 3) ip_address 10.0.${SUBNET}.1"),
            [
                "SUBNET=0|ip_address 10.0.${SUBNET}.1",
                "SUBNET=1|ip_address 10.0.${SUBNET}.1",
                "SUBNET=2|ip_address 10.0.${SUBNET}.1",
                "SUBNET=3|ip_address 10.0.${SUBNET}.1"
            ]
        );
        assert_eq!(
            values("~SEQx(SUBNET, 144, 16, 192) x"),
            ["90", "a0", "b0", "c0"]
        );
        assert_eq!(
            values("~SEQx(SUBNET, 0x90, 0x10, 0xc0) x"),
            ["90", "a0", "b0", "c0"]
        );
        assert_eq!(
            values("~SEQx(AD1, 0x12, -1, 0x0c) x"),
            ["12", "11", "10", "f", "e", "d", "c"]
        );
    }

    #[test]
    fn seq_defaults() {
        assert_eq!(values("~SEQ(i, 3) x"), ["1", "2", "3"]);
        assert_eq!(values("~SEQ(i, -2) x"), ["-1", "-2"]);
        assert_eq!(
            values("~SEQ(i, 0) x"),
            ["1", "0"],
            "keepalived counts 1 down to 0"
        );
        assert_eq!(values("~SEQ(i, 5, 3) x"), ["5", "4", "3"]);
        assert_eq!(values("~SEQ(i, 1, 2, 6) x"), ["1", "3", "5"]);
        assert_eq!(values("~SEQ(i,010,012) x"), ["8", "9", "10"], "C octal");
    }

    #[test]
    fn seq_errors() {
        assert_eq!(
            seq("~SEQ(i, 1, 0, 3) x"),
            ["error: invalid ~SEQ values: the step is 0 or moves away from the end"]
        );
        assert_eq!(
            seq("~SEQ(i, 1, -1, 3) x")[0],
            "error: invalid ~SEQ values: the step is 0 or moves away from the end"
        );
        assert_eq!(
            seq("~SEQx(i, -1, 3) x"),
            ["error: ~SEQx is only valid for positive numbers"]
        );
        assert_eq!(seq("~SEQ i, 1) x"), ["error: invalid ~SEQ specification"]);
        assert_eq!(seq("~SEQ(i) x"), ["error: invalid ~SEQ specification"]);
        assert_eq!(seq("~SEQ(i, 1 2) x"), ["error: invalid ~SEQ specification"]);
        assert_eq!(seq("~SEQ(i, 1, 2"), ["error: invalid ~SEQ specification"]);
        assert_eq!(
            copies(parse_seq(&line("~SEQ(i, $N) x"), |_| None)),
            ["error: a ~SEQ parameter is a multi-line definition"]
        );
    }

    #[test]
    fn seq_numbers_come_after_substitution() {
        let g = parse_seq(&line("~SEQ(i, 1, $N) x"), |p| {
            Some(p.text().replace("$N", "2"))
        });
        assert_eq!(copies(g).len(), 2);
    }

    #[test]
    fn lst_forms_from_the_man_page() {
        assert_eq!(
            copies(parse_list(&line(
                "~LST({IP, IP1}, {10,1},{20,4},{5,6},{12,8}) 192.168.${IP}.${IP1}"
            ))),
            [
                "IP=10,IP1=1|192.168.${IP}.${IP1}",
                "IP=20,IP1=4|192.168.${IP}.${IP1}",
                "IP=5,IP1=6|192.168.${IP}.${IP1}",
                "IP=12,IP1=8|192.168.${IP}.${IP1}"
            ]
        );
        assert_eq!(
            copies(parse_list(&line("~LST(IP, 1, 2, 3, 4) ~LST(IP1, 5,6,7) x"))),
            [
                "IP=1|~LST(IP1, 5,6,7) x",
                "IP=2|~LST(IP1, 5,6,7) x",
                "IP=3|~LST(IP1, 5,6,7) x",
                "IP=4|~LST(IP1, 5,6,7) x"
            ]
        );
    }

    #[test]
    fn lst_missing_values_are_blank_and_extra_ones_an_error() {
        assert_eq!(
            copies(parse_list(&line("~LST({A, B}, {1}, {2, 3}) x"))),
            ["A=1,B=|x", "A=2,B=3|x"]
        );
        assert_eq!(
            copies(parse_list(&line("~LST({A, B}, {1, 2, 3}) x"))),
            ["error: ~LST specification has too many values"]
        );
        assert_eq!(
            copies(parse_list(&line("~LST(A) x"))),
            ["error: invalid ~LST specification"]
        );
        assert_eq!(
            copies(parse_list(&line("~LST A, 1) x"))),
            ["error: invalid ~LST specification"]
        );
    }

    #[test]
    fn detection() {
        assert!(is_generator(&line("~SEQ(a,1) x")));
        assert!(is_generator(&line("~LST(a,1) x")));
        assert!(!is_generator(&line("~FOO x")));
        assert!(!is_generator(&line(" ~SEQ(a,1) x")));
    }
}
