"""Applications beyond classification, each one module beside its paper:

- :mod:`.detection`: a single-stage, CenterNet-style detector on MNIST scenes; mAP from torchmetrics.
- :mod:`.segmentation`: a small U-Net and an FCN head; mIoU and per-class IoU; NAS over the decoder.
- :mod:`.generation`: a VAE and a DCGAN; sample quality as a Fréchet distance in a classifier's features.
- :mod:`.translation`: GRU + Bahdanau attention and a transformer encoder-decoder; beam search; BLEU/chrF.

Modules are imported on first use (``dfl.applications.detection``), so ``import dfl_toolkit`` stays fast.
"""

MODULES = ("detection", "segmentation", "generation", "translation")


def __getattr__(name: str):
    if name in MODULES:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'dfl_toolkit.applications' has no attribute {name!r}")
