// The Art tab: settings -> a live preview (small at once, then full size, drawn while it waits);
// posters and GIFs are jobs of the server's queue (POST /api/art/posters, /api/art/animations),
// followed here through their event streams and kept in the main page's gallery.
"use strict";

const $ = (id) => document.getElementById(id);
const SETTINGS = ["seed", "depth", "width", "activation", "palette", "symmetry", "fold", "weight_scale", "zoom"];
let limits = null;
let previewAbort = null;
let fullTimer = null;

function showError(text) {
  $("error-text").textContent = text;
  $("error").hidden = false;
}

function settingsQuery(extra) {
  const q = new URLSearchParams();
  for (const name of SETTINGS) q.set(name, $(name).value);
  for (const [k, v] of Object.entries(extra || {})) q.set(k, v);
  return q.toString();
}

async function fetchBlob(url, signal) {
  const r = await fetch(url, { signal });
  if (!r.ok) {
    let detail = r.statusText;
    try { detail = (await r.json()).detail; } catch (e) { /* not JSON */ }
    throw new Error(detail);
  }
  return r.blob();
}

function setPreview(blob, label) {
  const img = $("art-preview");
  if (img.dataset.url) URL.revokeObjectURL(img.dataset.url);
  img.dataset.url = URL.createObjectURL(blob);
  img.src = img.dataset.url;
  img.dataset.stage = label;
  $("preview-status").textContent = label;
}

// Small render at once (cheap), then the full preview when the sliders rest.
async function updatePreview() {
  for (const name of SETTINGS) {
    const out = $(name + "-out");
    if (out) out.textContent = $(name).value;
  }
  if (previewAbort) previewAbort.abort();
  clearTimeout(fullTimer);
  previewAbort = new AbortController();
  const signal = previewAbort.signal;
  try {
    setPreview(await fetchBlob(`/api/art/image.png?${settingsQuery({ w: 96, h: 96 })}`, signal), "preview 96x96");
    fullTimer = setTimeout(async () => {
      try {
        setPreview(await fetchBlob(`/api/art/image.png?${settingsQuery({ w: 512, h: 512 })}`, signal), "512x512");
      } catch (e) { if (e.name !== "AbortError") showError(e.message); }
    }, 350);
  } catch (e) {
    if (e.name !== "AbortError") showError(e.message);
  }
}

function settingsBody(extra) {
  const body = {};
  for (const name of SETTINGS) {
    const el = $(name);
    body[name] = el.tagName === "SELECT" ? el.value : Number(el.value);
  }
  return { ...body, ...extra };
}

function link(href, text, label) {
  const a = document.createElement("a");
  a.href = href;
  a.textContent = text;
  if (label) a.setAttribute("aria-label", label);
  return a;
}

// The line under the buttons (a polite live region): what became of the last job, and its link.
function note(text, job) {
  $("job-note").textContent = "";
  $("job-note").append(`${text}; `, link(`/#job/${job.id}`, "open it in the gallery"), ".");
}

