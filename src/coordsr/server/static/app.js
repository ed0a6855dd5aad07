// coordsr web page: upload, watch the fit (server-sent events), compare, zoom (OpenSeadragon).
// Plain JavaScript, no build step. Talks only to this server's /api (see docs/web.md).
"use strict";

const $ = (id) => document.getElementById(id);

const state = {
  methods: {},        // name -> method info from /api/methods
  limits: null,
  file: null,         // the File chosen for the next job
  job: null,          // the job shown
  events: null,       // its EventSource while it runs
  history: [],        // [{step, total, loss, psnr}] of the fit
  viewer: null,       // OpenSeadragon viewer
};

// Counters the end-to-end test reads (and handy when debugging in the console).
window.coordsr = { previews: 0, progressEvents: 0, tilesLoaded: 0, tilesDrawn: 0, firstPreviewMs: null };

// --- errors -----------------------------------------------------------------------------------

function showError(message) {
  $("error-text").textContent = message;
  $("error").hidden = false;
}
function clearError() { $("error").hidden = true; }
$("error-close").addEventListener("click", clearError);

async function api(path, options = {}) {
  const response = await fetch(path, options);
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
    throw new Error(detail);
  }
  return response.status === 204 ? null : response.json();
}

// --- the form ---------------------------------------------------------------------------------

async function loadMethods() {
  const [info, limits] = await Promise.all([api("/api/methods"), api("/api/limits")]);
  state.limits = limits;
  const select = $("method");
  select.innerHTML = "";
  for (const m of info.methods) {
    state.methods[m.name] = m;
    const option = new Option(`${m.name} (${m.family})`, m.name);
    select.add(option);
  }
  select.value = info.default;
  methodChanged();
  $("limits").textContent =
    `Limits: ${limits.max_upload_mb} MiB per upload, ${limits.max_pixels.toLocaleString()} input pixels, ` +
    `${limits.max_output_pixels.toLocaleString()} output pixels, scale up to ${limits.max_scale}.`;
}

function methodChanged() {
  const m = state.methods[$("method").value];
  if (!m) return;
  $("method-description").textContent = m.description;
  const s = m.settings;
  for (const [id, key] of [["steps", "steps"], ["fit", "fit"], ["seed", "seed"]]) {
    const input = $(id);
    const on = key in s;
    input.disabled = !on;
    input.closest("label").classList.toggle("off", !on);
    if (on && id !== "seed") input.value = s[key];
  }
}
$("method").addEventListener("change", methodChanged);

function chooseFile(file) {
  if (!file) return;
  state.file = file;
  $("drop-text").textContent = `${file.name} (${(file.size / 1024).toFixed(1)} KiB)`;
  clearError();
}
$("file").addEventListener("change", (e) => chooseFile(e.target.files[0]));
const drop = $("drop");
for (const name of ["dragenter", "dragover"]) {
  drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.add("over"); });
}
for (const name of ["dragleave", "drop"]) {
  drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.remove("over"); });
}
drop.addEventListener("drop", (e) => chooseFile(e.dataTransfer.files[0]));
// a scale and an output size exclude each other
$("scale").addEventListener("input", () => { if ($("scale").value) { $("width").value = ""; $("height").value = ""; } });
for (const id of ["width", "height"]) {
  $(id).addEventListener("input", () => { if ($(id).value) $("scale").value = ""; });
}

$("job-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  clearError();
  if (!state.file) { showError("Choose an image first (drop it on the box or click it)."); return; }
  const form = new FormData();
  form.append("file", state.file, state.file.name);
  form.append("method", $("method").value);
  for (const id of ["scale", "width", "height", "steps", "fit", "seed"]) {
    const input = $(id);
    if (!input.disabled && input.value !== "") form.append(id, input.value);
  }
  $("start").disabled = true;
  try {
    const job = await api("/api/jobs", { method: "POST", body: form });
    openJob(job);
    loadGallery();
  } catch (err) {
    showError(err.message);
  } finally {
    $("start").disabled = false;
  }
});

// --- one job: live view -----------------------------------------------------------------------

