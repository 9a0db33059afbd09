"""validate_key: the allowlist every artifact key passes before any I/O (RELIABILITY A1)."""

from __future__ import annotations

import unicodedata

import pytest

from kamado.artifacts.keys import MAX_KEY_BYTES, validate_key, validate_prefix
from kamado.core.errors import InvalidSpec
from kamado.testing.artifact_contract import KEY_ONLY_BAD, TRAVERSAL_CORPUS


@pytest.mark.parametrize(
    "key",
    [
        "a",
        "jobs/tj-42/output/model.tar.gz",
        "report (1).csv",
        "a b/c=d+e@f,g~h!i",
        ".hidden/.env.example",
        "données/été.csv",
        "日本語/ファイル.txt",
        "trees/" + "0" * 64 + ".manifest.json",
        ("x" * 200 + "/") * 5 + "x" * 19,  # exactly MAX_KEY_BYTES
    ],
)
def test_ordinary_keys_are_accepted_unchanged(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize("bad", TRAVERSAL_CORPUS + KEY_ONLY_BAD)
def test_corpus_is_refused_naming_the_field(bad: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        validate_key(bad, field="S3Uri")
    assert err.value.http_status == 400
    assert err.value.message.startswith("S3Uri ")
    assert "e.g. 'jobs/tj-42/output/model.tar.gz'" in err.value.message  # says how to fix it
    assert err.value.details == [{"field": "S3Uri", "message": err.value.details[0]["message"]}]


def test_encoded_traversal_is_named_as_such() -> None:
    with pytest.raises(InvalidSpec, match=r"percent-decodes to '\.\./\.\./etc/passwd'"):
        validate_key("..%2f..%2fetc%2fpasswd")
    with pytest.raises(InvalidSpec, match=r"percent-decodes to '\.\./'"):
        validate_key("%252e%252e%252f")  # double-encoded: decoded until stable
    with pytest.raises(InvalidSpec, match="not URL-encoded"):
        validate_key("100%25 done")  # encoded but harmless: still refused, keys are literal


def test_lookalike_dots_are_named() -> None:
    with pytest.raises(InvalidSpec, match=r"U\+2024.*look-alike of '\.'"):
        validate_key("a/\u2024\u2024/b")
    with pytest.raises(InvalidSpec, match=r"U\+FF0E"):
        validate_key("a/\uff0e\uff0e/b")


def test_length_is_counted_in_utf8_bytes() -> None:
    key = ("é" * 100 + "/") * 5 + "é" * 9 + "x"  # 5 * 201 + 19 = 1024 bytes, 515 characters
    assert len(key.encode()) == MAX_KEY_BYTES
    assert validate_key(key) == key
    with pytest.raises(InvalidSpec, match="1024 bytes"):
        validate_key(key + "x")
    with pytest.raises(InvalidSpec, match="255 bytes"):
        validate_key("a/" + "é" * 128)


def test_result_is_nfc() -> None:
    nfd = unicodedata.normalize("NFD", "café.txt")
    assert validate_key(nfd) == unicodedata.normalize("NFC", "café.txt")


@pytest.mark.parametrize("value", [None, 3, b"a/b", ["a"]])
def test_non_strings_are_refused(value: object) -> None:
    with pytest.raises(InvalidSpec, match="must be a string"):
        validate_key(value)  # type: ignore[arg-type]


def test_messages_escape_control_characters_and_stay_short() -> None:
    with pytest.raises(InvalidSpec) as err:
        validate_key("\x1b[31m" + "x" * 5000)
    assert "\x1b" not in err.value.message
    assert len(err.value.message) < 400


def test_no_accepted_character_normalises_to_a_separator_or_dot() -> None:
    """Exhaustive over the BMP: whatever passes cannot become '.', '/' or '\\' under NFKC."""
    for cp in range(0x80, 0x10000):
        ch = chr(cp)
        try:
            validate_key(f"a{ch}b")
        except InvalidSpec:
            continue
        compat = unicodedata.normalize("NFKC", ch)
        assert not set(compat) & set("./\\%#?:"), f"U+{cp:04X} normalises to {compat!r}"


def test_prefixes_allow_empty_and_one_trailing_slash() -> None:
    assert validate_prefix("") == ""
    assert validate_prefix("a/b/") == "a/b"
    assert validate_prefix("a/b") == "a/b"
    for bad in ("/", "a//", "../", "a/../"):
        with pytest.raises(InvalidSpec) as err:
            validate_prefix(bad)
        assert err.value.message.startswith("prefix ")
