from __future__ import annotations

import random

from eventplane import keyformat, scopes


def test_generated_keys_are_well_formed_and_distinct() -> None:
    generated = {keyformat.generate() for _ in range(200)}
    assert len(generated) == 200
    assert all(keyformat.well_formed(k) and len(k) == keyformat.KEY_LEN and k.startswith("ep_live_") for k in generated)


def test_every_single_character_change_is_rejected() -> None:
    key = keyformat.generate()
    rng = random.Random(7)
    for i in range(len(keyformat.PREFIX), len(key)):
        for c in rng.sample(keyformat.ALPHABET, 12):
            if c != key[i]:
                changed = key[:i] + c + key[i + 1 :]
                assert not keyformat.well_formed(changed), changed


def test_malformed_shapes_are_rejected() -> None:
    key = keyformat.generate()
    for bad in ("", key[:-1], key + "A", "ep_test_" + key[8:], key.replace("ep_live_", "EP_LIVE_"), key[:-1] + "!"):
        assert not keyformat.well_formed(bad)


def test_hash_and_display_prefix_do_not_reveal_the_key() -> None:
    key = keyformat.generate()
    assert keyformat.hash_key(key) != key and len(keyformat.hash_key(key)) == 64
    assert keyformat.display_prefix(key) == key[:16]


def test_bundles_expand() -> None:
    assert scopes.expand(["write"]) == {"flags:read", "experiments:read", "workspace:read", "track:write",
                                        "flags:write", "experiments:write"}  # fmt: skip
    assert scopes.expand(["read"]) == {"flags:read", "experiments:read", "workspace:read"}
    assert scopes.expand(["admin"]) == scopes.SCOPES
    assert scopes.expand(["track:write"]) == {"track:write"}
    assert scopes.validate(["read", "read", "track:write"]) == ["read", "track:write"]
