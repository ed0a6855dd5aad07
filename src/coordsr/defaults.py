"""The default methods, in a module that imports nothing: ``coordsr.content`` and the CLI read
them without loading the registry (``coordsr.methods`` imports torch with its methods, and the
onnx backend must not: coordsr.onnx_backend)."""

DEFAULT_METHOD = "pretrained"
"""What `coordsr upscale` uses when no method is named: the best measured per second (BENCHMARKS.md)."""
DEFAULT_DENOISER = "trained"
"""What `coordsr denoise` and `upscale --denoise` use when no denoiser is named: the best measured
on Kodak24 at sigma 15, 25 and 50, given and blind, in under a second per 500x500 image
(BENCHMARKS.md, "Denoising"; `nlmeans` was the default before it)."""
