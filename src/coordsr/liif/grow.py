"""Grow a trained model into a wider and deeper one that computes the same function.

Training is what this project has least of (issue 18: CPU hours, not GPU days), so a larger
encoder should start where the shipped one ended, not from scratch. ``grow`` builds the larger
model and copies the smaller one into it so that its output is unchanged (up to float rounding):

* wider (more encoder channels): each old channel keeps its weights; the new channels get a
  fresh initialisation on their inputs, and every weight *from* a new channel into an old
  channel (and into the decoder's projection) starts at zero. The new channels compute
  something from the start, so those zero weights get gradients and learn (Net2Net's "wider"
  with zeros instead of copies: Chen, Goodfellow and Shlens 2016).
* deeper (more residual blocks): the new blocks come after the old ones with their second
  convolution at zero, so each is the identity (as in "zero-init residual" training); the first
  convolution's output feeds the second's gradient, so they start learning at once.

The decoder (its width and depth) is kept as it is. One change of decoder is allowed: from LIIF's
to LTE's (``decoder="lte"``), where the trained encoder is kept (grown as above) and the LTE
decoder starts fresh, its colour layer at zero: the start is plain bicubic, not the old function,
but the encoder's features are where training begins.
"""

from __future__ import annotations

import torch

from coordsr.liif.model import LIIF, LIIFConfig


def _copy_conv(new: torch.nn.Conv2d, old: torch.nn.Conv2d, *, zero_new_inputs: bool = True) -> None:
    """Old conv's weights into the top-left corner of ``new``; inputs beyond the old ones into
    the old outputs start at zero (so the new channels cannot change the old ones)."""
    o, i = old.weight.shape[:2]
    with torch.no_grad():
        if zero_new_inputs:
            new.weight[:o, i:].zero_()
        new.weight[:o, :i].copy_(old.weight)
        new.bias[:o].copy_(old.bias)


def grow(small: LIIF, cfg: LIIFConfig, seed: int = 0) -> LIIF:
    """A model of architecture ``cfg`` computing what ``small`` computes. ``cfg`` may have more
    channels and blocks than ``small.cfg``; everything else must match (ValueError otherwise)."""
    s = small.cfg
    if cfg.channels < s.channels or cfg.blocks < s.blocks:
        raise ValueError(f"can only grow: {s.channels} channels x {s.blocks} blocks -> "
                         f"{cfg.channels} x {cfg.blocks}")
    new_decoder = (s.decoder, cfg.decoder) == ("liif", "lte")
    same = ("in_channels", "res_scale") + (() if new_decoder else ("hidden", "mlp_layers", "decoder"))
    if any(getattr(cfg, k) != getattr(s, k) for k in same):
        raise ValueError(f"grow keeps the decoder and residual scale: {', '.join(same)} must match"
                         + ("" if new_decoder else " (or the decoder goes from 'liif' to 'lte')"))
    torch.manual_seed(seed)
    big = LIIF(cfg)
    enc, old = big.encoder, small.encoder
    _copy_conv(enc.head, old.head)
    for new_block, old_block in zip(enc.body, old.body):
        _copy_conv(new_block.conv1, old_block.conv1)
        _copy_conv(new_block.conv2, old_block.conv2)
    for block in list(enc.body)[s.blocks:]:  # appended blocks: identity at the start
        with torch.no_grad():
            block.conv2.weight.zero_()
            block.conv2.bias.zero_()
    _copy_conv(enc.tail, old.tail)
    if new_decoder:  # LTE's decoder, fresh; the new channels still feed it (no zeros needed)
        return big
    with torch.no_grad():  # the projection reads old channels only; its outputs are all old
        big.proj.weight.zero_()
        big.proj.weight[:, :s.channels].copy_(small.proj.weight)
        big.proj.bias.copy_(small.proj.bias)
    for name in ("coord", "phase", "first", "mlp"):
        if hasattr(small, name):
            getattr(big, name).load_state_dict(getattr(small, name).state_dict())
    return big
