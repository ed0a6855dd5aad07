"""Ablation of the registered method on the dev set: each idea switched on in turn."""
import json
import os
import sys
from common import dev_images, evaluate

from coordsr.methods.zeroshot import zeroshot

imgs = dev_images()[:int(os.environ.get("NDEV", 8))]
for arg in sys.argv[1:]:
    kw = json.loads(arg)
    m = zeroshot(device="cpu", **kw)
    evaluate(lambda lr, size: m.upscale(lr, size), imgs, label=f"zeroshot {arg}", verbose=False)
