//! The preprocessor end to end: keepalived's own examples (keepalived.conf(5), "ADVANCED
//! CONFIGURATION"), includes, and the places of generated text.

use super::*;
use crate::tests::TempDir;

/// The logical lines of `text` for config id `id`, and the diagnostics.
fn lines(text: &str, id: &str) -> (Vec<String>, Vec<String>) {
    let mut diags = Diags::default();
    let mut out = Vec::new();
    {
        let mut pre = Preprocessor::new(&mut diags, id);
        pre.open_text(text, Path::new("/etc/keepalived/keepalived.conf"));
        while let Some(line) = pre.next_line() {
            out.push(line.text());
        }
    }
    (
        out,
        diags.into_vec().iter().map(ToString::to_string).collect(),
    )
}

fn ok(text: &str, id: &str) -> Vec<String> {
    let (l, d) = lines(text, id);
    assert!(d.is_empty(), "{d:?}");
    l
}

#[test]
fn man_page_conditional_configuration() {
    let text = "global_defs {\n    @main   router_id main_router\n    @backup router_id backup_router\n}\nvrrp_instance VRRP {\n    @main    unicast_src_ip 1.2.3.4\n    @backup  unicast_src_ip 1.2.3.5\n    @backup2 unicast_src_ip 1.2.3.6\n    unicast_peer {\n        @^main    1.2.3.4\n        @^backup  1.2.3.5\n        @^backup2 1.2.3.6\n    }\n}\n";
    assert_eq!(
        ok(text, "main"),
        [
            "global_defs {",
            "router_id main_router",
            "}",
            "vrrp_instance VRRP {",
            "unicast_src_ip 1.2.3.4",
            "unicast_peer {",
            "1.2.3.5",
            "1.2.3.6",
            "}",
            "}"
        ]
    );
    let other = ok(text, "other");
    assert!(!other.iter().any(|l| l.starts_with("router_id")));
    assert_eq!(other.iter().filter(|l| l.starts_with("1.2.3.")).count(), 3);
}

#[test]
fn man_page_parameters_with_conditionals() {
    let text = "@main $PRIORITY=240\n@backup $PRIORITY=200\nvrrp_instance VI_0 {\n    priority $PRIORITY\n}\n$IF_MAIN=@main\n$IF_MAIN priority 240\n";
    assert_eq!(
        ok(text, "main"),
        ["vrrp_instance VI_0 {", "priority 240", "}", "priority 240"]
    );
    assert_eq!(
        ok(text, "backup"),
        ["vrrp_instance VI_0 {", "priority 200", "}"]
    );
}

#[test]
fn man_page_multiline_definition() {
    let text = "$INSTANCE= \\\nvrrp_instance VI_${NUM} { \\\n    interface eth0.${NUM} \\\n    use_vmac vrrp${NUM}.1 \\\n    virtual_router_id 1 \\\n    @high priority 130 \\\n    @low priority 120 \\\n    advert_int 1 \\\n    virtual_ipaddress { \\\n        10.0.${NUM}.254/24 \\\n    } \\\n    track_script { \\\n        offset_instance_${NUM} \\\n    } \\\n}\n\n$NUM=0\n$INSTANCE\n\n$NUM=1\n$INSTANCE\n";
    let out = ok(text, "high");
    assert_eq!(out.len(), 26, "{out:#?}");
    assert_eq!(out[0], "vrrp_instance VI_0 {");
    assert_eq!(out[1], "interface eth0.0");
    assert_eq!(out[4], "priority 130");
    assert_eq!(out[7], "10.0.0.254/24");
    assert_eq!(out[13], "vrrp_instance VI_1 {");
    assert_eq!(out[20], "10.0.1.254/24");
    assert!(!ok(text, "x").iter().any(|l| l.starts_with("priority")));
}

#[test]
fn man_page_nested_multiline_definitions() {
    let text = "$RS= \\\nreal_server 192.168.${VS_NUM}.${RS_NUM} 80 { \\\n    weight 1 \\\n}\n$VS= \\\nvirtual_server 10.0.${VS_NUM}.4 80 { \\\n    $RS_NUM=1 \\\n    $RS \\\n    $RS_NUM=2 \\\n    $RS \\\n}\n$VS_NUM=0\n$VS\n$VS_NUM=1\n$VS\n";
    let out = ok(text, "x");
    assert_eq!(
        out,
        [
            "virtual_server 10.0.0.4 80 {",
            "real_server 192.168.0.1 80 {",
            "weight 1",
            "}",
            "real_server 192.168.0.2 80 {",
            "weight 1",
            "}",
            "}",
            "virtual_server 10.0.1.4 80 {",
            "real_server 192.168.1.1 80 {",
            "weight 1",
            "}",
            "real_server 192.168.1.2 80 {",
            "weight 1",
            "}",
            "}"
        ]
    );
}

