"""Variants of solutions/ch07.py."""

from tests.grader.variants import Variant

_INPUT = "input_text = f\"\\n\\n### Input:\\n{entry['input']}\" if entry.get(\"input\") else \"\""
_MASK = "        if positions.numel() > 1:\n            targets[positions[1:]] = ignore_index"

VARIANTS = [
    Variant("ch07-format-empty-input-section", "ch07", _INPUT,
            "input_text = f\"\\n\\n### Input:\\n{entry['input']}\"", "ch07.format_input",
            diagnosis="ch07_format_empty_input_section"),
    Variant("ch07-partition-swapped", "ch07",
            "        list(data[train_portion:train_portion + test_portion]),\n"
            "        list(data[train_portion + test_portion:]),",
            "        list(data[train_portion + test_portion:]),\n"
            "        list(data[train_portion:train_portion + test_portion]),",
            "ch07.partition_data", diagnosis="ch07_partition_test_val_swapped"),
    # ---- collate (the first copy of each line is custom_collate_fn's) ----
    Variant("ch07-collate-padding-not-masked", "ch07", _MASK, "        pass", "ch07.custom_collate_fn",
            diagnosis="ch07_collate_padding_not_masked"),
    Variant("ch07-collate-first-pad-masked", "ch07", _MASK, "        targets[positions] = ignore_index",
            "ch07.custom_collate_fn", diagnosis="ch07_collate_first_pad_masked"),
    Variant("ch07-collate-not-shifted", "ch07", "targets = torch.tensor(padded[1:])",
            "targets = torch.tensor(padded[:-1])", "ch07.custom_collate_fn",
            diagnosis="ch07_collate_targets_not_shifted"),
    Variant("ch07-collate-no-end-token", "ch07", "batch_max_length = max(len(item) + 1 for item in batch)",
            "batch_max_length = max(len(item) for item in batch)", "ch07.custom_collate_fn",
            diagnosis="ch07_collate_no_end_token"),
    Variant("ch07-collate-cumsum-mask", "ch07", _MASK,
            "        is_pad = targets == pad_token_id\n"
            "        targets[is_pad & (is_pad.cumsum(0) > 1)] = ignore_index",
            "ch07.custom_collate_fn", passes=True),
    # ---- 7.2 ----
    Variant("ch07-masked-off-by-one", "ch07", "targets[:max(instruction_length - 1, 0)] = ignore_index",
            "targets[:instruction_length] = ignore_index", "7.2",
            diagnosis="ch07_masked_instruction_off_by_one"),
    # ---- majority vote ----
    Variant("ch07-vote-tie-sorted", "ch07", "    for answer in answers:\n        if counts[key(answer)] == best:",
            "    for answer in sorted(answers):\n        if counts[key(answer)] == best:", "ch07.majority_vote",
            diagnosis="ch07_vote_tie_not_first_seen"),
    # ---- 7.4 ----
    Variant("ch07-lora-base-not-frozen", "ch07",
            "    for param in model.parameters():\n        param.requires_grad = False\n    replace_linear_with_lora",
            "    replace_linear_with_lora", "7.4", diagnosis="ch07_lora_base_not_frozen"),
    Variant("ch07-format-join", "ch07", "    return instruction_text + input_text\n",
            "    return \"\".join([instruction_text, input_text])\n", "ch07.format_input", passes=True),
]
