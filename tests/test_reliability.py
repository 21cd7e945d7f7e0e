"""Reliability with real processes and real sockets: fuzzed messages, killed players, a killed
collector, and seeded runs that repeat keypoint for keypoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.dataset_report import verify_dataset
from bridge.generate import load_generate_config, run_generate
from bridge.players import BuiltinLauncher
from bridge.protocol import PROTOCOL_VERSION
from generator.store import load_dataset_arrays, read_manifest

from bridge_support import SEED, frame_fields, frame_message, image_bytes, open_collector

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("frame_id", "joints_2d", "joints_3d", "joints_3d_world", "joints_2d_right", "visibility", "K", "R", "t",
        "image_size", "baseline_mm", "source_frame", "subject", "sequence", "action", "image_crc32")

# ------------------------------------------------------------------------------------------------
# fuzzing: every mutation below makes a message invalid by construction


def _edit(header: bytes, **changes) -> bytes:
    d = json.loads(header)
    for k, v in changes.items():
        if v is _DELETE:
            d.pop(k)
        else:
            d[k] = v
    return json.dumps(d).encode()


_DELETE = object()


class Fuzzer:
    def __init__(self, rng: np.random.Generator, frames: int, bad_ids: tuple[int, int]):
        self.rng = rng
        self.frames = frames
        self.bad_ids = bad_ids
        self.bases = [(frame_fields(rng), image_bytes(rng)) for _ in range(6)]
        self.good_sent: list[int] = []
        self.kinds = [m for m in dir(self) if m.startswith("m_")]

    def valid(self, seq: int, frame_id: int | None = None, fields=None, image=None, **kw) -> list[bytes]:
        f, img = self.bases[int(self.rng.integers(len(self.bases)))]
        fid = int(self.rng.integers(*self.bad_ids)) if frame_id is None else frame_id
        return frame_message(fields or f, image or img, frame_id=fid, seq=seq, **kw)

    def bad(self, seq: int) -> tuple[str, list[bytes]]:
        kind = self.kinds[int(self.rng.integers(len(self.kinds)))]
        return kind, getattr(self, kind)(seq)

    def _fields(self):
        return dict(self.bases[int(self.rng.integers(len(self.bases)))][0])

    # -- framing and encoding
    def m_truncated_header(self, seq):
        h, img = self.valid(seq)
        return [h[: int(self.rng.integers(0, len(h) - 1))], img]

    def m_truncated_image(self, seq):
        h, img = self.valid(seq)
        return [h, img[: int(self.rng.integers(0, len(img)))]]

    def m_extra_parts(self, seq):
        return [*self.valid(seq), *([self.rng.bytes(int(self.rng.integers(0, 50)))] * int(self.rng.integers(1, 4)))]

    def m_frame_as_control(self, seq):
        return self.valid(seq)[:1]

    def m_empty_parts(self, seq):
        return [b""] * int(self.rng.integers(1, 3))

    def m_random_bytes(self, seq):
        return [self.rng.bytes(int(self.rng.integers(1, 3000))) for _ in range(int(self.rng.integers(1, 3)))]

    def m_non_utf8(self, seq):
        h, img = self.valid(seq)
        return [h.replace(b'"walk_01"', b'"walk\xc3\x28"'), img]

    def m_bad_json(self, seq):
        h, img = self.valid(seq)
        positions = [i for i, c in enumerate(h) if c in b",:[]{}"]
        i = positions[int(self.rng.integers(len(positions)))]
        return [h[:i] + bytes([b";=)(x#"[int(self.rng.integers(6))]]) + h[i + 1 :], img]

    def m_huge_header(self, seq):
        h, img = self.valid(seq)
        return [h + b" " * ((64 << 10) + int(self.rng.integers(1, 5000))), img]

    # -- schema
    def m_wrong_type(self, seq):
        h, img = self.valid(seq)
        key = ["frame_id", "seq", "seed", "baseline_mm", "joints_2d", "camera", "visibility", "image"][int(self.rng.integers(8))]
        value = ["1", [1], {}, None, True, "abc"][int(self.rng.integers(6))]
        return [_edit(h, **{key: value}), img]

    def m_non_finite(self, seq):
        h, img = self.valid(seq)
        token = [b"NaN", b"Infinity", b"-Infinity", b"1e999"][int(self.rng.integers(4))]
        start = h.index(b'"joints_3d":[[') + len(b'"joints_3d":[[')
        end = h.index(b",", start)
        return [h[:start] + token + h[end:], img]

    def m_huge_numbers(self, seq):
        h, img = self.valid(seq)
        d = json.loads(h)
        choice = int(self.rng.integers(3))
        if choice == 0:
            d["camera"]["image_size"] = [20000, 20000]
        elif choice == 1:
            d["frame_id"] = 2**63 + int(self.rng.integers(100))
        else:
            d["image"]["size_bytes"] = 2**40
        return [json.dumps(d).encode(), img]

    def m_wrong_version(self, seq):
        h, img = self.valid(seq)
        return [_edit(h, protocol=["2.0", "0.9", "1", "x.y", "10.0"][int(self.rng.integers(5))]), img]

    def m_missing_field(self, seq):
        h, img = self.valid(seq)
        keys = [k for k in json.loads(h) if k != "meta"]
        return [_edit(h, **{keys[int(self.rng.integers(len(keys)))]: _DELETE}), img]

    def m_short_joints(self, seq):
        h, img = self.valid(seq)
        d = json.loads(h)
        key = ["joints_2d", "joints_3d", "joints_3d_world", "joints_2d_right", "visibility"][int(self.rng.integers(5))]
        d[key] = d[key][:16] if self.rng.random() < 0.5 else d[key] + d[key][:1]
        return [json.dumps(d).encode(), img]

    # -- run membership and sequence
    def m_wrong_run(self, seq):
        return self.valid(seq, run_id="stale-run")

    def m_wrong_seed(self, seq):
        return self.valid(seq, seed=SEED + 1 + int(self.rng.integers(100)))

    def m_frame_out_of_range(self, seq):
        return self.valid(seq, frame_id=self.frames + int(self.rng.integers(0, 10_000)))

    def m_replayed_seq(self, seq):
        return self.valid(1)

    def m_duplicate(self, seq):
        if not self.good_sent:
            return self.m_replayed_seq(seq)
        fid = self.good_sent[int(self.rng.integers(len(self.good_sent)))]
        return self.valid(seq, frame_id=fid)

    # -- the image
    def m_bad_checksum(self, seq):
        f, img = self.bases[0]
        return self.valid(seq, image_info={"crc32": zlib.crc32(img) ^ (1 << int(self.rng.integers(32)))})

    def m_image_does_not_decode(self, seq):
        f, img = self.bases[0]
        junk = bytearray(img)
        cut = int(self.rng.integers(3, len(junk) - 3))
        junk[cut:] = self.rng.bytes(len(junk) - cut)  # a real JPEG start, then garbage (no EOI)
        junk[-2:] = b"\x00\x00"
        return self.valid(seq, image=bytes(junk), fields=f)

    def m_png_labelled_jpeg(self, seq):
        return self.valid(seq, image=image_bytes(self.rng, "png"))

    def m_wrong_shape(self, seq):
        f, img = self.bases[0]
        return self.valid(seq, fields=f, image=img, image_info={"shape": (int(self.rng.integers(1, 39)), 48, 3)})

    # -- geometry
    def m_inconsistent_2d(self, seq):
        f = self._fields()
        j = f["joints_2d"].copy()
        j[int(self.rng.integers(17))] += self.rng.uniform(1, 20, 2) * self.rng.choice([-1, 1], 2)
        return self.valid(seq, fields=dict(f, joints_2d=j))

    def m_inconsistent_3d(self, seq):
        f = self._fields()
        j = f["joints_3d_world"].copy()
        j[int(self.rng.integers(17))] += self.rng.uniform(5, 200, 3)
        return self.valid(seq, fields=dict(f, joints_3d_world=j))

    def m_wrong_right_view(self, seq):
        f = self._fields()
        return self.valid(seq, fields=dict(f, baseline_mm=f["baseline_mm"] * float(self.rng.uniform(1.1, 2.0))))

    def m_not_a_rotation(self, seq):
        f = self._fields()
        return self.valid(seq, fields=dict(f, R=f["R"] * float(self.rng.uniform(1.01, 1.5))))

    def m_visibility_lies(self, seq):
        f = self._fields()
        vis = f["visibility"].copy()
        vis[int(np.argmin(np.abs(f["joints_2d"] - [24, 20]).sum(axis=1)))] = 0  # the joint nearest the centre
        return self.valid(seq, fields=dict(f, visibility=vis))


@pytest.mark.timeout(120)
def test_ten_thousand_fuzzed_messages_over_a_socket_store_only_the_good_ones(tmp_path):
    n_bad, n_good = 10_000, 400
    rng = np.random.default_rng(2024)
    fuzz = Fuzzer(rng, frames=n_good + 1000, bad_ids=(n_good, n_good + 1000))
    messages, kinds = [], {}
    good_ids = iter(range(n_good))
    for i in range(n_bad + n_good):
        seq = i + 2  # seq 1 is what m_replayed_seq replays
        if i % 26 == 0 and len(fuzz.good_sent) < n_good:
            fid = next(good_ids)
            messages.append(fuzz.valid(seq, frame_id=fid))
            fuzz.good_sent.append(fid)
        else:
            kind, msg = fuzz.bad(seq)
            kinds[kind] = kinds.get(kind, 0) + 1
            messages.append(msg)
    assert len(messages) - len(fuzz.good_sent) >= 10_000 and len(kinds) == len(fuzz.kinds)

    collector = open_collector(tmp_path / "ds", frames=n_good + 1000, shard_size=100)
    endpoint = collector.bind()[0]

    def send() -> None:
        ctx = zmq.Context()
        sock = ctx.socket(zmq.PUSH)
        sock.connect(endpoint)
        for m in messages:
            sock.send_multipart(m)
        sock.close(linger=10_000)
        ctx.term()

    sender = threading.Thread(target=send)
    sender.start()
    deadline = time.monotonic() + 100
    while collector.stats.messages < len(messages) and time.monotonic() < deadline:
        collector.poll(timeout_ms=100)
    sender.join(10)
    collector.close()
    collector.store.close()

    stats = collector.stats
    assert stats.messages == len(messages)
    assert stats.rejects["internal"] == 0, stats.reject_samples
    assert stats.frames_accepted == n_good and stats.rejected == len(messages) - n_good, dict(stats.rejects)
    stored = load_dataset_arrays(tmp_path / "ds", ("frame_id",))["frame_id"]
    assert stored.tolist() == list(range(n_good))  # every good frame, and nothing else
    assert verify_dataset(tmp_path / "ds")[1] == []
    assert {"json", "schema", "version", "checksum", "image_decode", "geometry", "duplicate", "parts", "encoding"} <= set(stats.rejects)


@pytest.fixture(scope="module")
def fuzz_collector(tmp_path_factory):
    c = open_collector(tmp_path_factory.mktemp("fz") / "ds", frames=50, shard_size=10)
    yield c
    c.store.close()


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(st.binary(max_size=300), min_size=1, max_size=4))
def test_arbitrary_bytes_are_rejected_without_a_crash(fuzz_collector, parts):
    assert not fuzz_collector.handle(parts)
    assert fuzz_collector.stats.rejects["internal"] == 0 and fuzz_collector.stats.frames_accepted == 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(st.sampled_from(["type", "protocol", "run_id", "player_id", "seq", "frame_id", "camera", "joints_2d", "image"]), _json),
       image=st.binary(max_size=64))
def test_arbitrary_json_is_rejected_without_a_crash(fuzz_collector, body, image):
    body.setdefault("protocol", PROTOCOL_VERSION)
    header = json.dumps(body, allow_nan=True).encode()
    for parts in ([header], [header, image]):
        if fuzz_collector.handle(parts):  # only a well-formed control message can pass
            assert len(parts) == 1 and body.get("type") in ("hello", "heartbeat", "end", "error")
    assert fuzz_collector.stats.rejects["internal"] == 0 and fuzz_collector.stats.frames_accepted == 0


# ------------------------------------------------------------------------------------------------
# killed processes; repeatable runs

RUN = {"frames": 240, "seed": 9, "shard_size": 16, "player.scene.image_size": [64, 64]}


class RecordingLauncher(BuiltinLauncher):
    """The built-in launcher, keeping the handles it starts so a test can kill one."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.handles = []

    def start(self, assignment):
        handle = super().start(assignment)
        self.handles.append(handle)
        return handle


