"""Bucketing, the one function the edge and both SDKs share (docs/flags.md):

    bucket(salt, key, unit_id) = murmur3_x86_32(utf8(salt + ":" + key + ":" + unit_id), seed=0) mod 10000

Pure Python, no dependency: the SDK installs anywhere, and sdk/vectors/bucketing.json (checked against
PyPI `mmh3` in the tests) proves this equals the JS implementation byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from struct import unpack_from

BUCKETS = 10_000
_C1 = 0xCC9E2D51
_C2 = 0x1B873593
_MASK = 0xFFFFFFFF


def murmur3_32_pure(data: bytes, seed: int = 0) -> int:
    """MurmurHash3 x86_32 of `data`, unsigned. Products are masked only where bits above 32 would
    reach the low 32 (before a shift right), the fewest big-int operations per block."""
    length = len(data)
    h = seed & _MASK
    blocks = length >> 2
    if blocks:
        for k in unpack_from(f"<{blocks}I", data):
            k = (k * _C1) & _MASK
            h ^= (((k << 15) | (k >> 17)) * _C2) & _MASK
            h = (((h << 13) | (h >> 19)) * 5 + 0xE6546B64) & _MASK
    if length & 3:
        k = (int.from_bytes(data[blocks << 2 :], "little") * _C1) & _MASK
        h ^= (((k << 15) | (k >> 17)) * _C2) & _MASK
    h ^= length
    h = ((h ^ (h >> 16)) * 0x85EBCA6B) & _MASK
    h = ((h ^ (h >> 13)) * 0xC2B2AE35) & _MASK
    return h ^ (h >> 16)


def _mmh3() -> Callable[[bytes, int], int] | None:
    try:
        import mmh3  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None

    def murmur3_32_c(data: bytes, seed: int = 0) -> int:
        return int(mmh3.hash(data, seed, signed=False))

    return murmur3_32_c


_fast: Callable[[bytes, int], int] | None = None


def murmur3_32(data: bytes, seed: int = 0) -> int:
    """PyPI mmh3's C function where it is installed (the edge: ~40x faster than the pure one, which costs
    ~2.5 us a bucket), else the pure one; both are checked against sdk/vectors/bucketing.json. Looked up
    at the first use, so importing the SDK loads the standard library only."""
    return (_fast or _resolve())(data, seed)


def _resolve() -> Callable[[bytes, int], int]:
    global _fast
    _fast = _mmh3() or murmur3_32_pure
    return _fast


def bucket(salt: str, key: str, unit_id: str) -> int:
    """The unit's bucket, 0..9999, for this salt and key."""
    return (_fast or _resolve())(f"{salt}:{key}:{unit_id}".encode(), 0) % BUCKETS


def threshold(percentage: float) -> int:
    """Buckets below this are in: round(p * 100), halves up (as JS's Math.round), within 0..10000."""
    return min(BUCKETS, max(0, int(percentage * 100 + 0.5)))


def ranges(weights: Sequence[float]) -> list[int]:
    """The exclusive upper bucket of each weight's cumulative range, in order."""
    ends: list[int] = []
    total = 0.0
    for weight in weights:
        total += weight
        ends.append(threshold(total))
    return ends


def pick(bucket_number: int, ends: Sequence[int]) -> int | None:
    """The index of the range holding the bucket; None past the last (weights summing under 100)."""
    for index, end in enumerate(ends):
        if bucket_number < end:
            return index
    return None
