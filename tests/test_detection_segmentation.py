"""MNIST scenes, the CenterNet-style detector and its mAP, the segmenters and their IoU, and NAS over decoders."""

import numpy as np
import pytest
import torch

import dfl_toolkit as dfl
from dfl_toolkit.applications import detection as det
from dfl_toolkit.applications import segmentation as seg
from dfl_toolkit.data.bundled import _make_mnist5k, _three_way, cached_arrays
from dfl_toolkit.data.scenes import INK, make_scenes
from dfl_toolkit.errors import ShapeError, UsageError

SMALL = {"sizes": (48, 16, 24)}


@pytest.fixture(scope="module")
def scenes():
    return dfl.get_dataset("mnist_scenes", normalize=False, **SMALL)


def test_scenes_use_only_their_own_split_digits(scenes):
    y = cached_arrays("mnist5k.npz", _make_mnist5k)["y"]
    parts = dict(zip(("train", "val", "test"), _three_way(y, 1000, 500), strict=True))
    for split, idx in parts.items():
        used = scenes.info["source"][split].numpy()
        used = used[used >= 0]
        assert len(used) and np.isin(used, idx).all(), f"{split} scenes hold digits from another split"
        labels = scenes.info["labels"][split].numpy()
        assert (y[scenes.info["source"][split].numpy()[labels >= 0]] == labels[labels >= 0]).all()


def test_boxes_are_tight_and_masks_carry_the_classes(scenes):
    x, target = scenes.train[0]
    assert x.shape == (1, 64, 64) and target.shape == (4, 5)
    img = x[0].numpy()
    for split in ("train", "test"):
        for i in range(8):
            image = scenes.info["mask"][split][i].numpy()
            inst = scenes.info["instance"][split][i].numpy()
            for k, (cls, box) in enumerate(zip(scenes.info["labels"][split][i].tolist(),
                                               scenes.info["boxes"][split][i].tolist(), strict=True)):
                if cls < 0:
                    assert not (inst == k + 1).any()
                    continue
                ys, xs = np.nonzero(inst == k + 1)
                if len(ys):  # (a digit may be fully covered by brighter ones)
                    assert (image[ys, xs] == cls + 1).all()
                    x1, y1, x2, y2 = box
                    assert x1 <= xs.min() and xs.max() < x2 and y1 <= ys.min() and ys.max() < y2
    ink = img > INK
    assert ink.any() and ((scenes.info["mask"]["train"][0].numpy() > 0) == ink).all()


def test_scenes_repeat_and_respect_their_options():
    d = cached_arrays("mnist5k.npz", _make_mnist5k)
    x, y = d["x"].reshape(-1, 28, 28)[:200], d["y"][:200]
    a = make_scenes(x, y, 20, seed=3, max_overlap=0.0, digits_per_scene=(2, 3))
    b = make_scenes(x, y, 20, seed=3, max_overlap=0.0, digits_per_scene=(2, 3))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    counts = (a["labels"] >= 0).sum(1)
    assert counts.max() <= 3 and a["labels"].shape[1] == 3
    for boxes, labels in zip(a["boxes"], a["labels"], strict=True):  # no overlap at all with max_overlap=0
        bs = boxes[labels >= 0]
        for i in range(len(bs)):
            for j in range(i):
                assert det_iou(bs[i], bs[j]) == 0.0
    assert not np.array_equal(a["image"], make_scenes(x, y, 20, seed=4)["image"])


def det_iou(a, b):
    from torchvision.ops import box_iou

    return float(box_iou(torch.as_tensor(np.stack([a])), torch.as_tensor(np.stack([b])))[0, 0])


def test_bad_scene_options_get_clear_errors():
    with pytest.raises(UsageError, match="task must be one of detection, segmentation"):
        dfl.get_dataset("mnist_scenes", task="captioning")
    with pytest.raises(UsageError, match="sizes are three positive ints"):
        dfl.get_dataset("mnist_scenes", sizes=(10, 0, 5))
    x = np.zeros((3, 28, 28), np.uint8)
    with pytest.raises(UsageError, match="digits_per_scene"):
        make_scenes(x, np.zeros(3, int), 2, seed=0, digits_per_scene=(3, 1))
    with pytest.raises(UsageError, match="scale"):
        make_scenes(x, np.zeros(3, int), 2, seed=0, scale=(1.0, 3.0))