def _generate(out: Path, workers: int, launcher_cls=BuiltinLauncher):
    config = load_generate_config(None, {**RUN, "workers": workers})
    launcher = launcher_cls.from_config(config, out / ".run")
    return config, launcher


def _keypoints(folder: Path) -> dict:
    return load_dataset_arrays(folder, KEYS)


def _assert_same(a: dict, b: dict) -> None:
    for key in KEYS:
        assert np.array_equal(a[key], b[key]), key


def _wait_for(path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.005)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "ds"
    config, launcher = _generate(out, workers=2)
    summary = run_generate(config, out, launcher, show_progress=False)
    assert summary.complete and summary.frames_new == 240 and summary.players_restarted == 0
    return out


@pytest.mark.timeout(120)
def test_seeded_runs_repeat_keypoint_for_keypoint_whatever_the_worker_count(reference, tmp_path):
    out = tmp_path / "ds"
    config, launcher = _generate(out, workers=3)
    assert run_generate(config, out, launcher, show_progress=False).complete
    _assert_same(_keypoints(reference), _keypoints(out))


@pytest.mark.timeout(120)
def test_a_player_killed_mid_run_is_replaced_and_the_run_completes(reference, tmp_path):
    out = tmp_path / "ds"
    config, launcher = _generate(out, workers=2, launcher_cls=RecordingLauncher)
    result, started = {}, []
    run = lambda: result.setdefault("summary", run_generate(config, out, launcher, show_progress=False, on_start=started.append))  # noqa: E731
    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 60
    while not started:
        assert time.monotonic() < deadline, "no player started"
        time.sleep(0.001)
    supervisor = started[0]
    victim, other = launcher.handles
    assert victim.player_id == "w0.0"
    os.kill(other.pid, signal.SIGSTOP)  # held until the victim is killed, so the run cannot end first

    def mid_unit() -> bool:
        """The victim holds a unit of which one to len - 3 frames have arrived: at least 2 of the
        rest are not rendered yet (it renders about one frame per 5 ms slice), so they are lost."""
        units = supervisor.queue.leases.get("w0.0", [])
        arrived = int(supervisor.store.received[units[-1]].sum()) if units else 0
        return units and 0 < arrived <= len(units[-1]) - 3

    # Run the victim in 5 ms slices, stopped in between, until it is stopped in the middle of a unit
    # it leased, however loaded the machine is; then the other player goes on.
    os.kill(victim.pid, signal.SIGSTOP)
    while not mid_unit():
        assert time.monotonic() < deadline, "player w0.0 was never caught in the middle of a unit"
        assert victim.poll() is None and thread.is_alive(), "the run ended before the victim was caught mid-unit"
        os.kill(victim.pid, signal.SIGCONT)
        time.sleep(0.005)
        os.kill(victim.pid, signal.SIGSTOP)
        time.sleep(0.002)
    os.kill(victim.pid, signal.SIGKILL)
    os.kill(other.pid, signal.SIGCONT)
    thread.join(90)
    summary = result["summary"]
    assert victim.poll() == -signal.SIGKILL
    assert summary.complete and summary.frames_stored == 240 and summary.players_restarted >= 1
    assert any(h.player_id == "w0.1" for h in launcher.handles)
    assert verify_dataset(out)[1] == []
    _assert_same(_keypoints(reference), _keypoints(out))


