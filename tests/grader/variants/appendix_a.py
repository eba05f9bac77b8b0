"""Variants of solutions/appendix_a.py."""

from tests.grader.variants import Variant

_ACC_LOOP = """        correct += int(torch.sum(compare))
        total_examples += len(compare)
    return correct / total_examples"""

VARIANTS = [
    # NeuralNetwork
    Variant("a-nn-softmax", "appendix_a", "logits = self.layers(x)",
            "logits = torch.softmax(self.layers(x), dim=-1)", "appendix_a.NeuralNetwork",
            diagnosis="appendix_a_softmax_on_logits"),
    Variant("a-nn-no-relu", "appendix_a", "torch.nn.ReLU(),", "torch.nn.Identity(),", "appendix_a.NeuralNetwork",
            diagnosis="appendix_a_missing_relu", count=0),
    Variant("a-nn-relu-on-output", "appendix_a", "logits = self.layers(x)", "logits = torch.relu(self.layers(x))",
            "appendix_a.NeuralNetwork", diagnosis="appendix_a_relu_on_output"),
    # ToyDataset
    Variant("a-ds-len-features", "appendix_a", "return int(self.labels.shape[0])",
            "return int(self.features.shape[1])", "appendix_a.ToyDataset",
            diagnosis="appendix_a_dataset_len_counts_features"),
    Variant("a-ds-pair-swapped", "appendix_a", "return one_x, one_y", "return one_y, one_x", "appendix_a.ToyDataset",
            diagnosis="appendix_a_dataset_pair_swapped"),
    Variant("a-ds-len-builtin", "appendix_a", "return int(self.labels.shape[0])", "return len(self.features)",
            "appendix_a.ToyDataset", passes=True),
    # compute_accuracy
    Variant("a-acc-mean-of-batches", "appendix_a", _ACC_LOOP,
            "        correct += float(torch.sum(compare)) / len(compare)\n"
            "        total_examples += 1\n"
            "    return correct / total_examples",
            "appendix_a.compute_accuracy", diagnosis="appendix_a_accuracy_mean_of_batches"),
    Variant("a-acc-count", "appendix_a", "return correct / total_examples", "return float(correct)",
            "appendix_a.compute_accuracy", diagnosis="appendix_a_accuracy_count_not_fraction"),
    Variant("a-acc-train-mode", "appendix_a", "model = model.eval()", "model = model",
            "appendix_a.compute_accuracy", diagnosis="appendix_a_accuracy_train_mode"),
    Variant("a-acc-vectorised", "appendix_a", _ACC_LOOP,
            "        correct += (logits.argmax(dim=-1) == labels).sum().item()\n"
            "        total_examples += labels.numel()\n"
            "    return correct / total_examples",
            "appendix_a.compute_accuracy", passes=True),
    # A.3
    Variant("a3-weights-only", "appendix_a", "sum(p.numel() for p in model.parameters() if p.requires_grad)",
            'sum(p.numel() for n, p in model.named_parameters() if n.endswith("weight"))', "A.3",
            diagnosis="appendix_a_params_weights_only"),
    # train_ddp
    Variant("a-ddp-rank-ignored", "appendix_a", "rank=0 if rank is None else rank", "rank=0",
            "appendix_a.train_ddp", diagnosis="appendix_a_ddp_rank_ignored"),
    Variant("a-ddp-last-batch-kept", "appendix_a", "        drop_last=True,", "        drop_last=False,",
            "appendix_a.train_ddp", diagnosis="appendix_a_ddp_last_batch_kept"),
    Variant("a-ddp-data-not-split", "appendix_a", "if world_size is not None:", "if False:",
            "appendix_a.train_ddp", diagnosis="appendix_a_ddp_data_not_split"),
]
