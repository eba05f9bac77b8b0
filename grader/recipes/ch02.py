"""Chapter 2 recipes: run the student's tokenizers, dataset and data loader on plain-data inputs.

Tokenizers other than the one being graded (the GPT-2 BPE tokenizer a dataset is built with) come
from ``reference.ch02``, so a mistake elsewhere cannot fail the item under test.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from grader.recipes import Impl, recipe
from grader.recipes.support import get_tokenizer


@recipe("ch02.tokenizer")
def tokenizer(impl: Impl, name: str, vocab: dict[str, int], encode: Sequence[str] = (),
              decode: Sequence[list[int]] = ()) -> dict[str, Any]:
    """Build ``name(vocab)``; encode each text, decode each id list, and round-trip each text.

    A ``KeyError`` while encoding is returned as ``{"error": ...}`` for that text (V1 may raise it
    for unknown words; V2 must not), so the trusted side can name the mistake.
    """
    tok = impl.attr("ch02", name)(dict(vocab))
    encoded: list[Any] = []
    roundtrip: list[Any] = []
    for text in encode:
        try:
            ids = tok.encode(text)
        except KeyError as exc:
            encoded.append({"error": "KeyError", "message": str(exc)})
            roundtrip.append(None)
            continue
        encoded.append([int(i) for i in ids] if isinstance(ids, (list, tuple)) else ids)
        roundtrip.append(tok.decode(ids))
    decoded = [tok.decode(list(ids)) for ids in decode]
    return {"encoded": encoded, "decoded": decoded, "roundtrip": roundtrip,
            "str_to_int": getattr(tok, "str_to_int", None), "int_to_str": getattr(tok, "int_to_str", None)}


@recipe("ch02.dataset")
def dataset(impl: Impl, txt: str, max_length: int, stride: int, tokenizer: str = "gpt2") -> dict[str, Any]:
    """Build the student's ``GPTDatasetV1`` with a reference tokenizer; return its length and items."""
    tok = get_tokenizer(tokenizer)
    try:
        ds = impl.attr("ch02", "GPTDatasetV1")(txt, tok, max_length, stride)
    except ValueError as exc:
        if "special token" in str(exc):
            return {"error": "disallowed_special", "message": str(exc)}
        raise
    n = len(ds)
    items = [ds[i] for i in range(n)]
    return {"len": n, "items": [list(item) if isinstance(item, tuple) else item for item in items]}


@recipe("ch02.dataloader")
def dataloader(impl: Impl, txt: str, kwargs: dict[str, Any], seed: int = 0,
               max_batches: int = 64) -> dict[str, Any]:
    """Call ``create_dataloader_v1(txt, **kwargs)``, iterate it once after seeding, return batches."""
    from torch.utils.data import DataLoader

    loader = impl.attr("ch02", "create_dataloader_v1")(txt, **kwargs)
    if not isinstance(loader, DataLoader):
        raise TypeError(f"create_dataloader_v1 should return a torch DataLoader, got {type(loader).__name__}")
    torch.manual_seed(seed)
    batches = []
    for i, batch in enumerate(loader):
        if i >= max_batches:
            break
        batches.append(list(batch) if isinstance(batch, (tuple, list)) else batch)
    return {"batches": batches, "batch_size": loader.batch_size, "drop_last": loader.drop_last,
            "num_workers": loader.num_workers, "sampler": type(loader.sampler).__name__,
            "dataset_len": len(loader.dataset)}  # type: ignore[arg-type]
