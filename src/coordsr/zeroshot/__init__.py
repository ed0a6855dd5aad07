"""Zero-shot super-resolution: learning from the input image alone (no external data, no weights).

- :mod:`coordsr.zeroshot.ops`: the degradation operator, exact back-projection, the 8-fold
  self-ensemble transforms;
- :mod:`coordsr.zeroshot.internal`: a small CNN trained on the image's own downscaled copies
  (ZSSR-like) that refines a consistent interpolation at any scale and aspect.

The registry entry is :class:`coordsr.methods.zeroshot.zeroshot`.
"""
