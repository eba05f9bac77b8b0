"""Variants of solutions/ch06.py."""

from tests.grader.variants import Variant

_LOSS = ("    logits = model(input_batch)[:, -1, :]\n"
         "    return nn.functional.cross_entropy(logits, target_batch)")
_ACC = "            logits = model(input_batch)[:, -1, :]\n            predicted"
_FREEZE = "    for param in model.parameters():\n        param.requires_grad = False\n    old_head"
_LAST_BLOCK = "    for param in model.trf_blocks[-1].parameters():\n        param.requires_grad = True\n"
_FINAL_NORM = "    for param in model.final_norm.parameters():\n        param.requires_grad = True\n"

VARIANTS = [
    # ---- data ----
    Variant("ch06-dataset-not-truncated", "ch06",
            "            self.encoded_texts = [ids[:max_length] for ids in self.encoded_texts]",
            "            pass", "ch06.SpamDataset", diagnosis="ch06_dataset_not_truncated"),
    # ---- surgery ----
    Variant("ch06-surgery-not-frozen", "ch06", _FREEZE, "    old_head", "ch06.prepare_classifier",
            diagnosis="ch06_surgery_not_frozen"),
    Variant("ch06-surgery-last-block-frozen", "ch06", _LAST_BLOCK, "", "ch06.prepare_classifier",
            diagnosis="ch06_surgery_last_block_frozen"),
    Variant("ch06-surgery-first-block", "ch06", "model.trf_blocks[-1].parameters()",
            "model.trf_blocks[0].parameters()", "ch06.prepare_classifier",
            diagnosis="ch06_surgery_first_block_unfrozen"),
    Variant("ch06-surgery-final-norm-frozen", "ch06", _FINAL_NORM, "", "ch06.prepare_classifier",
            diagnosis="ch06_surgery_final_norm_frozen"),
    Variant("ch06-surgery-head-frozen", "ch06", _LAST_BLOCK,
            "    model.out_head.requires_grad_(False)\n" + _LAST_BLOCK, "ch06.prepare_classifier",
            diagnosis="ch06_surgery_head_frozen"),
    Variant("ch06-surgery-seeds-inside", "ch06", "    old_head = model.out_head\n",
            "    old_head = model.out_head\n    torch.manual_seed(123)\n", "ch06.prepare_classifier",
            diagnosis="ch06_surgery_seeds_inside"),
    # ---- loss and accuracy ----
    Variant("ch06-loss-first-token", "ch06", _LOSS, _LOSS.replace("[:, -1, :]", "[:, 0, :]"),
            "ch06.calc_loss_batch", diagnosis="ch06_logits_first_token"),
    Variant("ch06-loss-all-tokens", "ch06", _LOSS,
            "    logits = model(input_batch)\n    return nn.functional.cross_entropy(logits.flatten(0, 1), "
            "target_batch.repeat_interleave(logits.shape[1]))",
            "ch06.calc_loss_batch", diagnosis="ch06_loss_over_all_tokens"),
    Variant("ch06-accuracy-first-token", "ch06", _ACC, _ACC.replace("[:, -1, :]", "[:, 0, :]"),
            "ch06.calc_accuracy_loader", diagnosis="ch06_logits_first_token"),
    Variant("ch06-accuracy-mean-of-batches", "ch06",
            "            seen += predicted.shape[0]\n            correct += int((predicted == target_batch).sum().item())",
            "            seen += 1\n            correct += (predicted == target_batch).float().mean().item()",
            "ch06.calc_accuracy_loader", diagnosis="ch06_accuracy_mean_of_batches"),
    Variant("ch06-first-token-loss-uses-last", "ch06", "logits = model(input_batch)[:, 0, :]",
            "logits = model(input_batch)[:, -1, :]", "6.3", diagnosis="ch06_logits_last_token"),
    # ---- training loop ----
    Variant("ch06-train-no-zero-grad", "ch06", "            optimizer.zero_grad()\n", "",
            "ch06.train_classifier_simple", diagnosis="ch06_train_no_zero_grad"),
    Variant("ch06-train-step-off-by-one", "ch06", "examples_seen, global_step = 0, -1",
            "examples_seen, global_step = 0, 0", "ch06.train_classifier_simple",
            diagnosis="ch06_train_step_count_off_by_one"),
    Variant("ch06-train-counts-tokens", "ch06", "examples_seen += input_batch.shape[0]",
            "examples_seen += input_batch.numel()", "ch06.train_classifier_simple",
            diagnosis="ch06_examples_seen_counts_tokens"),
    # ---- inference ----
    Variant("ch06-classify-first-token", "ch06", "logits = model(input_tensor)[:, -1, :]",
            "logits = model(input_tensor)[:, 0, :]", "ch06.classify_review", diagnosis="ch06_logits_first_token"),
    # ---- correct alternatives ----
    Variant("ch06-classify-book-erratum", "ch06", "supported = model.pos_emb.weight.shape[0]",
            "supported = model.pos_emb.weight.shape[1]", "ch06.classify_review", passes=True),
    Variant("ch06-loss-log-softmax", "ch06", _LOSS,
            "    logits = model(input_batch)[:, -1]\n"
            "    return nn.functional.nll_loss(torch.log_softmax(logits, dim=-1), target_batch)",
            "ch06.calc_loss_batch", passes=True),
]
