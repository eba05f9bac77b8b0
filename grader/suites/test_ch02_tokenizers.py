"""Hidden checks for ch02.SimpleTokenizerV1 and ch02.SimpleTokenizerV2 (book sections 2.3-2.4).

Vocabularies are built here with the reference's ``build_vocab`` from a short text of our own.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from grader.checking.compare import expect_equal
from grader.checking.declare import component
from grader.checking.failures import GradeFailure
from grader.messages import phrase
from grader.checking.mistakes.ch02_data import decode_keeping_spaces
from reference.ch02 import build_vocab, preprocess

SIMPLE_TOKENIZER_V1 = component("ch02", "SimpleTokenizerV1", section="2.3",
                                title="A regex tokenizer with a fixed vocabulary", points=2)
SIMPLE_TOKENIZER_V2 = component("ch02", "SimpleTokenizerV2", section="2.4", title="Unknown words and <|endoftext|>",
                                points=2)

TEXT = ("The old keeper climbed the stairs each evening. He lit the lamp, wiped the glass, and watched "
        "the ships -- small and large -- pass in the dark. \"Is anyone out there?\" he asked the sea; "
        "the sea (as always) did not answer: it never did! The keeper's cat_slept.")
KNOWN = ["He lit the lamp, and the ships pass in the dark.",
         "\"Is anyone out there?\" he asked -- the sea did not answer!",
         "The keeper's cat_slept; it never did (as always): evening."]
UNKNOWN = "The keeper sang a song to the whales, and the sea did answer."
EOT = "<|endoftext|>"
JOINED = f"He lit the lamp. {EOT} The sea did not answer."
# A vocabulary with ids that are not 0..n-1 in sorted order: a tokenizer must use the one it is given.
SHUFFLED_VOCAB = {tok: 7 + 3 * i for i, tok in enumerate(reversed(list(build_vocab("the sea, the dark. ships!"))))}

VOCAB = build_vocab(TEXT)


def _tok(student: Any, ref: Any, name: str, vocab: dict[str, int], *, encode: list[str] = (),
         decode: list[list[int]] = ()) -> tuple[dict[str, Any], dict[str, Any]]:
    inputs = dict(name=name, vocab=vocab, encode=list(encode), decode=[list(d) for d in decode])
    expected = ref.run("ch02.tokenizer", **inputs)
    got = student.run("ch02.tokenizer", what=name, **inputs)
    return got, expected


def _expect_encoded(got: dict[str, Any], expected: dict[str, Any], name: str, texts: list[str],
                    vocab: dict[str, int]) -> None:
    unk = vocab.get("<|unk|>")
    for text, g, e in zip(texts, got["encoded"], expected["encoded"]):
        if isinstance(g, dict) and not isinstance(e, dict):
            diagnosis = "ch02_unknown_not_mapped" if name == "SimpleTokenizerV2" else None
            raise GradeFailure("ch02.encode_raised", what=f"{name}.encode", text=text,
                               message=g.get("message", ""), diagnosis=diagnosis)
        diagnosis = None
        if (unk is not None and isinstance(g, list) and isinstance(e, list)
                and [i for i in e if i != unk] == g and len(g) < len(e)):
            diagnosis = "ch02_unknown_words_dropped"
        expect_equal(g, e, f"{name}.encode({text!r})", diagnosis=diagnosis)


def _printed_v1_decode(vocab: dict[str, int], ids: list[int]) -> str:
    """``SimpleTokenizerV1.decode`` as printed: its regex has no ``:`` or ``;`` (BOOK_FACTS), so a
    space stays before those two. The book's convention, accepted and reported."""
    inverse = {i: s for s, i in vocab.items()}
    return re.sub(r'\s+([,.?!"()\'])', r"\1", " ".join(inverse[i] for i in ids))


def _expect_decoded(got_texts: list[Any], expected_texts: list[str], name: str, ids: list[list[int]],
                    vocab: dict[str, int], record: Any = None) -> None:
    """Decoded texts equal the reference's; with ``record`` (V1) the printed regex is accepted too."""
    inverse = {i: s for s, i in vocab.items()}
    for i, (g, e) in enumerate(zip(got_texts, expected_texts)):
        if record is not None and g != e and g == _printed_v1_decode(vocab, ids[i]):
            record("convention", phrase("ch02.convention_printed_decode"))
            continue
        diagnosis = None
        if g == decode_keeping_spaces(inverse, ids[i]) and g != e:
            diagnosis = "ch02_decode_space_before_punctuation"
        expect_equal(g, e, f"{name}.decode({ids[i]!r})", diagnosis=diagnosis)


def _expect_vocab_attributes(got: dict[str, Any], vocab: dict[str, int], name: str) -> None:
    expect_equal(got["str_to_int"], vocab, f"{name}.str_to_int")
    expect_equal(got["int_to_str"], {i: s for s, i in vocab.items()}, f"{name}.int_to_str")