def _processes_mentioning(text: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


@pytest.mark.timeout(150)
def test_a_killed_collector_leaves_a_valid_dataset_that_a_rerun_completes(reference, tmp_path):
    out = tmp_path / "ds"
    argv = [sys.executable, "-m", "posebridge", "generate", "--frames", "240", "--seed", "9", "--shard-size", "16",
            "--image-size", "64", "--workers", "2", "--no-progress", "--out", str(out)]
    generate = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(out / "shard-000001.tar", 60)
        generate.send_signal(signal.SIGKILL)
        generate.wait(60)
    finally:
        generate.kill()
    # Its players die with it (PR_SET_PDEATHSIG) instead of pushing into the void.
    deadline = time.monotonic() + 60  # generous: a wait for an event, not a speed requirement
    while _processes_mentioning(str(out / ".run")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_mentioning(str(out / ".run")) == []
    # The shards are the truth (the manifest may lag one commit behind a kill; open() rescans).
    stored = load_dataset_arrays(out, ("frame_id",))["frame_id"]
    assert not read_manifest(out).complete and 16 <= len(stored) < 240
    checked, problems = verify_dataset(out)
    assert checked == len(stored) and problems == []  # what is there is whole

    config, launcher = _generate(out, workers=2)
    summary = run_generate(config, out, launcher, show_progress=False)
    assert summary.complete and summary.frames_before == len(stored) and summary.frames_stored == 240
    assert [r.status for r in read_manifest(out).runs] == ["interrupted", "complete"]
    checked, problems = verify_dataset(out)
    assert checked == 240 and problems == []
    _assert_same(_keypoints(reference), _keypoints(out))
