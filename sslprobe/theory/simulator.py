"""Batched training of linear models and small MLPs on synthetic Gaussian data (Appendix A, B).

Many models train in one tensor program: weights carry a leading model dimension (M, ...), and
the loss, any callable ``loss(z1, z2, **hyper) -> scalar`` from `sslprobe.losses`, is applied to
every model with `torch.func.vmap`. Training is full batch, with fresh Gaussian augmentation
noise at every step, exactly as the paper's simulations. Adam is element-wise, so one Adam over
the stacked weights is M independent Adams.

Convergence is measured, not assumed (`ConvergenceReport`): the loss plateau, the norm of the
augmentation-averaged gradient at the end relative to its start and to its Monte-Carlo noise
floor, and how much the spectrum of ``WᵀW`` still moved over the last fifth of training.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.func import vmap

from sslprobe.schedules import cosine_between

LossFunction = Callable[..., torch.Tensor]


# --- data --------------------------------------------------------------------------------------


def gaussian_dataset(
    num_samples: int,
    covariance: torch.Tensor,
    generator: torch.Generator,
    *,
    exact_covariance: bool = False,
    centered: bool = False,
) -> torch.Tensor:
    """Samples of N(0, covariance), (num_samples, d).

    With ``centered`` the sample mean is subtracted (the theory assumes ``E[x̂] = 0``; an
    uncentred sample mean is a direction that, e.g., normalisation removes). With
    ``exact_covariance`` the samples are centred and re-coloured so that their unbiased
    sample covariance equals ``covariance`` exactly (needs ``num_samples > d``); the theory's A0
    is then known without sampling error.
    """
    dim = covariance.shape[0]
    samples = torch.randn(num_samples, dim, generator=generator, dtype=torch.float64)
    if centered:
        samples = samples - samples.mean(0)
    if exact_covariance:
        if num_samples <= dim:
            raise ValueError(f"exact_covariance needs num_samples > dim, got {num_samples} <= {dim}")
        samples = samples - samples.mean(0)
        values, vectors = torch.linalg.eigh(torch.cov(samples.T))
        samples = samples @ vectors @ torch.diag(values.rsqrt()) @ vectors.T
    values, vectors = torch.linalg.eigh(covariance.double())
    root = vectors @ torch.diag(values.clamp_min(0).sqrt()) @ vectors.T
    return (samples @ root).float()


def pair_covariance(x: torch.Tensor) -> torch.Tensor:
    """Half the mean of ``(x_i - x_j)(x_i - x_j)ᵀ`` over pairs i ≠ j of ``x`` (N, d): the A0 that
    the InfoNCE family sees (equal to the unbiased sample covariance), (d, d) float64."""
    return torch.cov(x.double().T).reshape(x.shape[1], x.shape[1])


def second_moment(x: torch.Tensor) -> torch.Tensor:
    """``E[x xᵀ]`` over the rows of ``x`` (N, d): the A0 that SCL and Barlow Twins see, float64."""
    x = x.double()
    return x.T @ x / x.shape[0]


def augment(clean: torch.Tensor, noise_factor: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``x = x̂ + R ξ`` with ξ ~ N(0, I) fresh per sample and model.

    Args:
        clean: (N, d0) or (M, N, d0) clean inputs.
        noise_factor: (M, d0, d0) R per model; the augmentation covariance is ``C = R Rᵀ``.

    Returns:
        (M, N, d0) augmented inputs.
    """
    models, dim = noise_factor.shape[0], noise_factor.shape[-1]
    count = clean.shape[-2]
    xi = torch.randn(models, count, dim, generator=generator, dtype=clean.dtype)
    return clean + xi @ noise_factor.transpose(1, 2).to(clean.dtype)


def isotropic_noise_factors(sigmas: torch.Tensor, dim: int) -> torch.Tensor:
    """(M, d, d) factors ``σ_m I`` for an isotropic augmentation of variance σ_m²."""
    return sigmas.float()[:, None, None] * torch.eye(dim)


# --- losses over a stack of models ---------------------------------------------------------------


