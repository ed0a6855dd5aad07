// coordsr web page: choose images, start jobs, watch them (server-sent events), compare, zoom
// (OpenSeadragon), manage the gallery. Plain JavaScript, no build step; talks only to this
// server's /api, same-origin (see docs/web.md).
"use strict";

const $ = (id) => document.getElementById(id);
const FORM_KEY = "coordsr.form";   // localStorage: the form's settings survive a reload

const state = {
  methods: {},        // name -> method info from /api/methods
  notes: {},          // name -> plain-words notes from /api/method-notes
  limits: null,
  files: [],          // [{file, url, width, height}] chosen for the next job(s)
  job: null,          // the job shown
  events: null,       // its EventSource while it runs
  history: [],        // [{step, total, loss, psnr}] of the fit
  viewer: null,       // OpenSeadragon viewer
  ticker: null,       // interval that updates the elapsed time of a job without step reports
  queuePoll: null,    // interval that asks the queue position of a waiting job
  galleryPoll: null,  // interval that refreshes the gallery while jobs are active
  batch: [],          // ids of the last batch started together
  selected: new Set(),
  jobs: [],           // the gallery's jobs
};

// Counters the end-to-end tests read (and handy when debugging in the console).
window.coordsr = { previews: 0, progressEvents: 0, tilesLoaded: 0, tilesDrawn: 0, firstPreviewMs: null,
                   opened: 0 };

// --- errors -----------------------------------------------------------------------------------

function showError(message) {
  $("error-text").textContent = message;
  $("error").hidden = false;
}
function clearError() { $("error").hidden = true; $("error-text").textContent = ""; }
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

function fmtSeconds(s) {
  if (s === null || s === undefined || !isFinite(s)) return "?";
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}
function fmtTime(unix) {
  return new Date(unix * 1000).toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}
function ordinal(n) {
  const suffix = ["th", "st", "nd", "rd"], v = n % 100;
  return n + (suffix[(v - 20) % 10] || suffix[v] || suffix[0]);
}
function scaleOf(job) {
  const sx = job.output.width / job.input.width, sy = job.output.height / job.input.height;
  const r = (v) => (Math.round(v * 100) / 100).toString();
  return Math.abs(sx - sy) < 0.01 ? `×${r(sx)}` : `×${r(sx)} × ${r(sy)}`;
}
// Art jobs (posters and animations from the Art page, /art) have no input: no scale, no bicubic.
function isArt(job) { return job.kind === "art-poster" || job.kind === "art-animation"; }
function artWhat(job) {
  const s = job.settings;
  return job.kind === "art-poster" ? "poster" : `animation (${s.animation}, ${s.frames} frames)`;
}
function jobName(job) { return `${job.label} (${isArt(job) ? artWhat(job) : job.method}, ${fmtTime(job.created)})`; }

// --- the form: methods and settings -------------------------------------------------------------

async function loadMethods() {
  const [info, limits, notes] = await Promise.all([api("/api/methods"), api("/api/limits"),
                                                   api("/api/method-notes")]);
  state.limits = limits;
  state.notes = notes.methods;
  const select = $("method");
  select.innerHTML = "";
  select.add(new Option("Picked for the kind of picture (recommended)", ""));
  for (const m of info.methods) {
    state.methods[m.name] = m;
    const title = (state.notes[m.name] || {}).title || m.name;
    select.add(new Option(`${title}: ${m.name}`, m.name));
  }
  select.value = "";  // the kind of picture picks the model; Advanced names one
  const saved = restoreForm();
  methodChanged(saved && saved.method === select.value ? saved : null);
  contentChanged();
  $("limits").textContent =
    `This server takes up to ${limits.max_upload_mb} MiB per image, ${limits.max_pixels.toLocaleString()} input pixels ` +
    `and ${limits.max_output_pixels.toLocaleString()} output pixels, scale up to ${limits.max_scale}.`;
}

// The kind of picture: the first choice, in plain words; the server picks the model for it.
const CONTENT_MODELS = { photo: "pretrained", drawing: "drawing", "pixel-art": "nearest" };  // coordsr.content.method_for
function contentValue() {
  const on = document.querySelector('input[name="content"]:checked');
  return on ? on.value : "auto";
}
function contentChanged() {
  const kind = contentValue();
  const named = $("method").value;
  const title = (name) => (state.notes[name] || {}).title || name;
  // How a photo arrived matters for photos only: a drawing or a sprite has its own model.
  const photos = !named && (kind === "auto" || kind === "photo");
  $("degradation").disabled = !photos;
  $("degradation-field").hidden = !photos;
  const photoModel = $("degradation").value === "real" ? "blind" : CONTENT_MODELS.photo;
  $("content-hint").textContent = named
    ? `Advanced names the method: ${title(named)} runs, whatever the picture is.`
    : kind === "auto"
      ? "Each image is looked at when it arrives (transparency, colours, flat areas); the job then says which model ran and why."
      : kind === "photo" && $("degradation").value === "auto"
        ? "Each photo is checked when it arrives (JPEG quality, blocks, noise); the job then says which model ran and why."
        : `Model: ${title(kind === "photo" ? photoModel : CONTENT_MODELS[kind])}.`;
}
$("degradation").addEventListener("change", () => { contentChanged(); saveForm(); });
for (const r of document.querySelectorAll('input[name="content"]')) {
  r.addEventListener("change", () => { contentChanged(); saveForm(); });
}

