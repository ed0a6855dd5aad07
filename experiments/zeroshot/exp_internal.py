"""Idea 3: internal learning (ZSSR-like CNN on the image's own downscaled copies) + BP + ensemble."""
import json
import sys
import torch
from common import dev_images, evaluate

from coordsr.zeroshot.internal import InternalConfig, apply, train


def internal(**kw):
    cfg = InternalConfig(**kw)

    def fn(lr, size):
        y = torch.from_numpy(lr).permute(2, 0, 1).float()
        net = train(y, size, cfg)
        return apply(net, y, size, cfg).permute(1, 2, 0).numpy()
    return fn


import os
imgs = dev_images()[:int(os.environ.get('NDEV', 8))]
scales = (2, 3, 4)
for arg in sys.argv[1:]:
    kw = json.loads(arg)
    sc = kw.pop("scales", scales)
    evaluate(internal(**kw), imgs, scales=sc, label=f"internal {arg}")
