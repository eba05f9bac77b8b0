"""Chapter 7 (instruction fine-tuning): reference and model solutions, same checks.

Models come from the reference chapter 4 (only chapter 7's code is under test); generation and
LoRA come from each implementation's own chapter 5 and appendix E, as its chapter 7 imports them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import tiktoken
import torch
import torch.nn as nn

from reference.ch04 import GPT_CONFIG_124M, GPTModel
from tests.helpers import IMPLS, TINY_CFG, load


PREAMBLE = ("Below is an instruction that describes a task. Write a response that appropriately "
            "completes the request.")

ENTRY_WITH_INPUT = {"instruction": "Identify the correct spelling of the following word.",
                    "input": "Ocassion", "output": "The correct spelling is 'Occasion.'"}
ENTRY_NO_INPUT = {"instruction": "What is an antonym of 'complicated'?", "input": "",
                  "output": "An antonym of 'complicated' is 'simple'."}


@pytest.fixture(scope="module")
def tok() -> tiktoken.Encoding:
    return tiktoken.get_encoding("gpt2")


def synthetic_data(n: int) -> list[dict[str, str]]:
    return [{"instruction": f"Repeat the number {i}.", "input": "" if i % 3 else f"n={i}",
             "output": " ".join([str(i)] * (1 + i % 4))} for i in range(n)]


# ---- 7.2 prompts and splits ------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_format_input(impl: str) -> None:
    ch07 = load(impl, "ch07")
    assert ch07.format_input(ENTRY_WITH_INPUT) == (
        PREAMBLE + "\n\n### Instruction:\nIdentify the correct spelling of the following word."
        "\n\n### Input:\nOcassion")
    assert ch07.format_input(ENTRY_NO_INPUT) == (
        PREAMBLE + "\n\n### Instruction:\nWhat is an antonym of 'complicated'?")


@pytest.mark.parametrize("impl", IMPLS)
def test_format_input_phi(impl: str, tok: tiktoken.Encoding) -> None:
    ch07 = load(impl, "ch07")
    assert ch07.format_input_phi(ENTRY_WITH_INPUT) == (
        "<|user|>\nIdentify the correct spelling of the following word.\nOcassion")
    assert ch07.format_input_phi(ENTRY_NO_INPUT) == "<|user|>\nWhat is an antonym of 'complicated'?"
    assert ch07.PHI_RESPONSE_PREFIX == "\n<|assistant|>:\n"
    # "<|user|>" is plain text to GPT-2's tokenizer: 5 tokens
    assert tok.encode(ch07.format_input_phi(ENTRY_NO_INPUT))[:5] == [27, 91, 7220, 91, 29]


@pytest.mark.parametrize("impl", IMPLS)
def test_partition_data(impl: str) -> None:
    ch07 = load(impl, "ch07")
    data = synthetic_data(100)
    train, test, val = ch07.partition_data(data)
    assert (len(train), len(test), len(val)) == (85, 10, 5)
    assert train + test + val == data  # in order, nothing lost
    train, test, val = ch07.partition_data(data[:7], train_frac=0.5, test_frac=0.2)
    assert (len(train), len(test), len(val)) == (3, 1, 3)


@pytest.mark.parametrize("impl", IMPLS)
def test_book_instruction_data(impl: str, shared_data: Path) -> None:
    ch07 = load(impl, "ch07")
    data = json.loads((shared_data / "instruction-data.json").read_text(encoding="utf-8"))
    assert len(data) == 1100
    train, test, val = ch07.partition_data(data)
    assert (len(train), len(test), len(val)) == (935, 110, 55)
    assert train[50]["input"] == "Ocassion"
    assert ch07.format_input(train[50]) + ch07.RESPONSE_PREFIX + train[50]["output"] == (
        PREAMBLE + "\n\n### Instruction:\nIdentify the correct spelling of the following word."
        "\n\n### Input:\nOcassion\n\n### Response:\nThe correct spelling is 'Occasion.'")


# ---- 7.3 dataset and collate -----------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_instruction_dataset(impl: str, tok: tiktoken.Encoding) -> None:
    ch07 = load(impl, "ch07")
    ds = ch07.InstructionDataset([ENTRY_WITH_INPUT, ENTRY_NO_INPUT], tok)
    assert len(ds) == 2
    assert ds[0] == tok.encode(
        PREAMBLE + "\n\n### Instruction:\nIdentify the correct spelling of the following word."
        "\n\n### Input:\nOcassion\n\n### Response:\nThe correct spelling is 'Occasion.'")
    assert ds[1] == tok.encode(
        PREAMBLE + "\n\n### Instruction:\nWhat is an antonym of 'complicated'?"
        "\n\n### Response:\nAn antonym of 'complicated' is 'simple'.")


@pytest.mark.parametrize("impl", IMPLS)
def test_collate_book_example(impl: str) -> None:
    ch07 = load(impl, "ch07")
    batch = [[0, 1, 2, 3, 4], [5, 6], [7, 8, 9]]
    inputs, targets = ch07.custom_collate_fn(batch)
    assert inputs.tolist() == [[0, 1, 2, 3, 4], [5, 6, 50256, 50256, 50256],
                               [7, 8, 9, 50256, 50256]]
    assert targets.tolist() == [[1, 2, 3, 4, 50256], [6, 50256, -100, -100, -100],
                                [8, 9, 50256, -100, -100]]
    assert inputs.dtype == targets.dtype == torch.long
    assert batch == [[0, 1, 2, 3, 4], [5, 6], [7, 8, 9]]  # items not modified
    # truncation, other pad and ignore ids
    inputs, targets = ch07.custom_collate_fn(batch, pad_token_id=0, ignore_index=-1,
                                             allowed_max_length=3, device=torch.device("cpu"))
    assert inputs.tolist() == [[0, 1, 2], [5, 6, 0], [7, 8, 9]]
    assert targets.tolist() == [[1, 2, 3], [6, 0, -1], [8, 9, 0]]


@pytest.mark.parametrize("impl", IMPLS)
def test_collate_masked_targets_are_ignored_by_the_loss(impl: str) -> None:
    ch07 = load(impl, "ch07")
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 60000)
    _, targets = ch07.custom_collate_fn([[0, 1, 2, 3, 4], [5, 6], [7, 8, 9]])
    loss = nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
    keep = targets.flatten() != -100
    manual = nn.functional.cross_entropy(logits.flatten(0, 1)[keep], targets.flatten()[keep])
    assert keep.sum() == 10  # 5 + 2 + 3 real targets
    assert loss.item() == pytest.approx(manual.item())


@pytest.mark.parametrize("impl", IMPLS)
def test_masked_dataset_and_collate(impl: str, tok: tiktoken.Encoding) -> None:
    ch07 = load(impl, "ch07")
    batch = [(3, [0, 1, 2, 3, 4]), (1, [5, 6]), (2, [7, 8, 9])]
    inputs, targets = ch07.custom_collate_fn_masked(batch)
    assert inputs.tolist() == [[0, 1, 2, 3, 4], [5, 6, 50256, 50256, 50256],
                               [7, 8, 9, 50256, 50256]]
    assert targets.tolist() == [[-100, -100, 3, 4, 50256], [6, 50256, -100, -100, -100],
                                [-100, 9, 50256, -100, -100]]
    inputs, targets = ch07.custom_collate_fn_masked(batch, allowed_max_length=2)
    assert targets.tolist() == [[-100, -100], [6, 50256], [-100, 9]]

    data = [ENTRY_WITH_INPUT, ENTRY_NO_INPUT]
    masked = ch07.InstructionDatasetMasked(data, tok)
    plain = ch07.InstructionDataset(data, tok)
    assert len(masked) == 2
    for i, entry in enumerate(data):
        length, ids = masked[i]
        assert ids == plain[i]
        assert length == len(tok.encode(ch07.format_input(entry)))
    _, masked_targets = ch07.custom_collate_fn_masked([masked[0], masked[1]])
    _, plain_targets = ch07.custom_collate_fn([plain[0], plain[1]])
    for row, (length, _) in enumerate([masked[0], masked[1]]):
        assert (masked_targets[row, : length - 1] == -100).all()
        # from the response prefix on, the targets are the ordinary ones
        assert torch.equal(masked_targets[row, length - 1:], plain_targets[row, length - 1:])


@pytest.mark.parametrize("impl", IMPLS)
def test_exercise_7_3_loaders(impl: str, tok: tiktoken.Encoding) -> None:
    ch07 = load(impl, "ch07")
    data = synthetic_data(100)
    train_loader, val_loader, test_loader = ch07.exercise_7_3_prepare_loaders(
        data, tok, batch_size=8, allowed_max_length=40)
    assert (len(train_loader.dataset), len(val_loader.dataset), len(test_loader.dataset)) == (
        85, 5, 10)
    assert (len(train_loader), len(val_loader), len(test_loader)) == (10, 1, 2)  # drop_last train
    train_batches = list(train_loader)
    assert all(x.shape[0] == 8 and x.shape == y.shape and x.shape[1] <= 40
               for x, y in train_batches)
    assert any(x.shape[1] == 40 for x, _ in train_batches)  # long prompts got truncated
    # the training order is shuffled, deterministically from the seed
    order = _entry_numbers(train_batches, tok)
    assert len(order) == 80 and len(set(order)) == 80 and set(order) <= set(range(85))
    assert order != sorted(order)
    again = ch07.exercise_7_3_prepare_loaders(data, tok, allowed_max_length=40)[0]
    assert _entry_numbers(list(again), tok) == order
    other_seed = ch07.exercise_7_3_prepare_loaders(data, tok, allowed_max_length=40, seed=1)[0]
    assert _entry_numbers(list(other_seed), tok) != order
    # validation and test keep the data order (validation = the last 5 entries)
    val_x, val_y = next(iter(val_loader))
    expected = ch07.custom_collate_fn(
        [tok.encode(ch07.format_input(e) + ch07.RESPONSE_PREFIX + e["output"]) for e in data[95:]],
        allowed_max_length=40)
    assert torch.equal(val_x, expected[0]) and torch.equal(val_y, expected[1])
    assert [len(x) for x, _ in test_loader] == [8, 2]


def _entry_numbers(batches: list[tuple[torch.Tensor, torch.Tensor]],
                   tok: tiktoken.Encoding) -> list[int]:
    numbers = []
    for inputs, _ in batches:
        for row in inputs.tolist():
            match = re.search(r"Repeat the number (\d+)\.", tok.decode(row))
            assert match is not None
            numbers.append(int(match.group(1)))
    return numbers


def test_exercise_7_3_same_order_in_both_implementations(tok: tiktoken.Encoding) -> None:
    data = synthetic_data(40)
    batches = [next(iter(load(impl, "ch07").exercise_7_3_prepare_loaders(data, tok, seed=9)[0]))
               for impl in IMPLS]
    assert torch.equal(batches[0][0], batches[1][0]) and torch.equal(batches[0][1], batches[1][1])


# ---- 7.7 responses, 7.8 sampling and voting --------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_extract_response(impl: str) -> None:
    ch07 = load(impl, "ch07")
    prompt = ch07.format_input(ENTRY_NO_INPUT)
    generated = prompt + "\n\n### Response:\nThe antonym of 'complicated' is 'simple'.  \n"
    assert ch07.extract_response(generated, prompt) == "The antonym of 'complicated' is 'simple'."
    assert ch07.extract_response(prompt, prompt) == ""


@pytest.mark.parametrize("impl", IMPLS)
def test_majority_vote(impl: str) -> None:
    ch07 = load(impl, "ch07")
    assert ch07.majority_vote(["b", "a", "b", "c"]) == "b"
    assert ch07.majority_vote(["x", "y", "y", "x"]) == "x"  # tie: first seen wins
    assert ch07.majority_vote(["y", "x", "x", "y", "z"]) == "y"
    assert ch07.majority_vote(["only"]) == "only"
    answers = [[1, 2], [3], [3], [1, 2], [1, 2]]
    winner = ch07.majority_vote(answers)
    assert winner == [1, 2] and winner is answers[0]
    assert ch07.majority_vote([[5], [4], [4], [5]]) == [5]
    assert ch07.majority_vote([torch.tensor([7]), torch.tensor([8]), torch.tensor([8])]).tolist() == [8]
    with pytest.raises(ValueError):
        ch07.majority_vote([])


def tiny_model(seed: int = 0) -> GPTModel:
    torch.manual_seed(seed)
    model = GPTModel(TINY_CFG)
    model.eval()
    return model


@pytest.mark.parametrize("impl", IMPLS)
def test_sample_answers_greedy_and_eos(impl: str) -> None:
    ch07, ch05 = load(impl, "ch07"), load("reference", "ch05")
    model = tiny_model()
    idx = torch.tensor([[1, 2, 3]])
    greedy = ch05.generate(model, idx, 6, 16, temperature=0.0)[0, 3:].tolist()
    samples = ch07.sample_answers(model, idx, num_samples=3, max_new_tokens=6, context_size=16,
                                  temperature=0.0)
    assert samples == [greedy] * 3
    assert ch07.sample_answers(model, idx[0], 1, 6, 16, temperature=0.0) == [greedy]
    # stopping at eos: the answer is cut before it
    assert ch07.sample_answers(model, idx, 2, 6, 16, temperature=0.0, eos_id=greedy[0]) == [[], []]
    cut = ch07.sample_answers(model, idx, 1, 6, 16, temperature=0.0, eos_id=greedy[2])
    assert cut == [greedy[: greedy.index(greedy[2])]]
    with pytest.raises(ValueError):
        ch07.sample_answers(model, torch.tensor([[1, 2], [3, 4]]), 1, 2, 16)


@pytest.mark.parametrize("impl", IMPLS)
def test_sample_answers_sampling(impl: str) -> None:
    ch07 = load(impl, "ch07")
    model = tiny_model()
    idx = torch.tensor([[5, 6]])
    torch.manual_seed(123)
    samples = ch07.sample_answers(model, idx, num_samples=5, max_new_tokens=4, context_size=16,
                                  temperature=1.5, top_k=20)
    assert len(samples) == 5 and all(len(s) == 4 for s in samples)
    assert all(isinstance(t, int) and 0 <= t < 97 for s in samples for t in s)
    assert len({tuple(s) for s in samples}) > 1  # really sampled
    torch.manual_seed(123)
    again = ch07.sample_answers(model, idx, 5, 4, 16, temperature=1.5, top_k=20)
    assert again == samples
    # top_k=1 is greedy whatever the temperature
    top1 = ch07.sample_answers(model, idx, 2, 4, 16, temperature=2.0, top_k=1)
    assert top1[0] == top1[1]


@pytest.mark.parametrize("impl", IMPLS)
def test_sample_answers_cuts_at_an_appended_eos(impl: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``generate`` that appends the end token (and pads after it) still gives clean answers."""
    ch07 = load(impl, "ch07")
    calls = []

    def fake_generate(model: Any, idx: torch.Tensor, max_new_tokens: int, context_size: int,
                      temperature: float = 0.0, top_k: Any = None, eos_id: Any = None) -> Any:
        calls.append((idx.shape, max_new_tokens, context_size, temperature, top_k, eos_id))
        tail = [[4, 5, 0, 0], [6, 0, 0, 0]][len(calls) - 1]
        return torch.cat([idx, torch.tensor([tail])], dim=1)

    monkeypatch.setattr(ch07, "generate", fake_generate)
    answers = ch07.sample_answers(None, torch.tensor([[1, 2, 3]]), 2, 4, 8, temperature=0.7,
                                  top_k=3, eos_id=0)
    assert answers == [[4, 5], [6]]
    assert calls == [((1, 3), 4, 8, 0.7, 3, 0)] * 2


