"""A Hugging Face Hub on 127.0.0.1 serving a mirror directory (DIR/<org>/<repo>/...) as dataset
repositories, for the calls huggingface_hub makes, with switches for what the real hub does
on a bad day.

    hub = FakeHub.start("data/sample")        # hub.endpoint: what HF_ENDPOINT points at
    env = hub.environ(tmp_path / "hf-home")     # for subprocess.run(..., env=env)
    hub.fail(2, status=429, retry_after=1)      # the next 2 requests answer 429
    hub.drop("openai/gsm8k/main/test-00000-of-00001.parquet")     # cut its next download midway
    hub.corrupt("openai/gsm8k/main/test-00000-of-00001.parquet")  # flip its bytes, size unchanged
    hub.hold("/cdn/")                           # keep the next LFS download waiting...
    hub.held.wait(60)                           # ...until it has come
    hub.release()                               # then answer it
    hub.requests                                # [(method, path), ...] as they came
    hub.stop()

What it answers, as the hub does:
- GET /api/datasets/ORG/REPO[/revision/REV]: the repository's info, `sha` its commit. Every repo
  has one commit, a hash of its files; REV is `main` or that commit.
- GET /api/datasets/ORG/REPO/tree/REV?recursive=...: its files (and directories), `page_size` to a
  page, the next page in a `Link: <...>; rel="next"` header. A file's `oid` is its git blob sha1;
  parquet files are LFS files, with `lfs.oid` the sha256 of their content.
- HEAD/GET /datasets/ORG/REPO/resolve/REV/PATH: X-Repo-Commit, and for a plain file an ETag of
  its git blob sha1 and its bytes; for an LFS file a 302 to another host (a second port,
  /cdn/SHA256) with X-Linked-Etag (its sha256) and X-Linked-Size.
- GET /raw/PATH: a mirror file as is, for sources fetched by URL (the word list).
- GET /api/agent-harnesses: an empty registry (huggingface_hub asks for it once a day).
"""

import hashlib
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit


def git_blob_sha1(content):
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


