"""Local implicit image function: a trained model that upscales at any scale (issue #6).

``model`` holds the network (``encode`` / ``query``, tiled ``upscale``, weights files);
``train`` trains it (``train(TrainConfig(...))``, ``python -m coordsr.liif.train``);
``data`` makes the training pairs.
"""

from coordsr.liif.model import (FORMAT_VERSION, LIIF, Features, LIIFConfig, encode_tiled, load_weights,
                                query_chunked, save_weights, upscale)

__all__ = ["FORMAT_VERSION", "LIIF", "Features", "LIIFConfig", "encode_tiled", "load_weights",
           "query_chunked", "save_weights", "upscale"]
