"""Protocol v1: the models, the fast header encoder, and the committed JSON Schemas."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from bridge.protocol import (
    MESSAGE_TYPES,
    PROTOCOL_VERSION,
    SCHEMA_DIR,
    Capabilities,
    EndOfStream,
    ErrorMessage,
    FrameHeader,
    Heartbeat,
    Hello,
    ImageInfo,
    MaskInfo,
    decode_control,
    encode_message,
    schema_documents,
    stale_schemas,
    write_schemas,
)
from posebridge import main as cli_main

from bridge_support import RUN_ID, SEED, frame_fields, frame_message, image_bytes, mask_bytes

PROTOCOL_1_0_FRAME_SCHEMA = Path(__file__).with_name("data") / "protocol-1.0" / "frame.schema.json"  # as released


def _schema(name: str) -> dict:
    return json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())


def _envelope(seq: int = 0) -> dict:
    return {"run_id": RUN_ID, "player_id": "p0", "seq": seq}


CONTROL = {
    "hello": Hello.build(**_envelope(), player_kind="unity", versions={"unity": "6000.0.23f1"}, frames_planned=10, pid=0, host="h",
                   capabilities=Capabilities(encodings=["jpeg"], visibility="raycast", right_view=True, max_image_size=(1920, 1080))),
    "heartbeat": Heartbeat.build(**_envelope(3), frames_sent=2, frames_planned=10, fps=41.5),
    "end": EndOfStream.build(**_envelope(4), frames_sent=10),
    "error": ErrorMessage.build(**_envelope(5), code="render_failed", message="GPU lost", fatal=True),
}


def test_committed_schemas_are_current():
    assert stale_schemas() == [], "run `posebridge schema` and commit bridge/schema/"
    assert sorted(p.name for p in SCHEMA_DIR.glob("*.schema.json")) == sorted(schema_documents())


def test_schema_command_detects_a_stale_file(tmp_path):
    runner = CliRunner()
    assert runner.invoke(cli_main, ["schema", "--out", str(tmp_path)]).exit_code == 0
    assert runner.invoke(cli_main, ["schema", "--out", str(tmp_path), "--check"]).exit_code == 0
    (tmp_path / "frame.schema.json").write_text("{}")
    result = runner.invoke(cli_main, ["schema", "--out", str(tmp_path), "--check"])
    assert result.exit_code == 1 and "frame.schema.json" in result.output


def test_schemas_are_precise():
    for name in (*MESSAGE_TYPES, "control"):
        jsonschema.Draft202012Validator.check_schema(_schema(name))
    frame = _schema("frame")
    props = frame["properties"]
    assert set(frame["required"]) == set(props) - {"mask"}, "every field a writer sends is required, except 1.1's optional mask"
    assert props["mask"] == {"$ref": "#/$defs/MaskInfo", "description": props["mask"]["description"]}  # absent, never null
    mask = frame["$defs"]["MaskInfo"]
    assert mask["properties"]["encoding"]["const"] == "png" and mask["properties"]["shape"]["minItems"] == 2
    assert set(mask["required"]) == {"encoding", "shape", "size_bytes", "crc32"} and mask["additionalProperties"] is False
    assert frame["x-message-parts"] == [2, 3] and frame["x-protocol-version"] == "1.1"
    assert frame["additionalProperties"] is False
    for key, dim in (("joints_2d", 2), ("joints_3d", 3), ("joints_3d_world", 3), ("joints_2d_right", 2)):
        assert props[key]["minItems"] == props[key]["maxItems"] == 17
        assert props[key]["items"]["minItems"] == props[key]["items"]["maxItems"] == dim
    assert props["visibility"]["items"]["enum"] == [0, 1, 2]
    assert props["protocol"]["pattern"] == r"^1\.[0-9]{1,4}$"
    camera = frame["$defs"]["Camera"]
    assert camera["properties"]["K"]["minItems"] == 3 and camera["properties"]["K"]["prefixItems"][0]["maxItems"] == 3
    assert frame["$defs"]["ImageInfo"]["properties"]["encoding"]["enum"] == ["jpeg", "png", "raw"]
    # Units are stated in the descriptions.
    assert "pixels" in props["joints_2d"]["description"] and "millimetres" in props["joints_3d"]["description"]
    assert "millimetres" in camera["properties"]["t"]["description"]


def test_fast_frame_header_is_valid_and_float32_exact(rng):
    fields = frame_fields(rng)
    image = image_bytes(rng)
    header, _ = frame_message(fields, image, frame_id=7, seq=1)
    jsonschema.validate(json.loads(header), _schema("frame"))
    h = FrameHeader.model_validate_json(header)
    assert h.frame_id == 7 and h.seed == SEED and h.image.size_bytes == len(image)
    for key in ("joints_2d", "joints_3d", "joints_3d_world", "joints_2d_right", "K", "R", "t"):
        sent = np.asarray(fields[key], dtype=np.float32)
        got = np.asarray(getattr(h, key) if hasattr(h, key) else getattr(h.camera, key), dtype=np.float32)
        assert np.array_equal(sent, got), key
    # The pydantic route gives the same message.
    again = FrameHeader.model_validate_json(encode_message(h))
    assert again == h


def test_a_frame_with_a_mask_announces_its_third_part(rng):
    fields, mask = frame_fields(rng), mask_bytes(rng)
    header, image, part = frame_message(fields, image_bytes(rng), frame_id=3, seq=2, mask=mask)
    doc = json.loads(header)
    jsonschema.validate(doc, _schema("frame"))
    assert list(doc)[-3:] == ["image", "mask", "meta"] and doc["protocol"] == "1.1" == PROTOCOL_VERSION
    h = FrameHeader.model_validate_json(header)
    assert h.parts == 3 and part == mask
    assert h.mask == MaskInfo(encoding="png", shape=(40, 48), size_bytes=len(mask), crc32=h.mask.crc32)
    assert FrameHeader.model_validate_json(encode_message(h)) == h
    for bad in (dict(doc["mask"], encoding="jpeg"), dict(doc["mask"], shape=[40, 48, 1]), dict(doc["mask"], size_bytes=0)):
        with pytest.raises(ValidationError, match="mask"):
            FrameHeader.model_validate_json(json.dumps(dict(doc, mask=bad)))


def test_a_frame_without_a_mask_is_a_valid_1_0_frame(rng):
    """Backward compatibility: a 1.1 frame without a mask has no `mask` key (never null), so it is
    exactly what the released 1.0 schema allows, and a 1.0 frame reads as a frame without a mask."""
    header, _ = frame_message(frame_fields(rng), image_bytes(rng), frame_id=3, seq=2)
    doc = json.loads(header)
    assert "mask" not in doc and b"mask" not in encode_message(FrameHeader.model_validate_json(header))
    old_schema = json.loads(PROTOCOL_1_0_FRAME_SCHEMA.read_text())
    assert old_schema["x-protocol-version"] == "1.0" and "mask" not in old_schema["properties"]
    jsonschema.validate(doc, old_schema)
    jsonschema.validate(dict(doc, protocol="1.0"), _schema("frame"))
    h = FrameHeader.model_validate_json(json.dumps(dict(doc, protocol="1.0")))
    assert h.mask is None and h.parts == 2 and h.minor == 0
    # A 1.1 frame with a mask breaks the 1.0 contract: a 1.0 collector refuses it (docs/protocol.md).
    with_mask = json.loads(frame_message(frame_fields(rng), image_bytes(rng), frame_id=3, seq=2, mask=mask_bytes(rng))[0])
    with pytest.raises(jsonschema.ValidationError, match="mask"):
        jsonschema.validate(with_mask, old_schema)


def test_fast_encoder_refuses_non_finite_and_bad_visibility(rng):
    fields = frame_fields(rng)
    bad = dict(fields, joints_3d=np.where(np.arange(17)[:, None] == 4, np.nan, fields["joints_3d"]))
    with pytest.raises(ValueError, match="joints_3d"):
        frame_message(bad, b"x", frame_id=0, seq=0)
    with pytest.raises(ValueError, match="visibility"):
        frame_message(dict(fields, visibility=np.full(17, 3)), b"x", frame_id=0, seq=0)


@pytest.mark.parametrize("name", list(CONTROL))
def test_control_messages_round_trip_and_match_schema(name):
    data = encode_message(CONTROL[name])
    jsonschema.validate(json.loads(data), _schema(name))
    jsonschema.validate(json.loads(data), _schema("control"))
    assert decode_control(data) == CONTROL[name]


def _frame_dict(rng) -> dict:
    return json.loads(frame_message(frame_fields(rng), image_bytes(rng), frame_id=1, seq=1)[0])


def test_strict_types_and_finite_numbers(rng):
    d = _frame_dict(rng)
    for path, value in ((("frame_id",), "1"), (("seq",), 1.5), (("baseline_mm",), "500"), (("joints_2d", 0, 0), True)):
        bad = json.loads(json.dumps(d))
        node = bad
        for p in path[:-1]:
            node = node[p]
        node[path[-1]] = value
        with pytest.raises(ValidationError):
            FrameHeader.model_validate_json(json.dumps(bad))
    text = json.dumps(d).replace('"baseline_mm": 500', '"baseline_mm": NaN')
    with pytest.raises(ValidationError, match="finite"):
        FrameHeader.model_validate_json(text)


def test_versioning_major_must_match_minor_additions_are_ignored(rng):
    d = _frame_dict(rng)
    newer = dict(d, protocol="1.7", lens_model="fisheye", camera=dict(d["camera"], sensor_mm=[36, 24]))
    assert FrameHeader.model_validate_json(json.dumps(newer)).protocol == "1.7"
    with pytest.raises(ValidationError, match="unsupported protocol major version 2"):
        FrameHeader.model_validate_json(json.dumps(dict(d, protocol="2.0")))
    # The exported schema describes exactly what a 1.1 writer sends: extras are errors there.
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(newer, _schema("frame"))


def test_version_type_and_skeleton_are_required(rng):
    d = _frame_dict(rng)
    for key in ("protocol", "type", "skeleton"):
        with pytest.raises(ValidationError, match=key):
            FrameHeader.model_validate_json(json.dumps({k: v for k, v in d.items() if k != key}))
    assert Heartbeat.build(**_envelope(), frames_sent=0, frames_planned=0, fps=0.0).protocol == PROTOCOL_VERSION


def test_pose_source_and_image_info_are_checked(rng):
    d = _frame_dict(rng)
    assert FrameHeader.model_validate_json(json.dumps(dict(d, source={"kind": "prior"}))).source.kind == "prior"
    for bad in (dict(d, source={"kind": "clip", "clip": "x"}), dict(d, image=dict(d["image"], encoding="webp")),
                dict(d, image=dict(d["image"], crc32=2**32)), dict(d, joints_2d=d["joints_2d"][:16])):
        with pytest.raises(ValidationError):
            FrameHeader.model_validate_json(json.dumps(bad))
    assert ImageInfo(encoding="raw", shape=(2, 3, 4), size_bytes=24, crc32=0).shape == (2, 3, 4)


def test_write_schemas_is_deterministic(tmp_path):
    write_schemas(tmp_path)
    first = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    write_schemas(tmp_path)
    assert first == {p.name: p.read_bytes() for p in tmp_path.iterdir()}
