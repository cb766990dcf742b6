"""DFL decoding (paper eqs. 1-3) against ultralytics' own decoded boxes, and the coordinate mapping."""
import numpy as np
import pytest
import torch

from py4dstem_ndpd._offline import import_ultralytics
from py4dstem_ndpd.detect.decode import Decoded, dfl_decode, select, to_native


@pytest.fixture(scope="module")
def random_net():
    import_ultralytics()
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    return DetectionModel("yolov8n.yaml", ch=1, nc=1, verbose=False).eval()


def test_dfl_centres_match_ultralytics_boxes(random_net):
    x = torch.rand(2, 1, 256, 256)
    with torch.inference_mode():
        y, raw = random_net(x)
    det = random_net.model[-1]
    cx, cy, w, h, score = dfl_decode(raw["boxes"], raw["scores"], raw["feats"], det.stride, det.reg_max)
    assert cx.shape == (2, 1344)
    np.testing.assert_allclose(cx.numpy(), y[:, 0].numpy(), atol=1e-3)
    np.testing.assert_allclose(cy.numpy(), y[:, 1].numpy(), atol=1e-3)
    np.testing.assert_allclose(w.numpy(), y[:, 2].numpy(), atol=1e-3)
    np.testing.assert_allclose(score.numpy(), y[:, 4].numpy(), atol=1e-5)


def test_soft_argmax_gives_sub_pixel_centre():
    # one anchor at stride 8, cell (2, 3): logits peaked between bins -> fractional distances
    reg = 16
    feats = [torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 1, 1)]
    N = 16 + 4 + 1
    boxes = torch.full((1, 4 * reg, N), -30.0)
    v = boxes.view(1, 4, reg, N)
    a = 2 * 4 + 3  # row 2, column 3 of the P3 grid
    # left = 1.5 (bins 1 and 2 equal), right = 2, top = 1, bottom = 1.25 (bin 1: 0.75, bin 2: 0.25)
    v[0, 0, 1, a] = v[0, 0, 2, a] = 0.0
    v[0, 2, 2, a] = 0.0
    v[0, 1, 1, a] = 0.0
    v[0, 3, 1, a] = np.log(3.0)
    v[0, 3, 2, a] = 0.0
    scores = torch.full((1, 1, N), -10.0)
    scores[0, 0, a] = 5.0
    cx, cy, w, h, s = dfl_decode(boxes, scores, feats, torch.tensor([8.0, 16.0, 32.0]), reg)
    assert cx[0, a].item() == pytest.approx((3 + 0.5 + (2.0 - 1.5) / 2) * 8, abs=1e-4)  # eq. 2
    assert cy[0, a].item() == pytest.approx((2 + 0.5 + (1.25 - 1.0) / 2) * 8, abs=1e-4)  # eq. 3
    assert w[0, a].item() == pytest.approx(3.5 * 8, abs=1e-4)


def test_nms_removes_duplicates_and_keeps_neighbours():
    cx = torch.tensor([[50.0, 51.0, 80.0, 50.0]])
    cy = torch.tensor([[50.0, 50.5, 50.0, 120.0]])
    w = torch.full((1, 4), 10.0)
    h = torch.full((1, 4), 10.0)
    s = torch.tensor([[0.9, 0.8, 0.7, 0.1]])
    (d,) = select(cx, cy, w, h, s, conf=0.25, min_distance=5.0, image_hw=(256, 256))
    np.testing.assert_allclose(np.sort(d.cx), [50.0, 80.0])


def test_default_suppression_keeps_overlapping_disks_of_two_phases():
    # radius 5 px boxes; a second-phase disk 1.4 radii (7 px) from a brighter one must survive, a duplicate
    # 0.6 px away must not (the default distance is DUPLICATE_FRACTION of the radius measured from the boxes)
    cx = torch.tensor([[100.0, 107.0, 100.6, 180.0]])
    cy = torch.tensor([[100.0, 100.0, 100.0, 100.0]])
    w = torch.full((1, 4), 10.0)
    h = torch.full((1, 4), 10.0)
    s = torch.tensor([[0.9, 0.6, 0.8, 0.9]])
    (d,) = select(cx, cy, w, h, s, conf=0.25, min_distance=0.0, image_hw=(256, 256))
    np.testing.assert_allclose(np.sort(d.cx), [100.0, 107.0, 180.0])


def test_edge_cut_box_uses_uncut_side():
    # two whole disks of half-size 5 px and one cut by the left edge: box [0, 7] -> true centre 7 - 5 = 2
    cx = torch.tensor([[100.0, 150.0, 3.5]])
    cy = torch.tensor([[100.0, 100.0, 100.0]])
    w = torch.tensor([[10.0, 10.0, 7.0]])
    h = torch.full((1, 3), 10.0)
    s = torch.full((1, 3), 0.9)
    (d,) = select(cx, cy, w, h, s, conf=0.25, min_distance=0.0, image_hw=(256, 256))
    assert np.sort(d.cx)[0] == pytest.approx(2.0, abs=1e-5)


def test_to_native_inverts_binning():
    # a native 512 px pattern binned to 256: native pixel c maps to binned (c - 0.5) / 2 (py4DSTEM convention),
    # i.e. ultralytics coordinate (c - 0.5) / 2 + 0.5
    c = np.array([100.0, 257.3], np.float32)
    u = (c - 0.5) / 2 + 0.5
    dec = Decoded(cx=u[::-1].copy(), cy=u.copy(), w=np.ones(2, np.float32), h=np.ones(2, np.float32), score=np.ones(2, np.float32))
    qx, qy = to_native(dec, (2.0, 2.0))
    np.testing.assert_allclose(qx, c, atol=1e-4)
    np.testing.assert_allclose(qy, c[::-1], atol=1e-4)
