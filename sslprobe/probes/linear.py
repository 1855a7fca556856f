"""Read-out of frozen features: a linear classifier and a weighted kNN, with imbalance metrics (`accuracy`).

Features are computed once by the caller (e.g. ``method.embed`` over the train and test sets)
and everything here runs on those cached tensors, on their device. The linear classifier is
trained by mini-batch SGD written directly on tensors (gradients of softmax cross-entropy in
closed form, no autograd, no DataLoader), so 100 epochs over 50,000 × 512 features take
seconds on a CPU.

The default recipe is SGD with momentum 0.9, cosine learning rate 0.1 → 1e-4, 100 epochs, no
weight decay. The paper's Appendix C uses the same with LR 10 → 0.01 (`LINEAR_PROTOCOLS`
``paper``); on features of a narrow ResNet-12 that stops 4–7 points of top-1 below the converged
optimum (full-batch L-BFGS, ``lbfgs``), while LR 0.1 → 1e-4 reaches it within the test set's
sampling error (README, "Linear probe: SGD against a converged solver"). Either step size is
only comparable across models because the features are standardised first (per dimension,
with the *training* set's mean and standard deviation):
raw backbone features can have any scale (post-ReLU means of order 1, norms of order 10–100),
and the same step size would then mean a different effective learning rate for every model,
from stalled to divergent. After standardisation each input has unit variance and the
optimisation is comparable across methods.

Accuracies are fractions in [0, 1].
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F

from sslprobe.probes.accuracy import (  # noqa: F401 (re-exported: the read-out's metrics)
    DEFAULT_THRESHOLDS,
    classification_metrics,
    per_class_accuracy,
    rare_classes,
    shot_group_accuracy,
    shot_groups,
)
from sslprobe.probes.linear_protocol import LinearEvalOptions, LinearEvalScores, ShotThresholds
from sslprobe.schedules import cosine_between

STD_FLOOR = 1e-6
DEFAULT_OPTIONS = LinearEvalOptions()


@contextmanager
def _single_cpu_thread(device: torch.device):
    """Run on one intra-op thread on CPU, then restore the previous setting.

    Each SGD step works on ~1 MB; splitting such ops across threads costs more in
    synchronisation than it gains, and on a busy machine a descheduled worker thread stalls
    every op. One thread per step is faster in both cases.
    """
    if device.type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def standardize_features(train: torch.Tensor, *others: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Standardise features with the training set's per-dimension mean and std.

    Statistics are accumulated in float64; dimensions with (near-)zero variance are divided by
    ``STD_FLOOR`` instead of 0, so dead features stay at 0.

    Args:
        train: (N, D) training features; defines mean and std.
        *others: (M_i, D) further feature sets (test, validation) transformed the same way.

    Returns:
        The standardised ``train`` followed by each of ``others``, float32.
    """
    train64 = train.detach().to(torch.float64)
    mean = train64.mean(dim=0)
    std = train64.std(dim=0, unbiased=False).clamp_min(STD_FLOOR)
    return tuple(((x.detach().to(torch.float64) - mean) / std).float() for x in (train, *others))


def cosine_learning_rate(step: int, total_steps: int, lr: float, final_lr: float) -> float:
    """Cosine decay from ``lr`` at step 0 to ``final_lr`` at step ``total_steps - 1``."""
    progress = step / max(total_steps - 1, 1)
    return cosine_between(lr, final_lr, progress)


