"""PyTorch datasets over a dataset folder: image + keypoints per frame, and keypoint pairs."""

from __future__ import annotations

import dataclasses
import io
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from generator.dataset import FrameDataset, PairsDataset
from generator.store import StoreError, load_dataset_arrays, load_dataset_pairs

from bridge_support import frame_fields, frame_message, image_bytes, mask_bytes, open_collector


def _make(out, with_mask) -> None:
    c = open_collector(out, frames=20, shard_size=8)
    for i in range(20):
        rng = np.random.default_rng(i)
        encoding = "png" if i == 5 else "jpeg"
        mask = mask_bytes(rng) if with_mask(i) else None
        assert c.handle(frame_message(frame_fields(rng), image_bytes(rng, encoding), frame_id=i, seq=i, encoding=encoding, mask=mask))
    c.store.close()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("dsx") / "ds"
    _make(out, lambda i: True)
    return out


def test_frame_dataset_reads_images_and_keypoints(folder):
    ds = FrameDataset(folder)
    arrays = load_dataset_arrays(folder)
    assert len(ds) == 20
    with tarfile.open(folder / "shard-000001.tar") as tar:
        expected = np.asarray(Image.open(io.BytesIO(tar.extractfile("000000009.jpg").read())).convert("RGB"))
    sample = ds[9]
    assert sample["image"].dtype == torch.uint8 and sample["image"].shape == (3, 40, 48)
    assert np.array_equal(sample["image"].permute(1, 2, 0).numpy(), expected)
    assert int(sample["frame_id"]) == 9
    for key in ("joints_2d", "joints_3d", "joints_2d_right", "visibility", "K"):
        assert np.array_equal(sample[key].numpy(), arrays[key][9]), key
    assert ds[5]["image"].shape == (3, 40, 48)  # the PNG frame
    # The person mask, bit for bit what the shard holds.
    with tarfile.open(folder / "shard-000001.tar") as tar:
        stored_mask = np.asarray(Image.open(io.BytesIO(tar.extractfile("000000009.mask.png").read())))
    assert sample["mask"].dtype == torch.uint8 and sample["mask"].shape == (40, 48)
    assert np.array_equal(sample["mask"].numpy(), stored_mask) and set(np.unique(stored_mask)) == {0, 1}
    assert int(ds[-1]["frame_id"]) == 19
    with pytest.raises(IndexError):
        ds[20]


def test_frame_dataset_in_a_multiprocess_dataloader(folder):
    loader = DataLoader(FrameDataset(folder), batch_size=6, num_workers=2)
    batches = list(loader)
    assert torch.cat([b["frame_id"] for b in batches]).tolist() == list(range(20))
    assert batches[0]["image"].shape == (6, 3, 40, 48) and batches[0]["joints_2d"].shape == (6, 17, 2)
    assert batches[0]["mask"].shape == (6, 40, 48)


def test_masks_are_left_out_unless_every_frame_has_one(tmp_path, folder):
    mixed = tmp_path / "mixed"
    _make(mixed, lambda i: i != 7)
    ds = FrameDataset(mixed)
    assert not ds.masks and "mask" not in ds[3] and ds.reader.mask(3).shape == (40, 48) and ds.reader.mask(7) is None
    with pytest.raises(ValueError, match=r"1 frames have no person mask \(frame ids \[7\]"):
        FrameDataset(mixed, masks=True)
    assert "mask" not in FrameDataset(folder, masks=False)[0]
    assert len(next(iter(DataLoader(ds, batch_size=20)))["frame_id"]) == 20  # batches without the key


def test_pairs_dataset_never_reads_images(folder, tmp_path):
    pairs = load_dataset_pairs(folder)
    ds = PairsDataset(folder)
    assert len(ds) == 20
    s = ds[3]
    assert torch.equal(s["joints_2d_right"], torch.from_numpy(pairs.joints_2d_right[3]))
    assert torch.equal(s["joints_3d"], torch.from_numpy(pairs.joints_3d[3]))
    assert s["K"].shape == (3, 3) and float(s["baseline_mm"]) == 500.0
    batch = next(iter(DataLoader(ds, batch_size=20)))
    assert batch["joints_2d"].shape == (20, 17, 2) and batch["visibility"].dtype == torch.uint8
    with pytest.raises(ValueError, match="right view"):
        PairsDataset(dataclasses.replace(pairs, joints_2d_right=None, baseline_mm=None))
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError, match="no manifest.json; not a posebridge dataset folder"):
        FrameDataset(tmp_path / "empty")
