"""The shipped native modules beside their standard-library peers, interleaved
in one run: `python benches/python/natives.py [--rounds N]`.

Each round calls every side in turn on the same input (side after side), so
a load that comes and goes on a shared machine falls on both alike; a side's
figure is its median over the rounds (its fastest beside it). Run it from a
virtualenv with the release wheel installed: the development build has no
whole-program optimisation.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import random
import statistics
import sys
import time
import zlib
from typing import Any, Callable

import module_registry as mr


def text_bytes(size: int, seed: int = 7) -> bytes:
    """Text-like data (words from a small vocabulary), compressible as logs are."""
    rng = random.Random(seed)
    words = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
        for _ in range(2000)
    ]
    out: list[str] = []
    n = 0
    while n < size:
        w = rng.choice(words)
        out.append(w)
        n += len(w) + 1
    return " ".join(out).encode()[:size]


def records(n: int, seed: int = 3) -> list[dict[str, Any]]:
    """JSON-like records: ids, names, floats, flags, a short list and a nested map."""
    rng = random.Random(seed)
    return [
        {
            "id": i,
            "name": f"user-{rng.randint(0, 10**6)}",
            "score": rng.random() * 100,
            "active": rng.random() < 0.5,
            "tags": [rng.choice(["a", "bb", "ccc", "dddd"]) for _ in range(3)],
            "address": {"city": rng.choice(["Oslo", "Lima", "Pune"]), "zip": f"{rng.randint(0, 99999):05d}"},
        }
        for i in range(n)
    ]


def cases() -> dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any], Any]]:
    reg = mr.ModuleRegistry(native_modules=True)

    def native(name: str) -> Callable[[Any], Any]:
        return reg.create(name).process

    mib = text_bytes(1 << 20)
    small = text_bytes(1024)
    docs = records(1000)
    doc_text = json.dumps(docs)
    return {
        "sha256, 1 MiB": (native("sha256"), lambda b: hashlib.sha256(b).hexdigest(), mib),
        "sha256, 1 KiB": (native("sha256"), lambda b: hashlib.sha256(b).hexdigest(), small),
        "base64-encode, 1 MiB": (native("base64-encode"), lambda b: base64.b64encode(b).decode(), mib),
        "base64-encode, 1 KiB": (native("base64-encode"), lambda b: base64.b64encode(b).decode(), small),
        "base64-decode, 1 MiB": (native("base64-decode"), base64.b64decode, base64.b64encode(mib).decode()),
        "json-encode, 1,000 records": (native("json-encode"), lambda x: json.dumps(x, separators=(",", ":")), docs),
        "json-decode, 1,000 records": (native("json-decode"), json.loads, doc_text),
        "gzip-compress, 1 MiB, level 6": (
            native("gzip-compress"),
            lambda b: zlib.compress(b, 6, wbits=31),
            mib,
        ),
        "gzip-decompress, 1 MiB": (
            native("gzip-decompress"),
            lambda b: zlib.decompress(b, wbits=31),
            zlib.compress(mib, 6, wbits=31),
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--only", help="run the cases whose name contains this")
    parser.add_argument("--json", help="also write the medians (seconds) to this file, for benches/report.py")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    print(f"{'case':<32} {'native':>10} {'stdlib':>10} {'ratio':>6}   (fastest: native, stdlib)")
    clock = time.perf_counter
    for name, (ours, peer, x) in cases().items():
        if args.only and args.only not in name:
            continue
        mine = ours(x)
        theirs = peer(x)
        if "gzip-compress" in name:
            assert zlib.decompress(mine, wbits=31) == x
        else:
            assert mine == theirs, name
        # small inputs: time a batch of calls per round
        reps = 1 if len(x) > 10_000 or isinstance(x, list) else 200
        times: dict[str, list[float]] = {"native": [], "stdlib": []}
        for _ in range(args.rounds):
            for side, f in (("native", ours), ("stdlib", peer)):
                start = clock()
                for _ in range(reps):
                    f(x)
                times[side].append((clock() - start) / reps)
        med = {s: statistics.median(t) for s, t in times.items()}
        fast = {s: min(t) for s, t in times.items()}
        results[name] = {"native": med["native"], "stdlib": med["stdlib"]}
        print(
            f"{name:<32} {fmt(med['native']):>10} {fmt(med['stdlib']):>10} {med['native'] / med['stdlib']:>5.2f}x"
            f"   ({fmt(fast['native'])}, {fmt(fast['stdlib'])})",
            flush=True,
        )
    print(f"module_registry from {mr.__file__}", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1)


def fmt(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


if __name__ == "__main__":
    main()
