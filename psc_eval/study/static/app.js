// The observer page of psc-eval's naturalness study. The server owns progress: the page
// only shows the trial the server names as next, so a reload or a second visit continues
// where the stored answers stop.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const STORE = "psc-study-observer";
  const KEYS = { n: "natural", arrowleft: "natural", u: "not_natural", arrowright: "not_natural" };

  let cfg = { display_size: 256, exposure_ms: null, n_trials: 0 };
  let observer = null;
  let current = null;   // {trial, image} on screen
  let busy = true;      // true while loading an image or storing an answer
  let shownAt = 0;
  let blankTimer = null;

  function show(id) {
    for (const s of ["start", "trial", "done"]) $(s).hidden = s !== id;
  }

  function setButtons(enabled) {
    $("btn-natural").disabled = !enabled;
    $("btn-not-natural").disabled = !enabled;
  }

  async function call(path, body) {
    const opts = body === undefined ? {} : {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    };
    const r = await fetch(path, opts);
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    return { status: r.status, data };
  }

  // Retry on network errors (server restarting, Wi-Fi hiccup); HTTP answers are returned.
  async function callRetrying(path, body) {
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await call(path, body);
        $("trial-status").textContent = "";
        return res;
      } catch (e) {
        $("trial-status").textContent = "Connection lost, retrying...";
        await new Promise((ok) => setTimeout(ok, Math.min(500 * 2 ** attempt, 5000)));
      }
    }
  }

  function progress(state) {
    $("progress-text").textContent = `${state.answered} / ${state.total}`;
    $("bar-fill").style.width = `${state.total ? (100 * state.answered) / state.total : 0}%`;
  }

  async function render(state) {
    progress(state);
    if (state.finished) {
      current = null;
      $("done-count").textContent = String(state.total);
      show("done");
      return;
    }
    show("trial");
    current = state.next;
    busy = true;
    setButtons(false);
    clearTimeout(blankTimer);
    const img = $("stimulus");
    img.classList.add("loading");
    $("blank").hidden = true;
    const pre = new Image();
    pre.src = current.image;
    try { await pre.decode(); } catch (e) { /* shown anyway; the browser reports the error */ }
    if (!current || pre.src !== new URL(current.image, location.href).href) return;
    img.src = pre.src;
    try { await img.decode(); } catch (e) { /* same */ }
    img.classList.remove("loading");
    shownAt = performance.now();
    if (cfg.exposure_ms) {
      blankTimer = setTimeout(() => { $("blank").hidden = false; }, cfg.exposure_ms);
    }
    busy = false;
    setButtons(true);
    // No button keeps focus: a highlighted default answer would bias the observer.
    if (document.activeElement && document.activeElement.blur) document.activeElement.blur();
  }

  async function answer(value) {
    if (busy || !current) return;
    busy = true;
    setButtons(false);
    const body = {
      observer, trial: current.trial, answer: value,
      rt_ms: Math.round(performance.now() - shownAt),
    };
    const { status, data } = await callRetrying("/api/answer", body);
    if (status === 200) return render(data);
    // 409: already stored (a replay) or not the current trial: the server's state wins.
    if (status === 409 && data && data.state) return render(data.state);
    if (status === 404 && data && /observer/.test(data.error)) return startSession(observer);
    $("trial-status").textContent = (data && data.error) || `The server answered ${status}.`;
    if (status === 410) { current = null; return; }
    busy = false;
    setButtons(true);
  }

  async function startSession(id) {
    $("start-error").textContent = "";
    const { status, data } = await callRetrying("/api/session", { observer: id });
    if (status !== 200) {
      show("start");
      $("start-error").textContent = (data && data.error) || `The server answered ${status}.`;
      return;
    }
    observer = id;
    try { localStorage.setItem(STORE, id); } catch (e) { /* private mode: no resume */ }
    $("observer-label").textContent = id;
    await render(data);
  }

  function switchObserver(ev) {
    ev.preventDefault();
    try { localStorage.removeItem(STORE); } catch (e) { /* ignore */ }
    history.replaceState(null, "", location.pathname);  // drop a ?observer= link
    observer = null;
    current = null;
    $("observer").value = "";
    show("start");
    $("observer").focus();
  }

  document.addEventListener("keydown", (ev) => {
    if ($("trial").hidden || ev.repeat || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    const value = KEYS[ev.key.toLowerCase()];
    if (value) { ev.preventDefault(); answer(value); }
  });
  for (const id of ["btn-natural", "btn-not-natural"]) {
    $(id).addEventListener("click", (ev) => answer(ev.currentTarget.dataset.answer));
  }
  $("switch-observer").addEventListener("click", switchObserver);
  $("switch-observer-2").addEventListener("click", switchObserver);
  $("start-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    startSession($("observer").value.trim());
  });

  async function init() {
    const { status, data } = await callRetrying("/api/config");
    if (status === 200 && data) cfg = data;
    const px = `${cfg.display_size}px`;
    $("frame").style.width = px;
    $("frame").style.height = px;
    $("n-trials").textContent = String(cfg.n_trials);
    if (cfg.exposure_ms) {
      $("exposure-note").textContent =
        `, but each image is shown for only ${(cfg.exposure_ms / 1000).toFixed(1)} s`;
    }
    const fromUrl = new URLSearchParams(location.search).get("observer");
    let saved = null;
    try { saved = localStorage.getItem(STORE); } catch (e) { saved = null; }
    const id = fromUrl || saved;
    if (id) {
      $("observer").value = id;
      await startSession(id);
    } else {
      show("start");
      $("observer").focus();
    }
  }
  init();
})();
