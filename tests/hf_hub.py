"""A loopback Hugging Face Hub: the part of the Hub's HTTP API that ``huggingface_hub``
uses to list a repository and download a file, served from local files on 127.0.0.1.

The real ``huggingface_hub`` is pointed here with ``HF_ENDPOINT`` (read when it is
imported, so the process that downloads must have it in its environment):

    with LoopbackHub({"google/gemma-3-270m-GGUF": {"m-Q4_K_M.gguf": path}}) as hub:
        env["HF_ENDPOINT"] = hub.url
        ...
        assert [r.path for r in hub.requests] == [...]

What ``huggingface_hub`` 2.4 calls, and what it gets here as from huggingface.co:

- ``list_repo_files``: ``GET /api/models/{repo}/tree/{revision}?recursive=..&expand=..``,
  a JSON list of ``{"type": "file"|"directory", "oid", "size", "path"[, "lfs"]}``.
- ``hf_hub_download``: ``HEAD /{repo}/resolve/{revision}/{file}``. A GGUF file is stored
  in LFS: the answer is a 302 to a CDN on another origin (so the client does not follow
  it), carrying ``X-Repo-Commit``, ``X-Linked-Etag`` (the file's sha256, which names
  the cache blob) and ``X-Linked-Size``. Other files answer 200 with the git blob id as
  ``ETag``. The client then GETs the CDN URL (or the resolve URL) for the bytes.
- Once a day per ``HF_HOME``, before its first request, ``GET /api/agent-harnesses``.
- Errors as the Hub gives them: an unknown repository is a 401 with
  ``X-Error-Code: RepoNotFound`` (the Hub does not tell anonymous clients whether a
  private repository exists); a missing file a 404 with ``EntryNotFound``.

No ``X-Xet-*`` headers are sent: the repositories here are LFS-backed, so the client
downloads over plain HTTP whether or not ``hf_xet`` is installed.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

__all__ = ["COMMIT", "HubRequest", "LoopbackHub"]

#: The commit every repository's ``main`` points to.
COMMIT = "5e1b7d3c" * 5
_CHUNK = 1 << 20
#: The registry of AI agent harnesses that ``huggingface_hub`` fetches once a day (into
#: ``HF_HOME``) to name the agent in its user agent; empty here: no harness is detected.
_HARNESSES = json.dumps({"standardEnvVars": ["AI_AGENT", "AGENT"], "harnesses": {}}).encode()


@dataclass(frozen=True)
class HubRequest:
    """One request as a server received it."""

    server: str  # "hub" or "cdn"
    method: str
    path: str  # unquoted, without the query
    query: dict[str, str]


@dataclass(frozen=True)
class _RepoFile:
    path: str
    source: Path | bytes
    size: int
    git_oid: str  # the git blob id: of the LFS pointer for LFS files
    sha256: str | None  # LFS files only
    pointer_size: int = 0  # LFS files only

    def chunks(self) -> Iterator[bytes]:
        if isinstance(self.source, bytes):
            yield self.source
            return
        with self.source.open("rb") as handle:
            while block := handle.read(_CHUNK):
                yield block


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _repo_file(path: str, source: Path | bytes) -> _RepoFile:
    if not path.endswith(".gguf"):
        data = source if isinstance(source, bytes) else source.read_bytes()
        return _RepoFile(path, data, len(data), _git_blob_id(data), None)
    digest = hashlib.sha256()
    size = 0
    for block in _RepoFile(path, source, 0, "", None).chunks():
        digest.update(block)
        size += len(block)
    sha = digest.hexdigest()
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {size}\n"
    return _RepoFile(path, source, size, _git_blob_id(pointer.encode()), sha, len(pointer))


@dataclass(frozen=True)
class _Reply:
    status: int
    headers: dict[str, str]
    body: bytes | _RepoFile = b""


def _hub_error(status: int, code: str | None, message: str) -> _Reply:
    headers = {"Content-Type": "application/json", "X-Error-Message": message}
    if code:
        headers["X-Error-Code"] = code
    return _Reply(status, headers, json.dumps({"error": message}).encode())


class LoopbackHub:
    """The Hub (``url``) and its CDN, two threaded servers on 127.0.0.1 that start on
    construction. ``repos`` maps ``OWNER/NAME`` to the repository's files (path in the
    repository to a file on disk, or bytes)."""

    def __init__(self, repos: Mapping[str, Mapping[str, Path | bytes]]) -> None:
        self.repos = {
            repo: {name: _repo_file(name, source) for name, source in files.items()}
            for repo, files in repos.items()
        }
        self._blobs = {
            f.sha256: f for files in self.repos.values() for f in files.values() if f.sha256
        }
        self._lock = threading.Lock()
        self._requests: list[HubRequest] = []
        self._failing: dict[str, int] = {}
        self._servers = {name: _Server(self, name) for name in ("hub", "cdn")}
        for server in self._servers.values():
            threading.Thread(target=server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return self._servers["hub"].url

    @property
    def requests(self) -> list[HubRequest]:
        """Every request received so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    def fail(self, server: str, status: int) -> None:
        """Answer every later request to ``server`` ("hub" or "cdn") with ``status``."""
        with self._lock:
            self._failing[server] = status

    def stop(self) -> None:
        for server in self._servers.values():
            server.shutdown()
            server.server_close()

    def __enter__(self) -> LoopbackHub:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- request handling (handler threads) ------------------------------------------

    def handle(self, server: str, method: str, target: str) -> _Reply:
        split = urlsplit(target)
        path = unquote(split.path)
        with self._lock:
            self._requests.append(HubRequest(server, method, path, dict(parse_qsl(split.query))))
            failing = self._failing.get(server)
        if failing is not None:
            return _hub_error(failing, None, "Internal Error" if failing >= 500 else "Error")
        if server == "cdn":
            blob = self._blobs.get(path.lstrip("/"))
            if blob is None:
                return _hub_error(404, None, "Not found")
            disposition = f'inline; filename="{blob.path.rpartition("/")[2]}"'
            headers = {"Content-Disposition": disposition, "ETag": f'"{blob.sha256}"'}
            return _Reply(200, headers, blob)
        if path == "/api/agent-harnesses":
            return _Reply(200, {"Content-Type": "application/json"}, _HARNESSES)
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "tree":
            recursive = dict(parse_qsl(split.query)).get("recursive") == "true"
            return self._tree("/".join(parts[2:4]), parts[5], "/".join(parts[6:]), recursive)
        if len(parts) >= 5 and parts[2] == "resolve":
            return self._resolve("/".join(parts[:2]), parts[3], "/".join(parts[4:]))
        return _hub_error(404, None, "Sorry, we can't find the page you are looking for.")

    def _repo(self, repo: str, revision: str) -> dict[str, _RepoFile] | _Reply:
        if repo not in self.repos:
            return _hub_error(401, "RepoNotFound", "Repository not found")
        if revision not in ("main", COMMIT):
            return _hub_error(404, "RevisionNotFound", "Invalid rev id: " + revision)
        return self.repos[repo]

    def _tree(self, repo: str, revision: str, folder: str, recursive: bool) -> _Reply:
        files = self._repo(repo, revision)
        if isinstance(files, _Reply):
            return files
        prefix = f"{folder}/" if folder else ""
        entries: dict[str, dict[str, Any]] = {}
        for name, file in files.items():
            if not name.startswith(prefix):
                continue
            # A tree lists its subfolders, and their files only when recursive.
            steps = name[len(prefix) :].split("/")
            folders = ["/".join(steps[:depth]) for depth in range(1, len(steps))]
            for folder_path in folders if recursive else folders[:1]:
                entries.setdefault(prefix + folder_path, {"type": "directory", "oid": "0" * 40})
            if len(steps) > 1 and not recursive:
                continue
            entry: dict[str, Any] = {"type": "file", "oid": file.git_oid, "size": file.size}
            if file.sha256:
                lfs = {"oid": file.sha256, "size": file.size, "pointerSize": file.pointer_size}
                entry["lfs"] = lfs
            entries[name] = entry
        listing = [{**entry, "path": path} for path, entry in sorted(entries.items())]
        body = json.dumps(listing).encode()
        return _Reply(200, {"Content-Type": "application/json"}, body)

    def _resolve(self, repo: str, revision: str, name: str) -> _Reply:
        files = self._repo(repo, revision)
        if isinstance(files, _Reply):
            return files
        file = files.get(name)
        if file is None:
            reply = _hub_error(404, "EntryNotFound", "Entry not found")
            return _Reply(404, {**reply.headers, "X-Repo-Commit": COMMIT}, reply.body)
        headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{file.git_oid}"'}
        if file.sha256 is None:
            return _Reply(200, headers, file)
        location = f"{self._servers['cdn'].url}/{file.sha256}?name={quote(name)}"
        text = f"Found. Redirecting to {location}".encode()
        headers |= {
            "Location": location,
            "X-Linked-Etag": f'"{file.sha256}"',
            "X-Linked-Size": str(file.size),
            "Content-Type": "text/plain; charset=utf-8",
        }
        return _Reply(302, headers, text)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, hub: LoopbackHub, name: str) -> None:
        self.hub = hub
        self.name = name
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up mid-download is not the server's failure


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        self._send(self.server.hub.handle(self.server.name, "GET", self.path), body=True)

    def do_HEAD(self) -> None:
        self._send(self.server.hub.handle(self.server.name, "HEAD", self.path), body=False)

    def _send(self, reply: _Reply, *, body: bool) -> None:
        size = reply.body.size if isinstance(reply.body, _RepoFile) else len(reply.body)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        if not body:
            return
        if isinstance(reply.body, _RepoFile):
            for block in reply.body.chunks():
                self.wfile.write(block)
        else:
            self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass
