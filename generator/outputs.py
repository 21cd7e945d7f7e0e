"""The output rule every command follows: never replace or mix into existing work unless asked.

A command that writes a file or a folder (a pairs file, a dataset, a training run, a demo) calls
`claim_output` before it writes anything:

- an output inside one of the command's inputs (an export into the dataset it reads) is refused;
- an output that does not exist yet, or an empty folder, is simply made;
- an existing one is refused unless the user passed `--resume` (continue it; the caller checks
  that it can) or `--overwrite` (replace it);
- `--overwrite` replaces a folder only when every entry in it is one the command writes itself
  (`owned` patterns), so a mistyped `--out ~` never deletes anything posebridge did not make.

Files are replaced atomically by their writers (temporary name + rename), so the old file stays
whole until the new one is complete. Folders are cleared by `clear_folder`, which callers run
after their inputs are validated.
"""

from __future__ import annotations

import fnmatch
import logging
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from .errors import UserError

log = logging.getLogger(__name__)

Mode = Literal["new", "resume", "overwrite"]


class OutputError(UserError, ValueError):
    """The output path cannot be written as asked; the message says why and which flag to use."""


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def claim_output(
    path: str | Path,
    *,
    what: str,
    folder: bool = True,
    overwrite: bool = False,
    resume: bool = False,
    owned: Sequence[str] = (),
    inputs: Iterable[str | Path] = (),
    resume_flag: str | None = "--resume",
) -> Mode:
    """How a command may write `path` ("new", "resume" or "overwrite"), or an OutputError.

    `what` names the output in messages ("training run", "pairs file"). `resume=True` says the
    user asked to continue (commands that always resume, like `generate`, pass True); the caller
    then checks that the existing output is resumable. `resume_flag` is the flag named in the
    refusal (None for commands that cannot resume). `owned` are the fnmatch patterns of the entries
    the command writes in a folder. `inputs` are the files and folders the command reads.
    """
    path = Path(path)
    if resume_flag:
        check_flags(path, resume, overwrite, resume_flag)
    target = path.resolve()
    for source in inputs:
        src = Path(source).resolve()
        if _inside(target, src):
            where = "is the input" if target == src else "lies inside the input"
            raise OutputError(f"{path}: the output {where} {source}; write it somewhere else")
    if not path.exists() and not path.is_symlink():
        return "new"
    if folder and not path.is_dir():
        raise OutputError(f"{path}: exists and is not a folder; choose another output folder for the {what}")
    if not folder and path.is_dir():
        raise OutputError(f"{path}: is a folder; give a file name for the {what}")
    if folder and not any(path.iterdir()):
        return "new"
    if overwrite:
        if folder:
            foreign = _foreign_entries(path, owned)
            if foreign:
                raise OutputError(
                    f"{path}: holds files posebridge did not write there ({', '.join(foreign[:5])}), so --overwrite will not "
                    f"delete it; remove them or choose another output folder"
                )
        return "overwrite"
    if resume:
        return "resume"
    how = f"pass {resume_flag} to continue the {what} there or --overwrite to replace it" if resume_flag else f"pass --overwrite to replace it with the {what}"
    raise OutputError(f"{path}: already exists{' and is not empty' if folder else ''}; {how}, or choose another output")


def check_flags(path: str | Path, resume: bool, overwrite: bool, resume_flag: str = "--resume") -> None:
    """--resume and --overwrite contradict each other: refuse both at once (before any work)."""
    if resume and overwrite:
        raise OutputError(f"{path}: give {resume_flag} or --overwrite, not both")


def _foreign_entries(path: Path, owned: Sequence[str]) -> list[str]:
    return sorted(p.name for p in path.iterdir() if not any(fnmatch.fnmatchcase(p.name, pat) for pat in owned))


def clear_folder(path: str | Path, owned: Sequence[str], keep: Sequence[str] = ()) -> None:
    """Delete the entries of `path` that match `owned` (all of them, as `claim_output` checked),
    except the names in `keep`; refuses (OutputError) if anything else is there."""
    path = Path(path)
    foreign = _foreign_entries(path, owned)
    if foreign:
        raise OutputError(f"{path}: holds files posebridge did not write there ({', '.join(foreign[:5])}); not deleting it")
    log.warning("%s: replacing the existing contents (--overwrite)", path)
    for entry in sorted(path.iterdir()):
        if entry.name in keep:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
