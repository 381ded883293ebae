#!/usr/bin/env python3
"""mkmmdb.py - writes small MaxMind DB (.mmdb) files for the tests.

The geoip tests need databases in schemas MaxMind's own test files do not
cover (the flat ip-location-db schema, IPv4-only trees, custom schemas) and
pairs of databases that differ, to watch a reload take effect. This writes
them from a JSON description, following the MaxMind DB format spec 2.0
(https://maxmind.github.io/MaxMind-DB/): a binary search tree with 24-bit
records, a 16-byte separator, the data section (no pointers: every record
is written out in full) and the metadata after "\\xab\\xcd\\xefMaxMind.com".

  mkmmdb.py SPEC.json OUT.mmdb

SPEC: {"ip_version": 4 | 6, "database_type": "...", "description": "...",
       "networks": [{"network": "81.2.69.0/24", "data": {...}}, ...]}
IPv4 networks in an IPv6 tree go under ::/96. Values: str -> utf8_string,
int -> uint32 (uint64 when larger, int32 when negative), float -> double,
bool -> boolean, list -> array, dict -> map; {"$float": x}, {"$uint16": n},
{"$uint64": n}, {"$int32": n} force a type. A more specific network may be
listed after a less specific one that contains it.
"""
import ipaddress
import json
import struct
import sys


def ctrl(type_id, size):
    """Control byte(s) for a value of `type_id` with payload `size`."""
    out = bytearray()
    if size < 29:
        first, extra = size, b''
    elif size < 285:
        first, extra = 29, bytes([size - 29])
    elif size < 65821:
        first, extra = 30, (size - 285).to_bytes(2, 'big')
    else:
        first, extra = 31, (size - 65821).to_bytes(3, 'big')
    if type_id <= 7:
        out.append(type_id << 5 | first)
    else:
        out.append(first)
        out.append(type_id - 7)
    return bytes(out) + extra


def uint_bytes(n):
    return n.to_bytes((n.bit_length() + 7) // 8, 'big') if n else b''


def encode(v):
    if isinstance(v, dict) and len(v) == 1 and next(iter(v)).startswith('$'):
        kind, x = next(iter(v.items()))
        if kind == '$float':
            return ctrl(15, 4) + struct.pack('>f', x)
        if kind == '$uint16':
            return ctrl(5, len(uint_bytes(x))) + uint_bytes(x)
        if kind == '$uint64':
            return ctrl(9, len(uint_bytes(x))) + uint_bytes(x)
        if kind == '$int32':
            b = struct.pack('>i', x)
            return ctrl(8, 4) + b
        raise SystemExit('mkmmdb: unknown type %s' % kind)
    if isinstance(v, bool):
        return ctrl(14, 1 if v else 0)
    if isinstance(v, str):
        b = v.encode('utf-8')
        return ctrl(2, len(b)) + b
    if isinstance(v, int):
        if v < 0:
            return ctrl(8, 4) + struct.pack('>i', v)
        b = uint_bytes(v)
        return ctrl(6 if v < 1 << 32 else 9, len(b)) + b
    if isinstance(v, float):
        return ctrl(3, 8) + struct.pack('>d', v)
    if isinstance(v, list):
        return ctrl(11, len(v)) + b''.join(encode(x) for x in v)
    if isinstance(v, dict):
        return ctrl(7, len(v)) + b''.join(encode(str(k)) + encode(x) for k, x in v.items())
    raise SystemExit('mkmmdb: cannot encode %r' % (v,))


class Node:
    __slots__ = ('kids',)

    def __init__(self):
        self.kids = [None, None]  # each: None, Node, or ('data', offset)


def insert(root, bits, data_ref):
    node = root
    for i, b in enumerate(bits):
        last = i == len(bits) - 1
        cur = node.kids[b]
        if last:
            node.kids[b] = data_ref
            return
        if not isinstance(cur, Node):
            nxt = Node()
            if cur is not None:  # push a less specific network's data down
                nxt.kids = [cur, cur]
            node.kids[b] = nxt
            cur = nxt
        node = cur


def main():
    spec = json.load(open(sys.argv[1]))
    ipv = spec.get('ip_version', 6)
    depth = 32 if ipv == 4 else 128
    data = bytearray()
    root = Node()
    nets = []
    for entry in spec['networks']:
        net = ipaddress.ip_network(entry['network'])
        if net.version == 6 and ipv == 4:
            raise SystemExit('mkmmdb: IPv6 network in an IPv4 database')
        base = int(net.network_address)
        plen = net.prefixlen
        if net.version == 4 and ipv == 6:
            plen += 96
        nets.append((plen, base, entry['data']))
    nets.sort(key=lambda n: n[0])  # less specific first, so pushes go down
    for plen, base, rec in nets:
        off = len(data)
        data += encode(rec)
        bits = [(base >> (depth - 1 - i)) & 1 for i in range(depth)]
        if plen == 0:
            raise SystemExit('mkmmdb: a /0 network is not supported')
        insert(root, bits[:plen], ('data', off))
    # number the nodes breadth-first
    order, index = [], {}
    queue = [root]
    while queue:
        n = queue.pop(0)
        index[id(n)] = len(order)
        order.append(n)
        for k in n.kids:
            if isinstance(k, Node):
                queue.append(k)
    count = len(order)

    def rec(k):
        if k is None:
            return count
        if isinstance(k, Node):
            return index[id(k)]
        return count + 16 + k[1]

    tree = bytearray()
    for n in order:
        left, right = rec(n.kids[0]), rec(n.kids[1])
        if max(left, right) >= 1 << 24:
            raise SystemExit('mkmmdb: too large for 24-bit records')
        tree += left.to_bytes(3, 'big') + right.to_bytes(3, 'big')
    meta = {
        'node_count': count,
        'record_size': {'$uint16': 24},
        'ip_version': {'$uint16': ipv},
        'database_type': spec.get('database_type', 'logsift-test'),
        'languages': ['en'],
        'binary_format_major_version': {'$uint16': 2},
        'binary_format_minor_version': {'$uint16': 0},
        'build_epoch': {'$uint64': spec.get('build_epoch', 1700000000)},
        'description': {'en': spec.get('description', 'logsift test database (fake data)')},
    }
    with open(sys.argv[2], 'wb') as f:
        f.write(tree)
        f.write(b'\0' * 16)
        f.write(data)
        f.write(b'\xab\xcd\xefMaxMind.com')
        f.write(encode(meta))


if __name__ == '__main__':
    main()