#[test]
fn an_empty_line_ends_a_multiline_definition() {
    let text = "$M= \\\na \\\n\nb\n$M\n";
    assert_eq!(ok(text, "x"), ["b", "a"]);
}

#[test]
fn man_page_sequences_and_lists() {
    assert_eq!(
        ok("~SEQ(SUBNET, 0, 3) ip_address 10.0.${SUBNET}.1\n", "x"),
        [
            "ip_address 10.0.0.1",
            "ip_address 10.0.1.1",
            "ip_address 10.0.2.1",
            "ip_address 10.0.3.1"
        ]
    );
    assert_eq!(
        ok(
            "~SEQx(SUBNET, 0x90, 0x10, 0xc0) ip_address fe80::20:${SUBNET}:1\n",
            "x"
        ),
        [
            "ip_address fe80::20:90:1",
            "ip_address fe80::20:a0:1",
            "ip_address fe80::20:b0:1",
            "ip_address fe80::20:c0:1"
        ]
    );
    let nested = ok(
        "virtual_ipaddress {\n    ~SEQx(AD2, 0x90, 0x10, 0xc0) ~SEQx(AD1, 0x12, -1, 0x0c) fe81::10:${AD2}:${AD1}\n}\n",
        "x",
    );
    assert_eq!(nested.len(), 2 + 4 * 7);
    assert_eq!(nested[1], "fe81::10:90:12");
    assert_eq!(nested[2], "fe81::10:90:11");
    assert_eq!(nested[28], "fe81::10:c0:c");
    assert_eq!(nested[29], "}");
    assert_eq!(
        ok(
            "~LST({IP, IP1}, {10,1},{20,4},{5,6},{12,8}) 192.168.${IP}.${IP1}\n",
            "x"
        ),
        [
            "192.168.10.1",
            "192.168.20.4",
            "192.168.5.6",
            "192.168.12.8"
        ]
    );
    let lst = ok(
        "~LST(IP, 1, 2, 3, 4) ~LST(IP1, 5,6,7) 192.169.${IP}.${IP1}\n",
        "x",
    );
    assert_eq!(lst.len(), 12);
    assert_eq!(
        (lst[0].as_str(), lst[3].as_str(), lst[11].as_str()),
        ("192.169.1.5", "192.169.2.5", "192.169.4.7")
    );
    let mixed = ok(
        "~LST({IP, IP1}, {10,1},{20,4},{5,6},{12,8}) ~SEQ(IP2,168,2,172) 192.${IP2}.${IP}.${IP1}\n",
        "x",
    );
    assert_eq!(
        &mixed[..4],
        [
            "192.168.10.1",
            "192.170.10.1",
            "192.172.10.1",
            "192.168.20.4"
        ]
    );
    assert_eq!(mixed.len(), 12);
}

#[test]
fn a_generator_repeats_a_multiline_definition() {
    let text = "$VI4= \\\nvrrp_instance vrrp4.${IF}.${ID} { \\\n    virtual_router_id ${ID} \\\n}\n~SEQ(IF,0,1) ~SEQ(ID,1,2) $VI4\n";
    assert_eq!(
        ok(text, "x"),
        [
            "vrrp_instance vrrp4.0.1 {",
            "virtual_router_id 1",
            "}",
            "vrrp_instance vrrp4.0.2 {",
            "virtual_router_id 2",
            "}",
            "vrrp_instance vrrp4.1.1 {",
            "virtual_router_id 1",
            "}",
            "vrrp_instance vrrp4.1.2 {",
            "virtual_router_id 2",
            "}"
        ]
    );
}

#[test]
fn bad_generators_are_ignored_with_a_warning() {
    let (l, d) = lines("~SEQ(i, 1, 0, 3) x\ny\n", "x");
    assert_eq!(l, ["y"]);
    assert_eq!(d, ["/etc/keepalived/keepalived.conf:1:1: warning: invalid ~SEQ values: the step is 0 or moves away from the end; line ignored, as keepalived does"]);
}

