"""Feature learning made visible: read any layer (``extraction``), RNN and transformer states over time
(``sequence``), pretrained ImageNet backbones (``backbones``) and linear probes of a layer (``probes``).

Example:
    >>> from dfl_toolkit.features import extract_features, linear_probe
    >>> feats = extract_features(model, images, ["features.block1"])
"""

from .backbones import Backbone, feature_matrix, list_backbones, load_backbone, predict_photo
from .extraction import extract_features, list_layers
from .probes import ProbeResult, linear_probe
from .sequence import attention_maps, attention_rollout, rnn_states, token_states

__all__ = ["Backbone", "ProbeResult", "attention_maps", "attention_rollout", "extract_features", "feature_matrix",
           "linear_probe", "list_backbones", "list_layers", "load_backbone", "predict_photo", "rnn_states",
           "token_states"]
