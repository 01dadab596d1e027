"""The shipped native modules give what their standard-library peers give
(issue 32 item 5: their speed is in benches/python/natives.py)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import random
import zlib

import module_registry as mr


def _registry() -> mr.ModuleRegistry:
    return mr.ModuleRegistry(native_modules=True)


def test_json_decode_reads_every_float_as_json_loads_does() -> None:
    """A float read back is the float written, to the last bit (the parser's
    fast path was one unit in the last place off for some, e.g.
    15.076537445280957 read as ...955)."""
    rng = random.Random(5)
    floats = [rng.random() * 10 ** rng.randint(-300, 300) for _ in range(5000)] + [15.076537445280957, 5e-324, 1.7976931348623157e308]
    text = json.dumps(floats)
    assert _registry().create("json-decode").process(text) == json.loads(text) == floats


def test_json_encode_then_decode_round_trips_records() -> None:
    reg = _registry()
    rng = random.Random(1)
    docs = [{"id": i, "score": rng.random(), "tags": ["a", "b"], "nested": {"ok": i % 2 == 0, "none": None}} for i in range(500)]
    text = reg.create("json-encode").process(docs)
    assert json.loads(text) == docs
    assert reg.create("json-decode").process(text) == docs


def test_sha256_and_base64_match_the_standard_library_on_many_sizes() -> None:
    reg = _registry()
    sha, b64, unb64 = reg.create("sha256"), reg.create("base64-encode"), reg.create("base64-decode")
    raw = reg.create("sha256", config={"output": "bytes"})
    rng = random.Random(2)
    for size in [0, 1, 55, 56, 63, 64, 65, 1000, 4096, 1 << 20]:
        data = rng.randbytes(size)
        assert sha.process(data) == hashlib.sha256(data).hexdigest()
        assert raw.process(data) == hashlib.sha256(data).digest()
        assert b64.process(data) == base64.b64encode(data).decode()
        assert unb64.process(base64.b64encode(data).decode()) == data


def test_gzip_interoperates_with_python_gzip_and_zlib_at_every_level() -> None:
    reg = _registry()
    unpack = reg.create("gzip-decompress")
    rng = random.Random(3)
    data = b" ".join(rng.choice([b"alpha", b"beta", b"gamma", rng.randbytes(8)]) for _ in range(20000))
    for level in range(10):
        packed = reg.create("gzip-compress", config={"level": level}).process(data)
        assert gzip.decompress(packed) == data
        assert zlib.decompress(packed, wbits=31) == data
        assert unpack.process(packed) == data
        assert unpack.process(gzip.compress(data, compresslevel=level)) == data
    assert unpack.process(zlib.compress(data, 6, wbits=31)) == data
    # Level 9 packs at least as tightly as level 1.
    sizes = [len(reg.create("gzip-compress", config={"level": lv}).process(data)) for lv in (1, 9)]
    assert sizes[1] <= sizes[0]


def test_gzip_decompress_refuses_tampered_and_truncated_input() -> None:
    reg = _registry()
    packed = bytearray(reg.create("gzip-compress").process(b"hello world " * 1000))
    unpack = reg.create("gzip-decompress")
    for bad in (bytes(packed[: len(packed) // 2]), bytes(packed[:-4] + b"\0\0\0\0"), b"not gzip at all"):
        try:
            unpack.process(bad)
        except mr.ModuleRegistryError:
            continue
        raise AssertionError(f"accepted {bad[:20]!r}...")