function fmtSeconds(s) {
  if (s === null || s === undefined || !isFinite(s)) return "?";
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

function setStatus(job) {
  const el = $("job-status");
  el.className = `status ${job.status}`;
  let text = job.status;
  if (job.status === "failed" || job.status === "cancelled") text += job.error ? `: ${job.error}` : "";
  if (job.status === "done" && job.progress.psnr !== null) {
    text += `: fit PSNR on the input ${job.progress.psnr.toFixed(2)} dB`;
  }
  el.textContent = text;
}

function openJob(job) {
  if (state.events) { state.events.close(); state.events = null; }
  state.job = job;
  state.history = [];
  location.hash = `job/${job.id}`;
  $("job").hidden = false;
  $("job-title").textContent =
    `${job.label}: ${job.method}, ${job.input.width}x${job.input.height} → ${job.output.width}x${job.output.height}`;
  $("preview").removeAttribute("src");
  $("stats").textContent = "";
  $("bar").value = 0;
  $("result").hidden = true;
  $("live").hidden = false;
  $("cancel").disabled = false;
  setStatus(job);
  drawCurve();
  const es = new EventSource(job.urls.events);
  state.events = es;
  es.addEventListener("state", (e) => {
    const data = JSON.parse(e.data);
    state.job = data.job;
    state.history = data.history || [];
    if (data.preview) setPreview(data.preview);
    if (data.last) showProgress(data.last);
    setStatus(data.job);
    drawCurve();
  });
  es.addEventListener("status", (e) => {
    state.job.status = JSON.parse(e.data).status;
    setStatus(state.job);
  });
  es.addEventListener("progress", (e) => {
    const p = JSON.parse(e.data);
    window.coordsr.progressEvents += 1;
    if (p.stage === "fit") {
      state.history.push({ step: p.step, total: p.total, loss: p.loss, psnr: p.psnr });
      drawCurve();
    }
    if (p.preview) setPreview(p.preview);
    showProgress(p);
  });
  es.addEventListener("end", (e) => {
    es.close();
    if (state.events === es) state.events = null;
    const job = JSON.parse(e.data);
    state.job = job;
    setStatus(job);
    $("cancel").disabled = true;
    if (job.status === "done") showResult(job);
    else if (job.status === "failed") showError(`Job failed: ${job.error}`);
    loadGallery();
  });
  es.onerror = () => {
    // EventSource reconnects by itself (the server then sends a fresh snapshot); say so meanwhile.
    if (state.events === es && es.readyState === EventSource.CONNECTING) {
      $("stats").textContent = "connection lost, reconnecting…";
    }
  };
}

function setPreview(url) {
  $("preview").src = url;
  window.coordsr.previews += 1;
  if (window.coordsr.firstPreviewMs === null && state.submittedAt) {
    window.coordsr.firstPreviewMs = performance.now() - state.submittedAt;
  }
}

function showProgress(p) {
  if (p.stage === "render") {
    $("stats").textContent = `drawing the output: ${Math.round(100 * p.step / p.total)}%`;
  } else {
    const parts = [`step ${p.step} / ${p.total}`];
    if (p.psnr !== null && p.psnr !== undefined) parts.push(`PSNR ${p.psnr.toFixed(2)} dB`);
    if (p.loss !== null && p.loss !== undefined) parts.push(`loss ${p.loss.toExponential(3)}`);
    parts.push(`elapsed ${fmtSeconds(p.elapsed)}`, `time left ${fmtSeconds(p.eta)}`);
    $("stats").textContent = parts.join(" · ");
  }
  $("bar").value = p.total ? p.step / p.total : 0;
}

$("cancel").addEventListener("click", async () => {
  if (!state.job) return;
  $("cancel").disabled = true;
  try { await api(`/api/jobs/${state.job.id}/cancel`, { method: "POST" }); }
  catch (err) { showError(err.message); }
});

// The loss (log scale, left) and PSNR (right) against the step, on a plain canvas.
function drawCurve() {
  const canvas = $("curve");
  const ratio = window.devicePixelRatio || 1;
  const cssW = canvas.clientWidth || 480, cssH = canvas.clientHeight || 220;
  canvas.width = cssW * ratio; canvas.height = cssH * ratio;
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, cssW, cssH);
  const pad = { l: 46, r: 46, t: 10, b: 24 };
  const W = cssW - pad.l - pad.r, H = cssH - pad.t - pad.b;
  g.strokeStyle = "#d7dde3"; g.strokeRect(pad.l, pad.t, W, H);
  g.font = "11px system-ui, sans-serif"; g.fillStyle = "#5d6b79";
  const pts = state.history.filter((p) => p.loss !== null && p.loss > 0);
  if (!pts.length) { g.fillText("waiting for the first steps…", pad.l + 10, pad.t + 20); return; }
  const total = Math.max(...pts.map((p) => p.total || p.step), 1);
  const x = (step) => pad.l + W * step / total;
  const logs = pts.map((p) => Math.log10(p.loss));
  const psnrs = pts.map((p) => p.psnr).filter((v) => v !== null && isFinite(v));
  const range = (vals) => {
    let lo = Math.min(...vals), hi = Math.max(...vals);
    if (hi - lo < 1e-9) { lo -= 0.5; hi += 0.5; }
    return [lo, hi];
  };
  const [l0, l1] = range(logs);
  g.textAlign = "left"; g.fillText("step", pad.l + W / 2 - 10, cssH - 6);
  g.fillText(String(total), pad.l + W - 20, cssH - 6); g.fillText("0", pad.l, cssH - 6);
  g.textAlign = "right";
  g.fillStyle = "#2563eb";
  g.fillText(`1e${l1.toFixed(1)}`, pad.l - 4, pad.t + 10); g.fillText(`1e${l0.toFixed(1)}`, pad.l - 4, pad.t + H);
  g.strokeStyle = "#2563eb"; g.lineWidth = 1.5; g.beginPath();
  pts.forEach((p, i) => {
    const y = pad.t + H * (1 - (logs[i] - l0) / (l1 - l0));
    i ? g.lineTo(x(p.step), y) : g.moveTo(x(p.step), y);
  });
  g.stroke();
  if (psnrs.length) {
    const [p0, p1] = range(psnrs);
    g.textAlign = "left"; g.fillStyle = "#d97706";
    g.fillText(`${p1.toFixed(1)} dB`, pad.l + W + 4, pad.t + 10); g.fillText(`${p0.toFixed(1)} dB`, pad.l + W + 4, pad.t + H);
    g.strokeStyle = "#d97706"; g.beginPath();
    let first = true;
    for (const p of pts) {
      if (p.psnr === null || !isFinite(p.psnr)) continue;
      const y = pad.t + H * (1 - (p.psnr - p0) / (p1 - p0));
      first ? g.moveTo(x(p.step), y) : g.lineTo(x(p.step), y);
      first = false;
    }
    g.stroke();
  }
}

