"""Image generation: the ELBO's terms, a VAE trained by fit, the GAN loop's seeds and checkpoints, and the
sample-quality metrics (Fréchet distance against its closed form, a judge that tells noise from digits)."""

import math

import numpy as np
import pytest
import torch

import dfl_toolkit as dfl
from dfl_toolkit.applications import generation as gen
from dfl_toolkit.errors import CheckpointError, ShapeError, UsageError


@pytest.fixture(scope="module")
def digits():
    """400 real MNIST train digits and 300 test digits in [0, 1]."""
    raw = dfl.get_dataset("mnist5k", normalize=False)
    return gen.image_tensor(raw.train)[::8][:400], gen.image_tensor(raw.test)[::3][:300]


def test_elbo_terms_by_hand():
    # logits 0 -> p = 0.5 per pixel: the reconstruction costs log 2 nats per pixel whatever the target
    out = (torch.zeros(2, 1, 28, 28), torch.zeros(2, 3), torch.zeros(2, 3))
    terms = gen.ELBOLoss().terms(out, torch.rand(2, 1, 28, 28).round())
    assert terms["recon"] == pytest.approx(784 * math.log(2), rel=1e-5) and terms["kl"] == 0.0
    # KL(N(mu, 1) || N(0, 1)) = mu^2 / 2 per dimension; KL(N(0, e^lv) || N(0, 1)) = (e^lv - 1 - lv) / 2
    mu, logvar = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, math.log(4.0)]])
    terms = gen.ELBOLoss().terms((torch.zeros(1, 1, 28, 28), mu, logvar), torch.zeros(1, 1, 28, 28))
    assert terms["kl"] == pytest.approx(0.5 + 2.0 + (4 - 1 - math.log(4)) / 2, rel=1e-6)
    loss = gen.ELBOLoss(beta=2.0)((torch.zeros(1, 1, 28, 28), mu, logvar), torch.zeros(1, 1, 28, 28))
    assert float(loss) == pytest.approx(terms["recon"] + 2 * terms["kl"], rel=1e-6)


def test_vae_trains_with_fit_and_its_elbo_terms_are_recorded(digits):
    x, _ = digits
    dfl.seed_everything(0)
    vae = gen.VAE(latent_dim=4, channels=(4, 8))
    val = gen.autoencoder_data(x[:100])
    h = dfl.fit(vae, gen.autoencoder_data(x), epochs=3, lr=3e-3, loss_fn=gen.ELBOLoss(), progress=False,
                callbacks=[gen.ELBOTerms(vae, val)])
    assert h["train_loss"][-1] < h["train_loss"][0]
    assert h["val_recon"][-1] < h["val_recon"][0] and all(k >= 0 for k in h["val_kl"])
    assert vae.sample(5, seed=1).shape == (5, 1, 28, 28) and torch.equal(vae.sample(5, seed=1), vae.sample(5, seed=1))
    strip = gen.interpolate(vae, x[0], x[1], steps=6)
    assert strip.shape == (6, 1, 28, 28) and torch.allclose(strip[0], vae.reconstruct(x[:1])[0], atol=1e-6)


def small_gan(seed=0):
    dfl.seed_everything(seed)
    return gen.Generator(latent_dim=8, width=4), gen.Discriminator(width=4)


def test_train_gan_repeats_given_a_seed_and_resumes_identically(digits, tmp_path):
    x = digits[0][:256]
    runs = []
    for _ in range(2):
        g, d = small_gan()
        runs.append((gen.train_gan(g, d, x, epochs=3, batch_size=64), g))
    assert runs[0][0].metrics() == runs[1][0].metrics() and len(runs[0][0].steps) == 12
    assert torch.equal(runs[0][1].sample(4), runs[1][1].sample(4))
    g, d = small_gan()
    other = gen.train_gan(g, d, x, epochs=3, batch_size=64, seed=1)
    assert other.metrics() != runs[0][0].metrics()

    # stopped after 2 epochs by a callback, then resumed from its checkpoint by the same call
    path = tmp_path / "gan.pt"
    g, d = small_gan()
    first = gen.train_gan(g, d, x, epochs=3, batch_size=64, checkpoint=path, callbacks=[lambda h: len(h.epochs) == 2])
    assert len(first.epochs) == 2
    state = dfl.load_checkpoint(path)
    state["finished"] = False  # as if killed after epoch 2
    dfl.save_checkpoint(state, path)
    g, d = small_gan(seed=5)  # other initial weights: the checkpoint must replace them
    resumed = gen.train_gan(g, d, x, epochs=3, batch_size=64, checkpoint=path)
    assert resumed.metrics() == runs[0][0].metrics() and torch.equal(g.sample(4), runs[0][1].sample(4))
    with pytest.raises(CheckpointError, match="lr_g: saved 0.0002, now 0.001"):
        gen.train_gan(*small_gan(), x, epochs=3, batch_size=64, lr_g=1e-3, checkpoint=path)