def batched_loss(
    loss: LossFunction, z1: torch.Tensor, z2: torch.Tensor, hyper: dict[str, torch.Tensor] | None = None
) -> torch.Tensor:
    """``loss`` applied to each model's (N, d1) embeddings with `torch.func.vmap`.

    Args:
        loss: e.g. ``functools.partial(info_nce_loss, alpha=0.1)``.
        z1, z2: (M, N, d1) embeddings of the two views for M models.
        hyper: per-model keyword arguments of ``loss``, each an (M,) tensor (e.g. β of a β sweep).

    Returns:
        (M,) loss per model.
    """
    names = tuple(hyper) if hyper else ()
    values = tuple(hyper[name] for name in names) if hyper else ()

    def one_model(a, b, *hyper_values):
        return loss(a, b, **dict(zip(names, hyper_values)))

    return vmap(one_model)(z1, z2, *values)


# --- convergence -----------------------------------------------------------------------------


@dataclass
class ConvergenceReport:
    """How close each of M trained models is to a stationary point of the expected loss.

    Attributes:
        loss_drift: (M,) |mean loss over the last 10% of steps − mean over the 10% before| divided
            by the total decrease of the (window-averaged) loss.
        plateau_t: (M,) the same difference over its standard error (per-step losses are noisy
            because every step draws fresh augmentation); below ~3 the loss is flat within noise.
        gradient_norm: (M,) norm of the augmentation-averaged gradient at the final weights.
        initial_gradient_norm: (M,) the same at the initial weights.
        gradient_noise_floor: (M,) Monte-Carlo standard error of ``gradient_norm``; a gradient
            below ~2x this floor is zero within measurement.
        spectrum_drift: (M,) max |Δλ| of ``WᵀW`` between 80% and 100% of training, over max λ.
        converged: (M,) bool: plateau (drift < 1e-2 or plateau_t < 3), gradient reduced 10x (or within
            2x a noise floor that is itself below a quarter of the initial gradient), and spectrum
            drift < 5e-2.
    """

    loss_drift: torch.Tensor
    plateau_t: torch.Tensor
    gradient_norm: torch.Tensor
    initial_gradient_norm: torch.Tensor
    gradient_noise_floor: torch.Tensor
    spectrum_drift: torch.Tensor
    converged: torch.Tensor

    def summary(self) -> dict[str, float | int]:
        """Worst-case and median numbers over the models, for a results file."""
        ratio = self.gradient_norm / self.initial_gradient_norm.clamp_min(1e-30)
        return {
            "models": int(self.converged.numel()),
            "converged": int(self.converged.sum()),
            "max_loss_drift": float(self.loss_drift.max()),
            "max_plateau_t": float(self.plateau_t.max()),
            "median_gradient_reduction": float(ratio.median()),
            "max_gradient_over_noise_floor": float(
                (self.gradient_norm / self.gradient_noise_floor.clamp_min(1e-30)).max()
            ),
            "max_spectrum_drift": float(self.spectrum_drift.max()),
        }