def test_sample_answers_agree_between_implementations() -> None:
    model = tiny_model(3)
    results = []
    for impl in IMPLS:
        torch.manual_seed(42)
        results.append(load(impl, "ch07").sample_answers(model, torch.tensor([[9, 8, 7]]), 4, 5,
                                                         16, temperature=1.0))
    assert results[0] == results[1]


# ---- 7.4 LoRA ---------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_exercise_7_4_book_counts(impl: str) -> None:
    ch07 = load(impl, "ch07")
    cfg = {**GPT_CONFIG_124M, "emb_dim": 1024, "n_layers": 24, "n_heads": 16,
           "drop_rate": 0.0, "qkv_bias": True}  # gpt2-medium (355M) as in chapter 7
    with torch.device("meta"):
        model = GPTModel(cfg)
        assert ch07.exercise_7_4_add_lora(model, rank=16, alpha=16) == (406_286_336, 7_898_384)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(n.endswith(("lora.A", "lora.B")) for n in trainable)


@pytest.mark.parametrize("impl", IMPLS)
def test_exercise_7_4_training_step_changes_only_lora(impl: str) -> None:
    ch07, ch05 = load(impl, "ch07"), load("reference", "ch05")
    model = tiny_model(1)
    before, after = ch07.exercise_7_4_add_lora(model, rank=4, alpha=8)
    assert before == sum(p.numel() for p in model.parameters() if not _is_lora(p, model))
    # every Linear (q, k, v, out_proj, 2 ff layers per block; out_head): 4 * (in + out)
    assert after == 2 * (4 * 4 * 64 + 2 * 4 * (32 + 128)) + 4 * (32 + 97)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    lora_b = {n: p.detach().clone() for n, p in model.named_parameters() if n.endswith("lora.B")}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    torch.manual_seed(0)
    inputs = torch.randint(0, 97, (2, 8))
    targets = torch.randint(0, 97, (2, 8))
    targets[1, 5:] = -100  # masked positions are fine for the chapter-5 loss
    model.eval()
    with torch.no_grad():
        expected = ch05.calc_loss_batch(inputs, targets, model, "cpu").item()
    loss = ch07.exercise_7_4_training_step(model, inputs, targets, optimizer, "cpu")
    assert isinstance(loss, float) and loss == pytest.approx(expected, rel=1e-5)
    assert model.training
    for name, value in frozen.items():
        assert torch.equal(dict(model.named_parameters())[name], value), name
    changed = [n for n, v in lora_b.items() if not torch.equal(dict(model.named_parameters())[n], v)]
    assert len(changed) == len(lora_b)
    losses = [ch07.exercise_7_4_training_step(model, inputs, targets, optimizer, "cpu")
              for _ in range(15)]
    assert losses[-1] < loss


def _is_lora(param: torch.Tensor, model: nn.Module) -> bool:
    return any(param is p for n, p in model.named_parameters() if ".lora." in n)