# ---- SimpleTokenizerV1 --------------------------------------------------------------------


@SIMPLE_TOKENIZER_V1
def test_v1_encode_known_text(student, ref):
    got, expected = _tok(student, ref, "SimpleTokenizerV1", VOCAB, encode=KNOWN)
    _expect_encoded(got, expected, "SimpleTokenizerV1", KNOWN, VOCAB)


@SIMPLE_TOKENIZER_V1
def test_v1_decode_removes_space_before_punctuation(student, ref, record_property):
    ids = [[VOCAB[t] for t in preprocess(text)] for text in KNOWN]
    got, expected = _tok(student, ref, "SimpleTokenizerV1", VOCAB, decode=ids)
    _expect_decoded(got["decoded"], expected["decoded"], "SimpleTokenizerV1", ids, VOCAB, record=record_property)


@SIMPLE_TOKENIZER_V1
def test_v1_round_trip(student, ref, record_property):
    got, expected = _tok(student, ref, "SimpleTokenizerV1", VOCAB, encode=[TEXT])
    _expect_encoded(got, expected, "SimpleTokenizerV1", [TEXT], VOCAB)
    if got["roundtrip"] != expected["roundtrip"] and got["roundtrip"] == [
            _printed_v1_decode(VOCAB, ids) for ids in expected["encoded"]]:
        record_property("convention", phrase("ch02.convention_printed_decode"))
        return
    expect_equal(got["roundtrip"], expected["roundtrip"], "SimpleTokenizerV1.decode(encode(text))")


@SIMPLE_TOKENIZER_V1
def test_v1_vocabulary_attributes(student, ref):
    got, _ = _tok(student, ref, "SimpleTokenizerV1", VOCAB)
    _expect_vocab_attributes(got, VOCAB, "SimpleTokenizerV1")


@SIMPLE_TOKENIZER_V1
def test_v1_uses_the_vocabulary_it_is_given(student, ref, record_property):
    texts = ["the dark sea, the ships!"]
    ids = [[SHUFFLED_VOCAB[t] for t in ["ships", ",", "the", "."]]]
    got, expected = _tok(student, ref, "SimpleTokenizerV1", SHUFFLED_VOCAB, encode=texts, decode=ids)
    _expect_encoded(got, expected, "SimpleTokenizerV1", texts, SHUFFLED_VOCAB)
    _expect_decoded(got["decoded"], expected["decoded"], "SimpleTokenizerV1", ids, SHUFFLED_VOCAB,
                    record=record_property)


# ---- SimpleTokenizerV2 --------------------------------------------------------------------


@SIMPLE_TOKENIZER_V2
def test_v2_encode_known_text(student, ref):
    got, expected = _tok(student, ref, "SimpleTokenizerV2", VOCAB, encode=KNOWN)
    _expect_encoded(got, expected, "SimpleTokenizerV2", KNOWN, VOCAB)


@SIMPLE_TOKENIZER_V2
def test_v2_unknown_words_become_unk(student, ref):
    got, expected = _tok(student, ref, "SimpleTokenizerV2", VOCAB, encode=[UNKNOWN])
    _expect_encoded(got, expected, "SimpleTokenizerV2", [UNKNOWN], VOCAB)


@SIMPLE_TOKENIZER_V2
def test_v2_endoftext_between_texts(student, ref):
    got, expected = _tok(student, ref, "SimpleTokenizerV2", VOCAB, encode=[JOINED, f"{UNKNOWN} {EOT} {KNOWN[0]}"])
    _expect_encoded(got, expected, "SimpleTokenizerV2", [JOINED, f"{UNKNOWN} {EOT} {KNOWN[0]}"], VOCAB)
    expect_equal(got["roundtrip"], expected["roundtrip"], "SimpleTokenizerV2.decode(encode(text))")


@SIMPLE_TOKENIZER_V2
def test_v2_decode_with_special_tokens(student, ref):
    unk, eot = VOCAB["<|unk|>"], VOCAB[EOT]
    ids = [[VOCAB["He"], unk, VOCAB["the"], VOCAB["lamp"], VOCAB["."], eot, VOCAB["The"], unk, VOCAB["?"]],
           [VOCAB[t] for t in preprocess(KNOWN[1])]]
    got, expected = _tok(student, ref, "SimpleTokenizerV2", VOCAB, decode=ids)
    _expect_decoded(got["decoded"], expected["decoded"], "SimpleTokenizerV2", ids, VOCAB)


@SIMPLE_TOKENIZER_V2
def test_v2_uses_the_vocabulary_it_is_given(student, ref):
    texts = ["the dark sea, the whales!"]
    got, expected = _tok(student, ref, "SimpleTokenizerV2", SHUFFLED_VOCAB, encode=texts)
    _expect_encoded(got, expected, "SimpleTokenizerV2", texts, SHUFFLED_VOCAB)
    _expect_vocab_attributes(got, SHUFFLED_VOCAB, "SimpleTokenizerV2")
