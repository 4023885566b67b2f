"""API key format: ``ep_live_`` + 32 random base62 characters + a 6-character base62 CRC32 of them.

The checksum lets the edge reject a mistyped or forged key without any lookup. Only the SHA-256 of a
key is stored; 190 bits of randomness make a slow hash unnecessary (the same reasoning GitHub uses).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import zlib

PREFIX = "ep_live_"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_LEN = 32
CHECKSUM_LEN = 6
KEY_LEN = len(PREFIX) + RANDOM_LEN + CHECKSUM_LEN
DISPLAY_PREFIX_LEN = len(PREFIX) + 8
_SHAPE = re.compile(f"{re.escape(PREFIX)}[0-9A-Za-z]{{{RANDOM_LEN + CHECKSUM_LEN}}}")
_INDEX = {char: i for i, char in enumerate(ALPHABET)}


def _base62(n: int, width: int) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, 62)
        out.append(ALPHABET[r])
    return "".join(reversed(out))


def checksum(random_part: str) -> str:
    return _base62(zlib.crc32(random_part.encode()), CHECKSUM_LEN)


def generate() -> str:
    """A new plaintext key. Show it once, store only `hash_key(key)`."""
    random_part = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LEN))
    return PREFIX + random_part + checksum(random_part)


def well_formed(key: str) -> bool:
    """True when `key` has our shape and a matching checksum. Costs no lookup."""
    if _SHAPE.fullmatch(key) is None:
        return False
    value = 0
    for char in key[-CHECKSUM_LEN:]:
        value = value * 62 + _INDEX[char]
    # Not secret (anyone can compute a CRC), so no constant-time compare is needed here.
    return value == zlib.crc32(key[len(PREFIX) : -CHECKSUM_LEN].encode())


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[:DISPLAY_PREFIX_LEN]
