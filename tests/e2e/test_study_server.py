"""The study server under bad input, replays, concurrency and a kill mid-write.

Every test talks HTTP to a RUNNING server (a thread bound to 127.0.0.1 on a free port)
with http.client, so headers and raw paths are exactly what the test says.
"""

from __future__ import annotations

import http.client
import json
import shutil
import threading

import pytest

from psc_eval.errors import PscError
from psc_eval.study import StudyServer, create_study, load_study, read_responses, tally_study
from psc_eval.study.server import MAX_BODY
from psc_eval.study.store import RESPONSES
from psc_eval.study.tally import TallyConfig

N_TRIALS = 2 * 2 + 4  # 2 images x (gray, gt) + 4 catch trials


@pytest.fixture(scope="module")
def base_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study-base") / "study"
    create_study("toy", "gray,gt", 2, 0, out, n_vigilance=4, display_size=64, progress=False)
    return out


@pytest.fixture
def study_dir(base_study, tmp_path):
    d = tmp_path / "study"
    shutil.copytree(base_study, d)
    return d


@pytest.fixture
def server(study_dir):
    with StudyServer(study_dir, host="127.0.0.1", port=0) as srv:
        yield srv


def request(srv, method, path, body=None, headers=None, raw=None):
    """-> (status, parsed JSON or raw bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        conn.putrequest(method, path, skip_accept_encoding=True)
        hdrs = {} if headers is None else dict(headers)
        if data is not None and "Content-Length" not in hdrs:
            hdrs["Content-Length"] = str(len(data))
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders()
        if data is not None:
            conn.send(data)
        r = conn.getresponse()
        payload = r.read()
        if r.getheader("Content-Type", "").startswith("application/json"):
            return r.status, json.loads(payload)
        return r.status, payload
    finally:
        conn.close()


def session(srv, who):
    st, out = request(srv, "POST", "/api/session", {"observer": who})
    assert st == 200, out
    return out


def answer(srv, who, trial, value="natural", **extra):
    return request(srv, "POST", "/api/answer",
                   {"observer": who, "trial": trial, "answer": value, **extra})


def lines(study_dir):
    p = study_dir / RESPONSES
    return p.read_bytes().splitlines() if p.exists() else []


def test_binds_localhost_by_default(study_dir):
    srv = StudyServer(study_dir, port=0)
    try:
        assert srv.httpd.server_address[0] == "127.0.0.1"
    finally:
        srv.close()


def test_full_session_in_the_observers_order(server, study_dir):
    s = session(server, "alice")
    assert (s["total"], s["answered"], s["finished"]) == (N_TRIALS, 0, False)
    order = load_study(study_dir).order_for("alice")
    seen = []
    while not s["finished"]:
        nxt = s["next"]
        seen.append(nxt["trial"])
        st, img = request(server, "GET", nxt["image"])
        assert st == 200 and img[:8] == b"\x89PNG\r\n\x1a\n"
        st, s = answer(server, "alice", nxt["trial"], "natural", rt_ms=812.5)
        assert st == 200
    assert seen == order and s["answered"] == N_TRIALS
    recs = [json.loads(x) for x in lines(study_dir)]
    assert [r["trial"] for r in recs] == order
    assert all(r["observer"] == "alice" and r["natural"] is True and r["rt_ms"] == 812.5
               for r in recs)
    assert [r["index"] for r in recs] == list(range(N_TRIALS))
    # finished: any further answer is refused and nothing is written
    st, out = answer(server, "alice", order[0])
    assert st == 409 and out["state"]["finished"] is True
    assert len(lines(study_dir)) == N_TRIALS
    # a returning observer after a server restart sees the same finished state
    server.close()
    with StudyServer(study_dir, port=0) as srv2:
        s2 = session(srv2, "alice")
        assert s2["finished"] and s2["answered"] == N_TRIALS


@pytest.mark.parametrize("raw", [
    b"{bad", b"[1, 2]", b'"natural"', b"\xff\xfe\x00", b"",
    b'{"observer": "alice"}',                                             # no trial / answer
    b'{"observer": "alice", "trial": "x", "answer": "maybe"}',            # bad answer value
    b'{"observer": "../etc", "trial": "x", "answer": "natural"}',         # bad observer id
    b'{"observer": "alice", "trial": 5, "answer": "natural"}',            # trial not a string
    b'{"observer": "alice", "trial": "x", "answer": "natural", "rt_ms": -3}',
    b'{"observer": "alice", "trial": "x", "answer": "natural", "rt_ms": true}',
])
def test_malformed_answers_are_400(server, study_dir, raw):
    session(server, "alice")
    st, out = request(server, "POST", "/api/answer", raw=raw,
                      headers={"Content-Type": "application/json"})
    assert st == 400 and isinstance(out["error"], str) and out["status"] == 400
    assert lines(study_dir) == []


def test_malformed_session_requests(server):
    for raw in (b"{", b'{"observer": ""}', b'{"observer": "' + b"a" * 65 + b'"}',
                b'{"observer": "a b"}', b'{"observer": 7}'):
        st, out = request(server, "POST", "/api/session", raw=raw)
        assert st == 400 and out["status"] == 400, raw


def test_unknown_observer_and_trial(server, study_dir):
    order = load_study(study_dir).order_for("bob")
    st, out = answer(server, "bob", order[0])  # bob never opened a session
    assert st == 404 and "unknown observer" in out["error"]
    session(server, "bob")
    st, out = answer(server, "bob", "0123456789abcdef")
    assert st == 404 and "unknown trial" in out["error"]
    st, out = answer(server, "bob", order[1])  # a real trial, but not bob's current one
    assert st == 409 and out["state"]["next"]["trial"] == order[0]
    assert lines(study_dir) == []


def test_replayed_answer_is_rejected_and_stored_once(server, study_dir):
    s = session(server, "carol")
    t0 = s["next"]["trial"]
    st, first = answer(server, "carol", t0, "not_natural")
    assert st == 200
    st, out = answer(server, "carol", t0, "natural")  # a replay with a different answer
    assert st == 409 and "already answered" in out["error"]
    assert out["state"]["answered"] == 1 and out["state"]["next"] == first["next"]
    recs = [json.loads(x) for x in lines(study_dir)]
    assert len(recs) == 1 and recs[0]["answer"] == "not_natural"


def test_size_and_length_limits(server, study_dir):
    session(server, "dave")
    st, out = request(server, "POST", "/api/answer", raw=b"{" + b" " * MAX_BODY + b"}")
    assert st == 413 and "bytes" in out["error"]
    # a huge announced length with a short body: refused without waiting for the rest
    st, out = request(server, "POST", "/api/answer", raw=b"x" * 100,
                      headers={"Content-Length": str(10**9)})
    assert st == 413
    # no Content-Length at all
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.putrequest("POST", "/api/answer")
    conn.endheaders()
    r = conn.getresponse()
    assert r.status == 411 and "Content-Length" in json.loads(r.read())["error"]
    conn.close()
    st, _ = request(server, "POST", "/api/answer", raw=b"{}",
                    headers={"Content-Length": "two"})
    assert st == 400
    st, _ = request(server, "POST", "/api/answer", raw=b"{}",
                    headers={"Transfer-Encoding": "chunked", "Content-Length": "2"})
    assert st == 411
    assert lines(study_dir) == []


def test_path_tricks_never_leave_the_known_names(server, study_dir):
    known = next(iter(load_study(study_dir).trials.values())).stimulus
    for path in [
        "/../manifest.json", "/manifest.json", "/responses.jsonl", "/stimuli/../manifest.json",
        "/stimuli/%2e%2e/manifest.json", "/%2e%2e/manifest.json", "/stimuli/..%2fmanifest.json",
        "/stimuli/%2E%2E%2Fmanifest.json", "/static/../../manifest.json",
        "/static/%2e%2e/store.py", "/static/server.py", "//etc/passwd", "/stimuli/",
        f"/stimuli/{known.upper()}", f"/stimuli/{known}/..", f"/stimuli/./{known}",
        f"/stimuli/%2e/{known}", "/stimuli/" + "0" * 32 + ".png", "/api/answer/../session",
    ]:
        st, out = request(server, "GET", path)
        assert st == 404, path
        assert out == {"error": "not found", "status": 404}, path
    st, png = request(server, "GET", f"/stimuli/{known}")
    assert st == 200 and png.startswith(b"\x89PNG")
    st, page = request(server, "GET", "/")
    assert st == 200 and b"<script src=\"/static/app.js\">" in page
    assert b"http://" not in page and b"https://" not in page  # nothing from a CDN
    st, out = request(server, "DELETE", "/api/answer")
    assert st == 405
    st, out = request(server, "POST", "/api/unknown", {"x": 1})
    assert st == 404


def test_closed_study_refuses_answers(server, study_dir):
    s = session(server, "erin")
    (study_dir / "closed").touch()
    st, out = answer(server, "erin", s["next"]["trial"])
    assert st == 410 and "closed" in out["error"]
    assert lines(study_dir) == []


def test_concurrent_observers_keep_the_file_valid(server, study_dir):
    observers = [f"obs{i}" for i in range(8)]
    errors: list[str] = []
    statuses: dict[str, list[int]] = {o: [] for o in observers}

    def run(who):
        try:
            s = session(server, who)
            while not s["finished"]:
                t = s["next"]["trial"]
                # two tabs of the same observer send the same answer at the same moment
                gate, res = threading.Barrier(2), [None, None]

                def send(k, gate=gate, res=res, t=t):
                    gate.wait()
                    res[k] = answer(server, who, t, "natural" if len(t) % 2 else "not_natural")

                pair = [threading.Thread(target=send, args=(k,)) for k in range(2)]
                for th in pair:
                    th.start()
                for th in pair:
                    th.join()
                statuses[who].extend(r[0] for r in res)
                s = next(r[1] for r in res if r[0] == 200)
        except Exception as e:  # noqa: BLE001 - reported by the main thread below
            errors.append(repr(e))

    threads = [threading.Thread(target=run, args=(o,)) for o in observers]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert not errors
    raw = lines(study_dir)
    recs = [json.loads(x) for x in raw]  # every line is one complete JSON object
    assert len(recs) == len(observers) * N_TRIALS
    assert len({(r["observer"], r["trial"]) for r in recs}) == len(recs)
    study = load_study(study_dir)
    for o in observers:
        assert [r["trial"] for r in recs if r["observer"] == o] == study.order_for(o)
        assert statuses[o].count(200) == N_TRIALS and statuses[o].count(409) == N_TRIALS


def test_torn_last_line_loses_only_that_answer(study_dir):
    study = load_study(study_dir)
    order = study.order_for("frank")
    with StudyServer(study_dir, port=0) as srv:
        session(srv, "frank")
        for t in order[:3]:
            assert answer(srv, "frank", t)[0] == 200
    # the server is killed while writing the 4th answer: half a line, no newline
    good = lines(study_dir)
    torn = json.dumps({"observer": "frank", "trial": order[3], "answer": "natural",
                       "natural": True}).encode()[:37]
    with open(study_dir / RESPONSES, "ab") as f:
        f.write(torn)
    log = read_responses(study_dir / RESPONSES)
    assert len(log.records) == 3 and log.bad_lines == 1
    with StudyServer(study_dir, port=0) as srv:
        s = session(srv, "frank")
        assert s["answered"] == 3 and s["next"]["trial"] == order[3]  # asked again
        assert answer(srv, "frank", order[3], "not_natural")[0] == 200
        assert answer(srv, "frank", order[4])[0] == 200
    raw = lines(study_dir)
    assert raw[:3] == good and raw[3] == torn  # earlier answers untouched, fragment kept
    assert [json.loads(x)["trial"] for x in raw[4:]] == order[3:5]
    log = read_responses(study_dir / RESPONSES)
    assert len(log.records) == 5 and log.bad_lines == 1
    res = tally_study(study_dir, config=TallyConfig(n_boot=200, vigilance_threshold=0.0))
    assert res["responses"]["valid"] == 5 and res["responses"]["ignored_malformed_lines"] == 1


def test_one_server_per_study(server, study_dir):
    with pytest.raises(PscError, match="another server"):
        StudyServer(study_dir, port=0)


def test_bad_exposure_is_refused(study_dir):
    with pytest.raises(PscError, match="exposure-ms"):
        StudyServer(study_dir, port=0, exposure_ms=5)


def test_failed_write_is_reported_and_the_next_answer_starts_clean(server, study_dir,
                                                                   monkeypatch):
    import psc_eval.study.server as server_mod

    real = server_mod.append_line

    def half_then_fail(path, payload):  # the disk fills up in the middle of the line
        with open(path, "ab") as f:
            f.write(payload[: len(payload) // 2])
        raise OSError(28, "No space left on device")

    s = session(server, "gina")
    t0 = s["next"]["trial"]
    monkeypatch.setattr(server_mod, "append_line", half_then_fail)
    st, out = answer(server, "gina", t0)
    assert st == 500 and "No space left" in out["error"]
    monkeypatch.setattr(server_mod, "append_line", real)
    st, out = answer(server, "gina", t0)  # not stored before, so it is accepted now
    assert st == 200 and out["answered"] == 1
    log = read_responses(study_dir / RESPONSES)
    assert [r["trial"] for r in log.records] == [t0] and log.bad_lines == 1


def test_connections_are_capped_and_disconnects_print_nothing(study_dir, monkeypatch, capsys):
    import socket
    import time

    from psc_eval.study import server as server_mod

    monkeypatch.setattr(server_mod, "MAX_CONNECTIONS", 1)
    with StudyServer(study_dir, host="127.0.0.1", port=0) as srv:
        idle = socket.create_connection(("127.0.0.1", srv.port))  # holds the only slot
        time.sleep(0.2)
        got = {}
        t = threading.Thread(target=lambda: got.update(r=request(srv, "GET", "/api/config")))
        t.start()
        t.join(0.1)
        assert t.is_alive() and not got  # waits for a free slot, no thread of its own
        # the idle client, waiting longest for its request, is ended to make room
        t.join(10)
        assert got["r"][0] == 200
        idle.settimeout(5)
        assert idle.recv(1) == b""
        idle.close()
        # a client that vanishes while the server writes: nothing on the console
        try:
            raise BrokenPipeError(32, "Broken pipe")
        except BrokenPipeError:
            srv.httpd.handle_error(None, ("127.0.0.1", 1))
        try:
            raise ValueError("odd")
        except ValueError:
            srv.httpd.handle_error(None, ("127.0.0.1", 1))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines() == [
        "psc-eval study: request from 127.0.0.1 failed (ValueError: odd)"]
