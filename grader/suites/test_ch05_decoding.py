"""Hidden checks for decoding (section 5.3): ch05.softmax_with_temperature, ch05.generate and
problems 5.1, 5.2 and 5.3.

``generate`` drives a tiny float64 reference GPT (vocab 96, context 12) whose output head is
scaled up so that temperature and top-k visibly matter. Book errata: the printed ``generate``
works for batch size 1 only, so every counted check uses one row (or no top-k / end token); the
batch-of-two checks with top-k and an end token are marked ``extension``: reported, not counted.
Likewise the book's ``softmax_with_temperature`` normalises over ``dim=0`` of one row of logits:
rows of logits are an extension.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from grader.checking.checks import call_function
from grader.checking.compare import expect_equal, expect_ids, expect_tensor
from grader.checking.declare import component, problem
from grader.checking.failures import GradeFailure
from grader.checking.mistakes.ch05 import generate_mistakes, softmax_mistakes
from grader.messages import phrase

SOFTMAX_WITH_TEMPERATURE = component("ch05", "softmax_with_temperature", section="5.3.1", title="Temperature scaling",
                                     points=1)
GENERATE = component("ch05", "generate", section="5.3.3", title="Generation with temperature, top-k and an end token",
                     points=4,
                     uses=("ch04.GPTModel",))
EX51 = problem("5.1", "ch05", section="5.3.1", title="Sampling frequencies at different temperatures", points=1,
               symbols=("exercise_5_1_sample_counts",), depends=("ch05.softmax_with_temperature",))
EX52 = problem("5.2", "ch05", section="5.3.3", title="Diverse and conservative decoding settings", points=1,
               symbols=("exercise_5_2_settings",), depends=("ch05.generate",))
EX53 = problem("5.3", "ch05", section="5.3.3", title="Deterministic decoding", points=1,
               symbols=("exercise_5_3_deterministic_settings",), depends=("ch05.generate",))

CFG = dict(vocab_size=96, context_length=12, emb_dim=16, n_heads=2, n_layers=2, drop_rate=0.0, qkv_bias=False)
BOOK_LOGITS = [4.51, 0.89, -1.90, 6.75, 1.63, -1.62, -1.89, 6.28, 1.79]
GENERATE_DEPS = ("ch05.generate",)


def _state(ref: Any) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = ref.run("ch05.gpt_state", cfg=CFG, seed=3, logit_scale=6.0)
    return state


def _prompt(batch: int, tokens: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(1, 96, (batch, tokens), generator=torch.Generator().manual_seed(seed))


# ---- softmax_with_temperature ---------------------------------------------------------------


def _softmax(student: Any, ref: Any, logits: torch.Tensor, temperature: float, what: str) -> None:
    got, expected = call_function(student, ref, "ch05", "softmax_with_temperature", [logits, temperature],
                                  what=what)
    expect_tensor(got, expected, what, mistakes=softmax_mistakes(logits, temperature))


@SOFTMAX_WITH_TEMPERATURE
def test_book_logits_at_three_temperatures(student, ref):
    logits = torch.tensor(BOOK_LOGITS, dtype=torch.float64)
    for temperature in (1.0, 0.1, 5.0):
        _softmax(student, ref, logits, temperature, f"softmax_with_temperature(book logits, {temperature})")


@SOFTMAX_WITH_TEMPERATURE
@pytest.mark.extension
def test_rows_of_logits_normalised_over_the_vocabulary(student, ref):
    """Beyond the book, which calls it on one row of logits (its ``dim=0`` is right there)."""
    logits = torch.randn(3, 7, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 3
    _softmax(student, ref, logits, 2.0, "softmax_with_temperature(3 x 7 logits, 2.0)")


@SOFTMAX_WITH_TEMPERATURE
def test_small_temperature_stays_finite(student, ref):
    """Dividing by 0.01 makes logits near 700: a softmax computed with a bare exp overflows."""
    logits = torch.tensor(BOOK_LOGITS, dtype=torch.float32)
    _softmax(student, ref, logits, 0.01, "softmax_with_temperature(float32 book logits, 0.01)")


# ---- generate ---------------------------------------------------------------------------------


def _generate(student: Any, ref: Any, idx: torch.Tensor, max_new_tokens: int, context_size: int = 12,
              temperature: float = 0.0, top_k: int | None = None, eos_id: int | None = None, seed: int = 0,
              what: str | None = None) -> dict[str, Any]:
    request = dict(cfg=CFG, state_dict=_state(ref), idx=idx, max_new_tokens=max_new_tokens,
                   context_size=context_size, temperature=temperature, top_k=top_k, eos_id=eos_id, seed=seed)
    what = what or (f"generate(batch {idx.shape[0]}, temperature={temperature}, top_k={top_k}, "
                    f"eos_id={eos_id})")
    expected = ref.run("ch05.generate", **request)
    got = student.run("ch05.generate", what=what, **request)
    too_long = [n for n in got["calls"] if n > context_size]
    if too_long:
        raise GradeFailure("ch05.generate_no_crop", what=what, got=max(too_long), context_size=context_size,
                           diagnosis="ch05_generate_no_crop")
    expect_ids(got["ids"], expected["ids"], what, idx.shape[1],
               mistakes=lambda: generate_mistakes(request, expected["ids"]))
    return dict(expected)


def _eos_from(ids: torch.Tensor, prompt_len: int, position: int) -> int:
    """A token whose first appearance among the generated tokens is at ``position`` or later."""
    generated = ids[0, prompt_len:].tolist()
    for j in range(position, len(generated)):
        if generated[j] not in generated[:j]:
            return int(generated[j])
    return int(generated[-1])


@GENERATE
def test_greedy_decoding(student, ref):
    _generate(student, ref, _prompt(1, 4), 8)


@GENERATE
def test_crops_the_context_to_context_size(student, ref):
    _generate(student, ref, _prompt(1, 10, seed=2), 5, context_size=6)


@GENERATE
def test_temperature_sampling(student, ref):
    _generate(student, ref, _prompt(1, 3, seed=3), 10, temperature=1.5, seed=11)


@GENERATE
def test_top_k_sampling(student, ref):
    _generate(student, ref, _prompt(1, 3, seed=4), 10, temperature=1.0, top_k=3, seed=5)


@GENERATE
def test_top_k_at_high_temperature(student, ref):
    _generate(student, ref, _prompt(1, 3, seed=5), 10, temperature=3.0, top_k=4, seed=6)


@GENERATE
def test_greedy_stops_at_end_token(student, ref):
    idx = _prompt(1, 4, seed=6)
    plain = ref.run("ch05.generate", cfg=CFG, state_dict=_state(ref), idx=idx, max_new_tokens=9, context_size=12)
    eos = _eos_from(plain["ids"], 4, 3)
    _generate(student, ref, idx, 9, eos_id=eos, top_k=5)


@GENERATE
def test_sampling_stops_at_end_token(student, ref):
    idx = _prompt(1, 3, seed=7)
    plain = ref.run("ch05.generate", cfg=CFG, state_dict=_state(ref), idx=idx, max_new_tokens=10,
                    context_size=12, temperature=1.2, top_k=6, seed=8)
    eos = _eos_from(plain["ids"], 3, 4)
    _generate(student, ref, idx, 10, temperature=1.2, top_k=6, eos_id=eos, seed=8)


@GENERATE
def test_batch_of_two_without_top_k_or_end_token(student, ref):
    _generate(student, ref, _prompt(2, 4, seed=8), 6)
    _generate(student, ref, _prompt(2, 4, seed=9), 6, temperature=1.3, seed=12)


@pytest.mark.extension
@GENERATE
def test_extension_batch_of_two_with_top_k(student, ref):
    """Not in the book (its top-k threshold is for one row): each row keeps its own k best."""
    _generate(student, ref, _prompt(2, 3, seed=10), 8, temperature=1.0, top_k=3, seed=13)


@pytest.mark.extension
@GENERATE
def test_extension_batch_of_two_with_end_token(student, ref):
    """Not in the book: stop when every row has produced eos_id, padding finished rows with it."""
    idx = _prompt(2, 4, seed=11)
    plain = ref.run("ch05.generate", cfg=CFG, state_dict=_state(ref), idx=idx, max_new_tokens=8, context_size=12)
    rows = [plain["ids"][r, 4:].tolist() for r in range(2)]
    eos = next((t for t in rows[0][1:] if t not in rows[0][:1] and
                (t not in rows[1] or rows[1].index(t) != rows[0].index(t))), rows[0][-1])
    _generate(student, ref, idx, 8, eos_id=int(eos))


# ---- exercise 5.1 -----------------------------------------------------------------------------


def _counts(student: Any, ref: Any, logits: list[float], temperature: float, swap: tuple[str, ...],
            **kwargs: Any) -> None:
    args = [torch.tensor(logits), temperature]
    what = f"exercise_5_1_sample_counts(logits, {temperature}{''.join(f', {k}={v}' for k, v in kwargs.items())})"
    got, expected = call_function(student, ref, "ch05", "exercise_5_1_sample_counts", args, kwargs,
                                  swap=swap, what=what)
    if isinstance(got, torch.Tensor):
        got = got.tolist()
    diagnosis = None
    if got != expected:
        diagnosis = _sample_count_slip(got, expected, logits, temperature, **kwargs)
    expect_equal(got, expected, what, diagnosis=diagnosis)


def _sample_count_slip(got: Any, expected: list[int], logits: list[float], temperature: float,
                       num_samples: int = 1000, seed: int = 123) -> str | None:
    if isinstance(got, list) and len(got) < len(expected) and got == expected[:len(got)]:
        return "ch05_ex51_counts_missing_zeros"
    probas = torch.softmax(torch.tensor(logits) / temperature, dim=-1)
    torch.manual_seed(seed)
    once = torch.multinomial(probas, num_samples, replacement=True)
    if got == torch.bincount(once, minlength=len(logits)).tolist():
        return "ch05_ex51_one_multinomial_call"
    return None


@EX51
def test_book_counts_at_three_temperatures(student, ref):
    for temperature in (1.0, 0.1, 5.0):
        _counts(student, ref, BOOK_LOGITS, temperature, ("ch05.softmax_with_temperature",))


@EX51
def test_other_logits_seed_and_sample_count(student, ref):
    _counts(student, ref, [2.0, -1.0, 0.5, 1.5, -3.0, 0.0, -6.0], 0.8, ("ch05.softmax_with_temperature",),
            num_samples=300, seed=7)


@pytest.mark.integration
@EX51
def test_counts_with_your_softmax_with_temperature(student, ref):
    _counts(student, ref, BOOK_LOGITS, 5.0, ())


# ---- exercises 5.2 and 5.3 --------------------------------------------------------------------

_SETTING_KEYS = {"temperature", "top_k"}


def _settings(student: Any, name: str) -> Any:
    return student.run("ch05.exercise_settings", what=f"{name}()", name=name)


def _setting_ok(setting: Any) -> bool:
    if not isinstance(setting, dict) or not set(setting) <= _SETTING_KEYS:
        return False
    t, k = setting.get("temperature", 0.0), setting.get("top_k")
    return (isinstance(t, (int, float)) and not isinstance(t, bool) and t >= 0
            and (k is None or (isinstance(k, int) and not isinstance(k, bool) and k >= 1)))


def _diverse_and_conservative(student: Any) -> dict[str, dict[str, Any]]:
    got = _settings(student, "exercise_5_2_settings")
    if not isinstance(got, dict) or set(got) != {"diverse", "conservative"} or \
            not all(_setting_ok(got[k]) and "temperature" in got[k] for k in got):
        raise GradeFailure("ch05.ex52_format", got=repr(got)[:300])
    return got


def _distinct_tokens(student: Any, ref: Any, settings: list[dict[str, Any]], swap: tuple[str, ...]) -> list[int]:
    request = dict(cfg=CFG, state_dict=ref.run("ch05.gpt_state", cfg=CFG, seed=21, logit_scale=3.0),
                   idx=_prompt(1, 3, seed=21), max_new_tokens=9, settings=settings, seeds=[1, 2, 3, 4, 5, 6])
    outputs = student.run("ch05.generate_with_settings", swap=swap, what=phrase("what.generate_with_your_settings"),
                          **request)
    return [len({t for ids in row for t in ids[0, 3:].tolist()}) for row in outputs]


@EX52
def test_settings_and_their_ranges(student, ref):
    got = _diverse_and_conservative(student)
    diverse, conservative = got["diverse"], got["conservative"]
    if not diverse["temperature"] > 1.0:
        raise GradeFailure("ch05.ex52_range", which="diverse", rule=phrase("rule.temperature_above"),
                           got=repr(diverse))
    if not (conservative["temperature"] < 1.0 and conservative.get("top_k") is not None):
        raise GradeFailure("ch05.ex52_range", which="conservative", rule=phrase("rule.temperature_below_and_top_k"),
                           got=repr(conservative))
    if diverse.get("top_k") is not None and diverse["top_k"] <= conservative["top_k"]:
        raise GradeFailure("ch05.ex52_range", which="diverse", rule=phrase("rule.larger_top_k_than_conservative"), got=repr(diverse))


def _more_diverse(student: Any, ref: Any, swap: tuple[str, ...]) -> None:
    got = _diverse_and_conservative(student)
    diverse, conservative = _distinct_tokens(student, ref, [got["diverse"], got["conservative"]], swap)
    if not diverse > conservative:
        raise GradeFailure("ch05.ex52_not_more_diverse", diverse=diverse, conservative=conservative)


@EX52
def test_diverse_setting_samples_more_distinct_tokens(student, ref):
    _more_diverse(student, ref, GENERATE_DEPS)


@pytest.mark.integration
@EX52
def test_diverse_setting_with_your_generate(student, ref):
    _more_diverse(student, ref, ())


def _deterministic(student: Any) -> list[dict[str, Any]]:
    got = _settings(student, "exercise_5_3_deterministic_settings")
    if not isinstance(got, list) or not all(_setting_ok(s) for s in got):
        raise GradeFailure("ch05.ex53_format", got=repr(got)[:300])
    return got


def _all_greedy(student: Any, ref: Any, swap: tuple[str, ...]) -> None:
    settings = _deterministic(student)
    request = dict(cfg=CFG, state_dict=ref.run("ch05.gpt_state", cfg=CFG, seed=22, logit_scale=2.0),
                   idx=_prompt(1, 3, seed=22), max_new_tokens=8, seeds=[1, 2, 3])
    greedy = ref.run("ch05.generate_with_settings", settings=[{"temperature": 0.0, "top_k": None}], **request)[0][0]
    outputs = student.run("ch05.generate_with_settings", swap=swap, what=phrase("what.generate_with_your_settings_2"),
                          settings=settings, **request)
    for setting, row in zip(settings, outputs):
        for seed, ids in zip(request["seeds"], row):
            if not (isinstance(ids, torch.Tensor) and torch.equal(ids, greedy)):
                shown = ids.tolist() if isinstance(ids, torch.Tensor) else ids
                raise GradeFailure("ch05.ex53_not_greedy", setting=repr(setting), seed=seed,
                                   got=repr(shown)[:200], expected=repr(greedy.tolist())[:200])


@EX53
def test_at_least_two_different_settings(student, ref):
    settings = _deterministic(student)
    distinct = {tuple(sorted((k, v) for k, v in s.items())) for s in settings}
    if len(distinct) < 2:
        raise GradeFailure("ch05.ex53_too_few", count=len(distinct))


@EX53
def test_every_setting_equals_greedy_for_every_seed(student, ref):
    _all_greedy(student, ref, GENERATE_DEPS)


@pytest.mark.integration
@EX53
def test_every_setting_with_your_generate(student, ref):
    _all_greedy(student, ref, ())