def test_frechet_distance_matches_its_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    assert gen.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shifted = [gen.frechet_distance(a, a + s) for s in (0.5, 1.0, 2.0)]
    assert shifted == pytest.approx([3 * 0.25, 3 * 1.0, 3 * 4.0], rel=1e-6)  # a shift moves only the means
    # N(m1, diag(s1^2)) vs N(m2, diag(s2^2)): |m1 - m2|^2 + sum (s1 - s2)^2
    m1, s1, m2, s2 = np.array([0.0, 1, 2]), np.array([1.0, 2, 3]), np.array([1.0, 1, 0]), np.array([2.0, 2, 1])
    expected = np.sum((m1 - m2) ** 2) + np.sum((s1 - s2) ** 2)
    assert gen.gaussian_frechet(m1, np.diag(s1**2), m2, np.diag(s2**2)) == pytest.approx(expected)
    # a full covariance, rotated: the distance does not change with a rotation of both
    rot = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    rotated = gen.gaussian_frechet(rot @ m1, rot @ np.diag(s1**2) @ rot.T, rot @ m2, rot @ np.diag(s2**2) @ rot.T)
    assert rotated == pytest.approx(expected, rel=1e-6)
    b = rng.normal(size=(4000, 3)) * s2 + m2
    assert gen.frechet_distance(rng.normal(size=(4000, 3)) * s1 + m1, b) == pytest.approx(expected, rel=0.1)


def test_the_judge_tells_an_untrained_generator_from_real_digits(digits):
    x_train, x_test = digits
    data = dfl.get_dataset("mnist5k", train_size=1000)
    judge = gen.SampleJudge.train(data, epochs=2, channels=(8, 16))
    real_feats = judge.features(x_test[:150])
    real = judge.quality(x_test[150:], real=None, train=x_train, real_features=real_feats)
    dfl.seed_everything(0)
    noise = judge.quality(gen.Generator(width=8).sample(150), real=None, train=x_train, real_features=real_feats)
    assert noise["frechet"] > 5 * real["frechet"]
    assert noise["modes"] < real["modes"] and noise["entropy"] < real["entropy"] - 1
    assert noise["nn_distance"] > real["nn_distance"]
    assert gen.mode_coverage(torch.tensor([3] * 99 + [4]), min_share=0.01) | {"histogram": None} == {
        "modes": 2, "entropy": pytest.approx(-(0.99 * math.log2(0.99) + 0.01 * math.log2(0.01))), "histogram": None}


def test_bad_inputs_get_one_clear_error(digits):
    x = digits[0]
    with pytest.raises(ShapeError, match=r"\(N, 1, 28, 28\).*got \(4, 3, 28, 28\)"):
        gen.check_images(torch.rand(4, 3, 28, 28))
    with pytest.raises(UsageError, match=r"pixels in \[0, 1\].*normalize=False"):
        gen.image_tensor(dfl.get_dataset("mnist5k").val)
    with pytest.raises(ShapeError, match="VAE takes images of shape"):
        gen.VAE()(torch.rand(2, 1, 32, 32))
    with pytest.raises(ShapeError, match=r"latent codes of shape \(N, 32\)"):
        gen.Generator()(torch.randn(2, 10))
    with pytest.raises(ShapeError, match="one 28x28 image each"):
        gen.interpolate(gen.VAE(), x[:2], x[2])
    with pytest.raises(ShapeError, match="one D"):
        gen.frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(UsageError, match="label_smoothing must be in"):
        gen.train_gan(gen.Generator(), gen.Discriminator(), x, label_smoothing=0.7)
    with pytest.raises(UsageError, match="no full batch"):
        gen.train_gan(gen.Generator(), gen.Discriminator(), x[:10], batch_size=64)
    with pytest.raises(UsageError, match="normalised 28x28 digits"):
        gen.SampleJudge.train(dfl.get_dataset("mnist5k", normalize=False))
    with pytest.raises(UsageError, match="ELBOLoss takes the VAE's output"):
        gen.ELBOLoss()(torch.zeros(1, 1, 28, 28), torch.zeros(1, 1, 28, 28))
