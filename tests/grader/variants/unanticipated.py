"""Mistakes nobody wrote a diagnosis for (issue 21): realistic slips, from readers' questions on the
book's repository and from common typing errors, none of them given a hand-written diagnosis.

Each one must still be *named*: its failure carries the reference mutant that reproduces it
(``mutant``: the operator and a piece of the reference line it changes; see
``grader/checking/mutants/``). They were written before the mutation operators were tuned, and
``bench/bench_named_rate.py`` prints how many of them are named.
"""

from tests.grader.variants import Variant

_MHA_SPLIT = "self.head_dim).transpose(1, 2)"
_CA_MASK = "self.mask.bool()[:num_tokens, :num_tokens]"
_CA_DROPOUT = ("attn_weights = torch.softmax(attn_scores / keys.shape[-1] ** 0.5, dim=-1)\n"
               "        attn_weights = self.dropout(attn_weights)\n"
               "        return attn_weights @ values")

VARIANTS = [
    # ---- chapter 2
    Variant("u-dataset-targets-one-short", "ch02", "target_chunk = token_ids[i + 1:i + max_length + 1]",
            "target_chunk = token_ids[i + 1:i + max_length]", "ch02.GPTDatasetV1",
            mutant=("drop_operand", "token_ids[i + 1 : i + max_length + 1]")),
    Variant("u-loader-drop-last-ignored", "ch02",
            "DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,",
            "DataLoader(dataset, batch_size=batch_size, shuffle=shuffle,", "ch02.create_dataloader_v1",
            mutant=("drop_keyword", "drop_last=drop_last")),
    # ---- chapter 3
    Variant("u-mha-heads-split-by-view-alone", "ch03", _MHA_SPLIT, "self.head_dim)", "ch03.MultiHeadAttention",
            count=0, mutant=("drop_call", ".transpose(1, 2)")),
    Variant("u-causal-mask-not-sliced", "ch03",
            "attn_scores.masked_fill(" + _CA_MASK + ", -torch.inf)\n        attn_weights = torch.softmax(",
            "attn_scores.masked_fill(self.mask.bool(), -torch.inf)\n        attn_weights = torch.softmax(",
            "ch03.CausalAttention", count=1, mutant=("drop_subscript", "mask_bool = self.mask.bool()")),
    Variant("u-causal-dropout-on-scores", "ch03", _CA_DROPOUT,
            "attn_weights = torch.softmax(self.dropout(attn_scores) / keys.shape[-1] ** 0.5, dim=-1)\n"
            "        return attn_weights @ values", "ch03.CausalAttention", count=1,
            mutant=("call_on_input", "attn_weights = self.dropout(attn_weights)")),
    Variant("u-mha-softmax-dim-1", "ch03",
            "attn_weights = torch.softmax(attn_scores / keys.shape[-1] ** 0.5, dim=-1)",
            "attn_weights = torch.softmax(attn_scores / keys.shape[-1] ** 0.5, dim=1)",
            "ch03.MultiHeadAttention", count=-1, mutant=("constant", "dim=-1")),
    Variant("u-v2-keys-transposed-wrong-dims", "ch03", "attn_scores = queries @ keys.T",
            "attn_scores = keys @ queries.T", "ch03.SelfAttention_v2", count=-1,
            mutant=("swap_operands", "queries @ keys")),
    # ---- chapter 4
    Variant("u-ff-no-expansion", "ch04", '4 * cfg["emb_dim"]', 'cfg["emb_dim"]', "ch04.FeedForward", count=0,
            mutant=("drop_operand", '4 * cfg["emb_dim"]')),
    Variant("u-block-dropout-after-add", "ch04",
            "x = self.drop_shortcut(x)\n        x = x + shortcut\n\n        shortcut = x",
            "x = x + shortcut\n        x = self.drop_shortcut(x)\n\n        shortcut = x",
            "ch04.TransformerBlock", count=1, mutant=("move", "x = self.drop_shortcut(x)")),
    Variant("u-dnn-shortcut-without-shape-check", "ch04",
            "if self.use_shortcut and x.shape == layer_output.shape:", "if self.use_shortcut:",
            "ch04.ExampleDeepNeuralNetwork", mutant=("drop_condition", "x.shape == layer_output.shape")),
    Variant("u-gelu-square-not-cube", "ch04", "torch.pow(x, 3)", "torch.pow(x, 2)", "ch04.GELU",
            mutant=("constant", "torch.pow(x, 3)")),
    Variant("u-ln-mean-over-batch", "ch04", "mean = x.mean(dim=-1, keepdim=True)",
            "mean = x.mean(dim=0, keepdim=True)", "ch04.LayerNorm", mutant=("constant", "x.mean(dim=-1")),
    Variant("u-gpt-positions-from-batch", "ch04", "torch.arange(seq_len, device=in_idx.device))\n        x = tok",
            "torch.arange(batch_size, device=in_idx.device))\n        x = tok", "ch04.GPTModel", count=1,
            mutant=("swap_names", "torch.arange(seq_len")),
    Variant("u-generate-simple-argmax-over-batch", "ch04", "idx_next = torch.argmax(probas, dim=-1, keepdim=True)",
            "idx_next = torch.argmax(probas, dim=0, keepdim=True)", "ch04.generate_text_simple",
            mutant=("constant", "torch.argmax(probas, dim=-1")),
    Variant("u-generate-simple-cat-on-batch", "ch04", "idx = torch.cat((idx, idx_next), dim=1)\n    return idx\n    # END SOLUTION",
            "idx = torch.cat((idx, idx_next), dim=0)\n    return idx\n    # END SOLUTION", "ch04.generate_text_simple",
            mutant=("constant", "torch.cat((idx, idx_next), dim=1)")),
    # ---- chapter 5
    Variant("u-loss-last-token-only", "ch05",
            "loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), target_batch.flatten())",
            "loss = torch.nn.functional.cross_entropy(logits[:, -1, :], target_batch[:, -1])",
            "ch05.calc_loss_batch", mutant=("last_token", "cross_entropy(logits.flatten(0, 1)")),
    Variant("u-generate-top-k-less-equal", "ch05", "torch.where(logits < min_val,",
            "torch.where(logits <= min_val,", "ch05.generate", mutant=("compare", "logits < min_val")),
    Variant("u-loader-one-batch-too-many", "ch05", "if i < num_batches:", "if i <= num_batches:",
            "ch05.calc_loss_loader", mutant=("compare", "i >= num_batches")),
    Variant("u-ids-to-text-no-squeeze", "ch05", "flat = token_ids.squeeze(0)\n    return tokenizer.decode(flat.tolist())",
            "return tokenizer.decode(token_ids.tolist())", "ch05.token_ids_to_text",
            mutant=("drop_call", ".squeeze(0)")),
    # ---- chapter 6
    Variant("u-split-validation-from-zero", "ch06",
            "validation_end = train_end + int(len(shuffled) * validation_frac)",
            "validation_end = int(len(shuffled) * validation_frac)", "ch06.create_balanced_dataset",
            mutant=("drop_operand", "train_end + int(len(shuffled) * validation_frac)")),
    Variant("u-accuracy-limit-off-by-one", "ch06", "            if i >= limit:\n                break\n"
            "            input_batch, target_batch = input_batch.to(device), target_batch.to(device)",
            "            if i > limit:\n                break\n"
            "            input_batch, target_batch = input_batch.to(device), target_batch.to(device)",
            "ch06.calc_accuracy_loader", mutant=("compare", ">= ")),
    # ---- chapter 7
    Variant("u-vote-on-unhashable-lists", "ch07", "counts = Counter(key(answer) for answer in answers)",
            "counts = Counter(answers)", "ch07.majority_vote", mutant=("drop_call", "_vote_key(answer)")),
    Variant("u-collate-targets-not-truncated", "ch07",
            "            inputs = inputs[:allowed_max_length]\n            targets = targets[:allowed_max_length]\n"
            "        inputs_lst.append(inputs)\n        targets_lst.append(targets)\n"
            "    return torch.stack(inputs_lst).to(device), torch.stack(targets_lst).to(device)\n    # END SOLUTION\n\n\ndef extract",
            "            inputs = inputs[:allowed_max_length]\n"
            "        inputs_lst.append(inputs)\n        targets_lst.append(targets)\n"
            "    return torch.stack(inputs_lst).to(device), torch.stack(targets_lst).to(device)\n    # END SOLUTION\n\n\ndef extract",
            "ch07.custom_collate_fn", mutant=("drop_statement", "targets = targets[:allowed_max_length]")),
    Variant("u-partition-test-from-zero", "ch07",
            "list(data[train_portion:train_portion + test_portion]),",
            "list(data[train_portion:test_portion]),", "ch07.partition_data",
            mutant=("drop_operand", "train_portion + test_portion")),
    Variant("u-format-input-no-blank-line", "ch07",
            'input_text = f"\\n\\n### Input:\\n{entry[\'input\']}" if entry.get("input") else ""',
            'input_text = f"\\n### Input:\\n{entry[\'input\']}" if entry.get("input") else ""',
            "ch07.format_input", mutant=("string", "### Input:")),
    # ---- appendix D
    Variant("d-u-warmup-without-initial-lr", "appendix_d",
            "lr_increment = (peak_lr - initial_lr) / warmup_steps",
            "lr_increment = peak_lr / warmup_steps", "appendix_d.train_model",
            mutant=("drop_operand", "(peak_lr - initial_lr) / warmup_steps")),
    Variant("d-u-cosine-progress-without-warmup", "appendix_d",
            "progress = (step - warmup_steps) / max(1, total_training_steps - warmup_steps)",
            "progress = (step - warmup_steps) / max(1, total_training_steps)", "appendix_d.train_model",
            mutant=("drop_operand", "total_training_steps - warmup_steps")),
    Variant("d-u-highest-gradient-min", "appendix_d", "if max_grad is None or max_grad_param > max_grad:",
            "if max_grad is None or max_grad_param < max_grad:", "appendix_d.find_highest_gradient",
            mutant=("flip_compare", "max_grad_param > max_grad")),
    # ---- appendix E
    Variant("e-u-lora-a-dims-swapped", "appendix_e", "torch.empty(in_dim, rank)", "torch.empty(rank, in_dim)",
            "appendix_e.LoRALayer", mutant=("swap_args", "torch.empty(in_dim, rank)")),
    Variant("e-u-lora-scale-inverted", "appendix_e", "(self.alpha / self.rank)", "(self.rank / self.alpha)",
            "appendix_e.LoRALayer", mutant=("swap_operands", "self.alpha / self.rank")),
    # ---- appendix A
    Variant("a-u-accuracy-argmax-dim-0", "appendix_a", "predictions = torch.argmax(logits, dim=1)",
            "predictions = torch.argmax(logits, dim=0)", "appendix_a.compute_accuracy", mutant=("constant", "dim=1")),
]