// --- one job: result ---------------------------------------------------------------------------

function showResult(job) {
  $("live").hidden = state.history.length === 0;  // keep the curve of a fit, hide an empty panel
  if (!$("preview").getAttribute("src")) $("preview").src = job.urls.result;
  const last = state.history[state.history.length - 1];
  const took = job.finished && job.started ? ` in ${fmtSeconds(job.finished - job.started)}` : "";
  $("stats").textContent = last ? `${last.step} steps${took}` : `done${took}`;
  $("bar").value = 1;
  $("cancel").disabled = true;
  $("result").hidden = false;
  const before = $("before"), after = $("after");
  before.src = job.urls.bicubic;
  after.src = job.urls.result;
  for (const img of [before, after]) {
    img.onload = () => img.classList.toggle("pixelated", img.naturalWidth < img.clientWidth);
  }
  $("after-tag").textContent = job.method;
  setSlider(Number($("slider").value));
  $("download-result").href = job.urls.result_download;
  $("download-result").setAttribute("download", `${job.label}-${job.method}-${job.output.width}x${job.output.height}.png`);
  const field = $("download-field");
  field.hidden = !job.urls.field;
  if (job.urls.field) field.href = job.urls.field;
  openViewer(job);
}

function setSlider(v) {
  $("after").style.clipPath = `inset(0 0 0 ${v}%)`;
  $("divider").style.left = `${v}%`;
}
$("slider").addEventListener("input", (e) => setSlider(Number(e.target.value)));

