"""Chapter 6 (classification fine-tuning): reference and model solutions, same checks.

The SMS spam data is not shipped, so CSV files are written here; the GPT model comes from the
reference chapter 4 (only chapter 6's code is under test). Training runs use a tiny model with a
character-level tokenizer and a 97-token vocabulary so they take a second or two.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

from reference.ch04 import GPT_CONFIG_124M, GPTModel
from tests.helpers import IMPLS, TINY_CFG, load



class CharTokenizer:
    """ids 1..96 for printable characters; 0 is free for padding."""

    def encode(self, text: str) -> list[int]:
        return [(ord(c) - 31) % 96 + 1 for c in text]


class ParityModel(nn.Module):
    """Logits that favour class ``token_id % 2`` at every position (no learning needed)."""

    def __init__(self, context_length: int = 8) -> None:
        super().__init__()
        self.pos_emb = nn.Embedding(context_length, 32)  # shape[1] (32) != context length (8)
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.clone())
        assert x.shape[1] <= self.pos_emb.weight.shape[0], "input longer than the context"
        return nn.functional.one_hot(x % 2, num_classes=2).float() * 4.0  # (b, n, 2)


def write_csv(path: Path, rows: list[tuple[int, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["Label", "Text"])
        writer.writerows(rows)
    return path


def sms_rows(n_ham: int, n_spam: int) -> list[dict[str, Any]]:
    rows = [{"Label": "ham", "Text": f"ham message {i}"} for i in range(n_ham)]
    rows += [{"Label": "spam", "Text": f"WIN cash {i}"} for i in range(n_spam)]
    # interleave deterministically so the classes are not in blocks
    return sorted(rows, key=lambda r: (r["Text"].__len__() * 31 + ord(r["Text"][-1])) % 7)


# ---- 6.2 balancing and splitting ------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_create_balanced_dataset(impl: str) -> None:
    ch06 = load(impl, "ch06")
    rows = sms_rows(40, 7)
    balanced = ch06.create_balanced_dataset(rows)
    labels = [r["Label"] for r in balanced]
    assert labels.count("spam") == 7 and labels.count("ham") == 7
    # ham sample first, then every spam row in its original order
    assert labels == ["ham"] * 7 + ["spam"] * 7
    assert balanced[7:] == [r for r in rows if r["Label"] == "spam"]
    ham_texts = [r["Text"] for r in balanced[:7]]
    assert len(set(ham_texts)) == 7
    assert set(ham_texts) <= {r["Text"] for r in rows if r["Label"] == "ham"}
    # deterministic for a seed, and the seed matters
    assert ch06.create_balanced_dataset(rows) == balanced
    assert ch06.create_balanced_dataset(iter(rows), seed=123) == balanced
    assert any(ch06.create_balanced_dataset(rows, seed=s) != balanced for s in range(1, 5))


@pytest.mark.parametrize("impl", IMPLS)
def test_create_balanced_dataset_needs_enough_ham(impl: str) -> None:
    ch06 = load(impl, "ch06")
    with pytest.raises(ValueError):
        ch06.create_balanced_dataset(sms_rows(2, 5))


def test_balancing_agrees_between_implementations() -> None:
    rows = sms_rows(30, 9)
    ref, sol = load("reference", "ch06"), load("solutions", "ch06")
    assert ref.create_balanced_dataset(rows, seed=5) == sol.create_balanced_dataset(rows, seed=5)
    assert ref.random_split(rows, 0.7, 0.1, seed=5) == sol.random_split(rows, 0.7, 0.1, seed=5)


@pytest.mark.parametrize("impl", IMPLS)
def test_random_split_sizes_and_permutation(impl: str) -> None:
    ch06 = load(impl, "ch06")
    rows = [{"Label": i % 2, "Text": str(i)} for i in range(1494)]  # the book's balanced size
    original = [dict(r) for r in rows]
    train, val, test = ch06.random_split(rows, 0.7, 0.1)
    assert (len(train), len(val), len(test)) == (1045, 149, 300)  # the book's 70/10/20 split
    assert sorted(r["Text"] for r in train + val + test) == sorted(r["Text"] for r in rows)
    assert rows == original  # input untouched
    assert [r["Text"] for r in train[:10]] != [str(i) for i in range(10)]  # shuffled
    assert ch06.random_split(rows, 0.7, 0.1) == (train, val, test)
    assert ch06.random_split(rows, 0.7, 0.1, seed=1) != (train, val, test)


# ---- 6.3 SpamDataset --------------------------------------------------------------------------


@pytest.fixture()
def spam_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "train.csv", [
        (0, "Hi, are we still on for lunch?"),
        (1, 'WINNER!! Claim your "free" prize, text 8007 now'),
        (0, "ok"),
        (1, "Call now\nto win"),
    ])


@pytest.mark.parametrize("impl", IMPLS)
def test_spam_dataset_pads_to_longest(impl: str, spam_csv: Path) -> None:
    import tiktoken

    tok = tiktoken.get_encoding("gpt2")
    ds = load(impl, "ch06").SpamDataset(spam_csv, tok)
    texts = ["Hi, are we still on for lunch?", 'WINNER!! Claim your "free" prize, text 8007 now',
             "ok", "Call now\nto win"]
    encoded = [tok.encode(t) for t in texts]
    longest = max(len(e) for e in encoded)
    assert ds.max_length == longest
    assert len(ds) == 4
    for i, (ids, label) in enumerate(ds):
        assert ids.dtype == torch.long and label.dtype == torch.long
        assert ids.shape == (longest,) and label.shape == ()
        assert ids.tolist() == encoded[i] + [50256] * (longest - len(encoded[i]))
        assert label.item() == [0, 1, 0, 1][i]
    # the default collate stacks the fixed-length items
    inputs, labels = next(iter(DataLoader(ds, batch_size=4)))
    assert inputs.shape == (4, longest) and labels.tolist() == [0, 1, 0, 1]


@pytest.mark.parametrize("impl", IMPLS)
def test_spam_dataset_truncates_and_uses_pad_id(impl: str, spam_csv: Path) -> None:
    ds = load(impl, "ch06").SpamDataset(spam_csv, CharTokenizer(), max_length=5, pad_token_id=0)
    assert ds.max_length == 5
    ids = [ds[i][0].tolist() for i in range(len(ds))]
    assert ids[0] == CharTokenizer().encode("Hi, a")
    assert ids[2] == CharTokenizer().encode("ok") + [0, 0, 0]


@pytest.mark.parametrize("impl", IMPLS)
def test_exercise_6_1_pads_to_the_context_length(impl: str, spam_csv: Path) -> None:
    ds = load(impl, "ch06").exercise_6_1_full_context_dataset(spam_csv, CharTokenizer(), 64)
    assert ds.max_length == 64
    assert all(ds[i][0].shape == (64,) for i in range(len(ds)))
    assert ds[2][0].tolist() == CharTokenizer().encode("ok") + [50256] * 62
    short = load(impl, "ch06").exercise_6_1_full_context_dataset(spam_csv, CharTokenizer(), 4)
    assert short[1][0].tolist() == CharTokenizer().encode("WINN")


# ---- 6.5 the classification head --------------------------------------------------------------


def _trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("impl", IMPLS)
def test_prepare_classifier_book_count(impl: str) -> None:
    ch06 = load(impl, "ch06")
    cfg = {**GPT_CONFIG_124M, "drop_rate": 0.0, "qkv_bias": True}  # the book's BASE_CONFIG
    with torch.device("meta"):
        model = GPTModel(cfg)
        torch.manual_seed(123)
        out = ch06.prepare_classifier(model)
    assert out is model
    assert isinstance(model.out_head, nn.Linear)
    assert (model.out_head.in_features, model.out_head.out_features) == (768, 2)
    assert model.out_head.bias is not None
    assert model.out_head.weight.device.type == "meta"
    assert _trainable(model) == 7_090_946
    trainable_names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all(n.startswith(("trf_blocks.11.", "final_norm.", "out_head.")) for n in trainable_names)
    assert {"out_head.weight", "out_head.bias", "final_norm.scale", "final_norm.shift",
            "trf_blocks.11.att.W_query.weight"} <= trainable_names
    # exercise 6.2: everything trainable again
    assert ch06.exercise_6_2_make_all_trainable(model) is model
    assert _trainable(model) == sum(p.numel() for p in model.parameters())


def test_prepare_classifier_same_seeded_head() -> None:
    heads = []
    for impl in IMPLS:
        torch.manual_seed(1)
        model = GPTModel(TINY_CFG)
        torch.manual_seed(123)
        heads.append(load(impl, "ch06").prepare_classifier(model, num_classes=3).out_head)
    assert heads[0].weight.shape == (3, 32)
    assert torch.equal(heads[0].weight, heads[1].weight) and torch.equal(heads[0].bias, heads[1].bias)


# ---- 6.6 loss and accuracy --------------------------------------------------------------------


def parity_batches() -> tuple[torch.Tensor, torch.Tensor]:
    # last token parity = label; first token parity = 1 - label
    inputs = torch.tensor([[2, 4, 6, 3], [1, 5, 7, 8], [4, 3, 3, 5], [3, 1, 1, 2], [6, 2, 2, 7]])
    labels = torch.tensor([1, 0, 1, 0, 1])
    return inputs, labels


@pytest.mark.parametrize("impl", IMPLS)
def test_last_token_versus_first_token_loss(impl: str) -> None:
    ch06 = load(impl, "ch06")
    inputs, labels = parity_batches()
    model = ParityModel()
    last = ch06.calc_loss_batch(inputs, labels, model, "cpu")
    first = ch06.exercise_6_3_first_token_loss(inputs, labels, model, "cpu")
    good = nn.functional.cross_entropy(torch.tensor([[0.0, 4.0]]), torch.tensor([1])).item()
    bad = nn.functional.cross_entropy(torch.tensor([[4.0, 0.0]]), torch.tensor([1])).item()
    assert last.shape == () and first.shape == ()
    assert last.item() == pytest.approx(good)
    assert first.item() == pytest.approx(bad)


@pytest.mark.parametrize("impl", IMPLS)
def test_loss_batch_has_gradients_on_a_gpt(impl: str) -> None:
    ch06 = load(impl, "ch06")
    torch.manual_seed(0)
    model = ch06.prepare_classifier(GPTModel(TINY_CFG))
    inputs = torch.randint(0, 97, (3, 10))
    labels = torch.tensor([0, 1, 1])
    loss = ch06.calc_loss_batch(inputs, labels, model, torch.device("cpu"))
    expected = nn.functional.cross_entropy(model(inputs)[:, -1, :], labels)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    assert model.out_head.weight.grad is not None
    assert model.tok_emb.weight.grad is None  # frozen


@pytest.mark.parametrize("impl", IMPLS)
def test_accuracy_and_loss_loaders(impl: str) -> None:
    ch06 = load(impl, "ch06")
    inputs, labels = parity_batches()
    labels = labels.clone()
    labels[4] = 0  # now 4 of 5 right
    loader = DataLoader(TensorDataset(inputs, labels), batch_size=2)  # batches of 2, 2, 1
    model = ParityModel()
    model.train()
    assert ch06.calc_accuracy_loader(loader, model, "cpu") == pytest.approx(4 / 5)
    assert model.training  # mode restored
    model.eval()
    assert ch06.calc_accuracy_loader(loader, model, "cpu", num_batches=2) == 1.0
    assert not model.training
    assert ch06.calc_accuracy_loader(loader, model, "cpu", num_batches=99) == pytest.approx(4 / 5)

    good = nn.functional.cross_entropy(torch.tensor([[0.0, 4.0]]), torch.tensor([1])).item()
    bad = nn.functional.cross_entropy(torch.tensor([[4.0, 0.0]]), torch.tensor([1])).item()
    # mean over batches (not examples): (good, good, bad) batch losses
    assert ch06.calc_loss_loader(loader, model, "cpu") == pytest.approx((2 * good + bad) / 3)
    assert ch06.calc_loss_loader(loader, model, "cpu", num_batches=1) == pytest.approx(good)
    assert ch06.calc_loss_loader(loader, model, "cpu", num_batches=10) == pytest.approx(
        (2 * good + bad) / 3)

    empty = DataLoader(TensorDataset(inputs[:0], labels[:0]), batch_size=2)
    assert ch06.calc_loss_loader(empty, model, "cpu") != ch06.calc_loss_loader(empty, model, "cpu")
    assert ch06.calc_accuracy_loader(empty, model, "cpu") != ch06.calc_accuracy_loader(
        empty, model, "cpu")  # nan

    model.eval()
    train_loss, val_loss = ch06.evaluate_model(model, loader, loader, "cpu", eval_iter=1)
    assert (train_loss, val_loss) == (pytest.approx(good), pytest.approx(good))
    assert model.training


# ---- 6.7 fine-tuning --------------------------------------------------------------------------


def tiny_spam_loaders(tmp_path: Path, ch06: Any) -> tuple[DataLoader, DataLoader]:
    spam = ["WIN cash now!!", "FREE prize txt", "Claim $$$ now", "URGENT: you won",
            "WIN a car!!!", "Free $$ call"]
    ham = ["see you at 5", "ok, lunch?", "call mum later", "running late",
           "how was work", "ttyl, love u"]
    rows = [(1, t) for t in spam] + [(0, t) for t in ham]
    rows = [rows[i] for i in (0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11)]
    train_csv = write_csv(tmp_path / "train.csv", rows)
    val_csv = write_csv(tmp_path / "val.csv", rows[:4])
    train_ds = ch06.SpamDataset(train_csv, CharTokenizer(), max_length=16, pad_token_id=0)
    val_ds = ch06.SpamDataset(val_csv, CharTokenizer(), max_length=16, pad_token_id=0)
    train_loader = DataLoader(train_ds, batch_size=4, shuffle=True, drop_last=True,
                              generator=torch.Generator().manual_seed(0))
    return train_loader, DataLoader(val_ds, batch_size=4)


@pytest.mark.parametrize("impl", IMPLS)
def test_train_classifier_simple_learns(impl: str, tmp_path: Path) -> None:
    ch06 = load(impl, "ch06")
    train_loader, val_loader = tiny_spam_loaders(tmp_path, ch06)
    torch.manual_seed(123)
    model = GPTModel(TINY_CFG)
    torch.manual_seed(123)
    ch06.exercise_6_2_make_all_trainable(ch06.prepare_classifier(model))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
    result = ch06.train_classifier_simple(model, train_loader, val_loader, optimizer, "cpu",
                                          num_epochs=8, eval_freq=5, eval_iter=3)
    train_losses, val_losses, train_accs, val_accs, examples_seen = result
    steps = 8 * 3
    assert examples_seen == steps * 4
    assert len(train_losses) == len(val_losses) == len(range(0, steps, 5))  # steps 0, 5, ..., 20
    assert len(train_accs) == len(val_accs) == 8
    assert train_losses[-1] < 0.5 * train_losses[0]
    assert train_accs[-1] == 1.0
    assert model.training


def test_training_agrees_between_implementations(tmp_path: Path) -> None:
    results = []
    for impl in IMPLS:
        ch06 = load(impl, "ch06")
        train_loader, val_loader = tiny_spam_loaders(tmp_path, ch06)
        torch.manual_seed(7)
        model = ch06.prepare_classifier(GPTModel(TINY_CFG))
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        results.append(ch06.train_classifier_simple(model, train_loader, val_loader, optimizer,
                                                    "cpu", num_epochs=2, eval_freq=2, eval_iter=2))
    (ref_tl, ref_vl, ref_ta, ref_va, ref_n), (sol_tl, sol_vl, sol_ta, sol_va, sol_n) = results
    assert ref_n == sol_n == 24
    assert ref_tl == pytest.approx(sol_tl, rel=1e-5) and ref_vl == pytest.approx(sol_vl, rel=1e-5)
    assert ref_ta == sol_ta and ref_va == sol_va


# ---- 6.8 classify_review ----------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_classify_review_padding_and_truncation(impl: str) -> None:
    ch06 = load(impl, "ch06")
    tok = CharTokenizer()
    model = ParityModel(context_length=8)
    model.train()
    assert tok.encode("ab") == [67, 68]  # "a" odd: class 1 wins; "b" even: class 0 wins
    assert ch06.classify_review("ba", model, tok, "cpu") == "spam"
    assert model.seen[-1].tolist() == [tok.encode("ba")]
    assert not model.training
    assert ch06.classify_review("ab", model, tok, "cpu") == "not spam"
    # padded to max_length with the pad id: the last token is then the pad
    assert ch06.classify_review("ba", model, tok, "cpu", max_length=5, pad_token_id=2) == "not spam"
    assert model.seen[-1].tolist() == [tok.encode("ba") + [2, 2, 2]]
    assert ch06.classify_review("ab", model, tok, "cpu", max_length=4, pad_token_id=3) == "spam"
    # longer than the context length (pos_emb.weight.shape[0] == 8, shape[1] == 32): truncated
    long_text = "abcdefghijklmnopqrstuvwxyz"
    ch06.classify_review(long_text, model, tok, "cpu")
    assert model.seen[-1].tolist() == [tok.encode(long_text[:8])]
    ch06.classify_review(long_text, model, tok, "cpu", max_length=20)
    assert model.seen[-1].shape == (1, 8)
    ch06.classify_review(long_text, model, tok, "cpu", max_length=3)
    assert model.seen[-1].tolist() == [tok.encode("abc")]
    ch06.classify_review("a", model, tok, "cpu", max_length=20, pad_token_id=0)
    assert model.seen[-1].tolist() == [tok.encode("a") + [0] * 7]


@pytest.mark.parametrize("impl", IMPLS)
def test_classify_review_with_a_gpt(impl: str) -> None:
    import tiktoken

    ch06 = load(impl, "ch06")
    torch.manual_seed(0)
    cfg = {**TINY_CFG, "vocab_size": 50257, "emb_dim": 16, "context_length": 12}
    model = ch06.prepare_classifier(GPTModel(cfg))
    tok = tiktoken.get_encoding("gpt2")
    text = "You are a winner you have been specially selected to receive $1000 cash now"
    answer = ch06.classify_review(text, model, tok, "cpu", max_length=30)
    ids = tok.encode(text)[:12]
    with torch.no_grad():
        expected = model(torch.tensor([ids]))[0, -1].argmax().item()
    assert answer == ("spam" if expected == 1 else "not spam")