#[test]
fn generated_and_substituted_text_keeps_its_places() {
    let mut diags = Diags::default();
    let mut pre = Preprocessor::new(&mut diags, "n1");
    pre.open_text(
        "$P=150\n\n   ~SEQ(I, 1, 2) priority ${P} $I\n",
        Path::new("k.conf"),
    );
    let fallback = Span::whole_file(Arc::from(Path::new("none")));
    let first = pre.next_line().expect("a line");
    assert_eq!(first.text(), "priority 150 1");
    let place = |i: usize| {
        let s = first.span_at(i, &fallback);
        (s.line, s.column)
    };
    assert_eq!(
        place(0),
        (3, 18),
        "template text: where the template is written"
    );
    assert_eq!(place(9), (3, 27), "substituted value: at its reference");
    assert_eq!(
        place(13),
        (3, 32),
        "the generator variable: at its reference"
    );
    assert_eq!(
        pre.next_line().map(|l| l.text()),
        Some("priority 150 2".into())
    );
    assert!(pre.next_line().is_none());
}

#[test]
fn escaped_comment_characters_and_predefined_hash() {
    let (l, d) = lines("auth_pass a\\#b ! comment\nx \"${_HASH}\" ${_HASH}\n", "x");
    assert_eq!(l, ["auth_pass a", "x \"#\""]);
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].starts_with("/etc/keepalived/keepalived.conf:1:13: warning: an escaped '#'"));
}

#[test]
fn includes_with_braces_variants_and_checks() {
    let dir = TempDir::new("pre-include");
    dir.write("a.conf", "from_a\n");
    dir.write("b.conf", "from_b\n");
    dir.write("sub/c.conf", "from_c\ninclude ../d.conf\n");
    dir.write("d.conf", "from_d\n");
    let main = dir.write(
        "main.conf",
        "include {a,b}.conf\ninclude sub/*.conf\ninclude missing.conf\ninclude none-*.conf\n",
    );
    let read = |path: &Path| {
        let mut diags = Diags::default();
        let mut out = Vec::new();
        {
            let mut pre = Preprocessor::new(&mut diags, "x");
            assert!(pre.open(path));
            while let Some(line) = pre.next_line() {
                out.push(line.text());
            }
        }
        (out, diags.into_vec())
    };
    let (out, diags) = read(&main);
    assert_eq!(out, ["from_a", "from_b", "from_c", "from_d"]);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].severity, crate::diag::Severity::Warning);
    assert_eq!((diags[0].span.line, diags[0].span.column), (3, 9));
    assert!(diags[0]
        .message
        .starts_with("config files missing 'missing.conf'"));

    let strict = dir.write(
        "strict.conf",
        "includea missing.conf\nincludea none-*.conf\nincluder {a,x}.conf\nincludeb {a,x}.conf\n",
    );
    let (out, diags) = read(&strict);
    assert_eq!(
        out,
        ["from_a"],
        "includer reads what exists; includeb skips it all"
    );
    let errors: Vec<_> = diags.iter().map(|d| (d.severity, d.span.line)).collect();
    use crate::diag::Severity::{Error, Warning};
    assert_eq!(
        errors,
        [(Error, 1), (Error, 2), (Warning, 3), (Error, 4)],
        "{diags:?}"
    );
}

#[test]
fn include_check_in_global_defs_applies_to_later_includes() {
    let dir = TempDir::new("pre-include-check");
    let main = dir.write(
        "main.conf",
        "include missing1.conf\nglobal_defs {\n include_check\n}\ninclude missing2.conf\n",
    );
    let e = crate::load(&main, crate::LoadOptions::default()).expect_err("missing2 is an error");
    assert_eq!(e.errors.len(), 1, "{e}");
    assert_eq!(e.errors[0].span.line, 5);
    assert_eq!(e.warnings.len(), 1);
    assert_eq!(e.warnings[0].span.line, 1);
}

#[test]
fn blocks_span_files_and_generators_can_include() {
    let dir = TempDir::new("pre-span");
    dir.write("vips.conf", "192.0.2.1\n192.0.2.2\n");
    dir.write("tail.conf", "}\n");
    dir.write("s1.conf", "vrrp_script s1 {\n script /bin/true\n}\n");
    dir.write("s2.conf", "vrrp_script s2 {\n script /bin/true\n}\n");
    let main = dir.write(
        "main.conf",
        "~SEQ(N, 1, 2) include s${N}.conf\nvrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n track_script {\n  s1\n  s2\n }\n virtual_ipaddress {\n  include vips.conf\n }\ninclude tail.conf\n",
    );
    let l = crate::load(&main, crate::LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_eq!(l.config.instances[0].vips.len(), 2);
    assert_eq!(l.config.scripts.len(), 2);
}
