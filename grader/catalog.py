"""The one catalog of every gradable item.

The CLI (``llmgrade list``), the stub generator, the hidden suites, scoring and the reports all
read this list. An item is either a *component* (a class or function the book builds, id
``<module>.<name>``) or a *problem* (an end-of-section exercise, id = the book's number, "3.2").

``symbols`` are the top-level names in ``solutions/<module>.py`` (and so in the student's
``exercises/<module>.py``) that belong to the item: the stub generator uses them to name the
exercise in each ``NotImplementedError``, and the grader to report a missing name.
``depends`` lists items whose code the item calls; the grader also grades an item with the
reference versions of those swapped in, so a mistake is charged once, to its root cause.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["component", "problem"]

MODULES: tuple[str, ...] = (
    "ch02",
    "ch03",
    "ch04",
    "ch05",
    "ch06",
    "ch07",
    "appendix_a",
    "appendix_d",
    "appendix_e",
)

CHAPTER_TITLES: dict[str, str] = {
    "ch02": "Working with text data",
    "ch03": "Coding attention mechanisms",
    "ch04": "Implementing a GPT model from scratch",
    "ch05": "Pretraining on unlabeled data",
    "ch06": "Fine-tuning for classification",
    "ch07": "Fine-tuning to follow instructions",
    "appendix_a": "Introduction to PyTorch",
    "appendix_d": "Adding bells and whistles to the training loop",
    "appendix_e": "Parameter-efficient fine-tuning with LoRA",
}


@dataclass(frozen=True)
class Item:
    id: str
    module: str
    section: str
    title: str
    points: float
    kind: Kind
    symbols: tuple[str, ...]
    depends: tuple[str, ...] = ()
    hidden: bool = False

    @property
    def chapter(self) -> str:
        return self.module


def _c(module: str, name: str, section: str, title: str, points: float,
       depends: tuple[str, ...] = (), symbols: tuple[str, ...] = (), hidden: bool = False) -> Item:
    return Item(f"{module}.{name}", module, section, title, points, "component",
                symbols or (name,), depends, hidden)


def _p(number: str, module: str, section: str, title: str, points: float, symbols: tuple[str, ...],
       depends: tuple[str, ...] = (), hidden: bool = False) -> Item:
    return Item(number, module, section, title, points, "problem", symbols, depends, hidden)


ITEMS: tuple[Item, ...] = (
    # ---- Chapter 2 ------------------------------------------------------------------------
    _c("ch02", "SimpleTokenizerV1", "2.3", "A regex tokenizer with a fixed vocabulary", 2),
    _c("ch02", "SimpleTokenizerV2", "2.4", "Unknown words and <|endoftext|>", 2),
    _c("ch02", "GPTDatasetV1", "2.6", "Sliding-window input/target pairs", 3),
    _c("ch02", "create_dataloader_v1", "2.6", "A DataLoader over GPTDatasetV1", 2,
       depends=("ch02.GPTDatasetV1",)),
    _p("2.1", "ch02", "2.5", "Byte pair encoding of unknown words", 1,
       ("exercise_2_1_bpe_pieces",)),
    _p("2.2", "ch02", "2.6", "Data loaders with different strides and context sizes", 1,
       ("exercise_2_2_first_batch",), depends=("ch02.create_dataloader_v1",)),
    # ---- Chapter 3 ------------------------------------------------------------------------
    _c("ch03", "SelfAttention_v1", "3.4.1", "Self-attention with trainable weight matrices", 2),
    _c("ch03", "SelfAttention_v2", "3.4.2", "Self-attention with nn.Linear layers", 2),
    _c("ch03", "CausalAttention", "3.5.3", "Causal attention with dropout", 3),
    _c("ch03", "MultiHeadAttentionWrapper", "3.6.1", "Stacking causal attention heads", 2,
       depends=("ch03.CausalAttention",)),
    _c("ch03", "MultiHeadAttention", "3.6.2", "Multi-head attention with weight splits", 5),
    _p("3.1", "ch03", "3.4.2", "Comparing SelfAttention_v1 and SelfAttention_v2", 1,
       ("exercise_3_1_copy_weights",), depends=("ch03.SelfAttention_v1", "ch03.SelfAttention_v2")),
    _p("3.2", "ch03", "3.6.1", "Returning two-dimensional embedding vectors", 1,
       ("exercise_3_2_wrapper",), depends=("ch03.MultiHeadAttentionWrapper",)),
    _p("3.3", "ch03", "3.6.2", "Initializing GPT-2 size attention modules", 1,
       ("exercise_3_3_gpt2_attention",), depends=("ch03.MultiHeadAttention",)),
    # ---- Chapter 4 ------------------------------------------------------------------------
    _c("ch04", "LayerNorm", "4.2", "Layer normalization", 2),
    _c("ch04", "GELU", "4.3", "The GELU activation (tanh approximation)", 1),
    _c("ch04", "FeedForward", "4.3", "The feed-forward module", 2, depends=("ch04.GELU",)),
    _c("ch04", "ExampleDeepNeuralNetwork", "4.4", "Shortcut connections", 2,
       depends=("ch04.GELU",)),
    _c("ch04", "TransformerBlock", "4.5", "The transformer block", 4,
       depends=("ch03.MultiHeadAttention", "ch04.FeedForward", "ch04.LayerNorm")),
    _c("ch04", "GPTModel", "4.6", "The GPT model", 4,
       depends=("ch04.TransformerBlock", "ch04.LayerNorm"), symbols=("GPTModel", "GPT_CONFIG_124M")),
    _c("ch04", "generate_text_simple", "4.7", "Greedy text generation", 2),
    _p("4.1", "ch04", "4.6", "Parameters in the feed forward versus attention modules", 1,
       ("exercise_4_1_parameter_counts",),
       depends=("ch04.TransformerBlock",)),
    _p("4.2", "ch04", "4.6", "Initializing larger GPT models", 2,
       ("exercise_4_2_model_configs", "exercise_4_2_model_size"), depends=("ch04.GPTModel",)),
    _p("4.3", "ch04", "4.6", "Using separate dropout parameters", 2,
       ("exercise_4_3_config", "TransformerBlockSeparateDropout", "GPTModelSeparateDropout"),
       depends=("ch04.GPTModel",)),
    # ---- Chapter 5 ------------------------------------------------------------------------
    _c("ch05", "text_to_token_ids", "5.1.1", "Text to a batch of token ids", 1),
    _c("ch05", "token_ids_to_text", "5.1.1", "A batch of token ids back to text", 1),
    _c("ch05", "calc_loss_batch", "5.1.3", "Cross-entropy loss of one batch", 2),
    _c("ch05", "calc_loss_loader", "5.1.3", "Average loss over a data loader", 2,
       depends=("ch05.calc_loss_batch",)),
    _c("ch05", "evaluate_model", "5.2", "Train and validation loss in eval mode", 1,
       depends=("ch05.calc_loss_loader",)),
    _c("ch05", "train_model_simple", "5.2", "The pretraining loop", 4,
       depends=("ch05.calc_loss_batch", "ch05.evaluate_model")),
    _c("ch05", "softmax_with_temperature", "5.3.1", "Temperature scaling", 1),
    _c("ch05", "generate", "5.3.3", "Generation with temperature, top-k and an end token", 4),
    _c("ch05", "load_weights_into_gpt", "5.5", "Loading OpenAI GPT-2 weights", 4,
       symbols=("assign", "load_weights_into_gpt", "model_configs")),
    _c("ch05", "save_checkpoint", "5.4", "Saving and loading model and optimizer state", 2,
       symbols=("save_checkpoint", "load_checkpoint")),
    _p("5.1", "ch05", "5.3.1", "Sampling frequencies at different temperatures", 1,
       ("exercise_5_1_sample_counts",), depends=("ch05.softmax_with_temperature",)),
    _p("5.2", "ch05", "5.3.3", "Diverse and conservative decoding settings", 1,
       ("exercise_5_2_settings",), depends=("ch05.generate",)),
    _p("5.3", "ch05", "5.3.3", "Deterministic decoding", 1,
       ("exercise_5_3_deterministic_settings",), depends=("ch05.generate",)),
    _p("5.4", "ch05", "5.4", "Resuming training from a checkpoint", 2,
       ("exercise_5_4_resume_training",),
       depends=("ch05.save_checkpoint", "ch05.train_model_simple")),
    _p("5.5", "ch05", "5.5", "Training and validation loss of a given model", 1,
       ("exercise_5_5_losses",), depends=("ch05.calc_loss_loader",)),
    _p("5.6", "ch05", "5.5", "Loading larger GPT-2 models", 1,
       ("exercise_5_6_build_and_load",), depends=("ch05.load_weights_into_gpt",)),
    # ---- Chapter 6 ------------------------------------------------------------------------
    _c("ch06", "create_balanced_dataset", "6.2", "Balancing and splitting the spam data", 1,
       symbols=("create_balanced_dataset", "random_split")),
    _c("ch06", "SpamDataset", "6.3", "A padded text-classification dataset", 2),
    _c("ch06", "prepare_classifier", "6.5", "Adding a classification head", 2),
    _c("ch06", "calc_accuracy_loader", "6.6", "Classification accuracy from the last token", 2),
    _c("ch06", "calc_loss_batch", "6.6", "Classification loss from the last token", 2,
       symbols=("calc_loss_batch", "calc_loss_loader")),
    _c("ch06", "train_classifier_simple", "6.7", "The classification fine-tuning loop", 3,
       depends=("ch06.calc_loss_batch", "ch06.calc_accuracy_loader"),
       symbols=("train_classifier_simple", "evaluate_model")),
    _c("ch06", "classify_review", "6.8", "Classifying new text", 2),
    _p("6.1", "ch06", "6.3", "Padding to the full context length", 1,
       ("exercise_6_1_full_context_dataset",), depends=("ch06.SpamDataset",)),
    _p("6.2", "ch06", "6.5", "Fine-tuning the whole model", 1,
       ("exercise_6_2_make_all_trainable",), depends=("ch06.prepare_classifier",)),
    _p("6.3", "ch06", "6.6", "Fine-tuning the first versus the last token", 1,
       ("exercise_6_3_first_token_loss",), depends=("ch06.calc_loss_batch",)),
    # ---- Chapter 7 ------------------------------------------------------------------------
    _c("ch07", "format_input", "7.2", "Alpaca-style prompt formatting", 1),
    _c("ch07", "partition_data", "7.2", "Train, test and validation splits", 1),
    _c("ch07", "InstructionDataset", "7.3", "Pre-tokenized instruction data", 2,
       depends=("ch07.format_input",)),
    _c("ch07", "custom_collate_fn", "7.3", "Padding, shifted targets and -100 masking", 3),
    _c("ch07", "extract_response", "7.7", "Extracting the model's response", 1),
    _c("ch07", "majority_vote", "7.8", "Inference-time scaling by majority vote", 2,
       symbols=("sample_answers", "majority_vote")),
    _p("7.1", "ch07", "7.2", "Changing prompt styles (Phi-3)", 1, ("format_input_phi",)),
    _p("7.2", "ch07", "7.3", "Instruction and input masking", 2,
       ("InstructionDatasetMasked", "custom_collate_fn_masked"),
       depends=("ch07.custom_collate_fn",)),
    _p("7.3", "ch07", "7.3", "Preparing a large Alpaca-style dataset", 1,
       ("exercise_7_3_prepare_loaders",), depends=("ch07.custom_collate_fn",)),
    _p("7.4", "ch07", "7.6", "Parameter-efficient fine-tuning with LoRA", 2,
       ("exercise_7_4_add_lora", "exercise_7_4_training_step"),
       depends=("appendix_e.replace_linear_with_lora",)),
    # ---- Appendix A -----------------------------------------------------------------------
    _c("appendix_a", "NeuralNetwork", "A.5", "A multilayer perceptron", 2),
    _c("appendix_a", "ToyDataset", "A.6", "A custom Dataset", 1),
    _c("appendix_a", "compute_accuracy", "A.7", "Accuracy over a data loader", 1),
    _c("appendix_a", "train_ddp", "A.9", "Data-parallel training with DistributedDataParallel", 3,
       depends=("appendix_a.NeuralNetwork", "appendix_a.ToyDataset"),
       symbols=("ddp_setup", "prepare_dataset", "train_ddp", "run_ddp")),
    _p("A.3", "appendix_a", "A.5", "Counting NeuralNetwork parameters", 1,
       ("exercise_a_3_num_parameters",), depends=("appendix_a.NeuralNetwork",)),
    _p("A.4", "appendix_a", "A.9", "Timing matrix multiplication on CPU and the best device", 1,
       ("exercise_a_4_time_matmul",)),
    # ---- Appendix D -----------------------------------------------------------------------
    _c("appendix_d", "find_highest_gradient", "D.3", "The largest gradient of a model", 1),
    _c("appendix_d", "train_model", "D.4", "Warmup, cosine decay and gradient clipping", 4,
       depends=("ch05.calc_loss_batch", "ch05.evaluate_model"), symbols=("train_model", "lr_at_step")),
    # ---- Appendix E -----------------------------------------------------------------------
    _c("appendix_e", "LoRALayer", "E.4", "A low-rank adaptation layer", 2),
    _c("appendix_e", "LinearWithLoRA", "E.4", "A linear layer with LoRA", 2,
       depends=("appendix_e.LoRALayer",)),
    _c("appendix_e", "replace_linear_with_lora", "E.4", "Swapping every Linear for LinearWithLoRA", 2,
       depends=("appendix_e.LinearWithLoRA",)),
)

BY_ID: dict[str, Item] = {item.id: item for item in ITEMS}


def resolve(selector: str) -> str | None:
    """The catalog id or module that ``selector`` names, ignoring case (``CH3``, ``ch03.mha`` is not
    one: see :func:`suggest`); ``None`` when it names nothing."""
    if selector in BY_ID or selector in MODULES:
        return selector
    folded = selector.strip().casefold()
    short = re.fullmatch(r"ch(\d)", folded)
    if short:
        folded = f"ch0{short.group(1)}"
    for name in (*BY_ID, *MODULES):
        if name.casefold() == folded:
            return name
    return None


def _initials(name: str) -> str:
    return "".join(ch for ch in name if ch.isupper()).casefold()


def suggest(selector: str) -> str | None:
    """The id or module a mistyped ``selector`` most likely meant (``ch03.MHA`` ->
    ``ch03.MultiHeadAttention``, ``ch03.MultiheadAtention`` too), or ``None``."""
    folded = selector.strip().casefold()
    module, _, name = folded.partition(".")
    if name:  # an abbreviation of a component's name, e.g. MHA
        for item in ITEMS:
            if item.kind == "component" and item.module.casefold() == module \
                    and _initials(item.id.partition(".")[2]) == name:
                return item.id
    names = {name.casefold(): name for name in (*BY_ID, *MODULES)}
    close = difflib.get_close_matches(folded, list(names), n=1, cutoff=0.6)
    return names[close[0]] if close else None


def items_for(selectors: list[str] | tuple[str, ...] = ()) -> list[Item]:
    """Items matching ids or module names (``ch03``), ignoring case; all items when ``selectors`` is
    empty.

    Raises ``KeyError`` with the first unknown selector.
    """
    if not selectors:
        return list(ITEMS)
    chosen: list[Item] = []
    for sel in selectors:
        name = resolve(sel)
        if name is None:
            raise KeyError(sel)
        matches = [BY_ID[name]] if name in BY_ID else [item for item in ITEMS if item.module == name]
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


def item_for_symbol(module: str, symbol: str) -> Item | None:
    """The item that owns top-level ``symbol`` of ``module``, if any."""
    for item in ITEMS:
        if item.module == module and symbol in item.symbols:
            return item
    return None


def max_score(items: list[Item] | tuple[Item, ...] = ITEMS) -> float:
    return float(sum(item.points for item in items))