function methodChanged(saved) {
  const m = state.methods[$("method").value];
  contentChanged();
  if (!m) {  // picked for the kind of picture: the model's own settings
    $("method-description").textContent = "The model is chosen for the kind of picture above. Choose a method here to override it.";
    for (const id of ["steps", "fit", "seed"]) { $(id).disabled = true; $(id).closest("label").hidden = true; }
    updateChosen();
    return;
  }
  const n = state.notes[m.name] || {};
  const box = $("method-description");
  box.innerHTML = "";
  const plain = document.createElement("p");
  plain.textContent = n.plain || m.description;
  const facts = document.createElement("p");
  facts.className = "hint";
  facts.textContent = [n.speed && `Speed: ${n.speed}.`, n.measured && `Measured: ${n.measured}.`].filter(Boolean).join(" ");
  box.append(plain, facts);
  const s = m.settings;
  for (const id of ["steps", "fit", "seed"]) {
    const on = id in s;
    $(id).disabled = !on;
    $(id).closest("label").hidden = !on;
  }
  // The page proposes a short budget (method_notes.json); "stop and keep" ends a fit sooner still.
  const steps = $("steps");
  steps.value = "steps" in s && s.steps >= 1 ? (n.page_steps || s.steps) : "";
  if ("steps" in s) {
    $("steps-hint").textContent = s.steps >= 1
      ? `The page proposes ${n.page_steps || s.steps}; the command line's default is ${s.steps}.`
      : "Leave empty for the method's own preset.";
  }
  if ("fit" in s) $("fit").value = s.fit;
  if (saved) {
    for (const id of ["steps", "fit", "seed"]) if (saved[id] !== undefined && !$(id).disabled) $(id).value = saved[id];
  }
  updateChosen();
}
$("method").addEventListener("change", () => { methodChanged(null); saveForm(); });

function saveForm() {
  const data = {};
  for (const id of ["method", "scale", "width", "height", "steps", "fit", "seed"]) data[id] = $(id).value;
  data.content = contentValue();
  data.degradation = $("degradation").value;
  try { localStorage.setItem(FORM_KEY, JSON.stringify(data)); } catch (e) { /* private mode */ }
}
function restoreForm() {
  let data = null;
  try { data = JSON.parse(localStorage.getItem(FORM_KEY) || "null"); } catch (e) { data = null; }
  if (!data) return null;
  if (data.method && state.methods[data.method]) { $("method").value = data.method; $("advanced").open = true; }
  const kind = document.querySelector(`input[name="content"][value="${data.content}"]`);
  if (kind) kind.checked = true;
  if (["auto", "clean", "real"].includes(data.degradation)) $("degradation").value = data.degradation;
  for (const id of ["scale", "width", "height"]) if (typeof data[id] === "string") $(id).value = data[id];
  return data;
}
for (const id of ["scale", "width", "height", "steps", "fit", "seed"]) $(id).addEventListener("change", saveForm);

// a scale and an output size exclude each other
$("scale").addEventListener("input", () => {
  if ($("scale").value) { $("width").value = ""; $("height").value = ""; }
  updateChosen();
});
for (const id of ["width", "height"]) {
  $(id).addEventListener("input", () => { if ($(id).value) $("scale").value = ""; updateChosen(); });
}

// --- the form: choosing images (dialog, drop, paste, examples) ---------------------------------

function chooseFiles(list) {
  const files = Array.from(list || []).filter((f) => f && f.size !== undefined);
  if (!files.length) return;
  for (const c of state.files) URL.revokeObjectURL(c.url);
  state.files = files.map((file) => ({ file, url: URL.createObjectURL(file), width: null, height: null }));
  clearError();
  for (const c of state.files) {
    const probe = new Image();
    probe.onload = () => { c.width = probe.naturalWidth; c.height = probe.naturalHeight; updateChosen(); };
    probe.src = c.url;  // TIFF does not decode in browsers: its size shows after the upload
  }
  updateChosen();
}

function outputSize(w, h) {
  const scale = parseFloat($("scale").value), ow = parseInt($("width").value, 10), oh = parseInt($("height").value, 10);
  if (ow > 0 || oh > 0) {
    return [ow > 0 ? ow : Math.max(1, Math.round(w * oh / h)), oh > 0 ? oh : Math.max(1, Math.round(h * ow / w))];
  }
  const s = scale > 0 ? scale : 4;
  return [Math.round(w * s), Math.round(h * s)];
}

function updateChosen() {
  const list = $("chosen");
  list.innerHTML = "";
  for (const [i, c] of state.files.entries()) {
    const li = document.createElement("li");
    const img = document.createElement("img");
    img.src = c.url; img.alt = `Preview of ${c.file.name}`;
    img.onerror = () => {  // TIFF, or not an image at all: a plain box instead of a broken icon
      const none = document.createElement("span");
      none.className = "no-preview"; none.textContent = "no preview";
      img.replaceWith(none);
    };
    const text = document.createElement("span");
    const size = c.width ? `${c.width}×${c.height} → ${outputSize(c.width, c.height).join("×")}` : "size known after upload";
    text.textContent = `${c.file.name} · ${(c.file.size / 1024).toFixed(1)} KiB · ${size}`;
    const remove = document.createElement("button");
    remove.type = "button"; remove.className = "secondary small";
    remove.textContent = "Remove"; remove.setAttribute("aria-label", `Remove ${c.file.name}`);
    remove.addEventListener("click", () => {
      URL.revokeObjectURL(c.url);
      state.files.splice(i, 1);
      updateChosen();
      $("file").focus();
    });
    li.append(img, text, remove);
    list.append(li);
  }
  const n = state.files.length;
  $("start").textContent = n > 1 ? `Start ${n} jobs` : "Start";
}

$("file").addEventListener("change", (e) => { chooseFiles(e.target.files); e.target.value = ""; });
// Space opens the dialog natively; Enter would submit the form instead: make it open the dialog too.
$("file").addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); $("file").click(); } });
const drop = $("drop");
for (const name of ["dragenter", "dragover"]) {
  drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.add("over"); });
}
for (const name of ["dragleave", "drop"]) {
  drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.remove("over"); });
}
drop.addEventListener("drop", (e) => chooseFiles(e.dataTransfer.files));
document.addEventListener("paste", (e) => {
  const files = Array.from((e.clipboardData && e.clipboardData.files) || []).filter((f) => f.type.startsWith("image/"));
  if (!files.length) return;  // pasting text into a field stays a text paste
  e.preventDefault();
  const named = files.map((f, i) => new File([f], f.name && f.name !== "image.png" ? f.name : `pasted-${i + 1}.png`, { type: f.type }));
  chooseFiles(named);
  $("form-note").textContent = `Pasted ${named.length} image${named.length > 1 ? "s" : ""} from the clipboard.`;
});