def _loss_drift(curve: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    steps = curve.shape[1]
    window = max(steps // 10, 2)
    last, before = curve[:, -window:], curve[:, -2 * window : -window]
    change = (last.mean(1) - before.mean(1)).abs()
    first = curve[:, :window].mean(1)
    standard_error = ((last.var(1) + before.var(1)) / window).sqrt()
    return change / (first - last.mean(1)).abs().clamp_min(1e-12), change / standard_error.clamp_min(1e-30)


def gram_spectrum(weights: torch.Tensor) -> torch.Tensor:
    """Eigenvalues of ``WᵀW`` for (..., d1, d0) weights, ascending, (..., d0) float64."""
    weights = weights.double()
    return torch.linalg.eigvalsh(weights.transpose(-1, -2) @ weights)


def _spectrum_drift(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    scale = after.abs().amax(-1).clamp_min(1e-30)
    return (after - before).abs().amax(-1) / scale


# --- linear models ---------------------------------------------------------------------------


@dataclass
class LinearTrainingResult:
    """Output of `train_linear_models`.

    Attributes:
        weights: (M, d1, d0) final weights.
        loss_curve: (M, steps) per-step loss (each on its own fresh noise).
        convergence: `ConvergenceReport`.
    """

    weights: torch.Tensor
    loss_curve: torch.Tensor
    convergence: ConvergenceReport

    @property
    def spectrum(self) -> torch.Tensor:
        """(M, d0) eigenvalues of ``WᵀW``, ascending."""
        return gram_spectrum(self.weights)


def cosine_learning_rate(step: int, steps: int, peak: float, final_fraction: float) -> float:
    """Cosine decay from ``peak`` to ``final_fraction · peak`` over ``steps``."""
    progress = step / max(steps - 1, 1)
    return peak * cosine_between(1.0, final_fraction, progress)


ViewSampler = Callable[[torch.Generator], tuple[torch.Tensor, torch.Tensor]]


def gaussian_views(clean: torch.Tensor, noise_factor: torch.Tensor) -> ViewSampler:
    """The two views ``x̂ + R ξ``, ``x̂ + R ξ'`` of `augment` as a `ViewSampler`.

    Args:
        clean: (N, d0) or (M, N, d0); noise_factor: (M, d0, d0).

    Returns:
        A function of a generator that draws (M, N, d0) views 1 and 2 (view 1 first).
    """

    def sample(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return augment(clean, noise_factor, generator), augment(clean, noise_factor, generator)

    return sample


def pooled_views(pool: torch.Tensor) -> ViewSampler:
    """Two *distinct* views per sample drawn uniformly from a fixed pool of K views.

    For inputs whose augmentation is not Gaussian (e.g. features of augmented images through
    a frozen network) the views are precomputed: ``pool[m, i, k]`` is view k of sample i for
    model m. Each draw picks, for every model and sample, a view k uniformly and a second view
    uniformly among the other K − 1. Pairs of one pool entry with itself never occur, so the
    second-order statistics the loss sees are exactly those of all K(K − 1) ordered pairs
    (see `sslprobe.studies.theory_cifar.pool_covariances`).

    Args:
        pool: (M, N, K, d0) with K >= 2.
    """
    models, count, views, dim = pool.shape
    if views < 2:
        raise ValueError(f"a pool needs at least 2 views per sample, got {views}")

    def sample(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        first = torch.randint(views, (models, count), generator=generator)
        second = (first + torch.randint(1, views, (models, count), generator=generator)) % views
        pick = lambda index: pool.gather(2, index[..., None, None].expand(models, count, 1, dim))[:, :, 0]  # noqa: E731
        return pick(first), pick(second)

    return sample


def averaged_gradient(
    weights: torch.Tensor,
    sample_views: ViewSampler,
    loss: LossFunction,
    generator: torch.Generator,
    *,
    hyper: dict[str, torch.Tensor] | None = None,
    samples: int = 32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augmentation-averaged gradient of each model's loss and its Monte-Carlo standard error.

    Args:
        weights: (M, d1, d0).
        sample_views: draws (M, N, d0) views 1 and 2 from ``generator``.
        samples: number of independent view draws averaged.

    Returns:
        (M,) norm of the mean gradient and (M,) its standard error (norm of the per-entry SE).
    """
    weights = weights.detach().requires_grad_(True)
    total = torch.zeros_like(weights)
    total_sq = torch.zeros_like(weights)
    for _ in range(samples):
        x1, x2 = sample_views(generator)
        value = batched_loss(loss, x1 @ weights.transpose(1, 2), x2 @ weights.transpose(1, 2), hyper).sum()
        (grad,) = torch.autograd.grad(value, weights)
        total += grad
        total_sq += grad * grad
    mean = total / samples
    variance = (total_sq / samples - mean * mean).clamp_min(0.0) / max(samples - 1, 1)
    return mean.flatten(1).norm(dim=1), variance.flatten(1).sum(1).sqrt()


def linear_gradient(
    weights: torch.Tensor,
    clean: torch.Tensor,
    noise_factor: torch.Tensor,
    loss: LossFunction,
    generator: torch.Generator,
    *,
    hyper: dict[str, torch.Tensor] | None = None,
    samples: int = 32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`averaged_gradient` under the Gaussian augmentation of `augment`.

    Args:
        weights: (M, d1, d0).
        clean: (N, d0) or (M, N, d0).
        noise_factor: (M, d0, d0).
        samples: number of independent noise draws averaged.

    Returns:
        (M,) norm of the mean gradient and (M,) its standard error (norm of the per-entry SE).
    """
    return averaged_gradient(weights, gaussian_views(clean, noise_factor), loss, generator, hyper=hyper,
                             samples=samples)


def train_linear_models(
    clean: torch.Tensor,
    noise_factor: torch.Tensor,
    loss: LossFunction,
    *,
    output_dim: int,
    steps: int,
    learning_rate: float = 6e-4,
    final_lr_fraction: float = 0.01,
    hyper: dict[str, torch.Tensor] | None = None,
    init_std: float = 0.3,
    weight_scale: torch.Tensor | None = None,
    seed: int = 0,
    gradient_samples: int = 32,
) -> LinearTrainingResult:
    """Train M linear models ``f(x) = W x`` at once: full batch, fresh augmentation every step.

    Each model is parametrised as ``W = s_m V`` with ``s_m = weight_scale[m]`` (default: the
    inverse root-mean-square of that model's augmented input, ``1/sqrt(mean eig Σ_m)``), and Adam
    runs on V. Adam ignores the gradient's scale, so this gives model m the step size
    ``s_m · learning_rate`` in W: sweeps whose inputs differ in scale by 100x still share one
    optimiser setting. The step size decays by a cosine to ``final_lr_fraction`` of its peak.

    Args:
        clean: (N, d0) clean inputs shared by all models, or (M, N, d0).
        noise_factor: (M, d0, d0) augmentation factors R (``C = R Rᵀ``).
        loss: ``loss(z1, z2, **hyper) -> scalar`` on (N, d1) embeddings, e.g. from sslprobe.losses.
        output_dim: d1.
        steps: Adam steps.
        learning_rate: peak Adam step size for V.
        hyper: per-model (M,) keyword arguments of ``loss``.
        init_std: V starts as N(0, init_std²/d0) entries.
        weight_scale: (M,) s_m, or None for the default above.
        seed: seeds initialisation and noise.
        gradient_samples: noise draws for the final convergence measurement.

    Returns:
        `LinearTrainingResult` with weights (M, d1, d0).
    """
    models, dim = noise_factor.shape[0], noise_factor.shape[-1]
    clean = clean.float()
    noise_factor = noise_factor.float()
    if weight_scale is None:
        data_power = (clean * clean).sum(-1).mean(-1) if clean.ndim == 3 else (clean * clean).sum(-1).mean()
        noise_power = (noise_factor * noise_factor).sum((-2, -1))
        weight_scale = ((data_power + noise_power) / dim).rsqrt()
    return train_linear_models_on_views(
        gaussian_views(clean, noise_factor), loss, models=models, input_dim=dim, output_dim=output_dim,
        steps=steps, learning_rate=learning_rate, final_lr_fraction=final_lr_fraction, hyper=hyper,
        init_std=init_std, weight_scale=weight_scale, seed=seed, gradient_samples=gradient_samples,
    )


def train_linear_models_on_views(
    sample_views: ViewSampler,
    loss: LossFunction,
    *,
    models: int,
    input_dim: int,
    output_dim: int,
    steps: int,
    weight_scale: torch.Tensor | float,
    learning_rate: float = 6e-4,
    final_lr_fraction: float = 0.01,
    hyper: dict[str, torch.Tensor] | None = None,
    init_std: float = 0.3,
    seed: int = 0,
    gradient_samples: int = 32,
) -> LinearTrainingResult:
    """`train_linear_models` for any source of views: fresh views from ``sample_views`` every step.

    Same parametrisation ``W = s_m V``, Adam with cosine decay, and `ConvergenceReport` (its
    augmentation-averaged gradient averages ``gradient_samples`` draws of ``sample_views``).

    Args:
        sample_views: draws (M, N, d0) views 1 and 2 from a generator (`gaussian_views`,
            `pooled_views`).
        models, input_dim: M and d0.
        weight_scale: (M,) s_m, or one float for all models.
        loss, output_dim, steps, learning_rate, final_lr_fraction, hyper, init_std, seed, gradient_samples:
            as in `train_linear_models`.

    Returns:
        `LinearTrainingResult` with weights (M, d1, d0).
    """
    generator = torch.Generator().manual_seed(seed)
    dim = input_dim
    weight_scale = torch.as_tensor(weight_scale, dtype=torch.float32).expand(models)[:, None, None]
    hyper = {name: value.float() for name, value in (hyper or {}).items()}
    direction = torch.randn(models, output_dim, dim, generator=generator, dtype=torch.float32)
    direction = direction * init_std / math.sqrt(dim)
    direction.requires_grad_(True)
    optimizer = torch.optim.Adam([direction], lr=learning_rate)
    curve = torch.empty(models, steps, dtype=torch.float32)
    snapshot_step = int(0.8 * steps)
    spectrum_before = gram_spectrum(direction.detach() * weight_scale)
    initial_grad, _ = averaged_gradient(
        direction.detach() * weight_scale, sample_views, loss, generator, hyper=hyper, samples=gradient_samples
    )
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = cosine_learning_rate(step, steps, learning_rate, final_lr_fraction)
        weights = direction * weight_scale  # (M, d1, d0)
        x1, x2 = sample_views(generator)
        values = batched_loss(loss, x1 @ weights.transpose(1, 2), x2 @ weights.transpose(1, 2), hyper)
        optimizer.zero_grad(set_to_none=True)
        values.sum().backward()
        optimizer.step()
        curve[:, step] = values.detach()
        if step == snapshot_step:
            spectrum_before = gram_spectrum(direction.detach() * weight_scale)
    final = direction.detach() * weight_scale
    grad_norm, grad_floor = averaged_gradient(
        final, sample_views, loss, generator, hyper=hyper, samples=gradient_samples
    )
    report = _report(curve, grad_norm, initial_grad, grad_floor, spectrum_before, gram_spectrum(final))
    return LinearTrainingResult(final, curve, report)


def _report(curve, grad_norm, initial_grad, grad_floor, spectrum_before, spectrum_after) -> ConvergenceReport:
    drift, plateau_t = _loss_drift(curve)
    spectral = _spectrum_drift(spectrum_before, spectrum_after)
    # "within the noise floor" only counts when that floor is itself well below the initial gradient
    within_floor = (grad_norm < 2.0 * grad_floor) & (grad_floor < 0.25 * initial_grad)
    gradient_ok = (grad_norm < 0.1 * initial_grad) | within_floor
    converged = ((drift < 1e-2) | (plateau_t < 3.0)) & gradient_ok & (spectral < 5e-2)
    return ConvergenceReport(drift, plateau_t, grad_norm, initial_grad, grad_floor, spectral, converged)


def expected_linear_loss(
    weights: torch.Tensor,
    clean: torch.Tensor,
    noise_factor: torch.Tensor,
    loss: LossFunction,
    *,
    samples: int,
    seed: int = 0,
    chunk: int = 256,
) -> torch.Tensor:
    """Monte-Carlo estimate of ``E_ε loss(W)`` for many weight matrices sharing one problem.

    The same noise draws are used for every W (common random numbers), so differences between
    weights, e.g. across a landscape grid, carry little Monte-Carlo noise.

    Args:
        weights: (G, d1, d0).
        clean: (N, d0).
        noise_factor: (d0, d0) R of the augmentation.
        samples: noise draws averaged.

    Returns:
        (G,) estimated expected loss.
    """
    generator = torch.Generator().manual_seed(seed)
    factor = noise_factor.float()[None]
    totals = torch.zeros(weights.shape[0], dtype=torch.float32)
    with torch.no_grad():
        for _ in range(samples):
            x1 = augment(clean.float(), factor, generator)[0]  # (N, d0)
            x2 = augment(clean.float(), factor, generator)[0]
            for start in range(0, weights.shape[0], chunk):
                block = weights[start : start + chunk].float()  # (g, d1, d0)
                z1 = torch.einsum("nd,gkd->gnk", x1, block)
                z2 = torch.einsum("nd,gkd->gnk", x2, block)
                totals[start : start + chunk] += batched_loss(loss, z1, z2)
    return totals / samples


# --- small nonlinear networks (Appendix B) ----------------------------------------------------------


ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}


@dataclass
class MLPStack:
    """M three-layer networks ``f(x) = W3 φ(x)``, ``φ(x) = act(W2 act(W1 x))``, stacked.

    Attributes:
        first: (M, h, d0), second: (M, h, h), last: (M, d1, h) weight stacks (no biases).
        activation: "tanh" or "relu".
    """

    first: torch.Tensor
    second: torch.Tensor
    last: torch.Tensor
    activation: str

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """φ(x) for (N, d0) or (M, N, d0) inputs -> (M, N, h)."""
        act = ACTIVATIONS[self.activation]
        hidden = act(x @ self.first.transpose(1, 2))
        return act(hidden @ self.second.transpose(1, 2))

    def __call__(self, x: torch.Tensor, last: torch.Tensor | None = None) -> torch.Tensor:
        """f(x) -> (M, N, d1); ``last`` replaces W3 (e.g. a rescaled copy)."""
        last = self.last if last is None else last
        return self.features(x) @ last.transpose(1, 2)


@dataclass
class MLPTrainingResult:
    """Output of `train_mlp_models`: the trained `MLPStack`, (M, steps) loss curve, convergence."""

    networks: MLPStack
    loss_curve: torch.Tensor
    convergence: ConvergenceReport


def train_mlp_models(
    clean: torch.Tensor,
    noise_factor: torch.Tensor,
    loss: LossFunction,
    *,
    hidden_dim: int,
    output_dim: int,
    activation: str,
    steps: int,
    learning_rate: float = 3e-3,
    final_lr_fraction: float = 0.01,
    hyper: dict[str, torch.Tensor] | None = None,
    seed: int = 0,
    gradient_samples: int = 16,
) -> MLPTrainingResult:
    """Train M three-layer networks (Appendix B) at once, full batch, fresh noise every step.

    All weights start as N(0, 1/fan_in); Adam with a cosine-decayed step size. The convergence
    report measures the gradient of all three layers together.

    Args:
        clean: (N, d0) clean inputs; noise_factor: (M, d0, d0); loss, hyper: as in
            `train_linear_models`; activation: "tanh" or "relu".
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    generator = torch.Generator().manual_seed(seed)
    models, dim = noise_factor.shape[0], noise_factor.shape[-1]
    clean, noise_factor = clean.float(), noise_factor.float()
    shapes = [(hidden_dim, dim), (hidden_dim, hidden_dim), (output_dim, hidden_dim)]
    params = [
        (torch.randn(models, *shape, generator=generator, dtype=torch.float32) / math.sqrt(shape[1]))
        .requires_grad_(True)
        for shape in shapes
    ]
    hyper = {name: value.float() for name, value in (hyper or {}).items()}

    def model_loss(parameters) -> torch.Tensor:
        net = MLPStack(*parameters, activation)
        x1 = augment(clean, noise_factor, generator)
        x2 = augment(clean, noise_factor, generator)
        return batched_loss(loss, net(x1), net(x2), hyper)

    def averaged_gradient(parameters) -> tuple[torch.Tensor, torch.Tensor]:
        detached = [p.detach().requires_grad_(True) for p in parameters]
        total, total_sq = 0.0, 0.0
        for _ in range(gradient_samples):
            grads = torch.autograd.grad(model_loss(detached).sum(), detached)
            flat = torch.cat([g.flatten(1) for g in grads], 1)  # (M, P)
            total = total + flat
            total_sq = total_sq + flat * flat
        mean = total / gradient_samples
        variance = (total_sq / gradient_samples - mean * mean).clamp_min(0) / max(gradient_samples - 1, 1)
        return mean.norm(dim=1), variance.sum(1).sqrt()

    initial_grad, _ = averaged_gradient(params)
    optimizer = torch.optim.Adam(params, lr=learning_rate)
    curve = torch.empty(models, steps, dtype=torch.float32)
    spectrum_before = gram_spectrum(params[2].detach())
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = cosine_learning_rate(step, steps, learning_rate, final_lr_fraction)
        values = model_loss(params)
        optimizer.zero_grad(set_to_none=True)
        values.sum().backward()
        optimizer.step()
        curve[:, step] = values.detach()
        if step == int(0.8 * steps):
            spectrum_before = gram_spectrum(params[2].detach())
    grad_norm, grad_floor = averaged_gradient(params)
    networks = MLPStack(*(p.detach() for p in params), activation)
    report = _report(curve, grad_norm, initial_grad, grad_floor, spectrum_before, gram_spectrum(networks.last))
    return MLPTrainingResult(networks, curve, report)


def expected_mlp_loss(
    networks: MLPStack,
    model: int,
    last_layers: torch.Tensor,
    clean: torch.Tensor,
    noise_factor: torch.Tensor,
    loss: LossFunction,
    *,
    samples: int,
    seed: int = 0,
    chunk: int = 256,
) -> torch.Tensor:
    """``E_ε loss`` of network ``model`` with its last layer replaced by each of (G, d1, h).

    Features φ of the noisy inputs are computed once per draw and shared by the G last layers.
    """
    generator = torch.Generator().manual_seed(seed)
    single = MLPStack(
        networks.first[model : model + 1], networks.second[model : model + 1], networks.last[model : model + 1],
        networks.activation,
    )
    totals = torch.zeros(last_layers.shape[0], dtype=torch.float32)
    with torch.no_grad():
        for _ in range(samples):
            phi1 = single.features(augment(clean.float(), noise_factor.float()[None], generator))[0]  # (N, h)
            phi2 = single.features(augment(clean.float(), noise_factor.float()[None], generator))[0]
            for start in range(0, last_layers.shape[0], chunk):
                block = last_layers[start : start + chunk].float()
                z1 = torch.einsum("nh,gkh->gnk", phi1, block)
                z2 = torch.einsum("nh,gkh->gnk", phi2, block)
                totals[start : start + chunk] += batched_loss(loss, z1, z2)
    return totals / samples


def feature_covariances(
    networks: MLPStack, model: int, clean: torch.Tensor, noise_factor: torch.Tensor, *, samples: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Section 4.1's A0 and C for the penultimate features φ of one trained network.

    A0 is `pair_covariance` of φ(x̂) on the clean inputs; Σ is the same statistic of φ(x̂ + ε)
    pooled over ``samples`` noise draws (each sample compared with other samples), and
    ``C = Σ − A0`` (which, for a nonlinear φ, need not be positive semi-definite).

    Returns:
        (A0, C), each (h, h) float64.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        single = MLPStack(
            networks.first[model : model + 1], networks.second[model : model + 1],
            networks.last[model : model + 1], networks.activation,
        )
        clean_features = single.features(clean.float())[0]
        noisy = torch.stack(
            [single.features(augment(clean.float(), noise_factor.float()[None], generator))[0] for _ in range(samples)]
        )  # (S, N, h)
    a0 = pair_covariance(clean_features)
    sigma = torch.stack([pair_covariance(block) for block in noisy]).mean(0)
    return a0, sigma - a0


# --- downstream evaluation (Fig. 3) -----------------------------------------------------------------


def ridge_regression_error(
    train_features: torch.Tensor,
    train_targets: torch.Tensor,
    test_features: torch.Tensor,
    test_targets: torch.Tensor,
    penalty: float = 1e-3,
) -> torch.Tensor:
    """Test mean squared error of ``min_G mean|G z − y|² + penalty |G|²`` fitted on the train set.

    Args:
        train_features: (M, N, k) representations z for M models; train_targets: (N,).
        test_features: (M, N', k); test_targets: (N',).

    Returns:
        (M,) test MSE.
    """
    z = train_features.double()
    count, dim = z.shape[1], z.shape[2]
    gram = z.transpose(1, 2) @ z / count + penalty * torch.eye(dim, dtype=z.dtype)  # (M, k, k)
    rhs = z.transpose(1, 2) @ train_targets.double()[None, :, None] / count  # (M, k, 1)
    coefficients = torch.linalg.solve(gram, rhs)  # (M, k, 1)
    prediction = (test_features.double() @ coefficients)[..., 0]  # (M, N')
    return ((prediction - test_targets.double()[None]) ** 2).mean(1)