class FakeHub:
    def __init__(self, mirror):
        self.mirror = Path(mirror)
        self.page_size = 2  # tree entries per page: small, so that listing a repo takes several
        self.requests = []
        self._failures = []  # [remaining, status, retry_after, path prefix]
        self._drops = {}  # repo path -> downloads still to cut short
        self._corruptions = {}  # repo path -> downloads still to damage (None: all)
        self._lock = threading.Lock()
        self._hold = None  # the path prefix of the next request to keep waiting
        self.held = threading.Event()  # set once that request has come
        self._released = threading.Event()
        self._servers = [ThreadingHTTPServer(("127.0.0.1", 0), self._handler()) for _ in range(2)]
        for server in self._servers:
            server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self._servers[0].server_port}"
        self.cdn = f"http://127.0.0.1:{self._servers[1].server_port}"  # another host, to the client

    @classmethod
    def start(cls, mirror):
        hub = cls(mirror)
        for server in hub._servers:
            # stop() waits for the loop's next poll: 0.5 s away by default, a second per test
            threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
            ).start()
        return hub

    def environ(self, hf_home):
        """os.environ for a subprocess that asks this hub, with the HF cache under `hf_home`: no
        HF_ settings or proxies from outside, and short timeouts."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("HF_") and "proxy" not in k.lower()
        }
        env.update(
            HF_ENDPOINT=self.endpoint,
            HF_HOME=str(hf_home),
            HF_HUB_ETAG_TIMEOUT="5",
            HF_HUB_DOWNLOAD_TIMEOUT="5",
        )
        return env

    def stop(self):
        for server in self._servers:
            server.shutdown()
            server.server_close()

    # --- switches ---------------------------------------------------------------------------

    def fail(self, times, status=429, retry_after=None, prefix="/"):
        """Answer `status` (with Retry-After when given) to the next `times` requests whose path
        starts with `prefix`: "/api/" for metadata, "/datasets/" for files on the hub, "/cdn/"
        for LFS downloads."""
        with self._lock:
            self._failures.append([times, status, retry_after, prefix])

    def drop(self, path, times=1):
        """Send half of ORG/REPO/PATH on its next `times` downloads, then close the connection."""
        self._drops[path] = times

    def corrupt(self, path, times=None):
        """Flip bytes of ORG/REPO/PATH, keeping its size, on its next `times` downloads (all
        when None)."""
        self._corruptions[path] = times

    def hold(self, prefix):
        """Keep the next request whose path starts with `prefix` waiting, unanswered, until
        release() (or a minute); `held` is set when it comes: a client is then certainly
        waiting for it."""
        with self._lock:
            self._hold = prefix
            self.held.clear()
            self._released.clear()

    def release(self):
        self._released.set()

    # --- the repositories ---------------------------------------------------------------------

    def repos(self):
        return sorted(
            f"{org.name}/{repo.name}"
            for org in self.mirror.iterdir()
            if org.is_dir()
            for repo in org.iterdir()
            if repo.is_dir()
        )

    def files(self, repo):
        root = self.mirror / repo
        return {
            p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    def commit(self, repo):
        """The repository's one commit: a hash of its files' paths and contents."""
        digest = hashlib.sha1()
        for path, content in self.files(repo).items():
            digest.update(f"{path}\0{git_blob_sha1(content)}\0".encode())
        return digest.hexdigest()

    def tree(self, repo):
        entries, directories = [], set()
        for path, content in self.files(repo).items():
            parts = path.split("/")
            directories.update("/".join(parts[:i]) for i in range(1, len(parts)))
            entry = {
                "type": "file",
                "path": path,
                "size": len(content),
                "oid": git_blob_sha1(content),
            }
            if is_lfs(path):
                sha256 = hashlib.sha256(content).hexdigest()
                pointer = (
                    "version https://git-lfs.github.com/spec/v1\n"
                    f"oid sha256:{sha256}\nsize {len(content)}\n"
                )
                entry.update(
                    oid=git_blob_sha1(pointer.encode()),
                    lfs={"oid": sha256, "size": len(content), "pointerSize": len(pointer)},
                )
            entries.append(entry)
        entries += [
            {"type": "directory", "path": d, "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0}
            for d in sorted(directories)
        ]
        return sorted(entries, key=lambda e: e["path"])

    # --- serving ------------------------------------------------------------------------------

    def _injected_failure(self, path):
        with self._lock:
            for failure in self._failures:
                if failure[0] > 0 and path.startswith(failure[3]):
                    failure[0] -= 1
                    return failure[1], failure[2]
        return None

    def _held(self, path):
        with self._lock:
            if self._hold is None or not path.startswith(self._hold):
                return False
            self._hold = None
        self.held.set()
        return True

    def _take(self, switches, path):
        """Whether a download of `path` is hit by one of `switches` (drops or corruptions)."""
        with self._lock:
            if path not in switches:
                return False
            left = switches[path]
            if left is not None:
                if left <= 0:
                    return False
                switches[path] = left - 1
            return True

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self._answer(body=False)

            def do_GET(self):
                self._answer(body=True)

            def _answer(self, body):
                url = urlsplit(self.path)
                path = unquote(url.path)
                with hub._lock:
                    hub.requests.append((self.command, path))
                if hub._held(path):
                    hub._released.wait(60)
                failure = hub._injected_failure(path)
                if failure:
                    status, retry_after = failure
                    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
                    return self._send(status, b'{"error": "injected failure"}', body, headers)
                parts = path.strip("/").split("/")
                try:
                    if parts == ["api", "agent-harnesses"]:  # asked once a day by huggingface_hub
                        return self._send(200, b'{"standardEnvVars": [], "harnesses": {}}', body)
                    if parts[:2] == ["api", "datasets"]:
                        return self._api(parts[2:], parse_qs(url.query), body)
                    if parts[0] == "datasets" and parts[3:4] == ["resolve"]:
                        return self._resolve(
                            "/".join(parts[1:3]), parts[4], "/".join(parts[5:]), body
                        )
                    if parts[0] == "cdn":
                        return self._cdn(parts[1], body)
                    if parts[0] == "raw":
                        return self._file(
                            "/".join(parts[1:]),
                            (hub.mirror / "/".join(parts[1:])).read_bytes(),
                            body,
                        )
                except (FileNotFoundError, KeyError, IndexError):
                    pass
                self._send(404, b'{"error": "not found"}', body, {"X-Error-Code": "EntryNotFound"})

            def _api(self, parts, query, body):
                repo = "/".join(parts[:2])
                if repo not in hub.repos():
                    return self._send(
                        404,
                        b'{"error": "Repository not found"}',
                        body,
                        {"X-Error-Code": "RepoNotFound"},
                    )
                commit = hub.commit(repo)
                if len(parts) > 2 and parts[3] not in ("main", commit):
                    return self._send(
                        404,
                        b'{"error": "Invalid rev id"}',
                        body,
                        {"X-Error-Code": "RevisionNotFound"},
                    )
                if parts[2:3] == ["tree"]:
                    entries = hub.tree(repo)
                    cursor = int(query.get("cursor", ["0"])[0])
                    page = entries[cursor : cursor + hub.page_size]
                    headers = {}
                    if cursor + hub.page_size < len(entries):
                        next_url = (
                            f"{hub.endpoint}/api/datasets/{repo}/tree/{parts[3]}?recursive=True"
                            f"&expand=False&cursor={cursor + hub.page_size}"
                        )
                        headers["Link"] = f'<{next_url}>; rel="next"'
                    return self._send(200, json.dumps(page).encode(), body, headers)
                info = {
                    "_id": hashlib.md5(repo.encode()).hexdigest()[:24],
                    "id": repo,
                    "sha": commit,
                    "private": False,
                    "gated": False,
                    "disabled": False,
                    "siblings": [{"rfilename": p} for p in hub.files(repo)],
                }
                return self._send(200, json.dumps(info).encode(), body)

            def _resolve(self, repo, revision, path, body):
                commit = hub.commit(repo)
                if revision not in ("main", commit):
                    return self._send(404, b"", body, {"X-Error-Code": "RevisionNotFound"})
                content = hub.files(repo)[path]
                headers = {"X-Repo-Commit": commit}
                if not is_lfs(path):
                    return self._file(
                        f"{repo}/{path}",
                        content,
                        body,
                        {**headers, "ETag": f'"{git_blob_sha1(content)}"'},
                    )
                sha256 = hashlib.sha256(content).hexdigest()
                headers.update(
                    {
                        "X-Linked-Etag": f'"{sha256}"',
                        "X-Linked-Size": str(len(content)),
                        "Location": f"{hub.cdn}/cdn/{sha256}?repo={quote(repo)}&path={quote(path)}",
                    }
                )
                self._send(302, b"", body, headers)

            def _cdn(self, sha256, body):
                query = parse_qs(urlsplit(self.path).query)
                repo, path = query["repo"][0], query["path"][0]
                content = hub.files(repo)[path]
                assert hashlib.sha256(content).hexdigest() == sha256
                self._file(f"{repo}/{path}", content, body, {"ETag": f'"{sha256}"'})

            def _file(self, name, content, body, headers=None):
                """A file's bytes, damaged or cut short when a switch says so."""
                if body and hub._take(hub._corruptions, name):
                    middle = len(content) // 2
                    content = (
                        content[:middle]
                        + bytes(b ^ 0xFF for b in content[middle : middle + 8])
                        + content[middle + 8 :]
                    )
                if body and hub._take(hub._drops, name):
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(content)))
                    self.end_headers()
                    self.wfile.write(content[: len(content) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self._send(200, content, body, headers)

            def _send(self, status, content, body, headers=None):
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if body:
                    self.wfile.write(content)

        return Handler


def is_lfs(path):
    return path.endswith(".parquet")
