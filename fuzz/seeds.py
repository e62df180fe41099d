#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets into fuzz/seeds/NAME/ (then `make fuzz-seed`
merges them into the minimised corpus with `cargo fuzz cmin`):

- vrrp_packet: every VRRP packet of the golden keepalived captures (the protocol crate's
  testdata and ../shared fixtures), in the target's input layout (see
  host/proto/src/fuzz/packet.rs), each also with the VRRPv2 receiver bit flipped;
- config_parse: the example configurations, keepalived's samples and the compatibility
  corpus (see host/config/src/fuzz.rs), one file each;
- router_sim and plugin_verdict: a few fixed byte strings (their inputs are structured by
  the `arbitrary` crate, so any bytes are a schedule; libFuzzer grows the rest).

Run from the repository root: python3 fuzz/seeds.py
"""
import hashlib
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "seeds")


def write(target, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def pcap_packets(path):
    """(linktype, frame) for every record of a classic pcap file."""
    data = open(path, "rb").read()
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        off += 16
        yield linktype, data[off:off + incl]
        off += incl


def ip_packet(linktype, frame):
    """The IP packet of a frame (Ethernet, Linux cooked v1/v2, raw IP)."""
    if linktype == 1:  # Ethernet
        ethertype = struct.unpack(">H", frame[12:14])[0]
        return ethertype, frame[14:]
    if linktype == 113:  # Linux cooked v1
        return struct.unpack(">H", frame[14:16])[0], frame[16:]
    if linktype == 276:  # Linux cooked v2
        return struct.unpack(">H", frame[0:2])[0], frame[20:]
    if linktype in (101, 228, 229):  # raw IP
        return (0x0800 if frame[0] >> 4 == 4 else 0x86DD), frame
    return None, b""


def vrrp_seeds():
    dirs = [os.path.join(ROOT, "host/proto/src/vrrp/testdata"),
            os.path.join(ROOT, "..", "shared", "fixtures", "pcap")]
    for d in dirs:
        if not os.path.isdir(d):
            continue
        for f in sorted(os.listdir(d)):
            if not f.endswith(".pcap"):
                continue
            for linktype, frame in pcap_packets(os.path.join(d, f)):
                ethertype, pkt = ip_packet(linktype, frame)
                if ethertype == 0x0800 and len(pkt) > 20 and pkt[9] == 112:
                    for selector in (0, 2):
                        write("vrrp_packet", bytes([selector]) + pkt)
                elif ethertype == 0x86DD and len(pkt) > 40 and pkt[6] == 112:
                    src, dst, hop = pkt[8:24], pkt[24:40], pkt[7]
                    write("vrrp_packet", bytes([1]) + src + dst + bytes([hop]) + pkt[40:])


def config_seeds():
    for d in ["examples", "tests/keepalived-samples", "tests/keepalived-corpus",
              "host/proto/src/vrrp/testdata"]:
        for dirpath, _, files in os.walk(os.path.join(ROOT, d)):
            for f in sorted(files):
                if f.endswith((".md", ".pcap", ".txt", ".service", ".wasm")):
                    continue
                data = open(os.path.join(dirpath, f), "rb").read()
                if b"\0" not in data and len(data) < 64 * 1024:
                    write("config_parse", data)
    # Includes and the line language, spread over the target's three files.
    write("config_parse", b"$IF=eth0\ninclude a.conf\n@fuzz include {b,c}.conf\n\0"
          b"vrrp_instance VI_1 {\n interface $IF\n virtual_router_id 51\n"
          b" priority 100\n virtual_ipaddress {\n  192.0.2.10\n }\n}\n\0"
          b"~SEQ(N,1,3) vrrp_script chk_$N {\n script \"true\"\n}\n")


def structured_seeds():
    for target in ("router_sim", "plugin_verdict"):
        write(target, b"")
        write(target, bytes(range(256)))
        write(target, b"\x01\x02\x00\x01\x01\x00" + b"\x64\x32\x00" * 3 + b"\x10\x00" + b"\x00\x05" * 16)


def main():
    vrrp_seeds()
    config_seeds()
    structured_seeds()
    for t in sorted(os.listdir(OUT)):
        print(t, len(os.listdir(os.path.join(OUT, t))), file=sys.stderr)


if __name__ == "__main__":
    main()
