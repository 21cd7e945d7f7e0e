"""Collector validation: every reject reason, batching, sequence gaps, and the image header probe."""

from __future__ import annotations

import io
import json
import zlib

import numpy as np
import pytest
from PIL import Image

from bridge.collector import REJECT_REASONS
from bridge.image_probe import ImageProbeError, probe_image, probe_jpeg, probe_png
from bridge.protocol import Capabilities, EndOfStream, Hello, encode_message
from generator.store import load_dataset_arrays

from bridge_support import RUN_ID, SEED, SIZE, frame_fields, frame_message, image_bytes, mask_bytes, open_collector

W, H = SIZE


@pytest.fixture
def collector(tmp_path):
    c = open_collector(tmp_path / "ds", frames=64, shard_size=4, image_size=SIZE)
    yield c
    c.store.close()


def _good(rng, frame_id, seq, **kw):
    return frame_message(frame_fields(rng), image_bytes(rng), frame_id=frame_id, seq=seq, **kw)


def _rewrite(message, **changes):
    d = json.loads(message[0])
    for k, v in changes.items():
        d[k] = v
    return [json.dumps(d).encode(), message[1]]


def _hello(seq=0, player_id="p0"):
    caps = Capabilities(encodings=["jpeg"], visibility="raycast", right_view=True, max_image_size=(64, 64))
    return [encode_message(Hello.build(run_id=RUN_ID, player_id=player_id, seq=seq, player_kind="unity", versions={}, capabilities=caps,
                                 frames_planned=1, pid=1, host="h"))]


def _bad_messages(rng) -> dict[str, list]:
    """One message per reject reason (the frame ids 10+ are otherwise free)."""
    fields = frame_fields(rng)
    img = image_bytes(rng)
    ok = lambda fid, seq, **kw: frame_message(fields, img, frame_id=fid, seq=seq, **kw)  # noqa: E731
    shifted = dict(fields, joints_2d=fields["joints_2d"] + [[3.0, 0.0]])
    hidden = dict(fields, visibility=np.zeros(17, dtype=np.uint8))
    scaled_r = dict(fields, R=fields["R"] * 1.01)
    png = image_bytes(rng, "png")
    mask = mask_bytes(rng)
    return {
        "parts": [*ok(10, 1), b"extra"],
        "header_size": [b" " * (70 << 10) + ok(11, 2)[0], img],
        "encoding": [ok(12, 3)[0].replace(b'"walk_01"', b'"walk\xff\xfe"'), img],
        "json": [ok(13, 4)[0][:-7], img],
        "version": _rewrite(ok(14, 5), protocol="2.0"),
        "schema": _rewrite(ok(15, 6), frame_id="15"),
        "run_id": ok(16, 7, run_id="another-run"),
        "seed": ok(17, 8, seed=SEED + 1),
        "frame_range": ok(64, 9),
        "seq": ok(18, 0),
        "duplicate": ok(0, 10),
        "image_shape": frame_message(fields, img, frame_id=19, seq=11, image_info={"shape": (H + 1, W, 3)}),
        "image_encoding": frame_message(fields, png, frame_id=20, seq=12, encoding="png", image_info={}),
        "image_length": [ok(21, 13)[0], img[:-10]],
        "checksum": frame_message(fields, img, frame_id=22, seq=14, image_info={"crc32": (zlib.crc32(img) + 1) % 2**32}),
        "image_decode": frame_message(fields, rng.bytes(len(img)), frame_id=23, seq=15),
        "camera": frame_message(scaled_r, img, frame_id=24, seq=16),
        "geometry": frame_message(shifted, img, frame_id=25, seq=17),
        "visibility": frame_message(hidden, img, frame_id=26, seq=18),
        "mask": frame_message(fields, img, frame_id=27, seq=19, mask=mask, mask_info={"crc32": (zlib.crc32(mask) + 1) % 2**32}),
    }


