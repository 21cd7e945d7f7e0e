"""Datasets on object storage, against a real S3 server (SeaweedFS on 127.0.0.1, started here):
generate into s3://, inspect, export, read with PyTorch and train from it; two writers at once
lose nothing; an unreachable store is a clear error and loses nothing already stored."""

from __future__ import annotations

import hashlib
import json
import os
import time

import numpy as np
import pytest
from click.testing import CliRunner

from bridge.collector import Collector, Expectations
from bridge.dataset_report import verify_dataset
from generator.dataset import FrameDataset
from generator.storage import StorageUnavailable, open_storage
from generator.store import DatasetReader, DatasetStore, StoreError, load_dataset_arrays, read_manifest, scan_dataset
from posebridge import main

from bridge_support import RUN_ID, SEED, frame_fields, frame_message, image_bytes, mask_bytes
from s3_support import SeaweedS3

GEN = ["--frames", "24", "--workers", "2", "--seed", "3", "--image-size", "32", "--shard-size", "8", "--body", "mannequin", "--no-progress"]
KEYS = ("frame_id", "joints_2d", "joints_3d", "joints_3d_world", "visibility", "K", "R", "t", "image_crc32", "mask_crc32")


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """One SeaweedFS for the module; the clients find it through the standard AWS variables."""
    server = SeaweedS3(tmp_path_factory.mktemp("weed")).start()
    saved = {k: os.environ.get(k) for k in server.env}
    os.environ.update(server.env)
    try:
        yield server
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def generated(s3, tmp_path_factory):
    """The same run into s3:// and into a local folder."""
    local = tmp_path_factory.mktemp("local") / "ds"
    url = s3.url("gen/ds")
    for out in (url, str(local)):
        result = CliRunner().invoke(main, ["generate", *GEN, "--out", out])
        assert result.exit_code == 0, result.output
    return url, local


@pytest.mark.timeout(240)
def test_generate_into_s3_is_the_local_dataset_with_records_as_commit_points(generated, s3):
    url, local = generated
    storage = open_storage(url)
    assert storage.names("records") == [f"shard-00000{k}.json" for k in range(3)]
    assert {"manifest.json", "shard-000000.tar", "shard-000002.npz", "records", "runs"} <= set(storage.names())
    assert not any(n.startswith(".") or n == "pairs.npz" for n in storage.names())  # no temporaries, no rename, no cache
    manifest = read_manifest(url)
    assert manifest.complete and manifest.frames_stored == 24 and len(manifest.shards) == 3
    assert [r.status for r in manifest.runs] == ["complete"] and manifest.runs[0].frames_stored == 24
    # The manifest object holds the content config only: shards and runs are merged from records.
    assert json.loads(storage.read_bytes("manifest.json"))["shards"] == []
    a, b = load_dataset_arrays(url, KEYS), load_dataset_arrays(local, KEYS)
    for key in KEYS:
        assert a[key].tobytes() == b[key].tobytes(), key  # the same frames, bit for bit
    records = {r.name: r for r in read_manifest(local).shards}
    for r in manifest.shards:  # each record names its objects' real size and hash
        assert r.tar_bytes == storage.size(f"{r.name}.tar") and r.count == records[r.name].count
        assert r.npz_sha256 == hashlib.sha256(storage.read_bytes(f"{r.name}.npz")).hexdigest()
    checked, problems = verify_dataset(url)
    assert checked == 24 and problems == []


