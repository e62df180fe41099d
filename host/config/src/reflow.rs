//! keepalived's block structure: only keywords that take a block open one.
//!
//! keepalived reads its configuration line by line against keyword tables, so a `{` after
//! a keyword that takes no block (an unknown keyword, a typo, `nopreempt {`) does not open
//! a block: it is ignored, the lines after it are read in the enclosing block, and the `}`
//! meant to close it closes the enclosing block instead (at the top level that `}` is an
//! extra one, ignored). The parser matches braces without knowing keywords; this pass
//! rebuilds the tree as keepalived sees it, with a warning at each ignored `{`.
//!
//! The tables cover the sections this crate validates (`global_defs`, `vrrp_instance`,
//! `vrrp_script`, `vrrp_sync_group`) and the top level; the blocks of other keepalived
//! sections are kept exactly as written: value blocks such as `virtual_ipaddress`,
//! sections this crate skips (`bfd_instance`, …) and the check module's `virtual_server` /
//! `virtual_server_group` (validated by `validate/lvs.rs`, which reports a block where a
//! keyword takes none instead of reading on as keepalived does).

use crate::diag::{Diags, Span};
use crate::parser::{Block, Node};

/// What a keyword's `{` means at some level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A section with its own keyword table.
    Section(Level),
    /// A block kept as written (value blocks, sections of other parts of keepalived).
    Opaque,
    /// No block: the `{` is ignored.
    NoBlock,
}

/// The keyword tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Top,
    GlobalDefs,
    Instance,
    Authentication,
    Script,
    SyncGroup,
    TrackProcess,
}

impl Level {
    fn kind(self, keyword: &str) -> Kind {
        match self {
            Level::Top => match keyword {
                "global_defs" => Kind::Section(Level::GlobalDefs),
                "vrrp_instance" => Kind::Section(Level::Instance),
                "vrrp_script" => Kind::Section(Level::Script),
                "vrrp_sync_group" => Kind::Section(Level::SyncGroup),
                "vrrp_track_process" => Kind::Section(Level::TrackProcess),
                "SSL"
                | "bfd_instance"
                | "garp_group"
                | "interface_up_down_delays"
                | "linkbeat_interfaces"
                | "static_ipaddress"
                | "static_routes"
                | "static_rules"
                | "track_file"
                | "track_group"
                | "virtual_server"
                | "virtual_server_group"
                | "vrrp_track_file" => Kind::Opaque,
                _ => Kind::NoBlock,
            },
            Level::GlobalDefs => match keyword {
                "notification_email" => Kind::Opaque,
                _ => Kind::NoBlock,
            },
            Level::Instance => match keyword {
                "authentication" => Kind::Section(Level::Authentication),
                "virtual_ipaddress"
                | "virtual_ipaddress_excluded"
                | "track_interface"
                | "track_script"
                | "track_file"
                | "track_process"
                | "track_bfd"
                | "unicast_peer"
                | "virtual_routes"
                | "virtual_rules" => Kind::Opaque,
                _ => Kind::NoBlock,
            },
            Level::SyncGroup => match keyword {
                "group" | "track_interface" | "track_script" | "track_file" | "track_process"
                | "track_bfd" => Kind::Opaque,
                _ => Kind::NoBlock,
            },
            Level::Authentication | Level::Script | Level::TrackProcess => Kind::NoBlock,
        }
    }
}

/// The tree as a stream, as keepalived reads it.
#[derive(Debug, Clone)]
enum Event {
    /// A statement; `true` when its block follows as `Open` … `Close`.
    Statement(Node, bool),
    Open(Span),
    /// The end of a block, with its `}` if it had one.
    Close(Option<Span>),
}

/// Rebuilds `nodes` as keepalived structures them.
pub(crate) fn reflow(nodes: Vec<Node>, d: &mut Diags) -> Vec<Node> {
    let mut events = Vec::new();
    flatten(nodes, &mut events);
    let mut pos = 0;
    let mut out = Vec::new();
    // At the top level a `}` never ends the reading: it is an extra one.
    loop {
        out.extend(level(&events, &mut pos, Level::Top, None, d));
        match events.get(pos) {
            Some(Event::Close(at)) => {
                if let Some(at) = at {
                    d.warn(
                        at,
                        "extra '}' (its '{' was ignored); ignored, as keepalived does",
                    );
                }
                pos += 1;
            }
            _ => return out,
        }
    }
}

fn flatten(nodes: Vec<Node>, out: &mut Vec<Event>) {
    for mut node in nodes {
        let block = node.block.take();
        if node.keyword.text != "{" {
            out.push(Event::Statement(node, block.is_some()));
        }
        if let Some(b) = block {
            out.push(Event::Open(b.open));
            flatten(b.nodes, out);
            out.push(Event::Close(b.close));
        }
    }
}

