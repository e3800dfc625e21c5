#!/usr/bin/env python3
"""The S3 tables of scripts/bench: medians per server, the node's ratio to each peer, targets.

Usage: s3_tables.py RESULTS_DIR NAME...   (RESULTS_DIR/NAME.jsonl holds run.sh's output for NAME;
                                            the name "node" is the node, every other one a peer)

Medians are taken here from the per-repeat lines, not from run.sh's median lines, so that a run
that stopped half way still shows what it measured. A figure from repeats with failed requests
is marked with "!".
"""
import json
import os
import statistics
import sys

HIGHER, LOWER = "higher", "lower"

# (row id, workload, field, unit, which way is better)
ROWS = [
    ("put", "put", "put.mib_s", "MiB/s", HIGHER),
    ("get", "get", "get.mib_s", "MiB/s", HIGHER),
    ("small_put", "small", "put.ops_s", "ops/s", HIGHER),
    ("small_get", "small", "get.ops_s", "ops/s", HIGHER),
    ("list", "list", "full.ms", "ms", LOWER),
    ("multipart", "multipart", "mib_s", "MiB/s", HIGHER),
]

# (row id, peer, factor, text): the node must reach factor x the peer (for times: the peer's time
# divided by the node's, so 1.0 means "no slower").
TARGETS = [
    ("put", "s3s-fs", 1.2, "PUT >= 1.2x s3s-fs"),
    ("get", "garage", 1.3, "GET >= 1.3x Garage"),
    ("small_put", "s3s-fs", 1.5, "small PUT >= 1.5x s3s-fs"),
    ("small_get", "s3s-fs", 10.0, "small GET >= 10x s3s-fs"),
    ("list", "garage", 1.0, "list <= Garage's time"),
    ("multipart", "garage", 2.0, "multipart >= 2x Garage"),
]


def flat(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from flat(v, f"{prefix}{k}.")
        else:
            yield prefix + k, v


def load(path):
    """Per workload: the list of flattened per-repeat lines."""
    runs = {}
    if not os.path.exists(path):
        return runs
    with open(path) as f:
        for line in f:
            if not line.startswith("{"):
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "workload" in r and not r.get("stat"):
                runs.setdefault(r["workload"], []).append(dict(flat(r)))
    return runs


class Server:
    def __init__(self, name, runs):
        self.name = name
        self.runs = runs
        labels = [r.get("label") for rs in runs.values() for r in rs if r.get("label")]
        self.label = labels[0] if labels else name

    def median(self, workload, field):
        vals = [r[field] for r in self.runs.get(workload, []) if isinstance(r.get(field), (int, float))]
        return statistics.median(vals) if vals else None

    def had_errors(self, workload):
        return any(v for r in self.runs.get(workload, []) for k, v in r.items()
                   if k.endswith("errors") and isinstance(v, (int, float)))

    def repeats(self):
        return max((len(rs) for rs in self.runs.values()), default=0)


def size_text(n):
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div and n % div == 0:
            return f"{n // div}{unit}"
    return f"{n}B"


def row_title(row, sample):
    """The workload as it was run, e.g. "PUT 64x16MiB", from any server's line."""
    rid, workload = row[0], row[1]
    r = sample.get(workload)
    if not r:
        return rid
    if rid in ("put", "get"):
        return f"{rid.upper()} {r['objects']}x{size_text(r['size'])}"
    if rid.startswith("small_"):
        return f"small {rid[6:].upper()} {r['objects']}x{size_text(r['size'])}"
    if rid == "list":
        return f"list {r['keys']} keys"
    return f"multipart {size_text(r['size'])}"


def ratio(node, peer, better):
    if node is None or peer is None or node <= 0 or peer <= 0:
        return None
    return node / peer if better == HIGHER else peer / node


def fmt(v):
    if v is None:
        return "-"
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.1f}"


def fmt_ratio(r):
    return "-" if r is None else f"{r:.2f}x"


def print_table(header, rows):
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    for i, line in enumerate([header, *rows]):
        print("  ".join(str(c).ljust(w) if j == 0 else str(c).rjust(w)
                        for j, (c, w) in enumerate(zip(line, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def peer_kind(server):
    for kind in ("s3s-fs", "garage", "moto"):
        if server.label.startswith(kind) or server.name == kind:
            return kind
    return server.name


def main():
    results, names = sys.argv[1], sys.argv[2:]
    servers = [Server(n, load(os.path.join(results, f"{n}.jsonl"))) for n in names]
    servers = [s for s in servers if s.runs]
    if not servers:
        print("S3 workloads: no results")
        return
    node = next((s for s in servers if s.name == "node"), None)
    peers = [s for s in servers if s is not node]
    sample = {}
    for s in servers:
        for w, rs in s.runs.items():
            sample.setdefault(w, rs[0])

    def cell(s, row):
        v = s.median(row[1], row[2])
        return fmt(v) + ("!" if v is not None and s.had_errors(row[1]) else "")

    header = ["workload", "unit", *(s.label for s in servers)]
    if node:
        header += [f"node/{peer_kind(p)}" for p in peers]
    rows = []
    for row in ROWS:
        line = [row_title(row, sample), row[3], *(cell(s, row) for s in servers)]
        if node:
            nv = node.median(row[1], row[2])
            line += [fmt_ratio(ratio(nv, p.median(row[1], row[2]), row[4])) for p in peers]
        rows.append(line)
    reps = ", ".join(f"{s.label} {s.repeats()}" for s in servers)
    print(f"S3 workloads, medians (repeats: {reps}); ratios > 1 mean the node is faster")
    print_table(header, rows)
    if any(s.had_errors(r[1]) for s in servers for r in ROWS):
        print("! some requests of that workload failed: see the JSON lines above")

    if not node:
        return
    print()
    print("Targets (a MISS is reported, not an error)")
    by_kind = {peer_kind(p): p for p in peers}
    trows = []
    for rid, kind, factor, text in TARGETS:
        row = next(r for r in ROWS if r[0] == rid)
        peer = by_kind.get(kind)
        nv = node.median(row[1], row[2])
        pv = peer.median(row[1], row[2]) if peer else None
        r = ratio(nv, pv, row[4])
        if peer is None:
            verdict = f"n/a ({kind} not run)"
        elif r is None:
            verdict = "n/a (no figure)"
        else:
            verdict = "PASS" if r >= factor else "MISS"
        trows.append([text, fmt(nv), fmt(pv), fmt_ratio(r), verdict])
    print_table(["target", "node", "peer", "ratio", "result"], trows)


if __name__ == "__main__":
    main()
