"""Variants of solutions/ch05.py."""

from tests.grader.variants import Variant

_LOSS = "loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), target_batch.flatten())"
_EVAL_BODY = """    model.eval()
    with torch.no_grad():
        train_loss = calc_loss_loader(train_loader, model, device, num_batches=eval_iter)
        val_loss = calc_loss_loader(val_loader, model, device, num_batches=eval_iter)
    model.train()
    return train_loss, val_loss"""
_TRAIN_STEP = """            optimizer.zero_grad()
            loss = calc_loss_batch(input_batch, target_batch, model, device)
            loss.backward()
            optimizer.step()
            tokens_seen += input_batch.numel()"""
_TOPK = """        if top_k is not None:
            top_logits, _ = torch.topk(logits, top_k)
            min_val = top_logits[:, -1:]
            logits = torch.where(logits < min_val, torch.tensor(float("-inf")).to(logits.device), logits)
"""
_EOS = """        if eos_id is not None:
            idx_next = torch.where(finished, torch.full_like(idx_next, eos_id), idx_next)
            finished = finished | (idx_next == eos_id)
            if finished.all():
                break
        idx = torch.cat((idx, idx_next), dim=1)"""
_BOOK_GENERATE_TAIL = """        if top_k is not None:
            top_logits, _ = torch.topk(logits, top_k)
            min_val = top_logits[:, -1]
            logits = torch.where(logits < min_val, torch.tensor(float("-inf")).to(logits.device), logits)

        if temperature > 0.0:
            logits = logits / temperature
            probs = torch.softmax(logits, dim=-1)
            idx_next = torch.multinomial(probs, num_samples=1)
        else:
            idx_next = torch.argmax(logits, dim=-1, keepdim=True)

        if idx_next == eos_id:
            break
        idx = torch.cat((idx, idx_next), dim=1)"""
_LN1 = """        gpt.trf_blocks[b].norm1.scale = assign(gpt.trf_blocks[b].norm1.scale, block["ln_1"]["g"])
        gpt.trf_blocks[b].norm1.shift = assign(gpt.trf_blocks[b].norm1.shift, block["ln_1"]["b"])"""
_ASSIGN_BODY = """    right = torch.as_tensor(right)
    if tuple(left.shape) != tuple(right.shape):
        raise ValueError(f"Shape mismatch. Left: {tuple(left.shape)}, Right: {tuple(right.shape)}")
    right = right.detach().to(device=left.device, dtype=left.dtype)
    return nn.Parameter(right.clone(memory_format=torch.contiguous_format))"""
_LOADER_LOOP = """    for i, (input_batch, target_batch) in enumerate(data_loader):
        if i < num_batches:
            loss = calc_loss_batch(input_batch, target_batch, model, device)
            total_loss += loss.item()
        else:
            break
    return total_loss / num_batches"""

