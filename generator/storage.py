"""Where a dataset folder lives: a local folder, or any fsspec URL (`s3://bucket/prefix`, ...).

The store (generator/store.py) reads and writes through a `Storage`, so the same code serves both:

- `LocalStorage` (a path, or a `file://` URL): a write goes to a hidden temporary name, is
  fsynced and renamed into place, and the folder is fsynced; a rename is the commit point, and an
  advisory lock keeps a second writer out.
- `ObjectStorage` (any other fsspec URL): a PUT is atomic and there is no rename, so an object is
  written once, whole, under its final name. Several writers (one collector per node) may work
  on one dataset at a time, each on shards of its own, so there is no lock; a commit is a small
  per-shard record object written after the shard's tar and keypoint objects, and readers list
  the records (docs/conventions.md, "Datasets on object storage").

Credentials and endpoint of `s3://` URLs come from the standard AWS environment variables
(`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, ...); `set_default_options`
(the `posebridge --s3-endpoint-url ...` flags) overrides them for this process.
"""

from __future__ import annotations

import abc
import io
import os
import re
from pathlib import Path
from typing import Any, BinaryIO

from .config_file import set_dotted

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {}  # protocol -> fsspec storage options


class StorageUnavailable(OSError):
    """The object store cannot be reached or refuses access; the message names the URL."""


def is_url(location: str | os.PathLike) -> bool:
    """True for `scheme://...` (a URL), False for a plain path."""
    return isinstance(location, str) and bool(_URL.match(location))


def is_remote(location: str | os.PathLike) -> bool:
    """True for a URL that is not `file://` (an object store)."""
    return is_url(location) and not str(location).startswith("file://")


def set_default_options(protocol: str, **options) -> None:
    """Storage options (fsspec keyword arguments) for every URL of `protocol` in this process;
    None values are ignored. E.g. set_default_options("s3", endpoint_url="http://127.0.0.1:8333")."""
    _DEFAULT_OPTIONS.setdefault(protocol, {}).update({k: v for k, v in options.items() if v is not None})


def parse_storage_options(items) -> dict[str, Any]:
    """["key=AK", "anon=true", "client_kwargs.region_name=x"] -> fsspec options (true/false and
    numbers become bool/float; a dotted key nests); ValueError naming a bad item."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = str(item).partition("=")
        if not sep or not key:
            raise ValueError(f"--storage-option {item!r}: expected KEY=VALUE")
        value: Any = {"true": True, "false": False}.get(text.lower(), text)
        if isinstance(value, str):
            try:
                value = int(text) if text.lstrip("-").isdigit() else value
            except ValueError:
                pass
        set_dotted(out, {key: value})
    return out


def default_options(protocol: str) -> dict[str, Any]:
    """The options a URL of `protocol` is opened with: the AWS environment for s3, then the
    process defaults."""
    options: dict[str, Any] = {}
    if protocol in ("s3", "s3a"):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            options["endpoint_url"] = endpoint
        # Fail in seconds, not minutes, when the endpoint is down (botocore's defaults retry long).
        options["config_kwargs"] = {"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 3, "mode": "standard"}}
    options.update(_DEFAULT_OPTIONS.get(protocol, {}))
    return options


class Storage(abc.ABC):
    """A dataset folder's files by name (names are relative: "manifest.json", "records/x.json")."""

    url: str  # what messages name

    local: bool

    def __str__(self) -> str:
        return self.url

    def child(self, name: str) -> str:
        """The full location of `name`, for messages and for readers that take one."""
        return f"{self.url.rstrip('/')}/{name}"

    @abc.abstractmethod
    def exists(self, name: str) -> bool: ...

    @abc.abstractmethod
    def read_bytes(self, name: str) -> bytes: ...

    @abc.abstractmethod
    def write(self, name: str, data: bytes | list) -> None:
        """Write `data` (bytes or a list of buffers) under `name` atomically: a reader sees the old
        object or the whole new one."""

    @abc.abstractmethod
    def names(self, prefix: str = "") -> list[str]:
        """The names of the objects directly in the folder (or in subfolder `prefix`), sorted."""

    @abc.abstractmethod
    def size(self, name: str) -> int: ...

    @abc.abstractmethod
    def remove(self, name: str) -> None: ...

    @abc.abstractmethod
    def open(self, name: str) -> BinaryIO:
        """A seekable binary reader (ranged reads on an object store)."""

    def load_npz(self, name: str):
        """`np.load` of an .npz (whole, in memory for an object)."""
        import numpy as np

        return np.load(io.BytesIO(self.read_bytes(name)), allow_pickle=False)


