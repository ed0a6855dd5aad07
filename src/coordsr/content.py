"""What an image shows, so that the right model upscales it: a photo, a drawing or pixel art.

    content = classify(pixels)      # (H, W, C) floats in [0, 1], C in 1..4
    content.kind                    # 'drawing'
    content.reason                  # 'drawing: transparent background, 23 colours, flat regions...'
    content.method                  # 'drawing': the registered method for it

A photo is then checked for compression and noise (``coordsr.quality``, ``--degradation auto``):
a compressed or noisy one goes to the blind model (``blind``), a clean one keeps ``pretrained``.

The decision uses a handful of measured features (:func:`measure`) a person can check by eye:

* **transparency**: the share of pixels that are (almost) fully transparent;
* **colours**: distinct 8-bit RGBA values of the visible pixels (alpha > 0);
* **common**: the share of visible pixels in the 16 commonest colours (2 levels of a grey image):
  flat regions;
* **rare**: the share of colours used by one or two pixels only (antialiasing's in-between colours);
* **blends**: of the strong edges (two pixels apart, differing a lot), the share whose middle
  pixel is a mix of the two: antialiasing (drawings, photos), absent in pixel art;
* **hard alpha**: alpha takes only the values 0 and 255 (pixel art); and the size.

(**flat**, the share of visible pixels equal to all four neighbours, was tried and left out: at
32 px an emoji with a transparent background is mostly edges (10th percentile 1% flat) while a
photo's black background is flat (90th percentile 16% at full size); **common** separates them.)

Images larger than MEASURE_SIDE are measured on every k-th row and column (k the smallest that
brings them within it), so a 64 Mpx input costs what a 512 px one does; the size feature is the
image's own.

Pixel art has a handful of colours, few of them rare, few blends and hard alpha; a drawing has
antialiased edges but large flat areas, a few colours covering most of it; a photo has many
colours and noise, so its commonest colours cover little of it.

Calibrated with ``benchmarks/content_calibration.py`` (``benchmarks/results/content_calibration.json``)
on training data only: the Emoji training split (``LR32`` as it is, flattened on white, also in
grey, and on a plain colour; ``HR512`` reduced to 64 and 128 px), T91 and BSD200 at full size
and reduced to 32, 64 and 128 px, in colour and in grey, and generated pixel art (1000 random
palette sprites, nearest-enlarged x1 to x4, and the emoji ``LR32`` quantized to 8 colours with
hard alpha). Confusion counts (rows: the truth; columns: classified photo / drawing / pixel-art):

    photo        2321 /    7 /    0    (black or blown-out backgrounds read as flat regions)
    drawing        71 / 6250 /    3    (night skies, sunsets: gradients; 47 of the 71 are grey)
    pixel-art       0 /    4 / 2050    (quantized gradients read as blends)

Known weak spot: a drawing saved as JPEG (quality 85) loses its flat regions to the codec's noise
and often reads as a photo (884 of 1054 at 32 px, 238 of 1054 at 128 px); ``--content drawing``
says it outright. No photo cut-outs (photos with a transparent background) were in the data.
The thresholds below are round numbers inside the gaps the calibration showed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from coordsr.quality import Assessment

KINDS = ("photo", "drawing", "pixel-art")
"""What :func:`classify` can say; ``--content`` takes these and ``auto``."""

CONTENT_CHOICES = ("auto", *KINDS)

PIXEL_ART_METHOD = "nearest"
"""Hard pixels kept on purpose: each output pixel copies one input pixel."""
DRAWING_METHOD = "drawing"
BLIND_METHOD = "blind"
"""Photos that arrive compressed, noisy or soft (``--degradation real``, or detected)."""

# --- thresholds (see the module docstring for the data behind them) -------------------------------

TRANSPARENT_SHARE = 0.02
"""A real transparent background: at least this share of pixels with alpha <= 12 of 255."""
COMMON_COLOURS = 16
"""How many of the commonest colours ``Features.common`` counts..."""
COMMON_GREYS = 2
"""...and of a grey image's levels: 256 levels in all, so 16 of them cover a fifth of a grey
photo (median; 65% at the 99th percentile) where 2 cover 4% (21%), against 67% (1st percentile
30%) of a grey drawing."""
DRAWING_COMMON = 0.35
"""An opaque drawing: its 16 commonest colours cover at least this share of it (flat regions).
Photos: median 3%, 99th percentile 34% (dark or blown-out backgrounds); drawings: median 81%."""
TRANSPARENT_DRAWING_COMMON = 0.10
"""The same with a transparent background (a photo cut out of its background would be below)."""
PIXEL_ART_COLOURS = 32
"""Pixel art has at most this many visible colours,"""
PIXEL_ART_RARE = 0.4
"""at most this share of them used by one or two pixels only (antialiasing makes many rare
in-between colours; a palette has few),"""
PIXEL_ART_BLENDS = 0.3
"""at most this share of its strong edges blended,"""
PIXEL_ART_SIDE = 512
"""hard alpha, and a longest side of at most this (sprites and their nearest enlargements)."""

MEASURE_SIDE = 512
"""Longest side measured; larger images are subsampled (every k-th row and column)."""
EDGE_STEP = 0.25
"""A strong edge: two pixels apart (left-right or up-down of a middle one) that differ by at
least this much (Euclidean, premultiplied RGBA in [0, 1])."""


@dataclass(frozen=True)
class Features:
    """The measured features :func:`classify` decides on."""

    height: int
    width: int
    alpha: bool
    """The image has an alpha channel."""
    transparent: float
    """Share of pixels that are (almost) fully transparent: alpha <= 12 of 255."""
    hard_alpha: bool
    """Alpha takes only 0 and 255 (or there is none)."""
    colours: int
    """Distinct 8-bit RGBA values among the visible pixels (alpha > 0)."""
    grey: bool
    """Every visible pixel has R = G = B."""
    common: float
    """Share of the visible pixels in the 16 commonest colours (grey: the 2 commonest levels),
    counting only colours used more than once: large flat regions."""
    rare: float
    """Share of the distinct colours used by one or two pixels only."""
    blends: float
    """Share of strong edges whose middle pixel is a mix of the two sides (antialiasing)."""

    @property
    def has_background(self) -> bool:
        """A real transparent background."""
        return self.alpha and self.transparent >= TRANSPARENT_SHARE


@dataclass(frozen=True)
class Content:
    """What an image shows: ``kind`` ('photo', 'drawing' or 'pixel-art'), why in plain words,
    and the features measured."""

    kind: str
    reason: str
    """e.g. 'drawing: transparent background, 14 colours, flat regions: 80% of it in 16 colours'."""
    features: Features | None = None
    """None when the kind was given (``--content drawing``), not measured."""
    degradation: Assessment | None = None
    """For a photo: clean, or compressed / noisy (``coordsr.quality``); None: not checked
    (``--degradation clean``, and every drawing and sprite)."""

    @property
    def method(self) -> str:
        """The registered method for this kind of picture."""
        return method_for(self.kind, self.degradation.kind if self.degradation else "clean")

    @property
    def degraded(self) -> bool:
        return self.degradation is not None and self.degradation.kind == "real"


def method_for(kind: str, degradation: str = "clean") -> str:
    """'photo' -> the default upscaler (``blind`` for a 'real' degradation), 'drawing' ->
    ``drawing``, 'pixel-art' -> ``nearest``."""
    from coordsr.defaults import DEFAULT_METHOD  # not the registry: it imports torch

    methods = {"photo": DEFAULT_METHOD, "drawing": DRAWING_METHOD, "pixel-art": PIXEL_ART_METHOD}
    try:
        method = methods[kind]
    except KeyError:
        raise ValueError(f"unknown content {kind!r}; valid: {', '.join(CONTENT_CHOICES)}") from None
    return BLIND_METHOD if kind == "photo" and degradation == "real" else method


def candidate_methods(method: str | None, content: str, degradation: str = "auto") -> tuple[str, ...] | None:
    """The methods a per-image choice may pick (each built once, up front), or None when the
    method is fixed before the image is seen: a named ``method``, or a named kind whose model
    does not depend on the image."""
    if method is not None:
        return None
    photo = (method_for("photo"), BLIND_METHOD) if degradation == "auto" else \
        (method_for("photo", degradation),)
    if content == "auto":
        return tuple(dict.fromkeys((*photo, DRAWING_METHOD, PIXEL_ART_METHOD)))
    if content == "photo" and degradation == "auto":
        return photo
    return None


def check_content(content: str) -> str:
    """``content`` when it is one of CONTENT_CHOICES; ValueError naming them otherwise (the CLI,
    the Python API and the web server all refuse an unknown kind through here)."""
    if content not in CONTENT_CHOICES:
        raise ValueError(f"content must be one of {', '.join(CONTENT_CHOICES)}, got {content!r}")
    return content


def named_method(method: str | None, content: str, degradation: str = "auto") -> str:
    """The method to set up before the image is seen: ``method`` when one is named (it wins over
    the content), else the one ``content`` and ``degradation`` name; 'auto' gives the clean photo
    model until the image, once measured, asks for another. ValueError for an unknown
    ``content`` or ``degradation``, or a degradation asked of a drawing or a sprite."""
    from coordsr.quality import check_degradation

    check_content(content)
    check_degradation(degradation)
    if content in ("drawing", "pixel-art") and degradation == "real":
        raise ValueError(f"degradation {degradation!r} is for photos; content {content!r} has its own model")
    if method is not None:
        return method
    return method_for("photo" if content == "auto" else content, "real" if degradation == "real" else "clean")


# --- measuring ----------------------------------------------------------------------------------


def _rgba8(image: np.ndarray) -> np.ndarray:
    """(H, W, C) floats in [0, 1], C in 1..4 -> (H, W, 4) uint8 straight-alpha RGBA."""
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 2:
        img = img[:, :, None]
    c = img.shape[2]
    rgb = img[:, :, :3] if c >= 3 else np.repeat(img[:, :, :1], 3, axis=2)
    a = img[:, :, -1:] if c in (2, 4) else np.ones_like(img[:, :, :1])
    q = np.rint(np.clip(np.nan_to_num(np.concatenate([rgb, a], axis=2)), 0, 1) * 255)
    return q.astype(np.uint8)


def _premultiplied(q: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 straight -> float32 premultiplied in [0, 1]: a transparent pixel is 0,
    whatever colour an editor left under it."""
    x = q.astype(np.float32) / 255
    return np.concatenate([x[..., :3] * x[..., 3:], x[..., 3:]], axis=2)