def perfect_output(y: torch.Tensor, num_classes: int = 10) -> torch.Tensor:
    """The output a perfect detector would give for boxes ``y``: heatmap logits from the targets' peaks."""
    heat, boxes, _ = det.centernet_targets(y, num_classes, (16, 16))
    logits = torch.where(heat.eq(1.0), torch.tensor(8.0), torch.tensor(-8.0))
    return torch.cat([logits, boxes], 1)


def test_decoding_the_targets_gives_back_the_boxes_and_map_one(scenes):
    y = torch.stack([scenes.test[i][1] for i in range(len(scenes.test))])
    dets = det.decode(perfect_output(y))
    truth = det.target_dicts(y)
    for d, t in zip(dets, truth, strict=True):
        order = torch.argsort(d["labels"] * 1000 + d["boxes"][:, 0])
        torder = torch.argsort(t["labels"] * 1000 + t["boxes"][:, 0])
        assert torch.equal(d["labels"][order], t["labels"][torder])
        assert torch.allclose(d["boxes"][order], t["boxes"][torder], atol=1e-4)
    scores = det.mean_average_precision(dets, truth, classes=scenes.classes)
    assert scores["map"] == pytest.approx(1.0) and scores["map_50"] == pytest.approx(1.0)
    shifted = [{**d, "boxes": d["boxes"] + 2.0} for d in dets]  # two pixels off: fails the strict IoUs first
    worse = det.mean_average_precision(shifted, truth)
    assert worse["map"] < 0.6 and worse["map_50"] > 0.9 > worse["map_75"]


def test_decode_keeps_one_box_per_object_with_nms():
    out = torch.full((1, 14, 16, 16), -8.0)
    out[0, 3, 5, 5] = out[0, 3, 5, 7] = 6.0  # two peaks of one class, 8 pixels apart, same big box
    out[0, 10:12, 5, 5] = out[0, 10:12, 5, 7] = 10.0  # 40-pixel boxes, IoU 0.67
    out[0, 12:14] = 0.5
    dets = det.decode(out)
    assert len(dets[0]["boxes"]) == 1 and dets[0]["labels"].tolist() == [3]
    assert len(det.decode(out, iou_threshold=0.95)[0]["boxes"]) == 2


def test_the_loss_is_low_for_the_perfect_output_and_training_lowers_it(scenes):
    y = torch.stack([scenes.train[i][1] for i in range(16)])
    x = torch.stack([scenes.train[i][0] for i in range(16)])
    loss = det.CenterNetLoss()
    assert loss(perfect_output(y), y) < 0.05
    dfl.seed_everything(0)
    model = det.CenterNet(width=4, head=16)
    with torch.no_grad():
        before = float(loss(model(x), y))
    h = dfl.fit(model, torch.utils.data.TensorDataset(x, y), epochs=15, lr=1e-2, loss_fn=loss, batch_size=8,
                progress=False)
    assert h["train_loss"][-1] < before / 2 and not h.diverged


def test_detector_and_segmenters_check_their_inputs():
    with pytest.raises(ShapeError, match="multiples of 8"):
        det.CenterNet()(torch.zeros(1, 1, 60, 60))
    with pytest.raises(ShapeError, match="multiples of 8"):
        seg.UNet()(torch.zeros(1, 1, 28, 28))
    with pytest.raises(ShapeError, match=r"\(B, k, 5\)"):
        det.CenterNetLoss()(torch.zeros(1, 14, 16, 16), torch.zeros(1, 4))
    with pytest.raises(UsageError, match="one prediction per image"):
        det.mean_average_precision([], det.target_dicts(torch.full((1, 2, 5), -1.0)))
    with pytest.raises(ShapeError, match="same shape"):
        seg.iou_scores(torch.zeros(2, 8, 8, dtype=torch.long), torch.zeros(2, 4, 4, dtype=torch.long), ["a", "b"])