async function loadExamples() {
  const { samples } = await api("/api/samples");
  const box = $("examples");
  for (const s of samples) {
    const b = document.createElement("button");
    b.type = "button"; b.className = "secondary small";
    b.textContent = s.name;
    b.setAttribute("aria-label", `Use the example image ${s.name} (${s.width}×${s.height})`);
    b.addEventListener("click", async () => {
      try {
        const blob = await (await fetch(s.url)).blob();
        chooseFiles([new File([blob], `${s.name}.png`, { type: "image/png" })]);
      } catch (err) { showError(`Cannot load the example ${s.name}: ${err.message}`); }
    });
    box.append(b);
  }
  box.hidden = samples.length === 0;
}

// --- the form: start ------------------------------------------------------------------------------

$("job-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  clearError();
  if (!state.files.length) {
    showError("Choose an image first: the Choose images button, a drop, a paste, or an example.");
    $("file").focus();
    return;
  }
  saveForm();
  $("start").disabled = true;
  const started = [];
  try {
    for (const [i, c] of state.files.entries()) {
      $("form-note").textContent = state.files.length > 1 ? `Uploading ${i + 1} of ${state.files.length}…` : "Uploading…";
      const form = new FormData();
      form.append("file", c.file, c.file.name);
      form.append("content", contentValue());
      if (!$("degradation").disabled) form.append("degradation", $("degradation").value);
      if ($("method").value) form.append("method", $("method").value);  // a method named wins
      for (const id of ["scale", "width", "height", "steps", "fit", "seed"]) {
        const input = $(id);
        if (!input.disabled && input.value !== "") form.append(id, input.value);
      }
      try {
        started.push(await api("/api/jobs", { method: "POST", body: form }));
      } catch (err) {
        // the server's message names the file already; in a batch, say which upload it was
        showError(state.files.length > 1 ? `Image ${i + 1} of ${state.files.length}: ${err.message}` : err.message);
        break;
      }
    }
  } finally {
    $("start").disabled = false;
    $("form-note").textContent = started.length > 1 ? `Started ${started.length} jobs.` : "";
  }
  if (started.length) {
    state.batch = started.length > 1 ? started.map((j) => j.id) : [];
    showJob(started[0].id, started[0]);
    loadGallery();
  }
});

// --- navigation: the URL names the job shown (#job/<id>), so Back and Forward work -----------------

function showJob(id, known) {
  const hash = `#job/${id}`;
  state.pendingFocus = true;  // the user asked for it: scroll to it and focus its title
  if (location.hash === hash) { routeTo(id, known); return; }
  state.known = known || null;
  location.hash = hash;  // hashchange opens it
}

async function routeTo(id, known) {
  if (!id) { closeJob(); return; }
  if (state.job && state.job.id === id && !known) { focusJob(); return; }
  try {
    openJob(known && known.id === id ? known : await api(`/api/jobs/${id}`));
    focusJob();
  } catch (err) {
    showError(err.message);
    closeJob();
  }
}

function focusJob() {
  if (!state.pendingFocus) return;
  state.pendingFocus = false;
  $("job").scrollIntoView({ block: "start" });
  $("job-title").focus({ preventScroll: true });
}

window.addEventListener("hashchange", () => {
  const m = location.hash.match(/^#job\/([0-9a-f]{16})$/);
  const known = state.known; state.known = null;
  if (!state.pendingFocus) state.pendingFocus = Boolean(m);  // Back/Forward: show what the URL names
  routeTo(m ? m[1] : null, known);
});

// --- one job: live view -----------------------------------------------------------------------

function setStatus(job, extra) {
  const el = $("job-status");
  el.className = `status ${job.status}`;
  let text = job.status;
  if (job.status === "queued") text = "queued" + (extra ? `: ${extra}` : "");
  if (job.status === "running") text = extra || "running";
  if (job.status === "failed" || job.status === "cancelled") text += job.error ? `: ${job.error}` : "";
  if (job.status === "done") {
    const took = job.finished && job.started ? ` in ${fmtSeconds(job.finished - job.started)}` : "";
    text = `done${took}`;
    if (job.has_field && job.progress.total && job.progress.step < job.progress.total) {
      text += `, stopped at step ${job.progress.step} of ${job.progress.total}`;
    }
    if (job.progress.psnr !== null) text += `; fit to the input ${job.progress.psnr.toFixed(2)} dB (how well it reproduces the input, not the output's quality)`;
  }
  if (el.textContent !== text) el.textContent = text;
}

function stopTimers() {
  for (const key of ["ticker", "queuePoll"]) { if (state[key]) { clearInterval(state[key]); state[key] = null; } }
}

function openJob(job) {
  if (state.events) { state.events.close(); state.events = null; }
  stopTimers();
  clearError();
  state.job = job;
  state.history = [];
  window.coordsr.opened += 1;
  const method = (!isArt(job) && state.methods[job.method]) || {};
  const title = (state.notes[job.method] || {}).title || job.method;
  $("job").hidden = false;
  $("job-title").textContent = isArt(job)
    ? `${job.label}: ${artWhat(job)}, ${job.output.width}×${job.output.height}`
    : `${job.label}: ${title}, ${job.input.width}×${job.input.height} → ${job.output.width}×${job.output.height} (${scaleOf(job)})`;
  // What belongs to the previous job goes first: its field link, its picture, its comparison.
  resetResult();
  $("input-img").closest("figure").hidden = isArt(job);
  if (isArt(job)) {
    $("input-img").removeAttribute("src");
  } else {
    $("input-img").src = job.urls.input;
    $("input-img").alt = `The input, ${job.label}, ${job.input.width}×${job.input.height}`;
    $("input-caption").textContent = `input ${job.input.width}×${job.input.height}`;
  }
  if (job.status !== "done" && isArt(job)) {  // the still it draws, small, until the result is there
    $("preview").src = job.urls.thumb;
    $("preview").alt = `Small still of ${job.label}, shown while the ${artWhat(job)} renders`;
    $("preview-caption").textContent = `small still, while the ${job.kind === "art-poster" ? "poster" : "animation"} renders`;
  } else if (job.status !== "done") {  // a finished job shows its result as soon as its events answer
    $("preview").src = `/api/jobs/${job.id}/bicubic-now.png`;
    $("preview").alt = `Bicubic upscale of ${job.label}, shown while ${job.method} works`;
    $("preview-caption").textContent = "bicubic, while the method works";
  }
  $("job-choice").textContent = job.choice || "";  // which model ran and why, in plain words
  $("job-choice").hidden = !job.choice;
  $("stats").textContent = "";
  $("bar").value = 0;
  $("live").hidden = false;
  $("cancel").hidden = false; $("cancel").disabled = false; $("cancel").textContent = "Cancel";
  $("keep").hidden = !method.fits_field; $("keep").disabled = job.status !== "running";  // nothing to keep yet
  $("keep").textContent = "Stop and keep the current result";
  $("curve").closest("figure").hidden = !method.fits_field;
  setStatus(job);
  updateBatch();
  drawCurve();
  if (job.status === "queued") watchQueue(job);
  if (job.status === "queued" || job.status === "running") startTicker(job);
  const es = new EventSource(job.urls.events);
  state.events = es;
  es.addEventListener("state", (e) => {
    const data = JSON.parse(e.data);
    if (state.job.id !== job.id) return;
    state.job = data.job;
    state.history = data.history || [];
    if (data.job.status === "running" && !$("cancel").disabled) $("keep").disabled = false;
    if (data.preview) setPreview(data.preview);
    if (data.last) showProgress(data.last);
    setStatus(data.job);
    drawCurve();
  });
  es.addEventListener("status", (e) => {
    state.job.status = JSON.parse(e.data).status;
    if (state.job.status === "running") {
      if (state.queuePoll) { clearInterval(state.queuePoll); state.queuePoll = null; }
      if ($("keep").textContent.startsWith("Stop and keep") && !$("cancel").disabled) $("keep").disabled = false;
    }
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
    stopTimers();
    const ended = JSON.parse(e.data);
    if (state.job.id !== ended.id) return;
    state.job = ended;
    setStatus(ended);
    $("cancel").disabled = true; $("keep").disabled = true;
    if (ended.status === "done") showResult(ended);
    else if (ended.status === "failed") showError(`Job ${ended.label} (${ended.method}) failed: ${ended.error}`);
    loadGallery();
  });
  es.onerror = () => {
    // EventSource reconnects by itself (the server then sends a fresh snapshot); say so meanwhile.
    if (state.events === es && es.readyState === EventSource.CONNECTING) {
      $("stats").textContent = "connection lost, reconnecting…";
    }
  };
}

function startTicker(job) {
  // Methods without step reports (pretrained, zeroshot) still show that time passes.
  const t0 = Date.now();
  state.ticker = setInterval(() => {
    if (!state.job || state.job.id !== job.id || state.history.length) return;
    if (state.job.status === "running" && !state.lastProgressAt) {
      $("stats").textContent = `working… ${fmtSeconds((Date.now() - t0) / 1000)}`;
      $("bar").removeAttribute("value");  // indeterminate until the method reports
    }
  }, 500);
  state.lastProgressAt = null;
}

function watchQueue(job) {
  const ask = async () => {
    try {
      const q = await api("/api/queue");
      const i = q.queued.indexOf(job.id);
      if (state.job && state.job.id === job.id && state.job.status === "queued" && i >= 0) {
        setStatus(state.job, `${ordinal(i + 1)} in line, ${q.running.length} running`);
      }
    } catch (err) { /* the status line keeps its last value */ }
  };
  ask();
  state.queuePoll = setInterval(ask, 1500);
}

function setPreview(url) {
  $("preview").src = url;
  $("preview").alt = `Current result of ${state.job.method} on ${state.job.label}`;
  $("preview-caption").textContent = "current result";
  window.coordsr.previews += 1;
  if (window.coordsr.firstPreviewMs === null && state.submittedAt) {
    window.coordsr.firstPreviewMs = performance.now() - state.submittedAt;
  }
}

function showProgress(p) {
  state.lastProgressAt = Date.now();
  if (p.stage === "render") {
    $("stats").textContent = `drawing the output: ${Math.round(100 * p.step / p.total)}%` +
      (p.tiles ? ` (tile ${p.tile} of ${p.tiles})` : p.total > 1 && p.total < 1000 ? ` (tile ${p.step} of ${p.total})` : "") +
      (p.eta !== null && p.eta !== undefined ? ` · time left ${fmtSeconds(p.eta)}` : "");
  } else if (p.stage === "frame") {
    $("stats").textContent = `frame ${p.step} of ${p.total} · elapsed ${fmtSeconds(p.elapsed)} · time left ${fmtSeconds(p.eta)}`;
  } else {
    const parts = [`step ${p.step} / ${p.total}`];
    if (p.psnr !== null && p.psnr !== undefined) parts.push(`fit to the input ${p.psnr.toFixed(2)} dB`);
    parts.push(`elapsed ${fmtSeconds(p.elapsed)}`, `time left ${fmtSeconds(p.eta)}`);
    $("stats").textContent = parts.join(" · ");
  }
  $("bar").value = p.total ? p.step / p.total : 0;
}

$("cancel").addEventListener("click", async () => {
  if (!state.job) return;
  $("cancel").disabled = true; $("keep").disabled = true;
  $("cancel").textContent = "Cancelling…";
  $("job-status").textContent = "cancelling…";
  try { await api(`/api/jobs/${state.job.id}/cancel`, { method: "POST" }); }
  catch (err) { showError(err.message); }
});

$("keep").addEventListener("click", async () => {
  if (!state.job) return;
  $("keep").disabled = true; $("cancel").disabled = true;
  $("keep").textContent = "Stopping, keeping the result…";
  $("job-status").textContent = "stopping at the next step report, then drawing the output…";
  try { await api(`/api/jobs/${state.job.id}/stop`, { method: "POST" }); }
  catch (err) { showError(err.message); $("keep").disabled = false; $("cancel").disabled = false; }
});

function cssVar(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

// The loss (log scale, left) and the fit to the input (right) against the step, on a canvas.
function drawCurve() {
  const canvas = $("curve");
  const ratio = window.devicePixelRatio || 1;
  const cssW = canvas.clientWidth || 320, cssH = canvas.clientHeight || 200;
  canvas.width = cssW * ratio; canvas.height = cssH * ratio;
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, cssW, cssH);
  const pad = { l: 46, r: 46, t: 10, b: 24 };
  const W = cssW - pad.l - pad.r, H = cssH - pad.t - pad.b;
  const loss = cssVar("--loss"), psnr = cssVar("--psnr");
  g.strokeStyle = cssVar("--line"); g.strokeRect(pad.l, pad.t, W, H);
  g.font = "11px system-ui, sans-serif"; g.fillStyle = cssVar("--muted");
  const pts = state.history.filter((p) => p.loss !== null && p.loss > 0);
  if (!pts.length) {
    const waiting = state.job && state.job.status === "queued" ? "waiting for a worker…" : "the curve starts with the first report…";
    g.fillText(waiting, pad.l + 10, pad.t + 20);
    return;
  }
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
  g.fillStyle = loss;
  g.fillText(`1e${l1.toFixed(1)}`, pad.l - 4, pad.t + 10); g.fillText(`1e${l0.toFixed(1)}`, pad.l - 4, pad.t + H);
  g.strokeStyle = loss; g.lineWidth = 1.5; g.beginPath();
  pts.forEach((p, i) => {
    const y = pad.t + H * (1 - (logs[i] - l0) / (l1 - l0));
    i ? g.lineTo(x(p.step), y) : g.moveTo(x(p.step), y);
  });
  g.stroke();
  if (psnrs.length) {
    const [p0, p1] = range(psnrs);
    g.textAlign = "left"; g.fillStyle = psnr;
    g.fillText(`${p1.toFixed(1)} dB`, pad.l + W + 4, pad.t + 10); g.fillText(`${p0.toFixed(1)} dB`, pad.l + W + 4, pad.t + H);
    g.strokeStyle = psnr; g.beginPath();
    let first = true;
    for (const p of pts) {
      if (p.psnr === null || !isFinite(p.psnr)) continue;
      const y = pad.t + H * (1 - (p.psnr - p0) / (p1 - p0));
      first ? g.moveTo(x(p.step), y) : g.lineTo(x(p.step), y);
      first = false;
    }
    g.stroke();
  }
  const last = pts[pts.length - 1];
  canvas.setAttribute("aria-label", `Loss and fit curve: step ${last.step} of ${last.total}` +
    (last.psnr ? `, fit to the input ${last.psnr.toFixed(1)} dB` : ""));
}
window.addEventListener("resize", () => { if (!$("job").hidden) drawCurve(); });

// --- one job: result -----------------------------------------------------------------------------

function resetResult() {
  $("result").hidden = true;
  const field = $("download-field");
  field.hidden = true;
  field.removeAttribute("href");
  $("download-result").removeAttribute("href");
  $("before").removeAttribute("src"); $("after").removeAttribute("src");
  $("before-choice").innerHTML = "";
  $("twin-choice").length = 1;
  $("twin-choice").closest("label").hidden = true;
  closeTwin();
  if (state.viewer) { state.viewer.destroy(); state.viewer = null; }
}

function showResult(job) {
  $("live").hidden = false;
  $("preview").src = job.urls.result;
  $("preview").alt = isArt(job) ? `The ${artWhat(job)} ${job.label}, ${job.output.width}×${job.output.height}`
    : `Result of ${job.method} on ${job.label}`;
  $("preview-caption").textContent = `result ${job.output.width}×${job.output.height}`;
  const last = state.history[state.history.length - 1];
  $("stats").textContent = last ? `${last.step} steps` : "";
  $("bar").value = 1;
  $("cancel").disabled = true; $("keep").disabled = true;
  $("keep").hidden = true;
  $("cancel").hidden = true;
  $("result").hidden = false;
  $("compare-part").hidden = $("zoom-part").hidden = isArt(job);  // an art job's result stands alone
  if (isArt(job)) { setupDownloads(job); return; }
  $("after").src = job.urls.result;
  $("after").alt = `Result of ${job.method} on ${job.label}, ${job.output.width}×${job.output.height}`;
  $("after-tag").textContent = job.method;
  setupComparison(job);
  setupDownloads(job);
  openViewer(job);
}

function setupDownloads(job) {
  const format = $("format");
  const png16 = format.querySelector("option[value=png16]");
  png16.disabled = !(job.has_field || (job.input && job.input.bit_depth === 16));
  if (png16.disabled && format.value === "png16") format.value = "png";
  const gif = job.kind === "art-animation";  // a GIF has one format
  $("format-label").hidden = gif;
  $("download-result").textContent = gif ? "Download the GIF" : "Download the image";
  const update = () => {
    const f = gif ? "gif" : format.value, q = $("quality").value || 92;
    $("quality-label").hidden = !(f === "jpeg" || f === "webp");
    const link = $("download-result");
    if (f === "png" || f === "gif") {
      link.href = job.urls.result_download;
      link.setAttribute("download", "");  // the server names it (Content-Disposition)
    } else {
      link.href = `/api/jobs/${job.id}/export?format=${f}&quality=${encodeURIComponent(q)}`;
      link.setAttribute("download", "");
    }
    $("format-hint").textContent = {
      gif: "A looping GIF (each frame its own 256 colours).",
      png: isArt(job) ? "PNG with the picture's settings in a text chunk: coordsr art --from it --size 7680x4320 draws it again, larger."
        : `PNG at the input's bit depth (${job.input.bit_depth}).`,
      png16: job.has_field ? "16-bit PNG: the field drawn again at 16 bits (takes a moment for large outputs)." : "16-bit PNG of the 16-bit result.",
      jpeg: "JPEG has no transparency: transparent parts are put on white.",
      webp: "WebP, lossy at this quality.",
      tiff: "TIFF, lossless, at the input's bit depth.",
    }[f];
  };
  format.onchange = update;
  $("quality").oninput = update;
  update();
  // Defect 4: the link always belongs to the job shown, and only when it has a field.
  const field = $("download-field");
  field.hidden = !job.urls.field;
  if (job.urls.field) field.href = job.urls.field; else field.removeAttribute("href");
}

// --- the comparison: two images of one output, a divider, zoom and pan -------------------------------

const cmp = { scale: 1, tx: 0, ty: 0, fit: 1, w: 0, h: 0, drag: null };

async function setupComparison(job) {
  cmp.w = job.output.width; cmp.h = job.output.height;
  $("compare").style.aspectRatio = `${cmp.w} / ${cmp.h}`;
  const choice = $("before-choice");
  choice.innerHTML = "";
  choice.add(new Option("bicubic (same size)", job.urls.bicubic));
  choice.onchange = () => {
    $("before").src = choice.value;
    const label = choice.selectedOptions[0].dataset.method || "bicubic";
    $("before-tag").textContent = label;
    $("before").alt = `${label} on ${job.label}, the left side of the comparison`;
  };
  choice.onchange();
  fitComparison();
  try {
    const { peers } = await api(`/api/jobs/${job.id}/peers`);
    if (!state.job || state.job.id !== job.id) return;
    fillTwinChoice(job, peers);
    for (const p of peers) {
      const steps = p.settings && p.settings.steps ? `, ${p.settings.steps} steps` : "";
      const o = new Option(`${p.method}${steps} (another job of this image)`, p.result);
      o.dataset.method = p.method;
      choice.add(o);
    }
  } catch (err) { /* bicubic alone is still a comparison */ }
}

function applyComparison() {
  for (const id of ["before", "after"]) {
    const img = $(id);
    img.style.width = `${cmp.w}px`; img.style.height = `${cmp.h}px`;
    img.style.transform = `translate(${cmp.tx}px, ${cmp.ty}px) scale(${cmp.scale})`;
    img.classList.toggle("pixelated", cmp.scale >= 1.5);
  }
  const perInput = cmp.scale * cmp.w / (state.job ? state.job.input.width : cmp.w);
  $("cmp-zoom").textContent = `${Math.round(cmp.scale * 100)}% of full resolution (${cmp.scale.toFixed(2)} screen px per output px, ${perInput.toFixed(1)} per input px)`;
}

function fitComparison() {
  const box = $("compare").getBoundingClientRect();
  cmp.fit = Math.min(box.width / cmp.w, (box.height || box.width) / cmp.h) || 1;
  cmp.scale = cmp.fit; cmp.tx = 0; cmp.ty = 0;
  clampPan();
  applyComparison();
}

function zoomComparison(factor, cx, cy) {
  const box = $("compare").getBoundingClientRect();
  if (cx === undefined) { cx = box.width / 2; cy = box.height / 2; }
  const next = Math.min(64, Math.max(cmp.fit, cmp.scale * factor));
  // keep the image point under (cx, cy) where it is
  cmp.tx = cx - (cx - cmp.tx) * next / cmp.scale;
  cmp.ty = cy - (cy - cmp.ty) * next / cmp.scale;
  cmp.scale = next;
  clampPan();
  applyComparison();
}

function clampPan() {
  const box = $("compare").getBoundingClientRect();
  const w = cmp.w * cmp.scale, h = cmp.h * cmp.scale;
  // an image narrower (or lower) than the box is centred; a larger one cannot leave a gap
  cmp.tx = w <= box.width ? (box.width - w) / 2 : Math.min(0, Math.max(box.width - w, cmp.tx));
  cmp.ty = h <= box.height ? (box.height - h) / 2 : Math.min(0, Math.max(box.height - h, cmp.ty));
}

function setSlider(v) {
  v = Math.max(0, Math.min(100, v));
  $("after-layer").style.clipPath = `inset(0 0 0 ${v}%)`;
  $("divider").style.left = `${v}%`;
  if (Number($("slider").value) !== Math.round(v)) $("slider").value = Math.round(v);
}
$("slider").addEventListener("input", (e) => setSlider(Number(e.target.value)));
$("cmp-in").addEventListener("click", () => zoomComparison(2));
$("cmp-out").addEventListener("click", () => zoomComparison(0.5));
$("cmp-fit").addEventListener("click", fitComparison);
$("cmp-1to1").addEventListener("click", () => zoomComparison(1 / cmp.scale));
$("compare").addEventListener("wheel", (e) => {
  e.preventDefault();
  const box = $("compare").getBoundingClientRect();
  zoomComparison(e.deltaY < 0 ? 1.25 : 0.8, e.clientX - box.left, e.clientY - box.top);
}, { passive: false });
$("compare").addEventListener("pointerdown", (e) => {
  const box = $("compare").getBoundingClientRect();
  const divider = box.left + box.width * Number($("slider").value) / 100;
  const onDivider = Math.abs(e.clientX - divider) < 16 || cmp.scale <= cmp.fit * 1.001;
  cmp.drag = { divider: onDivider, x: e.clientX, y: e.clientY, tx: cmp.tx, ty: cmp.ty, box };
  $("compare").setPointerCapture(e.pointerId);
  if (onDivider) setSlider(100 * (e.clientX - box.left) / box.width);
});
$("compare").addEventListener("pointermove", (e) => {
  const d = cmp.drag;
  if (!d) return;
  if (d.divider) { setSlider(100 * (e.clientX - d.box.left) / d.box.width); return; }
  cmp.tx = d.tx + e.clientX - d.x; cmp.ty = d.ty + e.clientY - d.y;
  clampPan();
  applyComparison();
});
for (const name of ["pointerup", "pointercancel"]) $("compare").addEventListener(name, () => { cmp.drag = null; });
window.addEventListener("resize", () => { if (!$("result").hidden && cmp.w) fitComparison(); });

// --- the deep-zoom viewer ---------------------------------------------------------------------------

function makeViewer(element, v) {
  const template = v.tiles;
  return OpenSeadragon({
    element,
    prefixUrl: "/static/vendor/openseadragon/images/",
    drawer: "canvas",
    showNavigator: true,
    navigatorPosition: "BOTTOM_RIGHT",
    showNavigationControl: false,  // our own buttons above the viewer are real, focusable buttons
    maxZoomPixelRatio: 2,
    visibilityRatio: 0.5,
    imageSmoothingEnabled: false,
    tileSources: {
      width: v.width, height: v.height, tileSize: v.tileSize, minLevel: v.minLevel, maxLevel: v.maxLevel,
      getTileUrl: (level, x, y) =>
        template.replace("{level}", level).replace("{x}", x).replace("{y}", y),
    },
  });
}

function openViewer(job) {
  closeTwin();
  if (state.viewer) { state.viewer.destroy(); state.viewer = null; }
  const v = job.viewer;
  state.viewer = makeViewer($("viewer"), v);
  state.viewer.addHandler("animation", () => syncViewers(state.viewer, state.twin));
  window.coordsr.viewer = state.viewer;
  state.viewer.addHandler("tile-loaded", () => { window.coordsr.tilesLoaded += 1; });
  state.viewer.addHandler("tile-drawn", () => { window.coordsr.tilesDrawn += 1; });
  state.viewer.addHandler("tile-load-failed", (e) => console.warn("tile failed", e.message));
  const hint = () => {
    const vp = state.viewer.viewport;
    const imageZoom = vp.viewportToImageZoom(vp.getZoom(true));  // screen px per virtual px
    const perInput = imageZoom * v.width / job.input.width;     // screen px per input pixel
    $("zoom-hint").textContent =
      `Scroll, pinch or use the buttons to zoom: one input pixel is now ${perInput.toFixed(perInput < 10 ? 2 : 0)} screen pixels` +
      (job.has_field ? "; deeper tiles are drawn by the field on demand." : "; tiles are resampled from the output.");
  };
  state.viewer.addHandler("open", hint);
  state.viewer.addHandler("animation", hint);
}
$("osd-in").addEventListener("click", () => state.viewer && state.viewer.viewport.zoomBy(2));
$("osd-out").addEventListener("click", () => state.viewer && state.viewer.viewport.zoomBy(0.5));
$("osd-home").addEventListener("click", () => state.viewer && state.viewer.viewport.goHome());
$("osd-full").addEventListener("click", () => state.viewer && state.viewer.setFullScreen(true));

// A second viewer of another result of the same image, moving with the first (either leads).
function syncViewers(from, to) {
  if (!from || !to || state.syncing) return;
  state.syncing = true;
  to.viewport.fitBounds(from.viewport.getBounds(true), true);
  state.syncing = false;
}

function closeTwin() {
  if (state.twin) { state.twin.destroy(); state.twin = null; }
  $("twin").hidden = true;
  window.coordsr.twin = null;
}

async function fillTwinChoice(job, peers) {
  const choice = $("twin-choice");
  choice.length = 1;  // keep "nothing"
  for (const p of peers) {
    const o = new Option(`${p.method}${p.settings && p.settings.steps ? `, ${p.settings.steps} steps` : ""}`, p.id);
    choice.add(o);
  }
  choice.closest("label").hidden = peers.length === 0;
  choice.value = "";
}

$("twin-choice").addEventListener("change", async () => {
  closeTwin();
  const id = $("twin-choice").value;
  if (!id || !state.viewer) return;
  let other;
  try { other = await api(`/api/jobs/${id}`); } catch (err) { showError(err.message); return; }
  if (!other.viewer) return;
  $("twin").hidden = false;
  state.twin = makeViewer($("twin"), other.viewer);
  window.coordsr.twin = state.twin;
  state.twin.addHandler("open", () => syncViewers(state.viewer, state.twin));
  state.twin.addHandler("animation", () => syncViewers(state.twin, state.viewer));
  $("twin").setAttribute("aria-label", `Deep zoom viewer of ${other.method}'s result, moving with the first`);
});

// --- gallery ------------------------------------------------------------------------------------

async function loadGallery() {
  let jobs, queue = { queued: [], running: [] };
  try {
    jobs = (await api("/api/jobs")).jobs;
    if (jobs.some((j) => j.status === "queued")) queue = await api("/api/queue");
  } catch (err) { showError(err.message); return; }
  state.jobs = jobs;
  const ids = new Set(jobs.map((j) => j.id));
  for (const id of [...state.selected]) if (!ids.has(id)) state.selected.delete(id);
  // Redraw only when something changed: a redraw under a keyboard user's focus would lose it.
  const signature = JSON.stringify([jobs.map((j) => [j.id, j.status, j.finished]), queue.queued]);
  if (signature !== state.gallerySignature) {
    state.gallerySignature = signature;
    renderGallery(queue);
  }
  updateBatch();
  const active = jobs.some((j) => j.status === "queued" || j.status === "running");
  if (active && !state.galleryPoll) state.galleryPoll = setInterval(loadGallery, 3000);
  if (!active && state.galleryPoll) { clearInterval(state.galleryPoll); state.galleryPoll = null; }
}

function shownJobs() {
  const text = $("gallery-filter").value.trim().toLowerCase();
  const status = $("gallery-status").value;
  return state.jobs.filter((j) => {
    if (text && !`${j.label} ${j.method} ${isArt(j) ? artWhat(j) : ""}`.toLowerCase().includes(text)) return false;
    if (status === "active") return j.status === "queued" || j.status === "running";
    if (status === "failed") return j.status === "failed" || j.status === "cancelled";
    return !status || j.status === status;
  });
}

function renderGallery(queue) {
  const box = $("gallery");
  const focused = document.activeElement && document.activeElement.closest(".job-card") ? document.activeElement : null;
  const refocus = focused && [focused.closest(".job-card").dataset.id, focused.dataset.role];
  box.innerHTML = "";
  const jobs = shownJobs();
  $("gallery-empty").hidden = jobs.length > 0;
  $("gallery-empty").textContent = state.jobs.length ? "No job matches." : "No jobs yet.";
  for (const job of jobs) {
    const card = document.createElement("div");
    card.className = "job-card";
    card.dataset.id = job.id;
    const pick = document.createElement("input");
    pick.type = "checkbox"; pick.className = "pick"; pick.dataset.role = "pick";
    pick.checked = state.selected.has(job.id);
    pick.setAttribute("aria-label", `Select ${jobName(job)}`);
    pick.addEventListener("change", () => {
      if (pick.checked) state.selected.add(job.id); else state.selected.delete(job.id);
      updateSelection();
    });
    const img = document.createElement("img");
    const done = job.status === "done";
    // an animation's card shows its small still: a moving gallery would distract
    img.src = done && job.kind !== "art-animation" ? `/api/jobs/${job.id}/result-thumb.png` : job.urls.thumb;
    img.alt = isArt(job) ? `The ${artWhat(job)} ${job.label} (${job.status})`
      : done ? `Result of ${job.method} on ${job.label}` : `Input ${job.label} (${job.status})`;
    img.loading = "lazy";
    const name = document.createElement("div");
    name.className = "name"; name.textContent = job.label; name.title = job.label;
    const meta = document.createElement("div");
    meta.className = "meta";
    const took = job.finished && job.started ? ` · took ${fmtSeconds(job.finished - job.started)}` : "";
    meta.textContent = isArt(job) ? `${artWhat(job)} · ${job.output.width}×${job.output.height}`
      : `${job.method} · ${scaleOf(job)} · ${job.output.width}×${job.output.height}`;
    const when = document.createElement("div");
    when.className = "meta";
    when.textContent = `${fmtTime(job.created)}${took}`;
    const badge = document.createElement("span");
    badge.className = `badge ${job.status}`;
    const pos = queue.queued.indexOf(job.id);
    badge.textContent = job.status === "queued" && pos >= 0 ? `queued, ${ordinal(pos + 1)} in line` : job.status;
    if (job.error) badge.title = job.error;
    const row = document.createElement("div");
    row.className = "row";
    const open = document.createElement("button");
    open.type = "button"; open.className = "secondary open small"; open.dataset.role = "open"; open.textContent = "Open";
    open.setAttribute("aria-label", `Open ${jobName(job)}`);
    open.addEventListener("click", () => showJob(job.id));
    const del = document.createElement("button");
    del.type = "button"; del.className = "danger delete small"; del.dataset.role = "delete"; del.textContent = "Delete";
    del.setAttribute("aria-label", `Delete ${jobName(job)}`);
    del.addEventListener("click", () => deleteJobs([job.id], `Delete ${jobName(job)}?`));
    row.append(open, del);
    const top = document.createElement("div");
    top.className = "row"; top.append(pick, badge);
    card.append(top, img, name, meta, when, row);
    box.append(card);
  }
  if (refocus) {  // the same control of the same job keeps the focus across a redraw
    const again = box.querySelector(`.job-card[data-id="${refocus[0]}"] [data-role="${refocus[1]}"]`);
    if (again) again.focus();
  }
  updateSelection();
}
$("gallery-filter").addEventListener("input", () => renderGallery({ queued: [], running: [] }));
$("gallery-status").addEventListener("change", () => renderGallery({ queued: [], running: [] }));

function updateSelection() {
  const n = state.selected.size;
  const doneSelected = state.jobs.filter((j) => state.selected.has(j.id) && j.status === "done").length;
  $("delete-selected").disabled = n === 0;
  $("zip-selected").disabled = doneSelected === 0;
  $("selection-note").textContent = n ? `${n} selected${doneSelected < n ? ` (${doneSelected} finished)` : ""}` : "";
}
$("select-all").addEventListener("click", () => {
  for (const j of shownJobs()) state.selected.add(j.id);
  renderGallery({ queued: [], running: [] });
});
$("delete-selected").addEventListener("click", () => {
  const ids = [...state.selected];
  deleteJobs(ids, `Delete ${ids.length} job${ids.length > 1 ? "s" : ""} and their files?`);
});
$("zip-selected").addEventListener("click", () => {
  const ids = state.jobs.filter((j) => state.selected.has(j.id) && j.status === "done").map((j) => j.id);
  downloadZip(ids);
});

function downloadZip(ids) {
  const a = document.createElement("a");
  a.href = `/api/zip?ids=${ids.join(",")}`;
  a.download = "coordsr-results.zip";
  document.body.append(a); a.click(); a.remove();
}

async function deleteJobs(ids, question) {
  if (!confirm(question)) return;
  for (const id of ids) {
    try {
      await api(`/api/jobs/${id}`, { method: "DELETE" });
      state.selected.delete(id);
      if (state.job && state.job.id === id) closeJob();
    } catch (err) { showError(err.message); }
  }
  loadGallery();
}

function updateBatch() {
  const el = $("batch");
  if (!state.batch.length || !state.job || !state.batch.includes(state.job.id)) { el.hidden = true; return; }
  const jobs = state.batch.map((id) => state.jobs.find((j) => j.id === id)).filter(Boolean);
  const done = jobs.filter((j) => j.status === "done");
  el.hidden = false;
  el.innerHTML = "";
  el.append(`This job is one of a batch of ${state.batch.length}: ${done.length} done. `);
  if (done.length) {
    const b = document.createElement("button");
    b.type = "button"; b.className = "secondary small"; b.id = "batch-zip";
    b.textContent = `Download the ${done.length} finished result${done.length > 1 ? "s" : ""} (zip)`;
    b.addEventListener("click", () => downloadZip(done.map((j) => j.id)));
    el.append(b);
  }
}

function closeJob() {
  if (state.events) { state.events.close(); state.events = null; }
  stopTimers();
  resetResult();
  state.job = null;
  $("job").hidden = true;
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
}

// --- start ----------------------------------------------------------------------------------------

document.addEventListener("submit", () => { state.submittedAt = performance.now(); }, true);

(async function main() {
  try { await loadMethods(); } catch (err) { showError(`Cannot reach the server: ${err.message}`); }
  loadExamples().catch(() => { /* examples are a convenience */ });
  await loadGallery();
  const m = location.hash.match(/^#job\/([0-9a-f]{16})$/);
  if (m) routeTo(m[1]);
  document.body.dataset.ready = "1";
})();