// One job of this tab: its still, then its result; its status and progress from its events.
function followJob(job, caption) {
  const item = document.createElement("li");
  item.className = "art-item";
  item.dataset.id = job.id;
  item.dataset.status = job.status;
  const img = document.createElement("img");
  img.src = job.urls.thumb;
  img.alt = `Small still of ${caption}`;
  const name = document.createElement("div");
  name.textContent = caption;
  const status = document.createElement("div");
  status.className = "hint";
  status.textContent = job.status;
  const bar = document.createElement("progress");
  bar.max = 1; bar.value = 0;
  bar.setAttribute("aria-label", `Progress of ${caption}`);
  const links = document.createElement("div");
  links.append(link(`/#job/${job.id}`, "Open in the gallery", `Open ${caption} in the gallery of the main page`));
  item.append(img, name, status, bar, links);
  $("art-gallery").prepend(item);

  const events = new EventSource(job.urls.events);
  events.addEventListener("status", (e) => { status.textContent = JSON.parse(e.data).status; });
  events.addEventListener("progress", (e) => {
    const p = JSON.parse(e.data);
    bar.value = p.total ? p.step / p.total : 0;
    status.textContent = p.stage === "frame" ? `frame ${p.step} of ${p.total}`
      : p.tiles ? `tile ${p.tile} of ${p.tiles}` : `${Math.round(100 * bar.value)}%`;
  });
  events.addEventListener("end", (e) => {
    events.close();
    const ended = JSON.parse(e.data);
    item.dataset.status = ended.status;
    status.textContent = ended.status === "done" ? "done" : `${ended.status}: ${ended.error || ""}`;
    bar.value = ended.status === "done" ? 1 : bar.value;
    note(`${caption}: ${ended.status}`, job);
    if (ended.status !== "done") return;
    // a poster may be 4096 pixels wide: its gallery thumbnail here; a GIF is small, and moves
    img.src = job.kind === "art-poster" ? `/api/jobs/${job.id}/result-thumb.png` : ended.urls.result;
    img.alt = caption;
    img.dataset.result = ended.urls.result;
    links.append(" · ", link(ended.urls.result_download, "Download", `Download ${caption}`));
  });
}

async function submitJob(button, path, body, caption) {
  button.disabled = true;
  try {
    const r = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" },
                                  body: JSON.stringify(body) });
    if (!r.ok) {
      let detail = `${r.status} ${r.statusText}`;
      try { detail = (await r.json()).detail || detail; } catch (e) { /* not JSON */ }
      throw new Error(detail);
    }
    const job = await r.json();
    $("error").hidden = true;
    followJob(job, caption);
    note(`${caption} is queued as job ${job.label}`, job);
  } catch (e) {
    showError(e.message);
  } finally {
    button.disabled = false;
  }
}

function fillSelect(id, values, chosen) {
  const sel = $(id);
  for (const v of values) {
    const opt = document.createElement("option");
    opt.value = opt.textContent = v;
    if (v === chosen) opt.selected = true;
    sel.appendChild(opt);
  }
}

async function start() {
  $("error-close").onclick = () => { $("error").hidden = true; };
  const options = await (await fetch("/api/art/options")).json();
  limits = options.limits;
  fillSelect("activation", options.activations, "tanh");
  fillSelect("palette", options.palettes, "rgb");
  fillSelect("symmetry", options.symmetries, "none");
  fillSelect("anim-kind", options.animations, "latent");
  const side = Math.floor(Math.sqrt(limits.max_job_pixels));
  $("limits").textContent = `Posters up to ${side}×${side} pixels, animations up to ${limits.max_job_frames} frames ` +
    `of ${limits.max_job_frame_pixels.toLocaleString()} pixels (e.g. ${Math.floor(Math.sqrt(limits.max_job_frame_pixels))}×` +
    `${Math.floor(Math.sqrt(limits.max_job_frame_pixels))}); coordsr art on the command line has no such limit.`;
  for (const name of SETTINGS) $(name).addEventListener("input", updatePreview);
  $("shuffle").onclick = () => { $("seed").value = Math.floor(Math.random() * 1000); updatePreview(); };
  $("render-poster").onclick = () => {
    const w = Number($("poster-w").value), h = Number($("poster-h").value);
    submitJob($("render-poster"), "/api/art/posters", settingsBody({ w, h }),
      `poster, seed ${$("seed").value}, ${w}x${h}`);
  };
  $("render-animation").onclick = () => {
    const animation = $("anim-kind").value, frames = Number($("anim-frames").value);
    const w = Number($("anim-w").value), h = Number($("anim-h").value);
    submitJob($("render-animation"), "/api/art/animations", settingsBody({ animation, frames, w, h }),
      `animation, seed ${$("seed").value}, ${animation}, ${frames} frames`);
  };
  updatePreview();
}

start().catch((e) => showError(e.message));