def test_iou_matches_a_hand_count():
    pred = torch.tensor([[[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2], [0, 0, 0, 0]]])
    true = torch.tensor([[[0, 0, 1, 1], [0, 1, 1, 1], [2, 2, 0, 0], [0, 0, 0, 0]]])
    scores = seg.iou_scores(pred, true, ["bg", "one", "two", "absent"])
    # bg: 7 agree, union 10 -> 0.7; one: 4/5; two: 2/4; 'absent' is in neither and is left out of the mean
    assert scores["per_class"] == pytest.approx({"bg": 0.7, "one": 0.8, "two": 0.5})
    assert scores["miou"] == pytest.approx((0.7 + 0.8 + 0.5) / 3)
    assert seg.iou_scores(true, true, ["bg", "one", "two"])["miou"] == 1.0


def test_the_decoder_space_holds_the_unet_and_builds_what_it_says():
    space = seg.DecoderSpace()
    arch = space.unet()
    assert space.from_str(space.to_str(arch)) == arch and len(space) == 110_592
    net = space.build(arch)
    assert net.decoder == seg.UNET_DECODER
    assert net(torch.zeros(2, 1, 64, 64)).shape == (2, 11, 64, 64)
    lean = space.from_str("noskip-w8-k1-d1|noskip-w8-k5-d1|skip-w16-k3-d2")
    assert dfl.nas.count_params(space.build(lean)) < dfl.nas.count_params(net)
    with pytest.raises(UsageError, match="cannot parse"):
        space.from_str("skip-w8-k3")
    with pytest.raises(dfl.UnknownNameError, match="stride4.width"):
        space.validate((True, 7, 3, 1) * 3)


def test_a_search_over_decoders_runs_resumes_and_ranks_by_miou(tmp_path):
    data = dfl.get_dataset("mnist_scenes", task="segmentation", **SMALL)
    ev = seg.SegmentationEvaluator(data, epochs=1, batch_size=16, width=4)
    space = seg.DecoderSpace()
    ckpt = tmp_path / "decoders.json"
    first = dfl.nas.search(space, dfl.nas.RandomSearch(), ev, budget=2, objective="val_miou", checkpoint=ckpt,
                           progress=False)
    assert len(first.trials) == 2 and all(0.0 <= t.result["val_miou"] <= 1.0 for t in first.trials)
    again = dfl.nas.search(space, dfl.nas.RandomSearch(), ev, budget=2, objective="val_miou", checkpoint=ckpt,
                           progress=False)
    assert [t.result for t in again.trials] == [t.result for t in first.trials]  # replayed, not retrained
    with pytest.raises(UsageError, match="trains segmenters"):
        seg.SegmentationEvaluator(dfl.get_dataset("mnist_scenes", **SMALL))


def test_the_explorers_work_on_the_detector_and_the_segmenter():
    """Issue 26 asks for the explorers on these models; the feature-map explorer failed on CenterNet with a bare
    KeyError: 'backbone.stages' (an nn.ModuleList, which is never called itself, so no hook ever fired)."""
    from matplotlib import pyplot as plt
    from matplotlib.figure import Figure

    from dfl_toolkit import widgets

    torch.manual_seed(0)
    x = torch.rand(2, 1, 64, 64)
    detector, unet = det.CenterNet(num_classes=10).eval(), seg.UNet(num_classes=11).eval()
    for model in (detector, unet):
        box = widgets.feature_map_explorer(model, x, static=False)
        layers = box.children[0].children[1].options
        assert "backbone.stages.2" in layers or "encoder.stages.2" in layers, layers
        assert not any(name.endswith("stages") for name in layers)
        box.children[0].children[1].value = layers[-1]  # redraws without an error
    fig = widgets.attribution_explorer(det.PeakScores(detector), x, layer="detector.backbone.stages.2", static=True)
    assert isinstance(fig, Figure)
    plt.close("all")


def test_a_layer_that_never_runs_is_one_clear_error():
    from dfl_toolkit.errors import UsageError

    with pytest.raises(UsageError, match=r"'backbone.stages' did not run"):
        dfl.extract_features(det.CenterNet(num_classes=10), torch.rand(1, 1, 64, 64), ["backbone.stages"])