/// Reads statements of `lvl` until a `Close` (left unconsumed) or the end. `owner` names
/// the enclosing block for messages.
fn level(
    events: &[Event],
    pos: &mut usize,
    lvl: Level,
    owner: Option<&str>,
    d: &mut Diags,
) -> Vec<Node> {
    let mut out = Vec::new();
    while let Some(event) = events.get(*pos) {
        match event {
            Event::Close(_) => return out,
            Event::Open(span) => {
                d.warn(
                    span,
                    format!("'{{' without a keyword before it; ignored, as keepalived does: the lines after it are read {}", place(owner)),
                );
                *pos += 1;
            }
            Event::Statement(node, has_block) => {
                *pos += 1;
                let mut node = node.clone();
                if let (true, Some(Event::Open(open))) = (*has_block, events.get(*pos)) {
                    let open = open.clone();
                    match lvl.kind(&node.keyword.text) {
                        Kind::Section(child) => {
                            *pos += 1;
                            let name = section_name(&node);
                            let nodes = level(events, pos, child, Some(&name), d);
                            let close = match events.get(*pos) {
                                Some(Event::Close(at)) => {
                                    *pos += 1;
                                    at.clone()
                                }
                                _ => None,
                            };
                            node.block = Some(Block { open, nodes, close });
                        }
                        Kind::Opaque => {
                            *pos += 1;
                            let (nodes, close) = raw_block(events, pos);
                            node.block = Some(Block { open, nodes, close });
                        }
                        Kind::NoBlock => {
                            d.warn(
                                &open,
                                format!(
                                    "'{{' after '{}', which takes no block here; ignored, as keepalived does: the lines after it are read {}",
                                    node.keyword.text,
                                    place(owner)
                                ),
                            );
                            *pos += 1;
                        }
                    }
                }
                out.push(node);
            }
        }
    }
    out
}

/// The nodes of a block kept as written, through its `Close` (consumed), and its `}`.
fn raw_block(events: &[Event], pos: &mut usize) -> (Vec<Node>, Option<Span>) {
    let mut out: Vec<Node> = Vec::new();
    while let Some(event) = events.get(*pos) {
        *pos += 1;
        match event {
            Event::Close(at) => return (out, at.clone()),
            Event::Statement(node, has_block) => {
                let mut node = node.clone();
                if *has_block {
                    if let Some(Event::Open(open)) = events.get(*pos) {
                        *pos += 1;
                        let (nodes, close) = raw_block(events, pos);
                        node.block = Some(Block {
                            open: open.clone(),
                            nodes,
                            close,
                        });
                    }
                }
                out.push(node);
            }
            Event::Open(open) => {
                let (nodes, close) = raw_block(events, pos);
                let block = Block {
                    open: open.clone(),
                    nodes,
                    close,
                };
                out.push(Node {
                    keyword: crate::lexer::Word {
                        text: "{".into(),
                        quoted: false,
                        span: block.open.clone(),
                    },
                    args: Vec::new(),
                    block: Some(block),
                });
            }
        }
    }
    (out, None)
}

fn section_name(node: &Node) -> String {
    match node.args.first() {
        Some(name) => format!("{} {}", node.keyword.text, name.text),
        None => node.keyword.text.clone(),
    }
}

fn place(owner: Option<&str>) -> String {
    match owner {
        Some(o) => format!("in {o}, and the next '}}' closes {o}"),
        None => "at the top level".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::tests::shape;
    use crate::preprocess::Preprocessor;
    use std::path::Path;

    fn run(text: &str) -> (String, Vec<String>) {
        let mut diags = Diags::default();
        let nodes = {
            let mut pre = Preprocessor::new(&mut diags, "test");
            pre.open_text(text, Path::new("t.conf"));
            crate::parser::parse(&mut pre, Path::new("t.conf"))
        };
        let nodes = reflow(nodes, &mut diags);
        (
            shape(&nodes),
            diags.into_vec().iter().map(|d| d.to_string()).collect(),
        )
    }

    #[test]
    fn known_blocks_are_kept() {
        let (s, d) = run("vrrp_instance X {\n authentication {\n auth_type PASS\n }\n virtual_ipaddress {\n 192.0.2.1\n }\n}\nvirtual_server 1 2 {\n real_server a b {\n x {\n }\n }\n}\n");
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(
            s,
            "vrrp_instance X{authentication{auth_type PASS};virtual_ipaddress{192.0.2.1}};virtual_server 1 2{real_server a b{x{}}}"
        );
    }

    #[test]
    fn a_brace_after_a_keyword_without_block_closes_the_enclosing_one() {
        let (s, d) = run("vrrp_instance X {\n interface eth0\n unicast_peers {\n 192.0.2.2\n }\n priority 50\n}\n");
        assert_eq!(
            s,
            "vrrp_instance X{interface eth0;unicast_peers;192.0.2.2};priority 50"
        );
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].starts_with("t.conf:3:16: warning: '{' after 'unicast_peers', which takes no block here; ignored, as keepalived does: the lines after it are read in vrrp_instance X, and the next '}' closes vrrp_instance X"), "{d:?}");
        assert!(d[1].contains("extra '}'"), "{d:?}");
    }

    #[test]
    fn unknown_top_level_blocks_spill_their_lines() {
        let (s, d) = run("frobnicate {\n vrrp_script s {\n script /bin/true\n }\n}\n");
        assert_eq!(s, "frobnicate;vrrp_script s{script /bin/true}");
        assert_eq!(d.len(), 2, "{d:?}");
    }

    #[test]
    fn a_bare_block_is_read_in_the_enclosing_one() {
        let (s, d) = run("{\n global_defs {\n router_id a\n }\n}\n");
        assert_eq!(s, "global_defs{router_id a}");
        assert!(d[0].contains("'{' without a keyword before it"), "{d:?}");
    }
}
