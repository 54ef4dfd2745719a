"""core.data.fetch against a local HTTP server and a temporary mirror folder: no outside
network, and never the repository's own data/ folder."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from core.config import UserError
from core.data import MIRROR_ENV, Dataset, fetch, fetch_all, load_manifest, sha256_of

BODY = b"surname,language\n" * 500
SHA = hashlib.sha256(BODY).hexdigest()
NAME = "tiny.csv"
REPO = Path(__file__).resolve().parent.parent
SHELL_MIRROR = os.environ.get(MIRROR_ENV)  # read before the autouse fixture clears it


class Handler(BaseHTTPRequestHandler):
    """/good: the body; /short: announces more bytes than it sends, then hangs up;
    anything else: 404."""

    def do_GET(self) -> None:
        if self.path not in ("/good", "/short"):
            self.send_error(404)
            return
        self.send_response(200)
        extra = 1000 if self.path == "/short" else 0
        self.send_header("Content-Length", str(len(BODY) + extra))
        self.end_headers()
        self.wfile.write(BODY)
        self.close_connection = True

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def no_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's shell may set the mirror; each test sets it itself when it wants one."""
    monkeypatch.delenv(MIRROR_ENV, raising=False)


def closed_port_url() -> str:
    """A URL on a local port nobody listens on: connecting is refused, as with no network."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/gone"


def manifest(url: str, sha: str = SHA) -> dict[str, Dataset]:
    return {NAME: {"url": url, "sha256": sha, "about": "test file"}}


def test_download_lands_with_right_checksum(server: str, tmp_path: Path) -> None:
    path = fetch(NAME, tmp_path, manifest(server + "/good"))
    assert path == tmp_path / NAME
    assert sha256_of(path) == SHA
    assert sorted(p.name for p in tmp_path.iterdir()) == [NAME]  # no temp file left


def test_checksum_mismatch_leaves_nothing(server: str, tmp_path: Path) -> None:
    url = server + "/good"
    with pytest.raises(UserError, match="sha256") as error:
        fetch(NAME, tmp_path, manifest(url, sha="0" * 64))
    assert NAME in str(error.value) and url in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_truncated_download_leaves_nothing(server: str, tmp_path: Path) -> None:
    url = server + "/short"
    with pytest.raises(UserError, match="cut off") as error:
        fetch(NAME, tmp_path, manifest(url))
    assert url in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_http_error_leaves_nothing(server: str, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="404"):
        fetch(NAME, tmp_path, manifest(server + "/missing"))
    assert list(tmp_path.iterdir()) == []


def test_no_network_names_file_url_and_what_to_do(tmp_path: Path) -> None:
    url = closed_port_url()
    with pytest.raises(UserError) as error:
        fetch(NAME, tmp_path, manifest(url))
    message = str(error.value)
    assert NAME in message and url in message
    assert str(tmp_path / NAME) in message and MIRROR_ENV in message
    assert list(tmp_path.iterdir()) == []


def test_present_file_is_used_without_network(tmp_path: Path) -> None:
    (tmp_path / NAME).write_bytes(BODY)
    assert fetch(NAME, tmp_path, manifest(closed_port_url())) == tmp_path / NAME


def test_mirror_file_is_copied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror, data_dir = tmp_path / "mirror", tmp_path / "data"
    mirror.mkdir()
    (mirror / NAME).write_bytes(BODY)
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    path = fetch(NAME, data_dir, manifest(closed_port_url()))
    assert path.read_bytes() == BODY
    assert sorted(p.name for p in data_dir.iterdir()) == [NAME]


def test_corrupt_mirror_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror, data_dir = tmp_path / "mirror", tmp_path / "data"
    mirror.mkdir()
    (mirror / NAME).write_bytes(BODY[:-1])
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    with pytest.raises(UserError, match="sha256") as error:
        fetch(NAME, data_dir, manifest(closed_port_url()))
    assert str(mirror / NAME) in str(error.value)
    assert list(data_dir.iterdir()) == []


def test_unknown_name_lists_known_ones(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="names_train.csv"):
        fetch("nope.csv", tmp_path)


def test_real_manifest_matches_the_mirror(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = Path(SHELL_MIRROR or REPO.parent / "shared" / "data")
    missing = [name for name in load_manifest() if not (mirror / name).is_file()]
    if missing:
        pytest.skip(f"data mirror {mirror} lacks {', '.join(missing)}; set {MIRROR_ENV}")
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    paths = fetch_all(tmp_path)
    assert [p.name for p in paths] == list(load_manifest())
    for path in paths:
        assert sha256_of(path) == load_manifest()[path.name]["sha256"]


def test_missing_mirror_folder_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A mistyped mirror path must not read as a mere network failure."""
    nowhere = tmp_path / "no-such-mirror"
    monkeypatch.setenv(MIRROR_ENV, str(nowhere))
    with pytest.raises(UserError) as error:
        fetch(NAME, tmp_path / "data", manifest(closed_port_url()))
    assert f"{MIRROR_ENV}={nowhere}: no such folder" in str(error.value)


def test_mirror_without_the_file_is_named(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path))
    with pytest.raises(UserError) as error:
        fetch(NAME, tmp_path / "data", manifest(closed_port_url()))
    assert f"{MIRROR_ENV}={tmp_path} holds no {NAME}" in str(error.value)
