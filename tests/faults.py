"""Private services for the fault matrix (tests/test_fault_matrix.py), so a test can stop, restart or slow
down a service without disturbing anybody else's tests on the shared PostgreSQL and Redis:

- ``PrivatePostgres``: a PostgreSQL cluster of the test's own (initdb/pg_ctl) on a free port;
- ``PrivateRedis``: a redis-server of the test's own on a free port, nothing persisted;
- ``FaultyProxy``: a TCP proxy on 127.0.0.1 in front of a real server (the Stripe emulator) that can
  pass traffic through, refuse connections ("down"), or hold answers back ("slow").

The fixtures that start them are in conftest.py (``private_postgres``, ``private_redis``,
``faulty_proxy``); each stops what it started.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

#: How long a service may take to come up or go down before the test fails.
START_TIMEOUT_SECONDS = 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} within {timeout}s")


class ServiceMissing(RuntimeError):
    """The binaries for a private service are not installed here."""


def postgres_bin_dir() -> Path:
    """The newest installed PostgreSQL's bin directory (Debian's layout), or whatever is on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name)
                   if Path(p).parent.parent.name.isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise ServiceMissing("initdb/pg_ctl are not installed")
    return Path(initdb).parent


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on 127.0.0.1:<free port>, trust authentication, user ``postgres``.

    PostgreSQL refuses to run as root: when the tests run as root (as on this project's machines and in CI)
    the server commands run as the ``postgres`` OS user (``runuser -u postgres --``), in a data directory
    under a temporary directory that user owns."""

    def __init__(self):
        self.bin = postgres_bin_dir()
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="tanhui-pg-"))
        self.data = self.root / "data"
        self.log_path = self.root / "server.log"
        self._as_root = os.geteuid() == 0
        if self._as_root:
            shutil.chown(self.root, "postgres", "postgres")

    #: the database that ``url`` names (the fixture gives each test a new one)
    database = "postgres"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{self.database}"

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = START_TIMEOUT_SECONDS) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=timeout)  # noqa: S603

    def init(self) -> PrivatePostgres:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--locale=C", "--no-sync", timeout=120)
        return self

    def start(self) -> None:
        # fsync off: the cluster is thrown away; the socket lives in the cluster's own directory.
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=40")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-o", options, "-w",
                  "-t", str(START_TIMEOUT_SECONDS), "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends every session (their transactions roll back); ``immediate`` is a crash."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", str(START_TIMEOUT_SECONDS), "stop")

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def running(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def destroy(self) -> None:
        if self.running():
            with contextlib.suppress(Exception):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    """A redis-server of its own on 127.0.0.1:<free port>, persisting nothing (a restart empties it)."""

    def __init__(self, directory: Path):
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise ServiceMissing("redis-server is not installed")
        self.port = _free_port()
        self.directory = directory
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(self._answers, START_TIMEOUT_SECONDS, f"redis-server did not answer on {self.port}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        _wait(lambda: not self._answers(), 10, "redis-server did not stop")


class FaultyProxy:
    """A TCP proxy on 127.0.0.1:<free port> to ``upstream`` (host, port), whose ``mode`` a test switches:

    - ``"pass"``: bytes flow both ways untouched;
    - ``"down"``: connections are accepted and closed at once, before anything is read (a dead endpoint;
      the client sees a reset or an empty answer, never a response);
    - ``"slow"``: requests reach the upstream at once, answers are held back ``delay`` seconds — the
      upstream has acted, the client times out first and never hears what happened. With ``slow_paths``,
      only answers to requests whose request line contains one of them are held back (e.g. ``/confirm``:
      the card is charged, the answer never arrives).
    """

    def __init__(self, upstream: tuple[str, int], *, delay: float = 5.0):
        self.upstream = upstream
        self.delay = delay
        self.mode = "pass"
        self.slow_paths: tuple[str, ...] = ()
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="faulty-proxy", daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _address = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(client, self.mode), daemon=True).start()

    def _handle(self, client: socket.socket, mode: str) -> None:
        with client:
            if mode == "down":
                with contextlib.suppress(OSError):  # a reset, not a polite close
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=30)
            except OSError:
                return
            with upstream:
                asked = threading.Event()  # a request to be slowed down went up since the last answer came down
                forward = threading.Thread(target=self._pump, args=(client, upstream, asked, False), daemon=True)
                forward.start()
                self._pump(upstream, client, asked, True)
                forward.join(1)

    def _pump(self, source: socket.socket, target: socket.socket, asked: threading.Event, answers: bool) -> None:
        """Copy until either side closes or the proxy goes down. Answers to a request are held back
        ``delay`` seconds while the proxy is slow (the mode is read for every request, so connections kept
        alive by the client's pool are slowed down too)."""
        try:
            while not self._stopping.is_set():
                chunk = source.recv(65536)
                if not chunk or self.mode == "down":
                    break
                if answers:
                    if asked.is_set():
                        time.sleep(self.delay)
                        asked.clear()
                elif self._slows_down(chunk):
                    asked.set()
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (target, source):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _slows_down(self, chunk: bytes) -> bool:
        if self.mode != "slow":
            return False
        request_line = chunk.split(b"\r\n", 1)[0]
        return not self.slow_paths or any(path.encode() in request_line for path in self.slow_paths)

    def close(self) -> None:
        self._stopping.set()
        self._listener.close()
        self._thread.join(2)