def train_linear_classifier(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    options: LinearEvalOptions | None = None,
    *,
    on_epoch=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression by mini-batch SGD with momentum and cosine LR.

    Minimises the mean softmax cross-entropy of ``x Wᵀ + b`` from W = 0, b = 0. Each epoch
    visits the rows in a fresh random order drawn from a generator seeded with ``seed`` (the
    last batch of an epoch may be smaller). The update is PyTorch's SGD: ``v ← m·v + g``,
    ``θ ← θ - lr_t · v``, with ``g`` including ``weight_decay · W`` (the bias is not decayed),
    and lr_t following `cosine_learning_rate` per step from ``lr`` to ``final_lr``.

    Args:
        features: (N, D) features, standardised (see `standardize_features`).
        labels: (N,) integer labels in [0, num_classes).
        num_classes: number of classes C.
        options: ``epochs``, ``batch_size``, ``lr``, ``final_lr``, ``momentum`` (m),
            ``weight_decay`` and ``seed`` are used (default `LinearEvalOptions()`).
        on_epoch: called with no argument after each epoch (progress display).

    Returns:
        ``(weight, bias)`` of shapes (C, D) and (C,).
    """
    options = options or DEFAULT_OPTIONS
    epochs, batch_size, momentum, weight_decay = (options.epochs, options.batch_size, options.momentum,
                                                  options.weight_decay)
    x_all = features.detach().float()
    y_all = labels.detach().long().to(x_all.device)
    n, dim = x_all.shape
    weight = torch.zeros(num_classes, dim, device=x_all.device)
    bias = torch.zeros(num_classes, device=x_all.device)
    velocity_w, velocity_b = torch.zeros_like(weight), torch.zeros_like(bias)
    generator = torch.Generator().manual_seed(options.seed)
    steps_per_epoch = math.ceil(n / batch_size)
    total_steps = epochs * steps_per_epoch
    minus_one = torch.full((batch_size, 1), -1.0, device=x_all.device)
    step = 0
    with _single_cpu_thread(x_all.device):
        for _ in range(epochs):
            order = torch.randperm(n, generator=generator).to(x_all.device)
            for start in range(0, n, batch_size):
                index = order[start : start + batch_size]
                x, y = x_all.index_select(0, index), y_all.index_select(0, index)  # (B, D), (B,)
                grad_logits = torch.softmax(torch.addmm(bias, x, weight.T), dim=1)  # (B, C)
                grad_logits.scatter_add_(1, y[:, None], minus_one[: y.shape[0]])  # p - onehot(y)
                grad_logits /= y.shape[0]
                grad_w = grad_logits.T @ x  # (C, D)
                if weight_decay:
                    grad_w.add_(weight, alpha=weight_decay)
                velocity_w.mul_(momentum).add_(grad_w)
                velocity_b.mul_(momentum).add_(grad_logits.sum(dim=0))
                step_lr = cosine_learning_rate(step, total_steps, options.lr, options.final_lr)
                weight.add_(velocity_w, alpha=-step_lr)
                bias.add_(velocity_b, alpha=-step_lr)
                step += 1
            if on_epoch is not None:
                on_epoch()
    return weight, bias


def train_linear_classifier_lbfgs(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    *,
    l2: float,
    max_iterations: int = 1000,
    tolerance: float = 1e-9,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression solved to convergence: full-batch L-BFGS.

    Minimises ``mean_i CE(x_i Wᵀ + b, y_i) + l2 / 2 · ‖W‖²`` (the bias is not penalised), a
    strictly convex problem for ``l2 > 0``, from W = 0, b = 0 with strong-Wolfe line search, in
    float64, until the gradient's largest entry falls below ``tolerance`` or after
    ``max_iterations`` iterations.

    Args:
        features: (N, D) features, standardised (see `standardize_features`).
        labels: (N,) integer labels in [0, num_classes).
        num_classes: number of classes C.
        l2: L2 coefficient on W.
        max_iterations: L-BFGS iterations at most.
        tolerance: stop when max |gradient| is below this.

    Returns:
        ``(weight, bias)`` of shapes (C, D) and (C,), float32.
    """
    x = features.detach().double()
    y = labels.detach().long().to(x.device)
    weight = torch.zeros(num_classes, x.shape[1], dtype=torch.float64, device=x.device, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=torch.float64, device=x.device, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iterations, tolerance_grad=tolerance,
                                  tolerance_change=1e-12, history_size=20, line_search_fn="strong_wolfe")

    def objective() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(torch.addmm(bias, x, weight.T), y) + 0.5 * l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(objective)
    return weight.detach().float(), bias.detach().float()


def knn_predict(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    num_classes: int,
    *,
    k: int = DEFAULT_OPTIONS.knn_k,
    temperature: float = DEFAULT_OPTIONS.knn_temperature,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """Weighted k-nearest-neighbour vote on cosine similarity (Wu et al. 2018, as solo-learn).

    For each test row, the k training rows of highest cosine similarity s vote for their class
    with weight ``exp(s / temperature)``; the prediction is the class with the largest total.
    Test rows are processed ``chunk_size`` at a time so memory stays (chunk_size, N).

    Args:
        train_features: (N, D) features of the labelled set (not standardised: cosine
            similarity is taken on the features as the model produces them).
        train_labels: (N,) integer labels.
        test_features: (M, D) features to classify.
        num_classes: number of classes C.
        k: neighbours per query (clipped to N).
        temperature: temperature of the vote weights.
        chunk_size: test rows per similarity block.

    Returns:
        (M,) predicted labels.
    """
    train = F.normalize(train_features.detach().float(), dim=1)
    labels = train_labels.detach().long().to(train.device)
    test = F.normalize(test_features.detach().float(), dim=1).to(train.device)
    k = min(k, train.shape[0])
    predictions = []
    for start in range(0, test.shape[0], chunk_size):
        similarity = test[start : start + chunk_size] @ train.T  # (c, N)
        top_similarity, top_index = similarity.topk(k, dim=1)  # (c, k)
        votes = torch.zeros(similarity.shape[0], num_classes, device=train.device)
        votes.scatter_add_(1, labels[top_index], (top_similarity / temperature).exp())
        predictions.append(votes.argmax(dim=1))
    return torch.cat(predictions)


def scores_of_predictions(
    predictions: torch.Tensor,
    knn_predictions: torch.Tensor,
    test_labels: torch.Tensor,
    num_classes: int,
    train_counts: np.ndarray | list[int] | torch.Tensor,
    keep_predictions: bool = False,
    thresholds: ShotThresholds = DEFAULT_THRESHOLDS,
) -> LinearEvalScores:
    """`LinearEvalScores` of the two classifiers' (M,) predictions of ``test_labels`` (see `classification_metrics`)."""
    linear = classification_metrics(predictions, test_labels, num_classes, train_counts, thresholds)
    knn = classification_metrics(knn_predictions, test_labels, num_classes, train_counts, thresholds)
    return LinearEvalScores(
        top1=linear["top1"], knn_top1=knn["top1"], per_class=linear["per_class"], balanced=linear["balanced"],
        rare_mean=linear["rare_mean"], frequent_mean=linear["frequent_mean"], knn_balanced=knn["balanced"],
        rare_classes=linear["rare_classes"], many_shot=linear["many_shot"], medium_shot=linear["medium_shot"],
        few_shot=linear["few_shot"], knn_many_shot=knn["many_shot"], knn_medium_shot=knn["medium_shot"],
        knn_few_shot=knn["few_shot"], knn_per_class=knn["per_class"],
        shot_classes=shot_groups(train_counts, thresholds),
        predictions=predictions.tolist() if keep_predictions else None,
        knn_predictions=knn_predictions.tolist() if keep_predictions else None,
    )


def linear_evaluation(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    options: LinearEvalOptions | None = None,
    *,
    num_classes: int | None = None,
    train_counts: np.ndarray | list[int] | torch.Tensor | None = None,
    on_epoch=None,
    return_predictions: bool = False,
    thresholds: ShotThresholds = DEFAULT_THRESHOLDS,
) -> LinearEvalScores:
    """Linear and kNN evaluation of frozen features (the paper's Appendix C protocol).

    The linear classifier is trained on standardised features (`standardize_features`, train
    statistics) with `train_linear_classifier` (``solver="sgd"``) or to convergence with
    `train_linear_classifier_lbfgs` (``solver="lbfgs"``); the kNN (`knn_predict`) uses cosine
    similarity on the raw features.

    Args:
        train_features: (N, D) features of the labelled training set.
        train_labels: (N,) labels.
        test_features: (M, D) features of the test set.
        test_labels: (M,) labels.
        options: the protocol (default `LinearEvalOptions()`: SGD, cosine LR 0.1 -> 1e-4, 100
            epochs; kNN k 200, temperature 0.1).
        num_classes: C; default 1 + the largest label seen.
        train_counts: (C,) class counts of the subset the *representation* was trained on,
            which defines rare and frequent, many-, medium- and few-shot classes; default the
            counts of ``train_labels``.
        on_epoch: called after each epoch of the linear classifier (progress display).
        return_predictions: also return ``predictions`` and ``knn_predictions``.
        thresholds: boundaries of the many/medium/few-shot groups (default 100 and 20).

    Returns:
        The scores of both classifiers; ``to_dict()`` is JSON-serialisable.
    """
    options = options or DEFAULT_OPTIONS
    train_labels = train_labels.detach().long()
    test_labels = test_labels.detach().long()
    if num_classes is None:
        num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    if train_counts is None:
        train_counts = torch.bincount(train_labels.cpu(), minlength=num_classes).numpy()

    train_std, test_std = standardize_features(train_features, test_features.to(train_features.device))
    if options.solver == "lbfgs":
        weight, bias = train_linear_classifier_lbfgs(train_std, train_labels, num_classes, l2=options.l2)
    else:
        weight, bias = train_linear_classifier(train_std, train_labels, num_classes, options, on_epoch=on_epoch)
    predictions = torch.addmm(bias, test_std, weight.T).argmax(dim=1)
    knn = knn_predict(train_features, train_labels, test_features, num_classes, k=options.knn_k,
                      temperature=options.knn_temperature)
    return scores_of_predictions(predictions, knn, test_labels, num_classes, train_counts, return_predictions,
                                 thresholds)
