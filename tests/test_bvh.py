"""BVH parsing and forward kinematics: hand-computed positions, and every malformed-file case."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.bvh import BVHParseError, euler_matrices, forward_kinematics, parse_bvh, read_bvh
from generator.mocap import DATA_DIR

TINY = Path(__file__).parent / "data" / "tiny.bvh"


def test_fk_of_tiny_bvh_matches_hand_computed_positions():
    clip = read_bvh(TINY)
    s = clip.skeleton
    assert s.names == ("root", "a", "b", "b/End")
    assert s.parents.tolist() == [-1, 0, 1, 2]
    assert s.channels[1] == ("Xrotation", "Zrotation", "Yrotation")
    assert clip.num_frames == 3 and clip.frame_time == 0.5 and clip.fps == 2.0
    pos, rot = forward_kinematics(s, clip.motion)
    expected = np.array(
        [
            # frame 0: no rotation, root translated by (1, 2, 3)
            [[1, 2, 3], [1, 12, 3], [6, 12, 3], [6, 12, 5]],
            # frame 1: root Rz(90) turns a's offset (0,10,0) into (-10,0,0); a adds Rz(90): b hangs off Rz(180)
            [[1, 2, 3], [-9, 2, 3], [-14, 2, 3], [-14, 2, 5]],
            # frame 2: a = Rx(90)·Rz(90) in the listed order X Z Y: (5,0,0) -> (0,5,0) -> (0,0,5);
            # the end site (0,0,2) -> (0,0,2) -> (0,-2,0). (The order Z X would put b at (0,15,0).)
            [[0, 0, 0], [0, 10, 0], [0, 10, 5], [0, 8, 5]],
        ],
        dtype=float,
    )
    np.testing.assert_allclose(pos, expected, atol=1e-9)
    np.testing.assert_allclose(rot[2, 1], euler_matrices([90, 90], [0, 2]), atol=1e-12)
    # rotations stay proper
    np.testing.assert_allclose(np.linalg.det(rot.reshape(-1, 3, 3)), 1.0, atol=1e-9)


def test_fk_subset_computes_only_needed_nodes():
    clip = read_bvh(TINY)
    pos, _ = forward_kinematics(clip.skeleton, clip.motion, nodes=[1])
    assert np.isfinite(pos[:, :2]).all() and np.isnan(pos[:, 2:]).all()


def test_position_channels_on_a_joint_and_zero_channel_joints():
    text = """HIERARCHY
