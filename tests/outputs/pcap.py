"""Packets written as a classic pcap file (Ethernet, IPv4, UDP/TCP, checksums computed), for
feeding a real sensor recorded traffic without a capture library."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

SYN, FIN, PSH, ACK = 0x02, 0x01, 0x08, 0x10
_MAC_A, _MAC_B = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")


def _sum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ip4(addr: str) -> bytes:
    return bytes(int(p) for p in addr.split("."))


def _ipv4(src: str, dst: str, proto: int, payload: bytes, ident: int) -> bytes:
    head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000, 64, proto,
                       0, _ip4(src), _ip4(dst))
    head = head[:10] + struct.pack("!H", _sum16(head)) + head[12:]
    return head + payload


def _l4_checksum(src: str, dst: str, proto: int, segment: bytes) -> int:
    pseudo = _ip4(src) + _ip4(dst) + struct.pack("!BBH", 0, proto, len(segment))
    return _sum16(pseudo + segment)


def udp(src: str, sport: int, dst: str, dport: int, payload: bytes, ident: int = 1) -> bytes:
    seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    csum = _l4_checksum(src, dst, 17, seg) or 0xFFFF
    seg = seg[:6] + struct.pack("!H", csum) + seg[8:]
    return _MAC_A + _MAC_B + b"\x08\x00" + _ipv4(src, dst, 17, seg, ident)


def tcp(src: str, sport: int, dst: str, dport: int, seq: int, ack: int, flags: int,
        payload: bytes = b"", ident: int = 1) -> bytes:
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
    csum = _l4_checksum(src, dst, 6, seg)
    seg = seg[:16] + struct.pack("!H", csum) + seg[18:]
    return _MAC_A + _MAC_B + b"\x08\x00" + _ipv4(src, dst, 6, seg, ident)


def dns_query(name: str, qid: int = 0x1234) -> bytes:
    """A DNS query for `name` (type A, class IN, recursion desired)."""
    labels = b"".join(bytes([len(p)]) + p.encode("ascii") for p in name.split("."))
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\0" + b"\0\x01\0\x01"


@dataclass
class Capture:
    """Frames with their times; `tcp_session` adds a whole connection."""

    start: float
    frames: list[tuple[float, bytes]] = field(default_factory=list)

    def add(self, frame: bytes) -> None:
        self.frames.append((self.start + len(self.frames) * 0.001, frame))

    def tcp_session(self, client: str, cport: int, server: str, sport: int,
                    request: bytes, response: bytes) -> None:
        """Handshake, one request and its response, then both sides close."""
        c, s = 1000, 5000
        self.add(tcp(client, cport, server, sport, c, 0, SYN))
        self.add(tcp(server, sport, client, cport, s, c + 1, SYN | ACK))
        c, s = c + 1, s + 1
        self.add(tcp(client, cport, server, sport, c, s, ACK))
        self.add(tcp(client, cport, server, sport, c, s, PSH | ACK, request))
        c += len(request)
        self.add(tcp(server, sport, client, cport, s, c, ACK))
        self.add(tcp(server, sport, client, cport, s, c, PSH | ACK, response))
        s += len(response)
        self.add(tcp(client, cport, server, sport, c, s, ACK))
        self.add(tcp(client, cport, server, sport, c, s, FIN | ACK))
        self.add(tcp(server, sport, client, cport, s, c + 1, FIN | ACK))
        self.add(tcp(client, cport, server, sport, c + 1, s + 1, ACK))

    def write(self, path: Path) -> None:
        out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]  # LINKTYPE_ETHERNET
        for ts, frame in self.frames:
            sec, usec = int(ts), round((ts - int(ts)) * 1_000_000)
            out.append(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
        path.write_bytes(b"".join(out))
