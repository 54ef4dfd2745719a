"""Datasets by name: a checksum-verified local copy in data/, fetched once.

data/manifest.json lists each dataset's file name, public URL and sha256. `fetch(name)`
returns the path of a verified copy, trying in order:

1. data/<name>, if its sha256 matches;
2. $RNN_TASKS_DATA_MIRROR/<name>, a local folder of the files (machines without a network);
3. a download from the manifest's URL.

A new copy goes to a temporary file in data/, is checked, then renamed into place, so a
failed download or a wrong checksum never leaves a half-written file under the real name.
`python -m core.data` (what `make data` runs) fetches every dataset and prints the paths.

A task's data can also live with the task, with no manifest entry: `locate` takes a path
from the project's root (tasks/my_task/series.csv) as well as a manifest name, and a path
a run saves for a later command (`portable`, read back with `from_root`) is kept from
the root, so renaming or moving the clone leaves it valid.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import TypedDict

from tqdm import tqdm

from core.config import UserError, run_main

ROOT = Path(__file__).resolve().parent.parent  # the project, from any working directory
DATA_DIR = ROOT / "data"
MIRROR_ENV = "RNN_TASKS_DATA_MIRROR"
TIMEOUT_SECONDS = 30
CHUNK_BYTES = 1 << 16


class Dataset(TypedDict):
    """One manifest entry; the dataset's name is its file name (the manifest key)."""

    url: str
    sha256: str
    about: str


def load_manifest(path: Path = DATA_DIR / "manifest.json") -> dict[str, Dataset]:
    """The manifest as {file name: entry}."""
    return json.loads(path.read_text())


def locate(name: str) -> Path:
    """A task's dataset: a file or folder in the project, by its path from the project's
    root (tasks/my_task/series.csv: data kept with its task), else the manifest's entry
    `name`, fetched with its checksum."""
    local = ROOT / name
    if local.exists():
        return local
    if "/" in name or "\\" in name:  # a path, not a manifest entry's file name
        raise UserError(f"no file at {local}")
    return fetch(name)


def portable(path: Path) -> str:
    """`path` as a run saves it: from the project's root when it lies inside the project
    (so it survives moving the clone), else absolute."""
    path = Path(path).resolve()
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def from_root(saved: str) -> Path:
    """A path `portable` wrote -> the file in this clone (an absolute one stays as is)."""
    return ROOT / saved


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(name: str, data_dir: Path | None = None,
          manifest: dict[str, Dataset] | None = None) -> Path:
    """Path of a verified copy of dataset `name` in `data_dir` (default: the repo's data/).

    `manifest` replaces data/manifest.json's entries (tests point it at a local server)."""
    manifest = load_manifest() if manifest is None else manifest
    if name not in manifest:
        raise UserError(f"unknown dataset {name!r}; known: {', '.join(sorted(manifest))}")
    entry = manifest[name]
    path = (DATA_DIR if data_dir is None else Path(data_dir)) / name
    if path.is_file() and sha256_of(path) == entry["sha256"]:
        return path

    mirror = os.environ.get(MIRROR_ENV)
    mirrored = Path(mirror) / name if mirror else None
    by_hand = (f"to fix: download {entry['url']} by hand to {path}, "
               f"or set {MIRROR_ENV} to a folder that holds {name}")
    # A mistyped mirror path otherwise shows up only as a failed download.
    if mirror and not Path(mirror).is_dir():
        by_hand += f" ({MIRROR_ENV}={mirror}: no such folder)"
    elif mirrored is not None and not mirrored.is_file():
        by_hand += f" ({MIRROR_ENV}={mirror} holds no {name})"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=name + ".", suffix=".part")
    except OSError as error:
        raise UserError(f"cannot write {name} into {path.parent}: {error.strerror}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if mirrored is not None and mirrored.is_file():
            source = str(mirrored)
            try:
                shutil.copyfile(mirrored, tmp)
            except OSError as error:
                raise UserError(f"cannot copy {name} from the mirror {mirrored}: "
                                f"{error.strerror}") from None
        else:
            source = entry["url"]
            _download(source, tmp, desc=name, by_hand=by_hand)
        got = sha256_of(tmp)
        if got != entry["sha256"]:
            raise UserError(f"{name} from {source} has sha256 {got}, expected "
                            f"{entry['sha256']} (corrupt or changed upstream); {by_hand}")
        tmp.chmod(0o644)  # mkstemp makes the file private; a dataset is not
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _download(url: str, dest: Path, desc: str, by_hand: str) -> None:
    """Stream `url` into `dest` with a progress bar; any failure becomes a UserError."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response, \
                open(dest, "wb") as f:
            expected = int(response.headers.get("Content-Length") or 0)
            written = 0
            with tqdm(total=expected or None, unit="B", unit_scale=True, desc=desc,
                      leave=False, disable=None, file=sys.stderr) as bar:
                for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                    f.write(chunk)
                    written += len(chunk)
                    bar.update(len(chunk))
    # URLError (no network, refused, HTTP 404...) and timeouts are OSErrors.
    except (OSError, http.client.HTTPException) as error:
        raise UserError(f"could not download {desc} from {url}: {error}; {by_hand}") from None
    # urllib returns a short body without complaint when the connection drops early.
    if expected and written != expected:
        raise UserError(f"download of {desc} from {url} was cut off after {written} of "
                        f"{expected} bytes; try again, or {by_hand}")


def fetch_all(data_dir: Path | None = None) -> list[Path]:
    """Fetch every dataset in the manifest; return their paths."""
    return [fetch(name, data_dir) for name in load_manifest()]


def main() -> None:
    for path in fetch_all():
        print(path)


if __name__ == "__main__":
    run_main(main)
