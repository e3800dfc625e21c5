#!/usr/bin/env python3
"""The mount table of scripts/bench: the node's FUSE mount against gocryptfs on the same disk.

Usage: mount_tables.py FIGURES.tsv
Each line of FIGURES.tsv: filesystem, workload id, workload title, unit (MiB/s or s), value; one
line per repeat. Prints the medians, the node's ratio to gocryptfs (> 1 means the node is
faster, for times too) and the targets.
"""
import statistics
import sys

NODE, PEER = "vaulthalla", "gocryptfs"

# (workload id, factor, text): the node must reach factor x gocryptfs; "faster" targets need
# more than 1.0.
TARGETS = [
    ("write", 1.5, "write >= 1.5x gocryptfs", False),
    ("read", 1.2, "read >= 1.2x gocryptfs", False),
    ("small_files", 1.0, "small files faster than gocryptfs", True),
    ("tar", 1.0, "tar x faster than gocryptfs", True),
]


def fmt(v, unit):
    if v is None:
        return "-"
    return f"{v:.2f}" if unit == "s" else f"{v:.0f}"


def print_table(header, rows):
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    for i, line in enumerate([header, *rows]):
        print("  ".join(str(c).ljust(w) if j == 0 else str(c).rjust(w)
                        for j, (c, w) in enumerate(zip(line, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def main():
    values, titles, order = {}, {}, []
    with open(sys.argv[1]) as f:
        for line in f:
            fs, wid, title, unit, value = line.rstrip("\n").split("\t")
            if wid not in titles:
                order.append(wid)
                titles[wid] = (title, unit)
            values.setdefault((fs, wid), []).append(float(value))
    if not order:
        print("Mount workloads: no results")
        return

    def median(fs, wid):
        vals = values.get((fs, wid))
        return statistics.median(vals) if vals else None

    def ratio(wid):
        node, peer, unit = median(NODE, wid), median(PEER, wid), titles[wid][1]
        if not node or not peer:
            return None
        return peer / node if unit == "s" else node / peer

    has_peer = any(fs == PEER for fs, _ in values)
    reps = max(len(v) for v in values.values())
    print(f"Mount workloads, medians of up to {reps} repeats; ratios > 1 mean the node is faster")
    header = ["workload", "unit", NODE] + ([PEER, f"node/{PEER}"] if has_peer else [])
    rows = []
    for wid in order:
        title, unit = titles[wid]
        row = [title, unit, fmt(median(NODE, wid), unit)]
        if has_peer:
            r = ratio(wid)
            row += [fmt(median(PEER, wid), unit), "-" if r is None else f"{r:.2f}x"]
        rows.append(row)
    print_table(header, rows)
    if not has_peer:
        return

    print()
    print("Mount targets (a MISS is reported, not an error)")
    trows = []
    for wid, factor, text, strictly in TARGETS:
        r = ratio(wid) if wid in titles else None
        if r is None:
            verdict = "n/a (no figure)"
        else:
            verdict = "PASS" if (r > factor if strictly else r >= factor) else "MISS"
        trows.append([text, "-" if r is None else f"{r:.2f}x", verdict])
    print_table(["target", "ratio", "result"], trows)


if __name__ == "__main__":
    main()
