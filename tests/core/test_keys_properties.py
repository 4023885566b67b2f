"""Property tests of the key format: the checksum accepts every key we could mint and rejects every
single-character change."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from eventplane import keys

random_parts = st.text(alphabet=keys.ALPHABET, min_size=keys.RANDOM_LEN, max_size=keys.RANDOM_LEN)


@given(random_parts)
def test_checksum_accepts_every_minted_key(random_part: str) -> None:
    assert keys.well_formed(keys.PREFIX + random_part + keys.checksum(random_part))


@given(random_parts, st.integers(min_value=0, max_value=keys.KEY_LEN - 1), st.characters())
def test_checksum_rejects_every_single_character_change(random_part: str, position: int, char: str) -> None:
    key = keys.PREFIX + random_part + keys.checksum(random_part)
    changed = key[:position] + char + key[position + 1 :]
    if changed != key:
        assert not keys.well_formed(changed)


@given(st.text(max_size=60))
def test_arbitrary_text_is_never_taken_for_a_key_by_accident(text: str) -> None:
    if keys.well_formed(text):  # only possible if the text is a correctly checksummed key
        body = text[len(keys.PREFIX) :]
        assert keys.checksum(body[: keys.RANDOM_LEN]) == body[keys.RANDOM_LEN :]