def _png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def _corrupt_masks(rng) -> dict[str, tuple[bytes, dict, str]]:
    """Broken mask parts: (bytes, header overrides, what the reject detail says)."""
    good = mask_bytes(rng)
    flipped = bytearray(good)
    flipped[60] ^= 0x40  # inside the compressed data: the header's CRC-32 no longer matches
    ones = np.ones((H, W), dtype=np.uint8)
    return {
        "bit_flip": (bytes(flipped), {"crc32": zlib.crc32(good)}, "mask CRC-32"),
        "length": (good, {"size_bytes": len(good) + 1}, "header says"),
        "shape": (good, {"shape": (H, W + 1)}, "mask shape"),
        "values_255": (_png(ones * 255), {}, "values other than 0 and 1: [255]"),
        "rgb": (_png(np.stack([ones] * 3, axis=-1)), {}, "mode RGB"),
        "smaller_png": (_png(np.ones((H - 1, W), dtype=np.uint8)), {}, "the image is"),
        "truncated": (good[:-30], {}, "PNG"),
        "jpeg": (image_bytes(rng), {}, "not a PNG"),
    }


@pytest.mark.parametrize("case", ["bit_flip", "length", "shape", "values_255", "rgb", "smaller_png", "truncated", "jpeg"])
def test_a_bad_mask_is_rejected_with_its_reason(collector, rng, case):
    data, overrides, detail = _corrupt_masks(rng)[case]
    message = frame_message(frame_fields(rng), image_bytes(rng), frame_id=5, seq=0, mask=data, mask_info=overrides)
    assert not collector.handle(message)
    assert collector.stats.rejects == {"mask": 1}, dict(collector.stats.rejects)
    assert detail in collector.stats.reject_samples[0] and "frame 5" in collector.stats.reject_samples[0]
    assert not collector.store.received[5]
    # The same frame with a good mask goes in.
    assert collector.handle(frame_message(frame_fields(rng), image_bytes(rng), frame_id=5, seq=1, mask=mask_bytes(rng)))


def test_mask_parts_must_match_the_header(collector, rng):
    fields, img, mask = frame_fields(rng), image_bytes(rng), mask_bytes(rng)
    announced = frame_message(fields, img, frame_id=1, seq=0, mask=mask)
    assert not collector.handle(announced[:2])  # the header announces a mask that is not there
    assert not collector.handle([*frame_message(fields, img, frame_id=1, seq=1), mask])  # a part nobody announced
    assert collector.stats.rejects == {"parts": 2}
    assert "with a mask has 3" in collector.stats.reject_samples[0] and "without a mask has 2" in collector.stats.reject_samples[1]


def test_protocol_versions_1_0_1_1_and_newer_minors_are_accepted(tmp_path, rng):
    """A 1.0 frame (two parts, no mask) and a 1.1 frame without a mask go in; a 1.1 frame's mask is
    stored; a 1.2 frame's parts beyond the ones 1.1 knows are ignored."""
    c = open_collector(tmp_path / "ds", frames=4, shard_size=4, image_size=SIZE)
    fields, img = frame_fields(rng), image_bytes(rng)
    masks = [mask_bytes(rng) for _ in range(2)]
    v10 = frame_message(fields, img, frame_id=0, seq=0)
    v10[0] = v10[0].replace(b'"protocol":"1.1"', b'"protocol":"1.0"')
    assert b'"protocol":"1.0"' in v10[0] and b'"mask"' not in v10[0]
    v12 = frame_message(fields, img, frame_id=3, seq=3, mask=masks[1])
    v12 = [v12[0].replace(b'"protocol":"1.1"', b'"protocol":"1.2"'), *v12[1:], b"a part that 1.2 added"]
    for message in (v10, frame_message(fields, img, frame_id=1, seq=1), frame_message(fields, img, frame_id=2, seq=2, mask=masks[0]), v12):
        assert c.handle(message), c.stats.reject_samples
    c.store.close()
    a = load_dataset_arrays(tmp_path / "ds", ("mask_bytes", "mask_offset", "mask_pixels", "mask_crc32"))
    assert a["mask_offset"][:2].tolist() == [-1, -1] and (a["mask_offset"][2:] > 0).all()
    assert a["mask_bytes"].tolist() == [0, 0, len(masks[0]), len(masks[1])]
    assert a["mask_crc32"][2:].tolist() == [zlib.crc32(m) for m in masks]
    decoded = [np.asarray(Image.open(io.BytesIO(m))) for m in masks]
    assert a["mask_pixels"].tolist() == [-1, -1, *(int(d.sum()) for d in decoded)]