VARIANTS = [
    # ---- softmax_with_temperature
    Variant("softmax-temperature-multiplied", "ch05", "scaled_logits = logits / temperature",
            "scaled_logits = logits * temperature", "ch05.softmax_with_temperature",
            diagnosis="ch05_temperature_multiplied"),
    Variant("softmax-temperature-ignored", "ch05", "scaled_logits = logits / temperature", "scaled_logits = logits",
            "ch05.softmax_with_temperature", diagnosis="ch05_temperature_ignored"),
    Variant("softmax-dim-0", "ch05", "return torch.softmax(scaled_logits, dim=-1)",
            "return torch.softmax(scaled_logits, dim=0)", "ch05.softmax_with_temperature",
            passes=True, extension="ch05_softmax_wrong_dim"),  # the book's code: right for one row of logits
    Variant("softmax-stable-by-hand", "ch05", "return torch.softmax(scaled_logits, dim=-1)",
            "e = torch.exp(scaled_logits - scaled_logits.max(dim=-1, keepdim=True).values)\n"
            "    return e / e.sum(dim=-1, keepdim=True)", "ch05.softmax_with_temperature", passes=True),
    # ---- text_to_token_ids
    Variant("ids-no-batch-dim", "ch05", "encoded_tensor = torch.tensor(encoded).unsqueeze(0)",
            "encoded_tensor = torch.tensor(encoded)", "ch05.text_to_token_ids",
            diagnosis="ch05_missing_batch_dimension"),
    Variant("ids-endoftext-not-allowed", "ch05", 'encoded = tokenizer.encode(text, allowed_special={"<|endoftext|>"})',
            "encoded = tokenizer.encode(text)", "ch05.text_to_token_ids", diagnosis="ch05_endoftext_not_allowed"),
    # ---- calc_loss_batch
    Variant("loss-summed", "ch05", _LOSS,
            'loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), target_batch.flatten(), reduction="sum")',
            "ch05.calc_loss_batch", diagnosis="ch05_loss_summed"),
    Variant("loss-targets-transposed", "ch05", _LOSS,
            "loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), target_batch.T.flatten())",
            "ch05.calc_loss_batch", diagnosis="ch05_loss_targets_wrong_order"),
    Variant("loss-against-inputs", "ch05", _LOSS,
            "loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), input_batch.flatten())",
            "ch05.calc_loss_batch", diagnosis="ch05_loss_against_inputs"),
    Variant("loss-not-flattened", "ch05", _LOSS, "loss = torch.nn.functional.cross_entropy(logits, target_batch)",
            "ch05.calc_loss_batch", diagnosis="ch05_loss_not_flattened"),
    Variant("loss-class-dim-second", "ch05", _LOSS,
            "loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target_batch)",
            "ch05.calc_loss_batch", passes=True),
    # ---- calc_loss_loader
    Variant("loader-num-batches-ignored", "ch05", "num_batches = min(num_batches, len(data_loader))",
            "num_batches = len(data_loader)", "ch05.calc_loss_loader",
            diagnosis="ch05_loader_num_batches_ignored"),
    Variant("loader-divides-by-len", "ch05", "    return total_loss / num_batches",
            "    return total_loss / len(data_loader)", "ch05.calc_loss_loader", diagnosis="ch05_loader_wrong_count"),
    Variant("loader-sum-not-mean", "ch05", "    return total_loss / num_batches", "    return total_loss",
            "ch05.calc_loss_loader", diagnosis="ch05_loader_sum_not_mean"),
    Variant("loader-accumulates-tensors", "ch05", "total_loss += loss.item()", "total_loss += loss",
            "ch05.calc_loss_loader", diagnosis="ch05_loader_returns_tensor"),
    Variant("loader-islice", "ch05", _LOADER_LOOP,
            "    import itertools\n"
            "    losses = [calc_loss_batch(x, y, model, device).item()\n"
            "              for x, y in itertools.islice(data_loader, num_batches)]\n"
            "    return sum(losses) / len(losses)", "ch05.calc_loss_loader", passes=True),
    # ---- evaluate_model
    Variant("eval-not-in-eval-mode", "ch05", _EVAL_BODY, _EVAL_BODY.replace("    model.eval()\n", "", 1),
            "ch05.evaluate_model", diagnosis="ch05_eval_not_in_eval_mode"),
    Variant("eval-mode-not-restored", "ch05", _EVAL_BODY, _EVAL_BODY.replace("    model.train()\n", "", 1),
            "ch05.evaluate_model", diagnosis="ch05_eval_mode_not_restored"),
    Variant("eval-iter-ignored", "ch05", _EVAL_BODY, _EVAL_BODY.replace(", num_batches=eval_iter", ""),
            "ch05.evaluate_model", diagnosis="ch05_eval_iter_ignored"),
    # ---- train_model_simple
    Variant("train-no-zero-grad", "ch05", _TRAIN_STEP, _TRAIN_STEP.replace("            optimizer.zero_grad()\n", ""),
            "ch05.train_model_simple", diagnosis="ch05_missing_zero_grad"),
    Variant("train-tokens-per-sequence", "ch05", "tokens_seen += input_batch.numel()",
            "tokens_seen += input_batch.shape[0]", "ch05.train_model_simple", diagnosis="ch05_tokens_seen_wrong"),
    Variant("train-schedule-off-by-one", "ch05", "tokens_seen, global_step = 0, -1", "tokens_seen, global_step = 0, 0",
            "ch05.train_model_simple", diagnosis="ch05_eval_schedule_off_by_one"),
    Variant("train-no-train-mode", "ch05", "        model.train()\n        for input_batch, target_batch in train_loader:",
            "        for input_batch, target_batch in train_loader:", "ch05.train_model_simple",
            diagnosis="ch05_train_mode_not_set"),
    Variant("train-prints-samples-like-the-book", "ch05",
            "                track_tokens_seen.append(tokens_seen)\n    return train_losses, val_losses, track_tokens_seen",
            "                track_tokens_seen.append(tokens_seen)\n"
            "                print(f\"Ep {epoch + 1} (Step {global_step:06d}): \"\n"
            "                      f\"Train loss {train_loss:.3f}, Val loss {val_loss:.3f}\")\n"
            "        from .ch04 import generate_text_simple\n"
            "        model.eval()\n"
            "        context_size = model.pos_emb.weight.shape[0]\n"
            "        encoded = text_to_token_ids(start_context, tokenizer).to(device)\n"
            "        with torch.no_grad():\n"
            "            token_ids = generate_text_simple(model=model, idx=encoded, max_new_tokens=5,\n"
            "                                             context_size=context_size)\n"
            "        print(token_ids_to_text(token_ids, tokenizer).replace(\"\\n\", \" \"))\n"
            "        model.train()\n"
            "    return train_losses, val_losses, track_tokens_seen",
            "ch05.train_model_simple", passes=True),
    # ---- generate
    Variant("generate-temperature-after-softmax", "ch05",
            "            logits = logits / temperature\n            probs = torch.softmax(logits, dim=-1)",
            "            probs = torch.softmax(logits, dim=-1) / temperature", "ch05.generate",
            diagnosis="ch05_generate_temperature_not_applied"),
    Variant("generate-temperature-multiplied", "ch05", "            logits = logits / temperature",
            "            logits = logits * temperature", "ch05.generate",
            diagnosis="ch05_generate_temperature_multiplied"),
    Variant("generate-top-k-plus-one", "ch05", "torch.topk(logits, top_k)", "torch.topk(logits, top_k + 1)",
            "ch05.generate", diagnosis="ch05_generate_topk_keeps_k_plus_one", count=-1),  # not the docstring's
    Variant("generate-top-k-zero-mask", "ch05", 'torch.tensor(float("-inf")).to(logits.device)',
            "torch.tensor(0.0).to(logits.device)", "ch05.generate", diagnosis="ch05_generate_topk_masked_with_zero"),
    Variant("generate-top-k-ignored", "ch05", _TOPK, "", "ch05.generate", diagnosis="ch05_generate_topk_ignored"),
    Variant("generate-eos-ignored", "ch05", _EOS, "        idx = torch.cat((idx, idx_next), dim=1)", "ch05.generate",
            diagnosis="ch05_generate_eos_ignored"),
    Variant("generate-eos-appended", "ch05", _EOS,
            "        idx = torch.cat((idx, idx_next), dim=1)\n"
            "        if eos_id is not None and bool((idx_next == eos_id).all()):\n"
            "            break", "ch05.generate", diagnosis="ch05_generate_eos_appended"),
    Variant("ch05-generate-no-crop", "ch05", "idx_cond = idx[:, -context_size:]", "idx_cond = idx", "ch05.generate",
            diagnosis="ch05_generate_no_crop"),
    # The printed book version (batch size 1 only): passes; only the uncounted extension checks fail.
    Variant("generate-book-batch-of-one", "ch05", _TOPK + "\n" + """        if temperature > 0.0:
            logits = logits / temperature
            probs = torch.softmax(logits, dim=-1)
            idx_next = torch.multinomial(probs, num_samples=1)
        else:
            idx_next = torch.argmax(logits, dim=-1, keepdim=True)

""" + _EOS, _BOOK_GENERATE_TAIL, "ch05.generate", passes=True),
    # ---- save_checkpoint / load_checkpoint
    Variant("checkpoint-without-optimizer", "ch05", "    if optimizer is not None:", "    if False:",
            "ch05.save_checkpoint", diagnosis="ch05_checkpoint_missing_optimizer", count=1),
    Variant("checkpoint-optimizer-not-loaded", "ch05",
            'optimizer.load_state_dict(checkpoint["optimizer_state_dict"])', "pass", "ch05.save_checkpoint",
            diagnosis="ch05_checkpoint_optimizer_not_restored"),
    # ---- load_weights_into_gpt
    Variant("weights-query-not-transposed", "ch05", "att.W_query.weight = assign(att.W_query.weight, q_w.T)",
            "att.W_query.weight = assign(att.W_query.weight, q_w)", "ch05.load_weights_into_gpt",
            diagnosis="ch05_weights_not_transposed"),
    Variant("weights-qkv-order", "ch05", "q_w, k_w, v_w = torch.chunk(", "k_w, q_w, v_w = torch.chunk(",
            "ch05.load_weights_into_gpt", diagnosis="ch05_qkv_split_wrong_order"),
    Variant("weights-head-not-tied", "ch05", '    gpt.out_head.weight = assign(gpt.out_head.weight, params["wte"])',
            "", "ch05.load_weights_into_gpt", diagnosis="ch05_out_head_not_tied"),
    Variant("weights-ln-g-b-swapped", "ch05", _LN1,
            _LN1.replace('["ln_1"]["g"]', "@G").replace('["ln_1"]["b"]', '["ln_1"]["g"]').replace("@G", '["ln_1"]["b"]'),
            "ch05.load_weights_into_gpt", diagnosis="ch05_ln_gain_bias_swapped"),
    Variant("weights-book-numpy-split-and-assign", "ch05",
            'q_w, k_w, v_w = torch.chunk(torch.as_tensor(block["attn"]["c_attn"]["w"]), 3, dim=-1)',
            'q_w, k_w, v_w = __import__("numpy").split(block["attn"]["c_attn"]["w"], 3, axis=-1)',
            "ch05.load_weights_into_gpt", passes=True),
    Variant("weights-book-assign", "ch05", _ASSIGN_BODY,
            "    if left.shape != right.shape:\n"
            "        raise ValueError(f\"Shape mismatch. Left: {left.shape}, Right: {right.shape}\")\n"
            "    return torch.nn.Parameter(torch.tensor(right))",
            "ch05.load_weights_into_gpt", passes=True),
    # ---- exercises
    Variant("ex51-no-minlength", "ch05", "torch.bincount(torch.tensor(sample), minlength=len(logits))",
            "torch.bincount(torch.tensor(sample))", "5.1", diagnosis="ch05_ex51_counts_missing_zeros"),
    Variant("ex51-one-multinomial-call", "ch05",
            "sample = [torch.multinomial(probas, num_samples=1).item() for _ in range(num_samples)]",
            "sample = torch.multinomial(probas, num_samples, replacement=True).tolist()", "5.1",
            diagnosis="ch05_ex51_one_multinomial_call"),
    Variant("ex52-swapped", "ch05", '"diverse": {"temperature": 1.5, "top_k": None},\n'
            '        "conservative": {"temperature": 0.5, "top_k": 3},',
            '"diverse": {"temperature": 0.5, "top_k": 3},\n        "conservative": {"temperature": 1.5, "top_k": None},',
            "5.2"),
    Variant("ex53-sampling-setting", "ch05", '{"temperature": 1.0, "top_k": 1},', '{"temperature": 1.0, "top_k": 2},',
            "5.3"),
    Variant("ex54-optimizer-not-restored", "ch05",
            "load_checkpoint(model, optimizer, checkpoint_path, map_location=device)",
            "load_checkpoint(model, None, checkpoint_path, map_location=device)", "5.4",
            diagnosis="ch05_resume_optimizer_not_restored"),
    Variant("ex55-val-drop-last", "ch05", "stride=context_length, drop_last=False, shuffle=False, num_workers=0)",
            "stride=context_length, drop_last=True, shuffle=False, num_workers=0)", "5.5",
            diagnosis="ch05_ex55_val_drop_last"),
]
