"""The scrubber every server-supplied string goes through (jmigrate/encoders/secrets.py), as a property:
whatever a server wraps around the key, cuts off or breaks up, no piece of it of MIN_PIECE characters
or more survives, and text without the key is left as it was."""

from __future__ import annotations

import logging
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from jmigrate.encoders.secrets import MASK, MIN_PIECE, clean_server_text, remember, scrub

# Keys as the API client accepts them (printable ASCII, no space); '*' left out so the mask itself
# cannot form a piece of the key.
KEY_CHARS = "".join(c for c in string.printable if "!" <= c <= "~" and c != "*")
keys = st.text(KEY_CHARS, min_size=MIN_PIECE, max_size=64)
noise = st.text(max_size=40)


def pieces(key: str) -> set[str]:
    return {key[i:i + MIN_PIECE] for i in range(len(key) - MIN_PIECE + 1)}


def survivors(text: str, key: str) -> list[str]:
    return [p for p in pieces(key) if p in text]


@settings(max_examples=300, deadline=None)
@given(key=keys, parts=st.lists(st.tuples(noise, st.integers(0, 64), st.integers(0, 64)), max_size=5),
       tail=noise)
def test_no_piece_of_the_key_survives_whatever_surrounds_or_cuts_it(
        key: str, parts: list[tuple[str, int, int]], tail: str) -> None:
    text = "".join(pre + key[min(a, b):max(a, b)] for pre, a, b in parts) + key + tail
    assert survivors(scrub(text, [key]), key) == []


@settings(max_examples=200, deadline=None)
@given(key=keys, before=noise, after=noise, limit=st.integers(0, 120))
def test_cutting_happens_after_scrubbing(key: str, before: str, after: str, limit: int) -> None:
    out = clean_server_text(before + key + after, [key], limit)
    assert len(out) <= max(limit, 3) and survivors(out, key) == []
    assert survivors(out.replace(" ", ""), key) == []


@given(text=st.text(string.ascii_lowercase + " .,:", max_size=200))
def test_text_without_the_key_is_unchanged(text: str) -> None:
    assert scrub(text, ["jina_SECRETKEY_deadbeef0123456789"]) == text


def test_the_key_and_its_pieces_are_masked_in_place() -> None:
    key = "jina_SECRETKEY_deadbeef0123456789"
    assert scrub(f"key {key} revoked", [key]) == f"key {MASK} revoked"
    assert scrub(f"key {key[:-4]}... revoked", [key]) == f"key {MASK}... revoked"
    assert scrub(f"a {key[:16]} b {key[16:]}", [key]) == f"a {MASK} b {MASK}"
    assert scrub("jina_ is the public prefix", [key]) == "jina_ is the public prefix"


def test_http_stack_log_records_are_scrubbed(caplog) -> None:  # type: ignore[no-untyped-def]
    key = "jina_LOGGEDKEY_0123456789abcdef"
    remember(key)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("httpcore.http11").debug("headers=%r", [(b"X-Echo", f"Bearer {key}".encode())])
        logging.getLogger("httpx").info('HTTP Request: POST "HTTP/1.1 503 %s"', key[:20])
    assert key[:MIN_PIECE] not in caplog.text and caplog.text.count(MASK) == 2


def test_a_huge_server_string_is_scrubbed_where_it_survives_the_cut() -> None:
    key = "jina_SECRETKEY_deadbeef0123456789"
    text = "x" * (500 - len(key) + 1) + key + "y" * 5_000_000
    out = clean_server_text(text, [key], 500)
    assert len(out) == 500 and survivors(out, key) == [] and out.endswith("...")