def _blend_share(q: np.ndarray) -> float:
    """Of the strong edges a - p - b (a and b two pixels apart, across or down), the share whose
    middle p is a mix of them: p = a + t (b - a) with t in [0.15, 0.85], off that line by under
    a quarter of |b - a|. An antialiased edge is such a mix; a hard pixel edge repeats a or b."""
    x = _premultiplied(q)
    shares = []
    for a, p, b in ((x[:, :-2], x[:, 1:-1], x[:, 2:]), (x[:-2], x[1:-1], x[2:])):
        d = (b - a).reshape(-1, 4)
        n2 = (d * d).sum(1)
        edge = n2 >= EDGE_STEP ** 2
        if not edge.any():
            continue
        d, n2 = d[edge], n2[edge]
        r = (p - a).reshape(-1, 4)[edge]
        t = (r * d).sum(1) / n2
        off = r - t[:, None] * d
        mixed = (t >= 0.15) & (t <= 0.85) & ((off * off).sum(1) <= n2 / 16)
        shares.append((int(mixed.sum()), int(edge.sum())))
    edges = sum(n for _, n in shares)
    return sum(m for m, _ in shares) / edges if edges else 0.0


def measure(image: np.ndarray) -> Features:
    """The features of an (H, W, C) image of floats in [0, 1] (C in 1..4), at 8-bit precision."""
    shape = np.shape(image)
    h, w = shape[:2]
    step = -(-max(h, w) // MEASURE_SIDE)
    q = _rgba8(np.asarray(image)[::step, ::step])
    a = q[..., 3]
    visible = a > 0
    seen = q[visible]  # (N, 4)
    _, counts = np.unique(seen.view(np.uint32).ravel(), return_counts=True)
    grey = bool((seen[:, 0] == seen[:, 1]).all() and (seen[:, 1] == seen[:, 2]).all())
    top = np.sort(counts)[::-1][:COMMON_GREYS if grey else COMMON_COLOURS]
    top = top[top >= 2]  # a colour seen once is no region: a 6x5 photo's 16 "commonest" would cover half of it
    return Features(
        height=h, width=w, alpha=len(shape) == 3 and shape[2] in (2, 4),
        transparent=float((a <= 12).mean()),
        hard_alpha=bool(np.isin(a, (0, 255)).all()),
        colours=int(counts.size), grey=grey,
        common=float(top.sum() / max(counts.sum(), 1)),
        rare=float((counts <= 2).mean()) if counts.size else 0.0,
        blends=_blend_share(q),
    )


# --- deciding -----------------------------------------------------------------------------------


def is_pixel_art(f: Features) -> bool:
    """A handful of colours, no antialiasing (few rare colours, few blended edges), hard alpha, small."""
    return (f.colours <= PIXEL_ART_COLOURS and f.rare <= PIXEL_ART_RARE and f.blends <= PIXEL_ART_BLENDS
            and f.hard_alpha and max(f.height, f.width) <= PIXEL_ART_SIDE)


def decide(f: Features) -> str:
    """The kind of picture the features say: the rules of the module docstring."""
    if is_pixel_art(f):
        return "pixel-art"
    needed = TRANSPARENT_DRAWING_COMMON if f.has_background else DRAWING_COMMON
    return "drawing" if f.common >= needed else "photo"


def _colours(n: int) -> str:
    return f"{n} colour" if n == 1 else f"{n} colours"


def explain(kind: str, f: Features) -> str:
    """Plain words for why ``f`` reads as ``kind``: 'drawing: transparent background, ...'."""
    cover = f"{f.common:.0%} of it in {COMMON_GREYS} grey levels" if f.grey else \
        f"{f.common:.0%} of it in {COMMON_COLOURS} colours"
    if kind == "pixel-art":
        words = [_colours(f.colours), "hard edges, no antialiasing", f"{f.width}x{f.height}"]
    elif kind == "drawing":
        words = [_colours(f.colours), f"flat regions: {cover}"]
    else:
        words = [_colours(f.colours), f"few flat regions: {cover}"]
    if f.has_background and kind != "pixel-art":
        words.insert(0, "transparent background")
    return f"{kind}: {', '.join(words)}"


def classify(image: np.ndarray) -> Content:
    """What an (H, W, C) image of floats in [0, 1] shows: photo, drawing or pixel art, and why.

    >>> sprite = np.zeros((16, 16, 4), np.float32); sprite[4:12, 4:12] = (1, 0, 0, 1)
    >>> classify(sprite).reason
    'pixel-art: 1 colour, hard edges, no antialiasing, 16x16'
    """
    f = measure(image)
    kind = decide(f)
    return Content(kind, explain(kind, f), f)


def given(kind: str) -> Content:
    """The content a user named (``--content drawing``): nothing measured."""
    method_for(kind)  # an unknown kind is a ValueError naming the valid ones
    return Content(kind, f"{kind}: as --content {kind} asked")


def content_of(image: np.ndarray, content: str, degradation: str = "clean",
               jpeg_quality: int | None = None) -> Content:
    """``content`` 'auto': :func:`classify`; a kind: that kind, as given. A photo is then checked
    for compression and noise when ``degradation`` is 'auto' (``coordsr.quality.assess``; a JPEG
    file's ``jpeg_quality`` is read first) or taken as ``degradation`` says."""
    from coordsr import quality

    found = classify(image) if content == "auto" else given(content)
    if found.kind != "photo" or degradation == "clean":
        return found
    assessed = quality.assess(image, jpeg_quality) if degradation == "auto" else quality.given(degradation)
    return replace(found, degradation=assessed)


def scale_note(kind: str, in_size: tuple[int, int], out_size: tuple[int, int]) -> str:
    """For pixel art drawn with nearest at a scale that is not a whole number: a warning that its
    pixels come out in two sizes; '' otherwise."""
    (h, w), (H, W) = in_size, out_size
    if kind != "pixel-art" or (H % h == 0 and W % w == 0):
        return ""
    return f"x{W / w:.3g} is not a whole scale, so the pixels come out of uneven sizes: a whole --scale keeps them even"


def describe(method: str, content: Content, note: str = "") -> str:
    """Which model ran and why, for the CLI's line: 'drawing model, detected drawing: ...'."""
    model = f"{method}, hard pixels kept" if content.kind == "pixel-art" else f"{method} model"
    why = f"detected {content.reason}" if content.features is not None else f"--content {content.kind}"
    if content.degradation is not None:
        d = content.degradation
        seen = "compressed or noisy photo" if d.kind == "real" else "clean photo"
        why = f"{seen}: {d.reason}" if d.blockiness is not None or d.jpeg_quality is not None else d.reason
    return f"{model}, {why}" + (f"; {note}" if note else "")


__all__ = ["BLIND_METHOD", "CONTENT_CHOICES", "Content", "Features", "KINDS", "candidate_methods", "check_content",
           "classify", "content_of", "decide",
           "describe", "named_method",
           "explain", "given", "is_pixel_art", "measure", "method_for", "scale_note"]
