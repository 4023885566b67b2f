from __future__ import annotations

import random

from eventplane import keys, scopes


def test_generated_keys_are_well_formed_and_distinct() -> None:
    generated = {keys.generate() for _ in range(200)}
    assert len(generated) == 200
    assert all(keys.well_formed(k) and len(k) == keys.KEY_LEN and k.startswith("ep_live_") for k in generated)


def test_every_single_character_change_is_rejected() -> None:
    key = keys.generate()
    rng = random.Random(7)
    for i in range(len(keys.PREFIX), len(key)):
        for c in rng.sample(keys.ALPHABET, 12):
            if c != key[i]:
                changed = key[:i] + c + key[i + 1 :]
                assert not keys.well_formed(changed), changed


def test_malformed_shapes_are_rejected() -> None:
    key = keys.generate()
    for bad in ("", key[:-1], key + "A", "ep_test_" + key[8:], key.replace("ep_live_", "EP_LIVE_"), key[:-1] + "!"):
        assert not keys.well_formed(bad)


def test_hash_and_display_prefix_do_not_reveal_the_key() -> None:
    key = keys.generate()
    assert keys.hash_key(key) != key and len(keys.hash_key(key)) == 64
    assert keys.display_prefix(key) == key[:16]


def test_bundles_expand() -> None:
    assert scopes.expand(["write"]) == {"flags:read", "experiments:read", "workspace:read", "track:write",
                                        "flags:write", "experiments:write"}  # fmt: skip
    assert scopes.expand(["read"]) == {"flags:read", "experiments:read", "workspace:read"}
    assert scopes.expand(["admin"]) == scopes.SCOPES
    assert scopes.expand(["track:write"]) == {"track:write"}
    assert scopes.validate(["read", "read", "track:write"]) == ["read", "track:write"]