@pytest.mark.timeout(240)
def test_inspect_export_view_pytorch_and_train_from_s3(generated, tmp_path):
    url, local = generated
    result = CliRunner().invoke(main, ["inspect", url, "--verify", "--json", "--sheet", str(tmp_path / "sheet.png")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{") : result.output.rindex("}") + 1])
    assert summary["frames_stored"] == 24 and summary["complete"] and summary["shards"] == 3
    assert (tmp_path / "sheet.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = CliRunner().invoke(main, ["export", url, "--out", str(tmp_path / "ds.npz"), "--with-masks"])
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "ds.npz") as z:
        assert z["frame_id"].tolist() == list(range(24))
        np.testing.assert_array_equal(z["joints_3d"], load_dataset_arrays(local, ("joints_3d",))["joints_3d"])
    assert len(list((tmp_path / "ds_masks").glob("*.png"))) == 24
    # Random access through ranged GETs: the PyTorch dataset and the viewer's reader see the local pixels.
    remote, here = FrameDataset(url), FrameDataset(local)
    assert len(remote) == 24 and remote.masks
    for i in (0, 13, 23):
        assert np.array_equal(remote[i]["image"].numpy(), here[i]["image"].numpy())
        assert np.array_equal(remote[i]["mask"].numpy(), here[i]["mask"].numpy())
    from pyside.sources import open_source as viewer_source

    assert len(viewer_source(url)) == 24 and viewer_source(url).sample(5).image.shape == (32, 32, 3)
    run = tmp_path / "run"
    args = ["train", "--data", url, "--model", "single", "--epochs", "1", "--steps-per-epoch", "3", "--width", "32", "--blocks", "1",
            "--batch-size", "16", "--threads", "1", "--no-progress", "--out", str(run)]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert json.loads((run / "metrics.json").read_text())["data"] == [url]


def test_file_urls_are_local_folders(generated, tmp_path):
    _, local = generated
    url = f"file://{local}"
    assert open_storage(url).local and load_dataset_arrays(url, ("frame_id",))["frame_id"].tolist() == list(range(24))
    result = CliRunner().invoke(main, ["inspect", url, "--json", "--sheet", str(tmp_path / "s.png")])
    assert result.exit_code == 0, result.output


def test_endpoint_and_credentials_from_flags_instead_of_the_environment(generated, s3, monkeypatch, tmp_path):
    from generator import storage

    url, _ = generated
    monkeypatch.setattr(storage, "_DEFAULT_OPTIONS", {})
    for k in s3.env:
        monkeypatch.delenv(k)
    result = CliRunner().invoke(main, ["inspect", url, "--json", "--sheet", str(tmp_path / "s.png")])
    assert result.exit_code == 1 and "s3://test/gen/ds: cannot" in result.output  # no endpoint, no keys: AWS refuses or is unreachable
    flags = ["--s3-endpoint-url", s3.endpoint, "--storage-option", "key=AK", "--storage-option", "secret=SK"]
    result = CliRunner().invoke(main, [*flags, "inspect", url, "--json", "--sheet", str(tmp_path / "s.png")])
    assert result.exit_code == 0, result.output
    assert storage.parse_storage_options(["anon=false", "client_kwargs.region_name=eu", "max=3"]) == {
        "anon": False, "client_kwargs": {"region_name": "eu"}, "max": 3}
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        storage.parse_storage_options(["novalue"])


def _frame(frame_id: int, seq: int) -> list[bytes]:
    rng = np.random.default_rng(frame_id)
    return frame_message(frame_fields(rng), image_bytes(rng), frame_id=frame_id, seq=seq, player_id="p0", mask=mask_bytes(rng))


def _collector(url: str, run_id: str, frames: int = 32) -> Collector:
    store = DatasetStore.open(url, {"test": True, "seed": SEED}, frames=frames, shard_size=8, run_id=run_id)
    return Collector(store, Expectations(run_id=RUN_ID, seed=SEED, frames=frames))


def _feed(collector: Collector, ids) -> None:
    for fid in ids:
        seq = collector.players["p0"].next_seq if "p0" in collector.players else 0
        assert collector.handle(_frame(int(fid), seq)), dict(collector.stats.rejects)


@pytest.mark.timeout(120)
def test_two_writers_at_once_lose_no_update_and_a_rerun_resumes(s3):
    """Two collectors (two nodes) on one dataset URL, interleaved, each committing shards of its own."""
    url = s3.url("two-writers/ds")
    a, b = _collector(url, "node-a"), _collector(url, "node-b")
    _feed(a, range(0, 8))
    _feed(b, range(16, 24))
    _feed(a, range(8, 12))  # an open shard: not committed when a closes
    b.store.close()
    a.store.close()
    manifest = read_manifest(url)
    assert [s.name for s in manifest.shards] == ["shard-000000", "shard-000002"] and manifest.frames_stored == 16
    assert sorted((r.run_id, r.frames_stored) for r in manifest.runs) == [("node-a", 8), ("node-b", 8)]
    again = _collector(url, "node-c")
    assert again.store.missing_frame_ids().tolist() == [*range(8, 16), *range(24, 32)]
    _feed(again, [*range(8, 16), *range(24, 32)])
    again.store.close()
    manifest = read_manifest(url)
    assert manifest.complete and [r.run_id for r in manifest.runs] == ["node-a", "node-b", "node-c"]
    assert load_dataset_arrays(url, ("frame_id",))["frame_id"].tolist() == list(range(32))
    assert verify_dataset(url) == (32, [])


@pytest.mark.timeout(240)
def test_unreachable_storage_is_a_clear_error_and_loses_nothing(s3, tmp_path):
    url = s3.url("outage/ds")
    c = _collector(url, "before")
    _feed(c, range(0, 8))  # shard 0 complete: committed on the writer thread
    _feed(c, range(8, 15))  # shard 1 waits for its last frame
    deadline = time.monotonic() + 60
    while not c.store.committed[:8].all():
        assert time.monotonic() < deadline, "shard 0 was not committed"
        time.sleep(0.01)
    s3.stop()
    try:
        with pytest.raises(StoreError, match=r"s3://test/outage/ds: writing a shard failed: s3://test/outage/ds: cannot write .*Could not connect"):
            _feed(c, [15])  # the commit fails on the writer thread ...
            c.store.close()  # ... and is reported here at the latest
        with pytest.raises(StorageUnavailable, match=r"s3://test/outage/ds: cannot check manifest.json"):
            DatasetStore.open(url, {"test": True, "seed": SEED}, frames=32, shard_size=8, run_id="during")
        result = CliRunner().invoke(main, ["inspect", url])
        assert result.exit_code == 1 and "s3://test/outage/ds: cannot" in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1
    finally:
        s3.start()
    # Back up: shard 0 is intact, shard 1 never committed (no record), and a rerun renders only it.
    scan = scan_dataset(url)
    assert [c.name for c in scan.sound] == ["shard-000000"] and not scan.damaged and scan.frames_stored == 8
    assert verify_dataset(url) == (8, [])
    after = _collector(url, "after")
    assert after.store.missing_frame_ids().tolist() == list(range(8, 32))
    _feed(after, range(8, 32))
    after.store.close()
    assert read_manifest(url).complete and verify_dataset(url) == (32, [])
    assert np.array_equal(DatasetReader(url).image(3), DatasetReader(url).image(3))
