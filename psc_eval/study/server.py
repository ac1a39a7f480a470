"""``psc-eval study serve``: the observer web page and its small JSON API (stdlib only).

Routes (everything else is a 404 with a JSON message)::

    GET  /                      the page (static/index.html; app.js and style.css beside it)
    GET  /static/<known name>   the page's own script and style sheet (no CDN, works offline)
    GET  /stimuli/<name>.png    only names listed in the manifest (opaque random names)
    GET  /api/config            display size, exposure limit, number of trials
    POST /api/session           {"observer": id} -> progress and the next trial
    POST /api/answer            {"observer", "trial", "answer": "natural"|"not_natural",
                                 "rt_ms"?} -> progress and the next trial

Answer rules (the server is the only judge of progress; state is derived from
responses.jsonl at start-up and kept in memory afterwards):

* an observer must open a session first (or have answers in the file): else 404;
* a trial id the study does not know: 404; one that is not this observer's current
  trial: 409;
* a REPLAYED answer (same observer and trial again, e.g. a double key press or a retry
  after a lost reply) is rejected with 409 and the observer's current state, so a
  client can treat 409 as "already stored" and move on; the file holds each
  (observer, trial) at most once;
* a finished observer: 409; a closed study (a ``closed`` file in the study folder): 410;
* bodies must carry Content-Length (411) of at most ``MAX_BODY`` bytes (413) and hold a
  JSON object (400).

One lock serialises check + append + state update, so concurrent observers never
interleave lines; the reply is sent only after the line is fsynced (see ``store``).
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

from ..errors import PscError
from .store import (
    ANSWERS,
    STIMULI,
    STIMULUS_RE,
    Study,
    append_line,
    check_observer_id,
    encode_record,
    fcntl,
    load_study,
    read_responses,
    repair_torn_tail,
)

MAX_BODY = 4096  # bytes; an answer is ~150
MAX_OBSERVERS = 10_000  # sessions kept in memory; a guard against a flood of ids
STATIC_FILES = {  # URL path -> (package file, content type)
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
}
# The page loads nothing from elsewhere; say so to the browser as well.
CSP = "default-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


class StudyState:
    """Progress of every observer, derived from the responses file, guarded by one lock."""

    def __init__(self, study: Study, exposure_ms: int | None = None):
        self.study = study
        self.exposure_ms = exposure_ms
        self.lock = threading.Lock()
        repair_torn_tail(study.responses_path)
        log = read_responses(study.responses_path)
        self.ignored_lines = log.bad_lines + log.duplicates
        self.orders: dict[str, list[str]] = {}
        self.answered: dict[str, set[str]] = {}
        for rec in log.records:
            if rec["trial"] in study.trials and check_observer_id(rec["observer"]) is None:
                self._register(rec["observer"]).add(rec["trial"])
        self.stimuli = {t.stimulus for t in study.trials.values()}
        self._static = {
            name: resources.files(__package__).joinpath("static", name).read_bytes()
            for name, _ in STATIC_FILES.values()
        }

    def _register(self, observer: str) -> set[str]:
        if observer not in self.orders:
            self.orders[observer] = self.study.order_for(observer)
            self.answered[observer] = set()
        return self.answered[observer]

    def _state(self, observer: str) -> dict[str, Any]:
        done = self.answered[observer]
        order = self.orders[observer]
        nxt = next((t for t in order if t not in done), None)
        out: dict[str, Any] = {
            "observer": observer,
            "total": len(order),
            "answered": len(done),
            "finished": nxt is None,
            "next": None,
        }
        if nxt is not None:
            out["next"] = {"trial": nxt,
                           "image": f"/{STIMULI}/{self.study.trials[nxt].stimulus}"}
        return out

    def config(self) -> dict[str, Any]:
        return {
            "display_size": self.study.display_size,
            "exposure_ms": self.exposure_ms,
            "n_trials": len(self.study.trials),
            "closed": self.study.closed,
        }

    def session(self, body: dict[str, Any]) -> dict[str, Any]:
        observer = body.get("observer")
        msg = check_observer_id(observer)
        if msg:
            raise ApiError(400, msg)
        with self.lock:
            if observer not in self.orders and len(self.orders) >= MAX_OBSERVERS:
                raise ApiError(503, "too many observers for one server; start a new study")
            self._register(observer)
            return self._state(observer)

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        observer, trial, answer = body.get("observer"), body.get("trial"), body.get("answer")
        if check_observer_id(observer):
            raise ApiError(400, "field 'observer' is missing or not a valid observer id")
        if not isinstance(trial, str) or not trial:
            raise ApiError(400, "field 'trial' is missing or not a string")
        if answer not in ANSWERS:
            raise ApiError(400, "field 'answer' must be \"natural\" or \"not_natural\"")
        rt = body.get("rt_ms")
        if rt is not None and (isinstance(rt, bool) or not isinstance(rt, (int, float))
                               or not 0 <= rt < 1e8):
            raise ApiError(400, "field 'rt_ms' must be a non-negative number of milliseconds")
        if self.study.closed:
            raise ApiError(410, "this study is closed and accepts no more answers")
        with self.lock:
            if observer not in self.orders:
                raise ApiError(404, f"unknown observer {observer!r}; open a session first")
            if trial not in self.study.trials:
                raise ApiError(404, "unknown trial id")
            state = self._state(observer)
            if trial in self.answered[observer]:
                raise ApiError(409, "this trial was already answered; the first answer is kept",
                               state=state)
            if state["finished"]:  # pragma: no cover - every trial is answered then
                raise ApiError(409, "this observer has finished the study", state=state)
            if trial != state["next"]["trial"]:
                raise ApiError(409, "not this observer's current trial", state=state)
            rec = {
                "observer": observer,
                "trial": trial,
                "answer": answer,
                "natural": ANSWERS[answer],
                "rt_ms": None if rt is None else round(float(rt), 1),
                "index": state["answered"],
                "exposure_ms": self.exposure_ms,
                "time": _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds"),
            }
            # Durable before acknowledged: a kill before this returns loses only this answer.
            try:
                append_line(self.study.responses_path, encode_record(rec))
            except OSError:
                # e.g. a full disk mid-write: end the fragment so the next answer starts
                # on a clean line (best effort), and report the failure to the client.
                try:
                    repair_torn_tail(self.study.responses_path)
                except OSError:
                    pass
                raise
            self.answered[observer].add(trial)
            return self._state(observer)


def make_handler(state: StudyState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "psc-eval-study"
        sys_version = ""
        timeout = 15  # seconds per socket write (reads are bounded by REQUEST_DEADLINE)
        deadline = 0.0  # time.monotonic() by which the current request must be read

        def setup(self) -> None:
            super().setup()
            # A per-read timeout lets a client that sends one header byte every few
            # seconds hold its thread forever; this reader bounds the whole request.
            self.rfile = io.BufferedReader(_DeadlineReader(self.connection, self))

        def handle_one_request(self) -> None:
            self.deadline = time.monotonic() + REQUEST_DEADLINE
            self.server.reading(self, True)
            try:
                super().handle_one_request()
            finally:
                self.server.reading(self, False)

        def parse_request(self) -> bool:
            ok = super().parse_request()
            self.server.reading(self, False)  # headers complete: no longer evictable
            return ok

        def log_message(self, format: str, *args: Any) -> None:
            pass  # observers' requests are not logged (the answers file is the record)

        def _send(self, status: int, body: bytes, ctype: str, cache: str = "no-store") -> None:
            self.connection.settimeout(self.timeout)
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", cache)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("Content-Security-Policy", CSP)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, obj: dict[str, Any]) -> None:
            self._send(status, json.dumps(obj).encode(), "application/json")

        def _error(self, e: ApiError) -> None:
            self._json(e.status, {"error": e.message, "status": e.status, **e.extra})

        def _route_path(self) -> str:
            # Exact-match routing on the raw path: no unquoting, no filesystem lookup,
            # so '..', '%2e%2e' and friends can only ever miss.
            return urlsplit(self.path).path

        def do_GET(self) -> None:
            try:
                path = self._route_path()
                if path == "/favicon.ico":
                    return self._send(204, b"", "image/x-icon")
                if path in STATIC_FILES:
                    name, ctype = STATIC_FILES[path]
                    return self._send(200, state._static[name], ctype)
                if path == "/api/config":
                    return self._json(200, state.config())
                if path.startswith(f"/{STIMULI}/"):
                    name = path[len(STIMULI) + 2:]
                    if STIMULUS_RE.match(name) and name in state.stimuli:
                        data = (state.study.root / STIMULI / name).read_bytes()
                        return self._send(200, data, "image/png", cache="private, max-age=3600")
                raise ApiError(404, "not found")
            except ApiError as e:
                self._error(e)

        do_HEAD = do_GET

        def do_POST(self) -> None:
            try:
                path = self._route_path()
                if path not in ("/api/session", "/api/answer"):
                    raise ApiError(404, "not found")
                body = self._read_json()
                out = state.session(body) if path == "/api/session" else state.answer(body)
                self._json(200, out)
            except ApiError as e:
                self._error(e)
            except OSError as e:  # the disk refused the append: say so, store nothing
                self._json(500, {"error": f"could not store the answer ({e.strerror})",
                                 "status": 500})

        def _method_not_allowed(self) -> None:
            self._error(ApiError(405, "method not allowed"))

        do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _method_not_allowed

        def _drain(self, n: int) -> None:
            # Read (and drop) a little of an oversized body before replying: closing a socket
            # with unread data makes the client see a reset instead of our 413.
            self.close_connection = True
            try:
                self.deadline = min(self.deadline, time.monotonic() + 0.25)
                left = min(n, 1 << 16)
                while left > 0:
                    chunk = self.rfile.read(min(left, 8192))
                    if not chunk:
                        break
                    left -= len(chunk)
            except OSError:
                pass

        def _read_json(self) -> dict[str, Any]:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                self.close_connection = True
                raise ApiError(411, "chunked bodies are not accepted; send Content-Length")
            raw_len = self.headers.get("Content-Length")
            if raw_len is None:
                raise ApiError(411, "Content-Length is required")
            try:
                n = int(raw_len)
            except ValueError:
                raise ApiError(400, "Content-Length is not an integer") from None
            if n < 0:
                raise ApiError(400, "Content-Length is negative")
            if n > MAX_BODY:
                self._drain(n)
                raise ApiError(413, f"request body over {MAX_BODY} bytes")
            try:
                raw = self.rfile.read(n)
            except OSError:
                raise ApiError(400, "request body could not be read") from None
            if len(raw) != n:
                raise ApiError(400, "request body shorter than Content-Length")
            try:
                body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                raise ApiError(400, "request body is not valid UTF-8 JSON") from None
            if not isinstance(body, dict):
                raise ApiError(400, "request body must be a JSON object")
            return body

    return Handler


# Connections served at once; more wait in the listen backlog until a thread is free.
MAX_CONNECTIONS = 64
# Seconds a client has to send a whole request (request line, headers and body), counted
# from when the server starts waiting for it; an idle keep-alive connection ends after it.
REQUEST_DEADLINE = 10.0
# When every slot is taken, a new connection ends the one that has waited longest for its
# request to arrive, if that is at least this old (a real request's headers arrive in
# milliseconds): slow or idle clients cannot lock the others out.
EVICT_AFTER = 0.5
_DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


class _DeadlineReader(io.RawIOBase):
    """The socket as a raw stream whose every read waits at most until the handler's
    ``deadline``; past it, reads raise TimeoutError (the stdlib handler then closes)."""

    def __init__(self, sock: socket.socket, handler: Any):
        self.sock, self.handler = sock, handler

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        left = self.handler.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("request not received within the deadline")
        self.sock.settimeout(left)
        return self.sock.recv_into(buf)


class _Server(ThreadingHTTPServer):
    # The stdlib default listen backlog (5) resets connections when a room of observers
    # (or several tabs) answer at the same moment.
    request_queue_size = 128
    daemon_threads = True

    def __init__(self, *args: Any, **kw: Any):
        super().__init__(*args, **kw)
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._waiting: dict[Any, float] = {}  # handler -> when it began waiting for a request
        self._waiting_lock = threading.Lock()

    def reading(self, handler: Any, waiting: bool) -> None:
        with self._waiting_lock:
            if waiting:
                self._waiting[handler] = time.monotonic()
            else:
                self._waiting.pop(handler, None)

    def _evict_slowest(self) -> None:
        """End the connection that has waited longest for its request (if old enough)."""
        with self._waiting_lock:
            now = time.monotonic()
            old = [(t, h) for h, t in self._waiting.items() if now - t >= EVICT_AFTER]
            if not old:
                return
            _, h = min(old, key=lambda th: th[0])
            self._waiting.pop(h, None)
        try:
            h.connection.shutdown(socket.SHUT_RDWR)  # its blocked read returns; it ends
        except OSError:
            pass

    def process_request(self, request: Any, client_address: Any) -> None:
        # at most MAX_CONNECTIONS threads; when all are taken, the slowest client in the
        # middle of sending a request makes room, else the rest wait to be accepted
        while not self._slots.acquire(blocking=False):
            self._evict_slowest()
            if self._slots.acquire(timeout=EVICT_AFTER / 5):
                break
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away is not an error of the server: say nothing. Anything
        else is one line on stderr, never a traceback."""
        exc = sys.exc_info()[1]
        if isinstance(exc, _DISCONNECTS):
            return
        print(f"psc-eval study: request from {client_address[0]} failed "
              f"({type(exc).__name__}: {exc})", file=sys.stderr)


