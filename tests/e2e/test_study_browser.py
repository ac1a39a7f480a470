"""The observer page in a real headless Chromium (Playwright driving the system browser).

Needs the Debian/Ubuntu packages ``chromium`` (and ``chromium-driver`` for CI's check)
and the ``playwright`` Python package; Playwright's own browser download is never used.
Without them the test skips, unless PSC_REQUIRE_BROWSER=1 (CI's .ci/run) makes it fail.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from psc_eval.study import StudyServer, create_study, load_study, read_responses, tally_study
from psc_eval.study.tally import TallyConfig

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
HOW_TO = ("install the system browser with 'apt-get install chromium chromium-driver' and "
          "'pip install playwright' (no 'playwright install' needed)")


def _chromium() -> str:
    path = os.environ.get("PSC_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    problem = None
    if not Path(path).is_file():
        problem = f"no Chromium at {path}"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "the playwright package is not installed"
    if problem:
        if os.environ.get("PSC_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{problem} but PSC_REQUIRE_BROWSER=1: {HOW_TO}")
        pytest.skip(f"browser test skipped ({problem}); to enable it, {HOW_TO}")
    return path


@pytest.fixture(scope="module")
def browser():
    path = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def base_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser-study") / "study"
    create_study("toy", "gray,gt", 2, 0, out, n_vigilance=4, display_size=128, progress=False)
    return out


def _copy(base, tmp_path, name="study"):
    d = tmp_path / name
    shutil.copytree(base, d)
    return d


class Observer:
    """One simulated observer in its own browser context (own localStorage, own cookies)."""

    def __init__(self, browser, url, study, who, policy, use_keys):
        self.ctx = browser.new_context(viewport={"width": 900, "height": 720})
        self.page = self.ctx.new_page()
        self.url, self.study, self.who = url, study, who
        self.policy, self.use_keys = policy, use_keys
        self.by_stimulus = {t.stimulus: t for t in study.trials.values()}
        self.given: list[tuple[str, str]] = []  # (trial id, answer) as clicked
        self.foreign: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: None if r.url.startswith(url)
                     else self.foreign.append(r.url))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error"
                     else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def start(self):
        from playwright.sync_api import expect

        self.page.goto(self.url)
        expect(self.page.locator("#start")).to_be_visible()
        self.page.fill("#observer", self.who)
        self.page.click("#start-button")

    def answer_one(self):
        from playwright.sync_api import expect

        n, total = len(self.given), len(self.study.trials)
        expect(self.page.locator("#progress-text")).to_have_text(f"{n} / {total}")
        expect(self.page.locator("#btn-natural")).to_be_enabled()
        src = self.page.get_attribute("#stimulus", "src")
        trial = self.by_stimulus[src.rsplit("/", 1)[1]]
        value = self.policy(trial)
        if self.use_keys:
            key = ("n" if n % 2 else "ArrowLeft") if value == "natural" else \
                ("u" if n % 2 else "ArrowRight")
            self.page.keyboard.press(key)
        else:
            self.page.click("#btn-natural" if value == "natural" else "#btn-not-natural")
        self.given.append((trial.trial_id, value))

    @property
    def done(self):
        return len(self.given) == len(self.study.trials)


def _honest(trial, test_answer):
    if trial.kind == "vigilance-real":
        return "natural"
    if trial.kind == "vigilance-wrong":
        return "not_natural"
    return test_answer(trial)


def test_two_observers_concurrently_with_a_reload(browser, base_study, tmp_path):
    from playwright.sync_api import expect

    study_dir = _copy(base_study, tmp_path)
    study = load_study(study_dir)
    total = len(study.trials)
    with StudyServer(study_dir, port=0) as srv:
        a = Observer(browser, srv.url, study, "ann",
                     lambda t: _honest(t, lambda t: "natural" if t.method == "gt"
                                       else "not_natural"), use_keys=False)
        b = Observer(browser, srv.url, study, "ben",
                     lambda t: _honest(t, lambda t: "natural"), use_keys=True)
        a.start()
        b.start()
        reloaded = False
        while not (a.done and b.done):  # the two observers take turns, answer by answer
            for o in (a, b):
                if not o.done:
                    o.answer_one()
            if len(b.given) == 3 and not reloaded:
                b.page.reload()  # midway: the page must resume at the 4th trial
                reloaded = True
                expect(b.page.locator("#progress-text")).to_have_text(f"3 / {total}")
        for o in (a, b):
            expect(o.page.locator("#done")).to_be_visible()
            expect(o.page.locator("#done-count")).to_have_text(str(total))
            assert not o.foreign, o.foreign  # nothing fetched from outside (works offline)
            assert not o.errors, o.errors
            o.ctx.close()

    # each observer saw the study in their own seeded order, every answer stored once
    log = read_responses(study_dir / "responses.jsonl")
    assert log.bad_lines == 0 and log.duplicates == 0
    for o in (a, b):
        stored = [(r["trial"], r["answer"]) for r in log.records if r["observer"] == o.who]
        assert stored == o.given
        assert [t for t, _ in o.given] == study.order_for(o.who)
    assert study.order_for("ann") != study.order_for("ben")

    res = tally_study(study_dir, config=TallyConfig(n_boot=200))
    assert res["observers"]["included"] == 2
    for method in ("gray", "gt"):
        given = [v for o in (a, b) for t, v in o.given if study.trials[t].method == method]
        r = res["methods"][method]
        assert r["n"] == len(given) == 4
        assert r["n_natural"] == given.count("natural")
    assert res["methods"]["gt"]["n_natural"] == 4 and res["methods"]["gray"]["n_natural"] == 2
    assert res["vigilance"]["vigilance-real"]["n"] == 4
    assert json.loads((study_dir / "tally.json").read_text())["kind"] == "human"


def test_exposure_limit_and_observer_from_url(browser, base_study, tmp_path):
    from playwright.sync_api import expect

    study_dir = _copy(base_study, tmp_path, "exposure")
    with StudyServer(study_dir, port=0, exposure_ms=300) as srv:
        ctx = browser.new_context()
        page = ctx.new_page()
        page.goto(srv.url + "?observer=cleo")
        expect(page.locator("#btn-natural")).to_be_enabled()
        box = page.locator("#stimulus").bounding_box()  # shown at exactly --display-size
        assert (box["width"], box["height"]) == (128, 128)
        expect(page.locator("#blank")).to_be_visible(timeout=5000)  # image hidden after 300 ms
        page.click("#btn-not-natural")
        expect(page.locator("#progress-text")).to_have_text(f"1 / {len(srv.study.trials)}")
        ctx.close()
    rec = read_responses(study_dir / "responses.jsonl").records
    assert len(rec) == 1 and rec[0]["observer"] == "cleo" and rec[0]["exposure_ms"] == 300
    assert rec[0]["rt_ms"] >= 300
