"""Appendix A: the usual slips in the MLP, the accuracy function and the DDP data split."""

from __future__ import annotations

from typing import Any

import torch


def mlp(sd: dict[str, torch.Tensor], x: torch.Tensor, *, relu: bool = True, softmax: bool = False,
        relu_on_output: bool = False) -> torch.Tensor:
    """NeuralNetwork's forward pass, with one slip selected by the switches."""
    h = x
    for i, name in enumerate(("layers.0", "layers.2", "layers.4")):
        h = h @ sd[f"{name}.weight"].to(x.dtype).T + sd[f"{name}.bias"].to(x.dtype)
        if i < 2 and relu:
            h = torch.relu(h)
    if relu_on_output:
        h = torch.relu(h)
    if softmax:
        h = torch.softmax(h, dim=-1)
    return h


def mlp_mistakes(sd: dict[str, torch.Tensor], inputs: list[Any]) -> dict[str, torch.Tensor]:
    """A ``mistakes`` callable for :func:`grader.checking.checks.module_forward` on NeuralNetwork."""
    x = inputs[0].to(torch.float64)
    sd64 = {k: v.to(torch.float64) for k, v in sd.items()}
    with torch.no_grad():
        return {
            "appendix_a_softmax_on_logits": mlp(sd64, x, softmax=True),
            "appendix_a_missing_relu": mlp(sd64, x, relu=False),
            "appendix_a_relu_on_output": mlp(sd64, x, relu_on_output=True),
        }


def accuracy_mistakes(predictions: torch.Tensor, labels: torch.Tensor, batch_size: int) -> dict[str, float]:
    """What compute_accuracy returns with each slip, given the eval-mode predictions."""
    correct = predictions == labels
    per_batch = [float(correct[i:i + batch_size].float().mean()) for i in range(0, len(correct), batch_size)]
    return {
        "appendix_a_accuracy_mean_of_batches": sum(per_batch) / len(per_batch),
        "appendix_a_accuracy_count_not_fraction": float(correct.sum()),
    }


def rank_share(n: int, world_size: int, rank: int, batch_size: int, *, drop_last: bool = True) -> list[list[int]]:
    """Example indices per batch that DistributedSampler(shuffle=False) gives ``rank``."""
    total = -(-n // world_size) * world_size  # the sampler pads by repeating the first examples
    padded = [i % n for i in range(total)]
    mine = padded[rank:total:world_size]
    batches = [mine[i:i + batch_size] for i in range(0, len(mine), batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches = batches[:-1]
    return batches


def share_mistakes(n: int, world_size: int, rank: int, batch_size: int) -> dict[str, list[list[int]]]:
    """Batches (as index lists) a rank gets with each slip in prepare_dataset."""
    plain = [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]
    whole = [b for b in plain if len(b) == batch_size]
    return {
        "appendix_a_ddp_data_not_split": whole,
        "appendix_a_ddp_rank_ignored": rank_share(n, world_size, 0, batch_size),
        "appendix_a_ddp_last_batch_kept": rank_share(n, world_size, rank, batch_size, drop_last=False),
    }


def train_single_process(X: torch.Tensor, y: torch.Tensor, init_state_dict: dict[str, torch.Tensor],
                         num_epochs: int, lr: float, batch_size: int,
                         order: list[int] | None = None) -> dict[str, torch.Tensor]:
    """Plain SGD on the reference NeuralNetwork over ``X[order]`` in fixed batches (drop_last).

    What DDP must equal: with world size w and per-rank batch b, step k of all ranks together sees
    the examples of step k of one process with batch w * b, and DDP averages the gradients.
    """
    import torch.nn.functional as F

    import reference.appendix_a as ra

    model = ra.NeuralNetwork(int(X.shape[1]), int(init_state_dict["layers.4.weight"].shape[0]))
    model.load_state_dict(init_state_dict)
    params = list(model.parameters())
    index = torch.tensor(order if order is not None else list(range(X.shape[0])))
    xs, ys = X[index], y[index]
    for _ in range(num_epochs):
        for i in range(xs.shape[0] // batch_size):
            sl = slice(i * batch_size, (i + 1) * batch_size)
            loss = F.cross_entropy(model(xs[sl]), ys[sl])
            for p in params:
                p.grad = None
            loss.backward()  # type: ignore[no-untyped-call]
            # torch.optim.SGD's step without momentum, written out: the first optimizer a process
            # builds imports torch._dynamo (over a second of CPU), and this runs in every grade
            with torch.no_grad():
                for p in params:
                    if p.grad is not None:
                        p.add_(p.grad, alpha=-lr)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