class StudyServer:
    """A running study server; ``start()`` serves in a background thread (tests),
    ``serve_forever()`` in the calling thread (the CLI).

    One server per study folder: an exclusive lock on ``STUDY_DIR/.serve.lock`` refuses a
    second one, since two processes would each believe they own the progress state.
    """

    def __init__(self, study_dir: str | Path, host: str = "127.0.0.1", port: int = 8000,
                 exposure_ms: int | None = None):
        if exposure_ms is not None and not 50 <= exposure_ms <= 600_000:
            raise PscError(
                f"--exposure-ms must lie in [50, 600000], got {exposure_ms}, in the options, "
                "drop it for no limit"
            )
        self.study = load_study(study_dir)
        # Held open for the server's lifetime (the flock lives as long as the file object).
        self._lockf = open(Path(study_dir) / ".serve.lock", "a+")  # noqa: SIM115
        if fcntl is not None:
            try:
                fcntl.flock(self._lockf, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self._lockf.close()
                raise PscError(
                    f"another server is already serving this study, {study_dir}, "
                    "stop it first (one server per study folder)"
                ) from None
        try:
            self.state = StudyState(self.study, exposure_ms)
            self.httpd = _Server((host, port), make_handler(self.state))
        except OSError as e:
            self._lockf.close()
            raise PscError(
                f"cannot listen on {host}:{port} ({e.strerror}), in --host/--port, "
                "pick a free port or a local address"
            ) from None
        except BaseException:
            self._lockf.close()
            raise
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def url(self) -> str:
        host = self.httpd.server_address[0]
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{self.port}/"

    def start(self) -> StudyServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        try:
            self.httpd.serve_forever(poll_interval=0.2)
        finally:
            self.close()

    def close(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.httpd.server_close()
        if not self._lockf.closed:
            self._lockf.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _lan_ip() -> str | None:
    """The address this machine would use on the LAN (a UDP connect sends no packet)."""
    import socket

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))
            ip = s.getsockname()[0]
    except OSError:
        return None
    return None if ip.startswith("127.") else ip


def serve_study(study_dir: str | Path, host: str = "127.0.0.1", port: int = 8000,
                exposure_ms: int | None = None, echo=print) -> None:
    """Serve until interrupted (Ctrl-C); prints where observers should point their browser."""
    srv = StudyServer(study_dir, host, port, exposure_ms)
    n = len(srv.study.trials)
    echo(f"serving study {srv.study.root} ({n} trials per observer) at {srv.url}")
    if host in ("0.0.0.0", "::", ""):
        ip = _lan_ip() or "<this machine's LAN IP>"
        echo(f"listening on all interfaces: observers open http://{ip}:{srv.port}/ "
             "(see docs/study.md)")
    if srv.state.ignored_lines:
        echo(f"note: {srv.state.ignored_lines} malformed or duplicate line(s) in responses.jsonl "
             "are ignored")
    echo("press Ctrl-C to stop; answers are stored as they arrive")
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        echo("stopped; every acknowledged answer is in responses.jsonl")