def test_every_reject_reason_is_detected_and_nothing_bad_is_stored(collector, rng):
    collector.expect.encodings = ("jpeg",)
    assert collector.handle(_hello())
    assert collector.handle(_good(rng, 0, 1))
    bad = _bad_messages(rng)
    assert set(bad) | {"internal"} == set(REJECT_REASONS)
    for reason, message in bad.items():
        before = collector.stats.rejects[reason]
        assert not collector.handle(message), reason
        assert collector.stats.rejects[reason] == before + 1, (reason, dict(collector.stats.rejects))
    assert collector.stats.rejects["internal"] == 0
    assert collector.stats.frames_accepted == 1
    assert collector.store.received.sum() == 1 and collector.store.received[0]
    assert len(collector.stats.reject_samples) == len(bad)


def test_a_bad_frame_in_a_batch_does_not_hold_back_the_good_ones(collector, rng):
    fields = frame_fields(rng)
    img = image_bytes(rng)
    bad = dict(fields, joints_3d=fields["joints_3d"] + [[0.0, 0.0, 50.0]])
    for i in range(4):  # one shard of 4: commit happens when the last good one arrives
        collector._receive(frame_message(fields, img, frame_id=i, seq=2 * i))
        collector._receive(frame_message(bad, img, frame_id=8 + i, seq=2 * i + 1))
    collector.flush()
    assert collector.stats.frames_accepted == 4 and collector.stats.rejects["geometry"] == 4
    collector.store.close()
    stored = load_dataset_arrays(collector.store.folder, ("frame_id", "joints_3d"))
    assert stored["frame_id"].tolist() == [0, 1, 2, 3]
    assert np.array_equal(stored["joints_3d"][0], np.asarray(fields["joints_3d"], dtype=np.float32))


def test_sequence_gaps_restarts_and_end_of_stream(collector, rng):
    assert collector.handle(_hello())
    assert collector.handle(_good(rng, 0, 1))
    assert collector.handle(_good(rng, 1, 5))  # seq 2..4 never arrived
    assert collector.stats.gaps == 3 and collector.players["p0"].gaps == 3
    assert not collector.handle(_good(rng, 2, 5))  # replayed sequence number
    assert collector.stats.rejects["seq"] == 1
    assert collector.handle(_hello(seq=0))  # the same id starting over is allowed (logged)
    end = EndOfStream.build(run_id=RUN_ID, player_id="p0", seq=1, frames_sent=2)
    assert collector.handle([encode_message(end)])
    p = collector.players["p0"]
    assert p.ended and p.frames_sent == 2 and p.frames_accepted == 2


def test_png_and_raw_frames_are_stored_with_their_extension(collector, rng):
    fields = frame_fields(rng)
    pixels = np.full((H, W, 3), 7, dtype=np.uint8)
    raw = pixels.tobytes()
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    msgs = [frame_message(fields, buf.getvalue(), frame_id=0, seq=0, encoding="png"),
            frame_message(fields, raw, frame_id=1, seq=1, encoding="raw")]
    msgs += [frame_message(fields, image_bytes(rng), frame_id=i, seq=i) for i in (2, 3)]
    assert all(collector.handle(m) for m in msgs)
    collector.store.close()
    a = load_dataset_arrays(collector.store.folder, ("image_ext",))
    assert a["image_ext"].tolist() == ["png", "npy", "jpg", "jpg"]


# ------------------------------------------------------------------------------------------------
# image probe


def _encoded(fmt: str, shape=(30, 50, 3), **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros(shape, dtype=np.uint8).squeeze()).save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_probe_reads_dimensions_without_decoding():
    assert probe_jpeg(_encoded("JPEG")) == (50, 30, 3)
    assert probe_jpeg(_encoded("JPEG", progressive=True)) == (50, 30, 3)
    assert probe_jpeg(_encoded("JPEG", shape=(30, 50, 1))) == (50, 30, 1)
    assert probe_png(_encoded("PNG")) == (50, 30, 3)
    assert probe_png(_encoded("PNG", shape=(30, 50, 4))) == (50, 30, 4)
    probe_image("raw", bytes(30 * 50 * 3), (30, 50, 3))


