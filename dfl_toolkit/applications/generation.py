"""Image generation on 28x28 MNIST: a VAE trained with :func:`~dfl_toolkit.fit`, a DCGAN with its own two-player
loop, and sample quality measured in the feature space of the toolkit's own digit classifier.

Every image here is a float tensor of shape (N, 1, 28, 28) with pixels in [0, 1]: load the data with
``get_dataset("mnist5k", normalize=False)`` and turn a split into such a tensor with :func:`image_tensor`.

- :class:`VAE`, :class:`ELBOLoss`, :class:`ELBOTerms`, :func:`interpolate`: Kingma & Welling 2014.
- :class:`Generator`, :class:`Discriminator`, :func:`train_gan`: Radford et al. 2016 (DCGAN), Goodfellow et al. 2014;
  :class:`MinibatchStd` (Karras et al. 2018) and one-sided label smoothing (Salimans et al. 2016) against collapse.
- :class:`SampleJudge`, :func:`frechet_distance`, :func:`mode_coverage`, :func:`nearest_distances`: the Fréchet
  distance of Heusel et al. 2017 (FID), computed in a small MNIST classifier's features instead of Inception's.

Example:
    >>> from dfl_toolkit.applications import generation as gen
    >>> data = dfl.get_dataset("mnist5k", normalize=False)
    >>> x = gen.image_tensor(data.train)
    >>> vae = gen.VAE(); dfl.fit(vae, gen.autoencoder_data(x), epochs=5, loss_fn=gen.ELBOLoss())
    >>> gen.SampleJudge.train(dfl.get_dataset("mnist5k")).quality(vae.sample(1000), real=gen.image_tensor(data.test))
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

from ..checkpoint import START_OVER, check_resumable, load_checkpoint, save_checkpoint
from ..errors import CheckpointError, ShapeError, UsageError
from ..runtime import derive_seed, eval_mode, get_device, seed_everything

IMAGE_SHAPE = (1, 28, 28)
GAN_FORMAT = "dfl_toolkit.train_gan/1"


def check_images(images: Any, name: str = "images") -> torch.Tensor:
    """``images`` as a float tensor (N, 1, 28, 28) with pixels in [0, 1], or one clear error saying what is accepted.

    Example:
        >>> check_images(torch.rand(4, 1, 28, 28)).shape
        torch.Size([4, 1, 28, 28])
    """
    if not isinstance(images, torch.Tensor):
        raise UsageError(f"{name} must be a torch tensor of shape (N, 1, 28, 28), got {type(images).__name__}")
    if images.dim() == 3 and tuple(images.shape[1:]) == IMAGE_SHAPE[1:]:
        images = images.unsqueeze(1)  # (N, 28, 28) -> (N, 1, 28, 28)
    if images.dim() != 4 or tuple(images.shape[1:]) != IMAGE_SHAPE or len(images) == 0:
        raise ShapeError(f"{name} must have shape (N, 1, 28, 28) with N >= 1 (or (N, 28, 28)), "
                         f"got {tuple(images.shape)}")
    images = images.float()
    lo, hi = float(images.min()), float(images.max())
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo < -1e-4 or hi > 1 + 1e-4:
        raise UsageError(f"{name} must hold pixels in [0, 1], got values in [{lo:.3g}, {hi:.3g}]; load the data "
                         f"with get_dataset('mnist5k', normalize=False)")
    return images


def image_tensor(dataset: Dataset | torch.Tensor) -> torch.Tensor:
    """All images of a dataset (yielding ``(x, y)``) stacked as one checked (N, 1, 28, 28) tensor in [0, 1].

    Example:
        >>> x = image_tensor(get_dataset("mnist5k", normalize=False).train)    # (3500, 1, 28, 28)
    """
    if isinstance(dataset, torch.Tensor):
        return check_images(dataset)
    if not isinstance(dataset, Dataset):
        raise UsageError(f"expected a torch Dataset yielding (image, label) or an image tensor, "
                         f"got {type(dataset).__name__}")
    return check_images(torch.stack([dataset[i][0] for i in range(len(dataset))]), "the dataset's images")


def image_labels(dataset: Dataset) -> torch.Tensor:
    """The integer labels of a dataset yielding ``(x, y)``, as one tensor."""
    return torch.tensor([int(dataset[i][1]) for i in range(len(dataset))])


def autoencoder_data(images: torch.Tensor) -> TensorDataset:
    """A dataset yielding ``(x, x)``: what :func:`~dfl_toolkit.fit` needs to train an autoencoder.

    Example:
        >>> fit(VAE(), autoencoder_data(x), epochs=5, loss_fn=ELBOLoss())
    """
    images = check_images(images)
    return TensorDataset(images, images)


# --------------------------------------------------------------------------------------------------- the VAE


class VAE(nn.Module):
    """A small convolutional variational autoencoder for 28x28 digits (Kingma & Welling 2014, "Auto-Encoding
    Variational Bayes").

    Encoder: two stride-2 convolutions (28 -> 14 -> 7) and two linear heads for the mean and log-variance of
    q(z | x). Decoder: the mirror image with transposed convolutions, ending in pixel logits (a Bernoulli per pixel).
    ``forward(x)`` returns ``(logits, mu, logvar)``, which :class:`ELBOLoss` understands.

    Example:
        >>> vae = VAE(latent_dim=16)
        >>> logits, mu, logvar = vae(torch.rand(2, 1, 28, 28))
        >>> vae.sample(8, seed=0).shape
        torch.Size([8, 1, 28, 28])
    """

    def __init__(self, latent_dim: int = 16, channels: Sequence[int] = (32, 64)):
        super().__init__()
        if not isinstance(latent_dim, int) or latent_dim < 1:
            raise UsageError(f"latent_dim must be a positive int, got {latent_dim!r}")
        if len(channels) != 2 or any(not isinstance(c, int) or c < 1 for c in channels):
            raise UsageError(f"channels must be two positive ints (one per stride-2 layer), got {channels!r}")
        c1, c2 = channels
        self.latent_dim = latent_dim
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c1, 4, 2, 1), nn.ReLU(), nn.Conv2d(c1, c2, 4, 2, 1), nn.ReLU(), nn.Flatten())
        self.mu = nn.Linear(c2 * 49, latent_dim)
        self.logvar = nn.Linear(c2 * 49, latent_dim)
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, c2 * 49), nn.ReLU(), nn.Unflatten(1, (c2, 7, 7)),
            nn.ConvTranspose2d(c2, c1, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(c1, 1, 4, 2, 1))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z | x) for images (N, 1, 28, 28)."""
        if x.dim() != 4 or tuple(x.shape[1:]) != IMAGE_SHAPE:
            raise ShapeError(f"the VAE takes images of shape (N, 1, 28, 28), got {tuple(x.shape)}")
        h = self.encoder(x)
        return self.mu(h), self.logvar(h)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel logits (N, 1, 28, 28) for latent codes (N, latent_dim)."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ShapeError(f"latent codes must have shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] (the Bernoulli means) for latent codes (N, latent_dim)."""
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu  # reparameterisation
        return self.decode_logits(z), mu, logvar

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` new images decoded from z ~ N(0, I), repeatable given ``seed``."""
        z = torch.randn(n, self.latent_dim, generator=torch.Generator().manual_seed(seed))
        with eval_mode(self):
            return self.decode(z.to(next(self.parameters()).device)).cpu()

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Images decoded from their posterior means."""
        x = check_images(x)
        with eval_mode(self):
            return self.decode(self.encode(x.to(next(self.parameters()).device))[0]).cpu()


class ELBOLoss(nn.Module):
    """The negative evidence lower bound per image, in nats (Kingma & Welling 2014, eq. 10):
    reconstruction (Bernoulli negative log-likelihood, summed over pixels) + ``beta`` x KL(q(z|x) || N(0, I)).

    Use it as ``fit(vae, autoencoder_data(x), loss_fn=ELBOLoss())``; :meth:`terms` gives the two parts.
    ``beta`` > 1 is the beta-VAE of Higgins et al. 2017.

    Example:
        >>> loss = ELBOLoss()
        >>> loss.terms((torch.zeros(1, 1, 28, 28), torch.zeros(1, 2), torch.zeros(1, 2)), torch.ones(1, 1, 28, 28))
        {'recon': 543.43..., 'kl': 0.0}
    """

    def __init__(self, beta: float = 1.0):
        super().__init__()
        if not isinstance(beta, (int, float)) or not beta >= 0:
            raise UsageError(f"beta must be a non-negative number, got {beta!r}")
        self.beta = float(beta)

    @staticmethod
    def _parts(out: Any, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not (isinstance(out, (tuple, list)) and len(out) == 3):
            raise UsageError("ELBOLoss takes the VAE's output (logits, mu, logvar) and the target images, got "
                             f"{type(out).__name__}")
        logits, mu, logvar = out
        if logits.shape != target.shape:
            raise ShapeError(f"logits {tuple(logits.shape)} and target images {tuple(target.shape)} differ in shape")
        n = len(target)
        recon = F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / n
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / n
        return recon, kl

    def forward(self, out: Any, target: torch.Tensor) -> torch.Tensor:
        recon, kl = self._parts(out, target)
        return recon + self.beta * kl

    @torch.no_grad()
    def terms(self, out: Any, target: torch.Tensor) -> dict[str, float]:
        """``{"recon": ..., "kl": ...}``, each the mean per image in nats."""
        recon, kl = self._parts(out, target)
        return {"recon": float(recon), "kl": float(kl)}


class ELBOTerms:
    """A :func:`~dfl_toolkit.fit` callback that adds the ELBO's two terms on ``data`` to each epoch's record
    (``{prefix}_recon``, ``{prefix}_kl``), so ``history["val_kl"]`` can be plotted per epoch.

    Example:
        >>> h = fit(vae, train, val, loss_fn=ELBOLoss(), callbacks=[ELBOTerms(vae, val)])
        >>> h["val_recon"], h["val_kl"]
    """

    def __init__(self, model: VAE, data: Dataset, loss: ELBOLoss | None = None, prefix: str = "val",
                 batch_size: int = 256):
        self.model, self.loss, self.prefix = model, loss or ELBOLoss(), prefix
        self.loader = DataLoader(data, batch_size=batch_size, shuffle=False)

    def __call__(self, history: Any) -> bool:
        totals, seen = {"recon": 0.0, "kl": 0.0}, 0
        device = next(self.model.parameters()).device
        with eval_mode(self.model), torch.no_grad():
            for x, y in self.loader:
                x, y = x.to(device), y.to(device)
                for k, v in self.loss.terms(self.model(x), y).items():
                    totals[k] += v * len(x)
                seen += len(x)
        history.records[-1].update({f"{self.prefix}_{k}": v / seen for k, v in totals.items()})
        return False


@torch.no_grad()
def interpolate(vae: VAE, a: torch.Tensor, b: torch.Tensor, steps: int = 8) -> torch.Tensor:
    """Images decoded along the straight line between the posterior means of images ``a`` and ``b``: (steps, 1, 28, 28).

    Example:
        >>> strip = interpolate(vae, x[0], x[1], steps=10)
    """
    if not isinstance(steps, int) or steps < 2:
        raise UsageError(f"steps must be an int >= 2 (both ends included), got {steps!r}")
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.numel() == b.numel() == 784):
        raise ShapeError("a and b must be one 28x28 image each ((1, 28, 28), (28, 28) or (1, 1, 28, 28)), got "
                         f"{tuple(getattr(a, 'shape', ()))} and {tuple(getattr(b, 'shape', ()))}")
    ends = check_images(torch.stack([a.reshape(IMAGE_SHAPE), b.reshape(IMAGE_SHAPE)]), "a and b")
    device = next(vae.parameters()).device
    with eval_mode(vae):
        mu = vae.encode(ends.to(device))[0]
        t = torch.linspace(0, 1, steps, device=device).unsqueeze(1)
        return vae.decode((1 - t) * mu[0] + t * mu[1]).cpu()


# ------------------------------------------------------------------------------------------------- the DCGAN


class MinibatchStd(nn.Module):
    """Appends one channel holding the standard deviation of each feature across the batch, averaged (Karras et
    al. 2018, "Progressive Growing of GANs", sec. 3): a discriminator that sees it can tell a batch of near-copies
    from real data, so a collapsed generator is penalised.

    Example:
        >>> MinibatchStd()(torch.rand(8, 4, 7, 7)).shape
        torch.Size([8, 5, 7, 7])
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        std = x.std(dim=0, unbiased=False).mean() if len(x) > 1 else x.new_zeros(())
        return torch.cat([x, std.expand(len(x), 1, *x.shape[2:])], dim=1)


