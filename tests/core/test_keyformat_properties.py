"""Property tests of the key format: the checksum accepts every key we could mint and rejects every
single-character change."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from eventplane import keyformat

random_parts = st.text(alphabet=keyformat.ALPHABET, min_size=keyformat.RANDOM_LEN, max_size=keyformat.RANDOM_LEN)


@given(random_parts)
def test_checksum_accepts_every_minted_key(random_part: str) -> None:
    assert keyformat.well_formed(keyformat.PREFIX + random_part + keyformat.checksum(random_part))


@given(random_parts, st.integers(min_value=0, max_value=keyformat.KEY_LEN - 1), st.characters())
def test_checksum_rejects_every_single_character_change(random_part: str, position: int, char: str) -> None:
    key = keyformat.PREFIX + random_part + keyformat.checksum(random_part)
    changed = key[:position] + char + key[position + 1 :]
    if changed != key:
        assert not keyformat.well_formed(changed)


@given(st.text(max_size=60))
def test_arbitrary_text_is_never_taken_for_a_key_by_accident(text: str) -> None:
    if keyformat.well_formed(text):  # only possible if the text is a correctly checksummed key
        body = text[len(keyformat.PREFIX) :]
        assert keyformat.checksum(body[: keyformat.RANDOM_LEN]) == body[keyformat.RANDOM_LEN :]
