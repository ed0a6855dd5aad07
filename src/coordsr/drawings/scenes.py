"""Procedural vector scenes for training the drawing model: random flat shapes, outlines,
strokes, gradients and glyphs on a transparent or plain background, drawn at any size by a real
rasterizer (Skia, through skia-python), so that the small and the large drawing of one scene are
what a designer's tool would export at two sizes, not a downscale of one of them.

A scene is a pure function of its seed: ``draw(seed, size)`` gives the same picture at every size
(premultiplied RGBA, uint8, (size, size, 4)). skia-python is a training dependency (the
``drawings-train`` extra): nothing that runs a trained model imports this module.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

GLYPHS = "ABCDEFGHJKMNPQRSTUVWXYZabdeghkmnqrstuy0123456789@&#?!$%"
FAMILIES = ("DejaVu Sans", "DejaVu Serif", "DejaVu Sans Mono")


@lru_cache(maxsize=None)
def _typeface(family: str, bold: bool):
    import skia

    style = skia.FontStyle.Bold() if bold else skia.FontStyle.Normal()
    return skia.Typeface(family, style)


def _colour(rng: np.random.Generator, palette: np.ndarray, alpha: int = 255):
    import skia

    r, g, b = palette[rng.integers(len(palette))]
    return skia.ColorSetARGB(alpha, int(r), int(g), int(b))


def _palette(rng: np.random.Generator) -> np.ndarray:
    """A few colours, as drawings have: saturated hues, a dark outline colour, sometimes greys."""
    n = int(rng.integers(3, 7))
    hues = rng.random(n)
    sat = rng.uniform(0.4, 1.0, n)
    val = rng.uniform(0.5, 1.0, n)
    rgb = np.stack([_hsv(h, s, v) for h, s, v in zip(hues, sat, val)])
    dark = _hsv(rng.random(), rng.uniform(0, 0.6), rng.uniform(0.0, 0.3))[None]
    return (np.concatenate([rgb, dark, [[1.0, 1.0, 1.0]]]) * 255).round().astype(int)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    i, f = int(h * 6) % 6, h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i])


def _shape_path(rng: np.random.Generator):
    """A random closed path in the unit square: ellipse, rounded rectangle, polygon, star, blob."""
    import skia

    cx, cy = rng.uniform(0.15, 0.85, 2)
    rx, ry = rng.uniform(0.03, 0.4, 2) * (1 if rng.random() < 0.6 else 0.5)
    kind = rng.integers(5)
    path = skia.Path()
    if kind == 0:
        path.addOval(skia.Rect.MakeLTRB(cx - rx, cy - ry, cx + rx, cy + ry))
    elif kind == 1:
        rr = float(rng.uniform(0, min(rx, ry)))
        path.addRRect(skia.RRect.MakeRectXY(skia.Rect.MakeLTRB(cx - rx, cy - ry, cx + rx, cy + ry), rr, rr))
    elif kind in (2, 3):
        n = int(rng.integers(3, 9))
        rot = rng.uniform(0, 2 * math.pi)
        pts = []
        for k in range(n * (2 if kind == 3 else 1)):
            r = 1.0 if (kind == 2 or k % 2 == 0) else rng.uniform(0.35, 0.6)
            a = rot + math.pi * k / n * (1 if kind == 3 else 2)
            pts.append(skia.Point(cx + rx * r * math.cos(a), cy + ry * r * math.sin(a)))
        path.addPoly(pts, True)
    else:  # a smooth blob through random radii
        n = int(rng.integers(4, 8))
        radii = rng.uniform(0.6, 1.0, n)
        angles = np.sort(rng.uniform(0, 2 * math.pi, n))
        pts = [(cx + rx * r * math.cos(a), cy + ry * r * math.sin(a)) for r, a in zip(radii, angles)]
        mids = [((pts[i][0] + pts[(i + 1) % n][0]) / 2, (pts[i][1] + pts[(i + 1) % n][1]) / 2) for i in range(n)]
        path.moveTo(*mids[-1])
        for i in range(n):
            path.quadTo(*pts[i], *mids[i])
        path.close()
    return path


def _fill_paint(rng: np.random.Generator, palette: np.ndarray):
    """Flat colour mostly; a linear or radial gradient between two palette colours sometimes."""
    import skia

    paint = skia.Paint(AntiAlias=True, Style=skia.Paint.kFill_Style)
    alpha = 255 if rng.random() < 0.85 else int(rng.integers(90, 255))
    paint.setColor(_colour(rng, palette, alpha))
    u = rng.random()
    if u < 0.15:
        p0, p1 = rng.uniform(0, 1, 2), rng.uniform(0, 1, 2)
        paint.setShader(skia.GradientShader.MakeLinear(
            [skia.Point(*p0), skia.Point(*p1)], [_colour(rng, palette, alpha), _colour(rng, palette, alpha)]))
    elif u < 0.25:
        c = rng.uniform(0.2, 0.8, 2)
        paint.setShader(skia.GradientShader.MakeRadial(
            skia.Point(*c), float(rng.uniform(0.1, 0.6)), [_colour(rng, palette, alpha), _colour(rng, palette, alpha)]))
    return paint


def _stroke_paint(rng: np.random.Generator, palette: np.ndarray, width: float):
    import skia

    paint = skia.Paint(AntiAlias=True, Style=skia.Paint.kStroke_Style, StrokeWidth=width)
    paint.setColor(_colour(rng, palette))
    paint.setStrokeCap([skia.Paint.kRound_Cap, skia.Paint.kButt_Cap, skia.Paint.kSquare_Cap][rng.integers(3)])
    paint.setStrokeJoin(skia.Paint.kRound_Join if rng.random() < 0.7 else skia.Paint.kMiter_Join)
    return paint


def _ops(seed: int):
    """The scene's drawing operations (a list of callables on a canvas in unit coordinates)."""
    import skia

    rng = np.random.default_rng(seed)
    palette = _palette(rng)
    dark = palette[-2]
    ops = []
    if rng.random() < 0.25:  # a plain background; otherwise transparent, as icons are
        bg = _colour(rng, palette)
        ops.append(lambda c, bg=bg: c.drawColor(bg))
    for _ in range(int(rng.integers(2, 9))):
        u = rng.random()
        if u < 0.55:  # a filled shape, often with an outline (the emoji look)
            path = _shape_path(rng)
            fill = _fill_paint(rng, palette)
            ops.append(lambda c, p=path, f=fill: c.drawPath(p, f))
            if rng.random() < 0.5:
                w = float(rng.uniform(0.004, 0.03))
                line = _stroke_paint(rng, palette, w)
                if rng.random() < 0.6:
                    line.setColor(skia.ColorSetARGB(255, *map(int, dark)))
                ops.append(lambda c, p=path, s=line: c.drawPath(p, s))
        elif u < 0.75:  # a stroke: line, arc or curve
            w = float(rng.uniform(0.004, 0.05))
            paint = _stroke_paint(rng, palette, w)
            path = skia.Path()
            pts = rng.uniform(0.05, 0.95, (4, 2))
            path.moveTo(*pts[0])
            if rng.random() < 0.5:
                path.cubicTo(*pts[1], *pts[2], *pts[3])
            else:
                path.lineTo(*pts[1])
            ops.append(lambda c, p=path, s=paint: c.drawPath(p, s))
        elif u < 0.9:  # a glyph
            text = "".join(rng.choice(list(GLYPHS), int(rng.integers(1, 3))))
            size = float(rng.uniform(0.12, 0.6))
            face = _typeface(FAMILIES[rng.integers(len(FAMILIES))], bool(rng.random() < 0.5))
            paint = skia.Paint(AntiAlias=True, Color=_colour(rng, palette))
            x, y = rng.uniform(0.0, 0.6), rng.uniform(size, 0.95)
            ops.append(lambda c, t=text, s=size, f=face, p=paint, x=x, y=y: c.drawString(t, x, y, skia.Font(f, s), p))
        else:  # small round features: eyes, dots, buttons
            r = float(rng.uniform(0.01, 0.05))
            paint = skia.Paint(AntiAlias=True, Color=_colour(rng, palette))
            for cx, cy in rng.uniform(0.2, 0.8, (int(rng.integers(1, 4)), 2)):
                ops.append(lambda c, cx=float(cx), cy=float(cy), r=r, p=paint: c.drawCircle(cx, cy, r, p))
    return ops


def draw(seed: int, size: int) -> np.ndarray:
    """Scene ``seed`` rasterized at ``size`` x ``size``: premultiplied RGBA, uint8, (size, size, 4)."""
    import skia

    info = skia.ImageInfo.Make(size, size, skia.ColorType.kRGBA_8888_ColorType, skia.AlphaType.kPremul_AlphaType)
    surface = skia.Surface.MakeRaster(info)
    canvas = surface.getCanvas()
    canvas.clear(skia.ColorSetARGB(0, 0, 0, 0))
    canvas.scale(size, size)
    for op in _ops(seed):
        op(canvas)
    return np.array(surface.makeImageSnapshot().toarray(colorType=skia.ColorType.kRGBA_8888_ColorType,
                                                         alphaType=skia.AlphaType.kPremul_AlphaType))