class Generator(nn.Module):
    """A DCGAN generator sized for 28x28 on a CPU (Radford et al. 2016, "Unsupervised Representation Learning with
    Deep Convolutional GANs"): z -> linear to (2w, 7, 7) -> transposed convolutions 7 -> 14 -> 28, batch norm and
    ReLU between, a tanh at the end (rescaled to [0, 1], the convention of this module).

    Example:
        >>> g = Generator(latent_dim=32)
        >>> g(torch.randn(4, 32)).shape
        torch.Size([4, 1, 28, 28])
    """

    def __init__(self, latent_dim: int = 32, width: int = 32, batch_norm: bool = True):
        super().__init__()
        if not isinstance(latent_dim, int) or latent_dim < 1 or not isinstance(width, int) or width < 1:
            raise UsageError(f"latent_dim and width must be positive ints, got {latent_dim!r} and {width!r}")
        self.latent_dim = latent_dim

        def norm(c: int, dims: int = 2) -> nn.Module:
            return (nn.BatchNorm2d(c) if dims == 2 else nn.BatchNorm1d(c)) if batch_norm else nn.Identity()

        self.net = nn.Sequential(
            nn.Linear(latent_dim, 2 * width * 49), norm(2 * width * 49, 1), nn.ReLU(),
            nn.Unflatten(1, (2 * width, 7, 7)),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1), norm(width), nn.ReLU(),
            nn.ConvTranspose2d(width, 1, 4, 2, 1), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ShapeError(f"the generator takes latent codes of shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        return (self.net(z) + 1) / 2

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` images from z ~ N(0, I), repeatable given ``seed`` (eval mode: batch norm uses running stats)."""
        z = torch.randn(n, self.latent_dim, generator=torch.Generator().manual_seed(seed))
        with eval_mode(self):
            return self(z.to(next(self.parameters()).device)).cpu()


class Discriminator(nn.Module):
    """A DCGAN discriminator for 28x28 (Radford et al. 2016): stride-2 convolutions 28 -> 14 -> 7 with LeakyReLU(0.2),
    batch norm on the second, then one logit "real". ``minibatch_std=True`` adds :class:`MinibatchStd` before the head.

    Layers are named for :func:`~dfl_toolkit.extract_features`: ``features.block1``, ``features.block2``, ``head``.

    Example:
        >>> Discriminator()(torch.rand(4, 1, 28, 28)).shape
        torch.Size([4])
    """

    def __init__(self, width: int = 32, batch_norm: bool = True, minibatch_std: bool = False):
        super().__init__()
        if not isinstance(width, int) or width < 1:
            raise UsageError(f"width must be a positive int, got {width!r}")
        self.features = nn.Sequential()
        self.features.add_module("block1", nn.Sequential(nn.Conv2d(1, width, 4, 2, 1), nn.LeakyReLU(0.2)))
        self.features.add_module("block2", nn.Sequential(
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.BatchNorm2d(2 * width) if batch_norm else nn.Identity(),
            nn.LeakyReLU(0.2)))
        self.mbstd = MinibatchStd() if minibatch_std else nn.Identity()
        self.head = nn.Sequential(nn.Flatten(), nn.Linear((2 * width + int(minibatch_std)) * 49, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != IMAGE_SHAPE:
            raise ShapeError(f"the discriminator takes images of shape (N, 1, 28, 28), got {tuple(x.shape)}")
        return self.head(self.mbstd(self.features(x * 2 - 1))).squeeze(1)


@dataclass
class GANHistory:
    """What :func:`train_gan` returns: ``steps`` (one dict per logged step) and ``epochs`` (their means per epoch),
    each with ``d_loss``, ``g_loss``, ``d_real`` = mean D(x) and ``d_fake`` = mean D(G(z)), as probabilities.

    Example:
        >>> h = train_gan(g, d, x, epochs=3)
        >>> h.epochs[-1]["d_real"], h.plot()
    """

    steps: list[dict[str, float]] = field(default_factory=list)
    epochs: list[dict[str, float]] = field(default_factory=list)
    diverged: bool = False

    def __getitem__(self, key: str) -> list[float]:
        """One metric per epoch."""
        return [r[key] for r in self.epochs]

    def metrics(self) -> list[dict[str, float]]:
        """Per-epoch records without wall-clock times: identical for two runs with one seed."""
        return [{k: v for k, v in r.items() if k != "time"} for r in self.epochs]

    def to_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "epochs": self.epochs, "diverged": self.diverged}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GANHistory:
        return cls(list(d["steps"]), list(d["epochs"]), bool(d["diverged"]))

    def plot(self, axes: Sequence[Any] | None = None, smooth: int = 10):
        """Losses and D's outputs per step (moving average over ``smooth`` steps). Returns the Figure."""
        import matplotlib.pyplot as plt

        if axes is None:
            fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), layout="constrained")
        fig = axes[0].figure
        step = np.array([r["step"] for r in self.steps])

        def ma(key: str) -> np.ndarray:
            v = np.array([r[key] for r in self.steps], dtype=float)
            k = max(1, min(smooth, len(v)))
            return np.convolve(v, np.ones(k) / k, mode="valid") if len(v) else v

        for ax, keys, ylabel in ((axes[0], ("d_loss", "g_loss"), "loss"),
                                 (axes[1], ("d_real", "d_fake"), "mean D output")):
            ax.clear()
            for key in keys:
                v = ma(key)
                ax.plot(step[len(step) - len(v):], v, label=key)
            ax.set(xlabel="generator step", ylabel=ylabel)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        axes[1].axhline(0.5, color="grey", lw=1, ls=":")
        axes[1].set_ylim(0, 1)
        return fig


def _gan_step(g: nn.Module, d: nn.Module, real: torch.Tensor, opt_g: torch.optim.Optimizer,
              opt_d: torch.optim.Optimizer, smooth: float) -> dict[str, float]:
    """One discriminator step and one generator step (non-saturating loss, Goodfellow et al. 2014, sec. 3)."""
    bce = F.binary_cross_entropy_with_logits
    z = torch.randn(len(real), g.latent_dim, device=real.device)
    fake = g(z)
    out_real, out_fake = d(real), d(fake.detach())
    d_loss = bce(out_real, torch.full_like(out_real, 1.0 - smooth)) + bce(out_fake, torch.zeros_like(out_fake))
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    out = d(fake)
    g_loss = bce(out, torch.ones_like(out))
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()
    return {"d_loss": d_loss.item(), "g_loss": g_loss.item(), "d_real": float(torch.sigmoid(out_real.detach()).mean()),
            "d_fake": float(torch.sigmoid(out_fake.detach()).mean())}


def train_gan(generator: Generator, discriminator: Discriminator, images: torch.Tensor | Dataset, *, epochs: int = 10,
              batch_size: int = 64, lr_g: float = 2e-4, lr_d: float = 2e-4, betas: tuple[float, float] = (0.5, 0.999),
              label_smoothing: float = 0.0, seed: int = 0, device: str | torch.device | None = None,
              checkpoint: str | os.PathLike | None = None, resume: bool = True,
              callbacks: Sequence[Callable[[GANHistory], bool | None]] = (), progress: bool = False) -> GANHistory:
    """Train a GAN (Goodfellow et al. 2014) with the DCGAN recipe (Radford et al. 2016: Adam, lr 2e-4, beta1 0.5):
    per batch one discriminator step, then one generator step with the non-saturating loss.

    Two players do not fit :func:`~dfl_toolkit.fit`, but this loop keeps its rules:

    - Repeatable: each epoch's shuffling and noise are seeded from ``derive_seed(seed, epoch)``; seed the two
      networks' initialisation yourself with :func:`seed_everything` before building them.
    - Checkpoints: with ``checkpoint=path`` both networks, both optimizers and the history are saved after every
      epoch (atomically); the same call again resumes and ends exactly as an uninterrupted run; a checkpoint made
      with other settings is refused, naming them; ``resume=False`` starts over.
    - ``label_smoothing=0.1`` trains D towards 0.9 on real images (one-sided, Salimans et al. 2016).
    - ``callbacks``: each called with the history after every epoch (e.g. a live figure); returning True stops.
    - Divergence: a non-finite loss stops training and sets ``history.diverged``.

    Example:
        >>> seed_everything(0); g, d = Generator(), Discriminator()
        >>> h = train_gan(g, d, image_tensor(data.train), epochs=10, checkpoint="runs/gan.pt")
        >>> h.plot(); image_grid(g.sample(64))
    """
    x = image_tensor(images)
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise UsageError(f"epochs must be a positive int, got {epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 2:
        raise UsageError(f"batch_size must be an int >= 2 (batch norm needs two images), got {batch_size!r}")
    for name, lr in (("lr_g", lr_g), ("lr_d", lr_d)):
        if not isinstance(lr, (int, float)) or not lr > 0:
            raise UsageError(f"{name} must be a positive number, got {lr!r}")
    if not isinstance(label_smoothing, (int, float)) or not 0 <= label_smoothing < 0.5:
        raise UsageError(f"label_smoothing must be in [0, 0.5), got {label_smoothing!r}")
    dev = get_device(device)
    generator.to(dev)
    discriminator.to(dev)
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr_g, betas=tuple(betas))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr_d, betas=tuple(betas))
    config = {"epochs": epochs, "batch_size": batch_size, "lr_g": lr_g, "lr_d": lr_d, "betas": list(betas),
              "label_smoothing": label_smoothing, "seed": seed, "images": len(x)}
    history, start = GANHistory(), 0
    if checkpoint is not None and resume and os.path.exists(checkpoint):
        state = load_checkpoint(checkpoint)
        check_resumable(state, GAN_FORMAT, config, checkpoint, "GAN training run")
        try:
            generator.load_state_dict(state["generator"])
            discriminator.load_state_dict(state["discriminator"])
            opt_g.load_state_dict(state["opt_g"])
            opt_d.load_state_dict(state["opt_d"])
        except (RuntimeError, ValueError, KeyError) as err:
            raise CheckpointError(f"checkpoint {checkpoint} was written for other networks "
                                  f"({str(err).splitlines()[0][:200]}); {START_OVER}") from err
        history, start = GANHistory.from_dict(state["history"]), state["epoch"]
        if state["finished"]:
            return history
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(desc="GAN epochs", initial=start, total=epochs)
    steps_per_epoch = len(x) // batch_size  # the last, partial batch is dropped: batch norm wants full batches
    if steps_per_epoch < 1:
        raise UsageError(f"{len(x)} images make no full batch of {batch_size}; use a smaller batch_size")
    for epoch in range(start, epochs):
        seed_everything(derive_seed(seed, epoch))
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(derive_seed(seed, epoch)))
        generator.train()
        discriminator.train()
        t0, rows = time.perf_counter(), []
        for i in range(steps_per_epoch):
            row = _gan_step(generator, discriminator, x[order[i * batch_size:(i + 1) * batch_size]].to(dev),
                            opt_g, opt_d, label_smoothing)
            if not all(math.isfinite(v) for v in row.values()):
                history.diverged = True
                break
            rows.append(row)
            history.steps.append({"step": epoch * steps_per_epoch + i + 1, **row})
        means = {k: float(np.mean([r[k] for r in rows])) if rows else math.nan
                 for k in ("d_loss", "g_loss", "d_real", "d_fake")}
        history.epochs.append({"epoch": epoch + 1, **means, "time": time.perf_counter() - t0})
        finished = history.diverged or epoch + 1 == epochs
        if any(cb(history) for cb in callbacks):
            finished = True
        if bar is not None:
            bar.set_postfix({k: f"{v:.3f}" for k, v in means.items()}, refresh=False)
            bar.update(1)
        if checkpoint is not None:
            save_checkpoint({"format": GAN_FORMAT, "config": config, "epoch": epoch + 1,
                             "generator": generator.state_dict(), "discriminator": discriminator.state_dict(),
                             "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
                             "history": history.to_dict(), "finished": finished}, checkpoint)
        if finished:
            break
    if bar is not None:
        bar.close()
    return history


class LiveGANFigure:
    """A :func:`train_gan` callback that redraws one figure in a notebook after every epoch: losses, D's outputs and
    samples from a fixed batch of noise (so you watch the same 16 digits take shape).

    Example:
        >>> train_gan(g, d, x, epochs=10, callbacks=[LiveGANFigure(g)])
    """

    def __init__(self, generator: Generator, n: int = 16, seed: int = 0):
        import matplotlib.pyplot as plt

        self.generator, self.n, self.seed = generator, n, seed
        self.fig = plt.figure(figsize=(12, 3.2), layout="constrained")
        grid = self.fig.add_gridspec(1, 3)
        self.axes = [self.fig.add_subplot(grid[0, i]) for i in range(3)]
        self.handle = None
        plt.close(self.fig)  # shown through the display handle only

    def __call__(self, history: GANHistory) -> bool:
        from IPython.display import display

        history.plot(self.axes[:2])
        samples = self.generator.sample(self.n, seed=self.seed)
        side = int(math.ceil(math.sqrt(self.n)))
        tiles = torch.ones(side * side, 28, 28)
        tiles[: self.n] = samples[:, 0]
        mosaic = tiles.view(side, side, 28, 28).permute(0, 2, 1, 3).reshape(side * 28, side * 28)
        self.axes[2].clear()
        self.axes[2].imshow(mosaic.numpy(), cmap="gray", vmin=0, vmax=1)
        self.axes[2].set(title=f"samples after epoch {len(history.epochs)}", xticks=[], yticks=[])
        if self.handle is None:
            self.handle = display(self.fig, display_id=True)
        else:
            self.handle.update(self.fig)
        return False


# ------------------------------------------------------------------------------------------ judging samples


def gaussian_frechet(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """Fréchet (2-Wasserstein) distance squared between N(mu1, cov1) and N(mu2, cov2) (Dowson & Landau 1982):
    ``|mu1 - mu2|^2 + tr(cov1 + cov2 - 2 (cov1^1/2 cov2 cov1^1/2)^1/2)``, via symmetric eigen-decompositions.

    Example:
        >>> gaussian_frechet(np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2))    # 2 + 2 * (2 - 1)^2
        4.0
    """
    mu1, mu2 = np.asarray(mu1, dtype=np.float64), np.asarray(mu2, dtype=np.float64)
    cov1, cov2 = np.atleast_2d(np.asarray(cov1, dtype=np.float64)), np.atleast_2d(np.asarray(cov2, dtype=np.float64))
    d = len(mu1)
    if mu2.shape != (d,) or cov1.shape != (d, d) or cov2.shape != (d, d):
        raise ShapeError(f"means must be (D,) and covariances (D, D) with one D, got {mu1.shape}, {cov1.shape}, "
                         f"{mu2.shape}, {cov2.shape}")

    def sqrt_psd(m: np.ndarray) -> np.ndarray:
        w, v = np.linalg.eigh((m + m.T) / 2)
        return (v * np.sqrt(np.clip(w, 0, None))) @ v.T

    root1 = sqrt_psd(cov1)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root1 @ cov2 @ root1), 0, None)).sum()
    return float(max(0.0, np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * cross))


def frechet_distance(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    """Fréchet distance between two sets of feature vectors (N, D), each summarised by its mean and covariance:
    FID (Heusel et al. 2017) when the features are Inception's; here any features, e.g. :meth:`SampleJudge.features`.

    Example:
        >>> frechet_distance(np.random.randn(500, 4), np.random.randn(500, 4) + 1)    # about 4
    """
    a, b = (np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v, dtype=np.float64) for v in (a, b))
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ShapeError(f"feature sets must be (N, D) arrays with one D and N >= 2, got {a.shape} and {b.shape}")
    return gaussian_frechet(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def mode_coverage(predictions: torch.Tensor | np.ndarray, num_classes: int = 10,
                  min_share: float = 0.01) -> dict[str, Any]:
    """How many classes a set of samples covers, from the class a classifier gives each sample: ``modes`` (classes
    with at least ``min_share`` of the samples), ``entropy`` of the class histogram in bits (log2(10) = 3.32 for
    perfectly even digits, 0 for one class) and the ``histogram`` itself.

    Example:
        >>> mode_coverage(torch.tensor([1, 1, 1, 7]))["modes"]
        2
    """
    p = np.asarray(predictions).astype(int).ravel()
    if p.size == 0 or p.min() < 0 or p.max() >= num_classes:
        raise UsageError(f"predictions must be a non-empty array of class indices in [0, {num_classes})")
    hist = np.bincount(p, minlength=num_classes) / p.size
    nz = hist[hist > 0]
    return {"modes": int((hist >= min_share).sum()), "entropy": float(-(nz * np.log2(nz)).sum()),
            "histogram": hist.round(4).tolist()}


def nearest_distances(samples: torch.Tensor, train: torch.Tensor, batch: int = 512) -> torch.Tensor:
    """Each sample's Euclidean pixel distance to its nearest training image (the memorisation check: a generator
    that copies its training set has samples far closer than real unseen images are).

    Example:
        >>> nearest_distances(vae.sample(100), x_train).mean()
    """
    s, t = check_images(samples, "samples").flatten(1), check_images(train, "train").flatten(1)
    return torch.cat([torch.cdist(s[i:i + batch], t).min(1).values for i in range(0, len(s), batch)])


class SampleJudge:
    """Judges generated digits with a classifier trained on real ones: Fréchet distance in its penultimate features
    (an FID without Inception weights, which need a download), its mean confidence, the classes the samples cover,
    and distances to the nearest training image.

    ``classifier`` is a :class:`~dfl_toolkit.ConvNet` trained on normalised digits with statistics ``mean``, ``std``;
    the judge normalises [0, 1] images itself.

    Example:
        >>> judge = SampleJudge.train(get_dataset("mnist5k"), epochs=8)
        >>> judge.quality(g.sample(1000), real=x_test, train=x_train)
        {'frechet': ..., 'confidence': ..., 'modes': ..., 'entropy': ..., 'nn_distance': ...}
    """

    def __init__(self, classifier: nn.Module, mean: Sequence[float], std: Sequence[float], layer: str = "head.relu"):
        self.classifier, self.layer = classifier, layer
        self.mean, self.std = float(mean[0]), float(std[0])

    @classmethod
    def train(cls, data: Any, epochs: int = 8, seed: int = 0, channels: Sequence[int] = (32, 64),
              progress: bool = False) -> SampleJudge:
        """Train a :class:`~dfl_toolkit.ConvNet` with :func:`~dfl_toolkit.fit` on normalised digits (``data`` from
        ``get_dataset("mnist5k")``) and wrap it as a judge."""
        from ..models import ConvNet
        from ..train import fit

        if not getattr(data, "normalized", False) or tuple(data.input_shape) != IMAGE_SHAPE:
            raise UsageError("the judge trains on normalised 28x28 digits: pass get_dataset('mnist5k') "
                             "(normalize=True, the default)")
        seed_everything(seed)
        model = ConvNet(in_channels=1, num_classes=10, channels=tuple(channels))
        fit(model, data.train, data.val, epochs=epochs, lr=2e-3, scheduler="cosine", seed=seed, progress=progress)
        return cls(model.cpu(), data.mean, data.std)

    def _inputs(self, images: torch.Tensor) -> torch.Tensor:
        return (check_images(images) - self.mean) / self.std

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate features (N, D) of [0, 1] images."""
        from ..features import extract_features

        with eval_mode(self.classifier):
            return extract_features(self.classifier, self._inputs(images), [self.layer])[self.layer].flatten(1)

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """Class probabilities (N, 10) of [0, 1] images."""
        with eval_mode(self.classifier):
            return torch.softmax(self.classifier(self._inputs(images)), dim=1)

    def quality(self, samples: torch.Tensor, real: torch.Tensor | None = None, train: torch.Tensor | None = None,
                real_features: torch.Tensor | None = None) -> dict[str, Any]:
        """``frechet`` (to the features of ``real`` images, or ``real_features`` computed once; lower is better),
        ``confidence`` (mean top-class probability), ``modes`` and ``entropy`` (:func:`mode_coverage`) and, given
        ``train``, ``nn_distance`` (mean :func:`nearest_distances`)."""
        if (real is None) == (real_features is None):
            raise UsageError("give the reference as real=images or real_features=judge.features(images), not both")
        probs = self.probabilities(samples)
        feats = real_features if real_features is not None else self.features(real)
        out = {"frechet": frechet_distance(self.features(samples), feats),
               "confidence": float(probs.max(1).values.mean()),
               **mode_coverage(probs.argmax(1))}
        if train is not None:
            out["nn_distance"] = float(nearest_distances(samples, train).mean())
        return out