ROOT r
{
  OFFSET 7 7 7
  CHANNELS 3 Xposition Yposition Zposition
  JOINT fixed
  {
    OFFSET 1 0 0
    JOINT slider
    {
      OFFSET 0 5 0
      CHANNELS 4 Yrotation Xposition Yposition Zposition
      End Site
      {
        OFFSET 0 0 1
      }
    }
  }
}
MOTION
Frames: 1
Frame Time: 0.1
1 1 1 90 2 3 4
"""
    clip = parse_bvh(text)
    assert clip.skeleton.channels[1] == ()
    pos, _ = forward_kinematics(clip.skeleton, clip.motion)
    # root: position channels replace OFFSET; slider: (2,3,4) replaces (0,5,0); Ry(90) (0,0,1) -> (1,0,0)
    np.testing.assert_allclose(pos[0], [[1, 1, 1], [2, 1, 1], [4, 4, 5], [5, 4, 5]], atol=1e-9)


def test_crlf_tabs_blank_lines_and_glued_header_values_parse_the_same():
    text = TINY.read_text()
    odd = (
        text.replace("\n", "\r\n")
        .replace("  ", "\t")
        .replace("Frames: 3", "Frames:3")
        .replace("Frame Time: 0.5", "Frame Time:\t0.5")
        .replace("1 2 3 90", "\r\n  1   2 3 90")
    )
    a, b = parse_bvh(text), parse_bvh(odd)
    assert a.skeleton.names == b.skeleton.names
    np.testing.assert_array_equal(a.motion, b.motion)


def test_joint_names_with_spaces_and_braces_on_the_same_line():
    text = "HIERARCHY\nROOT my root {\n OFFSET 0 0 0\n CHANNELS 3 Zrotation Xrotation Yrotation\n End Site {\n OFFSET 1 2 3\n }\n}\nMOTION\nFrames: 1\nFrame Time: 1\n0 0 0\n"
    clip = parse_bvh(text)
    assert clip.skeleton.names == ("my root", "my root/End")


def test_real_cmu_file_with_mixed_line_endings():
    clip = read_bvh(DATA_DIR / "cmu_walks" / "02_01.bvh")  # copied unchanged: CRLF header, LF motion
    assert clip.num_frames == 343 and len(clip.skeleton.names) == 38
    assert clip.motion.shape == (343, clip.skeleton.num_channels) == (343, 96)
    assert abs(clip.fps - 120.0) < 1e-2


# ------------------------------------------------------------------------------------------------
# Malformed files: (text, line, words in the message)

GOOD = TINY.read_text()
LINES = GOOD.splitlines()


def _with_line(n: int, new: str | None) -> str:
    lines = list(LINES)
    if new is None:
        del lines[n - 1]
    else:
        lines[n - 1] = new
    return "\n".join(lines) + "\n"


MALFORMED = {
    "empty": ("", 1, "empty file"),
    "no HIERARCHY": (GOOD.replace("HIERARCHY\n", ""), 1, "expected 'HIERARCHY'"),
    "truncated hierarchy": ("\n".join(LINES[:12]) + "\n", 12, "file ends inside 'b'"),
    "missing closing brace": (_with_line(19, None), 20, "'MOTION' inside 'root': missing '}'"),
    "extra closing brace": (_with_line(19, "}\n}"), 21, "extra '}'"),
    "unknown token": (_with_line(8, "    OFSET 0 10 0"), 8, "unknown token 'OFSET'"),
    "missing OFFSET": (_with_line(8, ""), 19, "'a' (line 6) has no OFFSET"),
    "CHANNELS count not a number": (_with_line(9, "    CHANNELS three Xrotation"), 9, "not an integer"),
    "CHANNELS count too big": (_with_line(9, "    CHANNELS 4 Xrotation Zrotation Yrotation"), 10, "says 4 but channel 4 is 'JOINT'"),
    "unknown channel": (_with_line(9, "    CHANNELS 3 Xrotation Wrotation Yrotation"), 9, "channel 2 is 'Wrotation'"),
    "non-numeric offset": (_with_line(12, "      OFFSET 5 zero 0"), 12, "'zero' is not a number"),
    "infinite offset": (_with_line(12, "      OFFSET 5 inf 0"), 12, "not finite"),
    "CHANNELS in an end site": (_with_line(16, "        CHANNELS 3 Xrotation Yrotation Zrotation"), 16, "unknown token 'CHANNELS' in an End Site"),
    "duplicate joint": (_with_line(10, "    JOINT a"), 10, "duplicate joint name 'a'"),
    "no MOTION": ("\n".join(LINES[:20]) + "\n", 20, "no MOTION section"),
    "bad Frames": (_with_line(22, "Frames: three"), 22, "not an integer"),
    "missing Frame Time": (_with_line(23, "Time: 0.5"), 23, "expected 'Frame Time:'"),
    "zero Frame Time": (_with_line(23, "Frame Time: 0"), 23, "must be positive"),
    "short motion line": (_with_line(25, "1 2 3 90 0 0 0 90 0 0 0"), 25, "frame 1 has 11 values"),
    "long motion line": (_with_line(24, "1 2 3 0 0 0 0 0 0 0 0 0 0"), 24, "frame 0 has 13 values"),
    "fewer frames than declared": (_with_line(26, None), 25, "Frames: says 3 but the file ends after 2 frame lines"),
    "non-numeric value": (_with_line(25, "1 2 3 90 0 x 0 90 0 0 0 0"), 25, "'x' is not a finite number"),
    "nan value": (_with_line(26, "0 0 0 0 0 0 90 nan 0 0 0 0"), 26, "'nan' is not a finite number"),
    "glued numbers": (_with_line(24, "1 2 3 0 0 0 0 0 0 0 0 0.0.5"), 24, "'0.0.5' is not a finite number"),
    "text after Frame Time": (_with_line(23, "Frame Time: 0.5 1 2"), 23, "after the Frame Time"),
    "python-only number syntax": (_with_line(25, "1 2 3 90 0 1_0 0 90 0 0 0 0"), 25, "'1_0' is not a finite number"),
    "absurd position": (_with_line(24, "1e300 2 3 0 0 0 0 0 0 0 0 0"), 24, "frame 0, value 1 (root Xposition) is 1e+300, beyond +-1e+07"),
    "absurd angle": (_with_line(26, "0 0 0 0 0 0 90 90 0 0 0 -2e7"), 26, "frame 2, value 12 (b Yrotation) is -2e+07"),
    "absurd offset": (_with_line(12, "      OFFSET 5 1e300 0"), 12, "OFFSET y of 'b': '1e300' is beyond +-1e+07"),
    "absurd Frame Time": (_with_line(23, "Frame Time: 1e-300"), 23, "Frame Time 1e-300 s lies outside"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_files_name_file_line_and_problem(case, tmp_path):
    text, line, words = MALFORMED[case]
    path = tmp_path / "bad.bvh"
    path.write_text(text)
    with pytest.raises(BVHParseError) as err:
        read_bvh(path)
    assert err.value.line == line, str(err.value)
    assert words in err.value.problem, str(err.value)
    assert str(err.value).startswith(f"{path}:{line}: ")


def test_absurdly_deep_hierarchy_is_a_parse_error():
    deep = "".join(f"JOINT j{i}\n{{\nOFFSET 0 1 0\n" for i in range(5000))
    with pytest.raises(BVHParseError, match="deep.bvh:[0-9]+: the hierarchy is nested too deeply"):
        parse_bvh("HIERARCHY\nROOT r\n{\nOFFSET 0 0 0\n" + deep + "}\n" * 5001, source="deep.bvh")


def test_missing_file_is_a_parse_error_naming_it(tmp_path):
    with pytest.raises(BVHParseError, match="nope.bvh: cannot read"):
        read_bvh(tmp_path / "nope.bvh")


def _real_sample() -> bytes:
    """A real CMU file cut to 4 frames (keeps the fuzz test fast)."""
    lines = (DATA_DIR / "cmu_walks" / "07_01.bvh").read_bytes().split(b"\n")
    i = next(k for k, x in enumerate(lines) if x.startswith(b"Frames:"))
    return b"\n".join(lines[:i] + [b"Frames: 4"] + lines[i + 1 : i + 6]) + b"\n"


SAMPLE = _real_sample()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    op=st.sampled_from(["truncate", "replace", "delete", "insert"]),
    at=st.floats(0.0, 1.0),
    span=st.integers(1, 40),
    junk=st.binary(min_size=1, max_size=6) | st.sampled_from([b"{", b"}", b" ", b"\n", b"-", b".", b"e", b"JOINT", b"End Site", b"nan"]),
)
def test_fuzzed_real_file_raises_only_bvh_parse_errors(op, at, span, junk):
    pos = int(at * len(SAMPLE))
    if op == "truncate":
        data = SAMPLE[:pos]
    elif op == "replace":
        data = SAMPLE[:pos] + junk + SAMPLE[pos + len(junk) :]
    elif op == "delete":
        data = SAMPLE[:pos] + SAMPLE[pos + span :]
    else:
        data = SAMPLE[:pos] + junk + SAMPLE[pos:]
    try:
        clip = parse_bvh(data, source="fuzz.bvh")
    except BVHParseError as e:
        assert str(e).startswith("fuzz.bvh"), str(e)
        return
    # whatever parses is consistent and gives finite FK
    assert clip.motion.shape == (clip.num_frames, clip.skeleton.num_channels)
    pos, _ = forward_kinematics(clip.skeleton, clip.motion)
    assert np.isfinite(pos).all()


@pytest.mark.parametrize("frame", [0, 40])
def test_absurd_values_in_a_real_clip_name_file_and_line_and_drop_nothing(tmp_path, frame):
    """1e300 once overflowed float32 with warnings only, and the frame was silently dropped."""
    from generator.mocap import load_clip

    lines = (DATA_DIR / "cmu_walks" / "07_01.bvh").read_bytes().split(b"\n")
    start = next(k for k, x in enumerate(lines) if x.startswith(b"Frame Time")) + 1
    row = lines[start + frame].split()
    row[0] = b"1e300"
    lines[start + frame] = b" ".join(row)
    path = tmp_path / "07_01.bvh"
    path.write_bytes(b"\n".join(lines))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning on the way
        with pytest.raises(BVHParseError) as err:
            load_clip(path)
    assert err.value.line == start + frame + 1 and str(err.value).startswith(f"{path}:{start + frame + 1}: frame {frame}, value 1 (Hips Xposition)")