class LocalStorage(Storage):
    """A folder on a local (or mounted) file system."""

    local = True

    def __init__(self, path: str | os.PathLike):
        text = str(path)
        self.path = Path(text[len("file://") :] if text.startswith("file://") else text)
        self.url = str(path)

    def file(self, name: str) -> Path:
        return self.path / name

    def child(self, name: str) -> str:
        return str(self.path / name)

    def exists(self, name: str) -> bool:
        return (self.path / name).exists()

    def read_bytes(self, name: str) -> bytes:
        return (self.path / name).read_bytes()

    def write(self, name: str, data: bytes | list) -> None:
        from .store import atomic_write

        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, data)

    def names(self, prefix: str = "") -> list[str]:
        folder = self.path / prefix if prefix else self.path
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir())

    def size(self, name: str) -> int:
        return (self.path / name).stat().st_size

    def remove(self, name: str) -> None:
        (self.path / name).unlink(missing_ok=True)

    def open(self, name: str) -> BinaryIO:
        return open(self.path / name, "rb")

    def load_npz(self, name: str):
        import numpy as np

        return np.load(self.path / name, allow_pickle=False)


class ObjectStorage(Storage):
    """A prefix in an object store, through fsspec (s3fs for `s3://`)."""

    local = False

    def __init__(self, url: str, options: dict | None = None):
        import fsspec

        self.url = url.rstrip("/")
        protocol = url.split("://", 1)[0]
        self.options = {**default_options(protocol), **(options or {})}
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url, **self.options)
        except ImportError as e:
            raise StorageUnavailable(f"{url}: no fsspec driver for {protocol}:// ({e}); for s3:// install s3fs") from e
        self.root = self.root.rstrip("/")

    def _key(self, name: str) -> str:
        return f"{self.root}/{name}"

    def _call(self, what: str, fn, *args, **kwargs):
        """Run an fsspec call; a connection or permission failure becomes StorageUnavailable."""
        try:
            return fn(*args, **kwargs)
        except FileNotFoundError:
            raise
        except (OSError, PermissionError) as e:
            raise StorageUnavailable(f"{self.url}: cannot {what}: {_reason(e)}") from e
        except Exception as e:  # noqa: BLE001 - botocore/aiohttp raise their own types for a dead endpoint
            if type(e).__module__.split(".")[0] in ("botocore", "aiohttp", "aiobotocore", "s3fs", "urllib3", "fsspec"):
                raise StorageUnavailable(f"{self.url}: cannot {what}: {_reason(e)}") from e
            raise

    def exists(self, name: str) -> bool:
        return bool(self._call(f"check {name}", self.fs.exists, self._key(name)))

    def read_bytes(self, name: str) -> bytes:
        return self._call(f"read {name}", self.fs.cat_file, self._key(name))

    def write(self, name: str, data: bytes | list) -> None:
        if isinstance(data, (bytes, bytearray, memoryview)):
            payload = bytes(data)
        else:
            payload = b"".join(memoryview(b).cast("B") for b in data)
        self._call(f"write {name}", self.fs.pipe_file, self._key(name), payload)

    def names(self, prefix: str = "") -> list[str]:
        folder = self._key(prefix) if prefix else self.root
        self.fs.invalidate_cache(folder)  # other writers add objects: never trust a cached listing
        try:
            entries = self._call(f"list {prefix or 'the dataset'}", self.fs.ls, folder, detail=False)
        except FileNotFoundError:
            return []
        return sorted(e.rstrip("/").rsplit("/", 1)[-1] for e in entries)

    def size(self, name: str) -> int:
        return int(self._call(f"stat {name}", self.fs.size, self._key(name)))

    def remove(self, name: str) -> None:
        try:
            self._call(f"remove {name}", self.fs.rm_file, self._key(name))
        except FileNotFoundError:
            pass

    def open(self, name: str) -> BinaryIO:
        # No read-ahead cache: the reader asks for exactly the image's byte range.
        return self._call(f"open {name}", self.fs.open, self._key(name), "rb", block_size=1 << 16, cache_type="none")


def _reason(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]


def open_storage(location: str | os.PathLike | Storage, options: dict | None = None) -> Storage:
    """The Storage of a dataset folder: a path or `file://` URL is local, any other URL an object store."""
    if isinstance(location, Storage):
        return location
    if is_remote(location):
        return ObjectStorage(str(location), options)
    return LocalStorage(location)
