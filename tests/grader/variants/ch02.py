"""Variants of solutions/ch02.py."""

from tests.grader.variants import Variant

_V2_UNK = 'preprocessed = [item if item in self.str_to_int else "<|unk|>" for item in preprocessed]'
_V1_DECODE = ("        # Remove the spaces that the join put before punctuation marks.\n"
              "        return re.sub(r'\\s+([,.:;?!\"()\\'])', r\"\\1\", text)")
_RANGE = "for i in range(0, len(token_ids) - max_length, stride):"
_V1_SPLIT = ("        preprocessed = re.split(r'([,.:;?_!\"()\\']|--|\\s)', text)\n"
             "        preprocessed = [item.strip() for item in preprocessed if item.strip()]\n"
             "        return [self.str_to_int[s] for s in preprocessed]")

VARIANTS = [
    # ---- tokenizers
    Variant("v2-unknown-not-mapped", "ch02", _V2_UNK, "pass", "ch02.SimpleTokenizerV2",
            diagnosis="ch02_unknown_not_mapped"),
    Variant("v2-unknown-dropped", "ch02", _V2_UNK,
            "preprocessed = [item for item in preprocessed if item in self.str_to_int]",
            "ch02.SimpleTokenizerV2", diagnosis="ch02_unknown_words_dropped"),
    Variant("v1-decode-keeps-space", "ch02", _V1_DECODE, "        return text", "ch02.SimpleTokenizerV1",
            diagnosis="ch02_decode_space_before_punctuation"),
    Variant("v1-encode-with-preprocess-helper", "ch02", _V1_SPLIT,
            "        return [self.str_to_int[s] for s in preprocess(text)]", "ch02.SimpleTokenizerV1",
            passes=True),
    # ---- dataset and loader
    Variant("dataset-targets-not-shifted", "ch02", "target_chunk = token_ids[i + 1:i + max_length + 1]",
            "target_chunk = token_ids[i:i + max_length]", "ch02.GPTDatasetV1",
            diagnosis="ch02_targets_not_shifted"),
    Variant("dataset-stride-ignored", "ch02", _RANGE, "for i in range(0, len(token_ids) - max_length):",
            "ch02.GPTDatasetV1", diagnosis="ch02_stride_ignored"),
    Variant("dataset-range-too-short", "ch02", _RANGE,
            "for i in range(0, len(token_ids) - max_length - 1, stride):", "ch02.GPTDatasetV1",
            diagnosis="ch02_window_range_one_too_short"),
    Variant("dataset-range-too-long", "ch02", _RANGE,
            "for i in range(0, len(token_ids) - max_length + 1, stride):", "ch02.GPTDatasetV1",
            diagnosis="ch02_window_range_one_too_long"),
    Variant("dataset-endoftext-not-allowed", "ch02", 'tokenizer.encode(txt, allowed_special={"<|endoftext|>"})',
            "tokenizer.encode(txt)", "ch02.GPTDatasetV1", diagnosis="ch02_endoftext_not_allowed"),
    Variant("dataset-windows-from-a-tensor", "ch02",
            "            input_chunk = token_ids[i:i + max_length]\n"
            "            target_chunk = token_ids[i + 1:i + max_length + 1]\n"
            "            self.input_ids.append(torch.tensor(input_chunk))\n"
            "            self.target_ids.append(torch.tensor(target_chunk))",
            "            ids = torch.tensor(token_ids)\n"
            "            self.input_ids.append(ids[i:i + max_length].clone())\n"
            "            self.target_ids.append(ids[i + 1:i + max_length + 1].clone())",
            "ch02.GPTDatasetV1", passes=True),
    Variant("loader-shuffle-ignored", "ch02", "batch_size=batch_size, shuffle=shuffle, drop_last=drop_last",
            "batch_size=batch_size, drop_last=drop_last", "ch02.create_dataloader_v1",
            diagnosis="ch02_shuffle_ignored"),
    # ---- exercises
    Variant("ex22-shuffled", "ch02", "stride=stride, shuffle=False)", "stride=stride, shuffle=True)", "2.2",
            diagnosis="ch02_first_batch_shuffled"),
]
