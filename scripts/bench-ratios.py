#!/usr/bin/env python3
"""Prints the ratios of benches/blockstore.rs from criterion's estimates (target/criterion).

Each ratio is baseline time / cairn time, so 100% means as fast as the baseline measured in the
same run. Usage: cargo bench --bench blockstore && python3 scripts/bench-ratios.py
"""
import json
import pathlib
import sys

root = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion"


def mean_ns(group: str, name: str) -> float:
    path = root / group / name / "new" / "estimates.json"
    estimates = json.loads(path.read_text())
    # criterion's primary estimate: the regression slope when it has one, else the mean.
    return (estimates.get("slope") or estimates["mean"])["point_estimate"]


def fmt(ns: float) -> str:
    return f"{ns / 1000:.1f} µs" if ns >= 1000 else f"{ns:.0f} ns"


rows = []
failed = False
for size in ["1KiB", "64KiB", "256KiB", "1MiB"]:
    try:
        put = mean_ns(f"put_{size}", "cairn")
        base = mean_ns(f"put_{size}", "sha256+sled")
        sha = mean_ns(f"put_{size}", "sha256")
        sled = mean_ns(f"put_{size}", "sled")
        get = mean_ns(f"get_{size}", "cairn")
        sget = mean_ns(f"get_{size}", "sled")
    except FileNotFoundError as e:
        sys.exit(f"missing estimates ({e}); run `cargo bench --bench blockstore` first")
    put_ratio, get_ratio = base / put, sget / get
    rows.append((size, put, base, sha, sled, put_ratio, get, sget, get_ratio))

print("| size | cairn put | sha256+sled insert | (sha256 / sled alone) | put ratio | cairn get | sled get | get ratio |")
print("|---|---|---|---|---|---|---|---|")
for size, put, base, sha, sled, pr, get, sget, gr in rows:
    print(f"| {size} | {fmt(put)} | {fmt(base)} | ({fmt(sha)} / {fmt(sled)}) | {pr:.0%} | {fmt(get)} | {fmt(sget)} | {gr:.0%} |")