@pytest.mark.parametrize(
    "encoding,mutate,match",
    [
        ("jpeg", lambda b: b[:-200], "truncated"),
        ("jpeg", lambda b: b"\x00" + b[1:], "SOI"),
        ("jpeg", lambda b: b[:2] + b"\x12" + b[3:], "marker expected"),
        ("png", lambda b: b[:-12], "IEND"),
        ("png", lambda b: b[:20] + b"\x00\x00\x00\x09" + b[24:], "IHDR checksum"),
        ("png", lambda b: b + b"junk", "after IEND"),
        ("raw", lambda b: b[:-1], "bytes"),
        ("jpeg", lambda b: _encoded("PNG"), "SOI"),
    ],
)
def test_probe_rejects_broken_images(encoding, mutate, match):
    good = bytes(30 * 50 * 3) if encoding == "raw" else _encoded("JPEG" if encoding == "jpeg" else "PNG")
    with pytest.raises(ImageProbeError, match=match):
        probe_image(encoding, mutate(good), (30, 50, 3))


def test_probe_checks_the_stated_shape():
    with pytest.raises(ImageProbeError, match="50x30 with 3 channels; the header states 51x30"):
        probe_image("jpeg", _encoded("JPEG"), (30, 51, 3))
    with pytest.raises(ImageProbeError, match="bit depth 16"):
        probe_png(_png16())


def _png16() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 4), dtype=np.uint16)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("threads", [0, 3])
def test_masks_decoded_in_a_batch_with_or_without_threads(tmp_path, rng, threads):
    """A poll batch decodes its masks together (spread over threads when there are some): the
    good frames are stored with their person pixel counts, the bad masks rejected with their frame."""
    from bridge.collector import Collector, Expectations
    from generator.store import DatasetStore

    store = DatasetStore.open(tmp_path / "ds", {"test": True}, frames=12, shard_size=12, run_id=RUN_ID)
    c = Collector(store, Expectations(run_id=RUN_ID, seed=SEED, frames=12, image_size=SIZE), mask_threads=threads)
    bad_values = _png(np.full((H, W), 2, dtype=np.uint8))
    masks = {i: bad_values if i in (3, 8) else mask_bytes(rng) for i in range(12)}
    for i in range(12):
        c._receive(frame_message(frame_fields(rng), image_bytes(rng), frame_id=i, seq=i, mask=masks[i]))
    c.flush()
    assert c.stats.frames_accepted == 10 and dict(c.stats.rejects) == {"mask": 2}
    assert sorted(s.split(":")[1].strip() for s in c.stats.reject_samples) == ["frame 3", "frame 8"]
    assert store.received.tolist() == [i not in (3, 8) for i in range(12)]
    pixels = store.open_shards[0].arrays["mask_pixels"]
    for i in range(12):
        if i not in (3, 8):
            assert pixels[i] == np.asarray(Image.open(io.BytesIO(masks[i]))).sum() > 0
    c.close()
    store.close()


def test_mask_codec_reads_its_own_pngs_and_any_other_encoders(rng):
    """encode_mask_png round-trips through the fast path; a mask PNG from another encoder (Pillow's,
    with filtered rows) decodes to the same pixels through the general path; the counts agree."""
    from generator.masks import _decode_unfiltered
    from generator.masks import count_mask_pixels, decode_mask_png, encode_mask_png

    mask = (rng.random((37, 53)) < 0.3).astype(np.uint8)
    mask[5:30, 10:40] = 1
    ours = encode_mask_png(mask)
    assert probe_png(ours) == (53, 37, 1)
    others = []
    for kw in ({}, {"optimize": True}):
        buf = io.BytesIO()
        Image.fromarray(mask).save(buf, format="PNG", **kw)
        others.append(buf.getvalue())
    assert _decode_unfiltered(ours) is not None and all(_decode_unfiltered(o) is None for o in others)
    for data in (ours, *others):
        decoded = decode_mask_png(data, (37, 53))
        assert decoded.flags.writeable and decoded.flags.c_contiguous
        np.testing.assert_array_equal(decoded, mask)
        assert count_mask_pixels(data, (37, 53)) == mask.sum()
    with pytest.raises(ValueError, match="uint8"):
        encode_mask_png(mask.astype(bool))