function openViewer(job) {
  if (state.viewer) { state.viewer.destroy(); state.viewer = null; }
  const v = job.viewer;
  const template = v.tiles;
  state.viewer = OpenSeadragon({
    element: $("viewer"),
    prefixUrl: "/static/vendor/openseadragon/images/",
    drawer: "canvas",
    showNavigator: true,
    navigatorPosition: "BOTTOM_RIGHT",
    maxZoomPixelRatio: 2,
    visibilityRatio: 0.5,
    imageSmoothingEnabled: false,
    tileSources: {
      width: v.width, height: v.height, tileSize: v.tileSize, minLevel: v.minLevel, maxLevel: v.maxLevel,
      getTileUrl: (level, x, y) =>
        template.replace("{level}", level).replace("{x}", x).replace("{y}", y),
    },
  });
  window.coordsr.viewer = state.viewer;
  state.viewer.addHandler("tile-loaded", () => { window.coordsr.tilesLoaded += 1; });
  state.viewer.addHandler("tile-drawn", () => { window.coordsr.tilesDrawn += 1; });
  state.viewer.addHandler("tile-load-failed", (e) => console.warn("tile failed", e.message));
  const hint = () => {
    const vp = state.viewer.viewport;
    const imageZoom = vp.viewportToImageZoom(vp.getZoom(true));  // screen px per virtual px
    const perInput = imageZoom * v.width / job.input.width;     // screen px per input pixel
    $("zoom-hint").textContent =
      `Scroll or pinch to zoom: one input pixel is now ${perInput.toFixed(perInput < 10 ? 2 : 0)} screen pixels` +
      (job.has_field ? "; deeper tiles are drawn by the field on demand." : "; tiles are resampled from the output.");
  };
  state.viewer.addHandler("open", hint);
  state.viewer.addHandler("animation", hint);
}

// --- gallery ------------------------------------------------------------------------------------

async function loadGallery() {
  let jobs;
  try { jobs = (await api("/api/jobs")).jobs; } catch (err) { showError(err.message); return; }
  const box = $("gallery");
  box.innerHTML = "";
  $("gallery-empty").hidden = jobs.length > 0;
  for (const job of jobs) {
    const card = document.createElement("div");
    card.className = "job-card";
    card.dataset.id = job.id;
    const img = document.createElement("img");
    img.src = job.urls.thumb; img.alt = job.label; img.loading = "lazy";
    const name = document.createElement("div");
    name.className = "name"; name.textContent = job.label; name.title = job.label;
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = `${job.method} · ${job.input.width}x${job.input.height} → ${job.output.width}x${job.output.height}`;
    const badge = document.createElement("span");
    badge.className = `badge ${job.status}`; badge.textContent = job.status;
    if (job.error) badge.title = job.error;
    const row = document.createElement("div");
    row.className = "row";
    const open = document.createElement("button");
    open.type = "button"; open.className = "secondary open"; open.textContent = "Open";
    open.addEventListener("click", () => openJob(job));
    const del = document.createElement("button");
    del.type = "button"; del.className = "danger delete"; del.textContent = "Delete";
    del.addEventListener("click", async () => {
      if (!confirm(`Delete ${job.label} (${job.method})?`)) return;
      try {
        await api(`/api/jobs/${job.id}`, { method: "DELETE" });
        if (state.job && state.job.id === job.id) closeJob();
        loadGallery();
      } catch (err) { showError(err.message); }
    });
    row.append(open, del);
    card.append(img, name, meta, badge, row);
    box.append(card);
  }
}

function closeJob() {
  if (state.events) { state.events.close(); state.events = null; }
  if (state.viewer) { state.viewer.destroy(); state.viewer = null; }
  state.job = null;
  $("job").hidden = true;
  history.replaceState(null, "", location.pathname);
}

// --- start ----------------------------------------------------------------------------------------

document.addEventListener("submit", () => { state.submittedAt = performance.now(); }, true);

(async function main() {
  try { await loadMethods(); } catch (err) { showError(`Cannot reach the server: ${err.message}`); }
  await loadGallery();
  const m = location.hash.match(/^#job\/([0-9a-f]{16})$/);
  if (m) {
    try { openJob(await api(`/api/jobs/${m[1]}`)); } catch (err) { showError(err.message); }
  }
})();
