// The Art tab: settings -> a live preview (small at once, then full size), posters and GIFs
// rendered by the server's /api/art endpoints, shown in an in-page gallery.
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

function addToGallery(blob, caption, filename) {
  const url = URL.createObjectURL(blob);
  const fig = document.createElement("figure");
  fig.className = "art-item";
  const img = document.createElement("img");
  img.src = url;
  img.alt = caption;
  const cap = document.createElement("figcaption");
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  link.textContent = caption;
  cap.appendChild(link);
  fig.append(img, cap);
  $("art-gallery").prepend(fig);
}

async function render(button, url, caption, filename) {
  button.disabled = true;
  const before = button.textContent;
  button.textContent = "Rendering...";
  try {
    addToGallery(await fetchBlob(url), caption, filename);
  } catch (e) {
    showError(e.message);
  } finally {
    button.disabled = false;
    button.textContent = before;
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
  $("limits").textContent = `This page draws posters up to ${limits.max_pixels} pixels and animations up to ` +
    `${limits.max_frames} frames of ${limits.max_frame_pixels} pixels; coordsr art on the command line has no such limit.`;
  for (const name of SETTINGS) $(name).addEventListener("input", updatePreview);
  $("shuffle").onclick = () => { $("seed").value = Math.floor(Math.random() * 1000); updatePreview(); };
  $("render-poster").onclick = () => {
    const w = $("poster-w").value, h = $("poster-h").value;
    render($("render-poster"), `/api/art/image.png?${settingsQuery({ w, h })}`,
      `seed ${$("seed").value}, ${w}x${h}`, `art-${$("seed").value}-${w}x${h}.png`);
  };
  $("render-animation").onclick = () => {
    const kind = $("anim-kind").value, frames = $("anim-frames").value;
    render($("render-animation"), `/api/art/animation.gif?${settingsQuery({ kind, frames, w: 128, h: 128 })}`,
      `seed ${$("seed").value}, ${kind}, ${frames} frames`, `art-${$("seed").value}-${kind}.gif`);
  };
  updatePreview();
}

start().catch((e) => showError(e.message));
