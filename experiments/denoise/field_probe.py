"""Which field settings denoise: auto (discrepancy) stop vs oracle on a BSD200 crop (training data).

    nice -n 10 .venv/bin/python experiments/denoise/field_probe.py "network=hashgrid;settings=finest=0.25" ...
"""

import sys
import time
import typing
from pathlib import Path

from coordsr.bench import read_hr
from coordsr.denoise.bench import center_crop
from coordsr.denoise.protocol import add_noise, noise_seed, score
from coordsr.methods.denoisers import field

p = sorted((Path(__file__).resolve().parents[3] / "shared" / "data" / "BSD200").glob("*.png"))[0]
clean = center_crop(read_hr(p), 128)
sigma = 25
noisy = add_noise(clean, sigma, noise_seed(p.name, sigma))
print(p.name, clean.shape, "noisy", round(score(noisy, clean)["psnr"], 2), flush=True)
hints = typing.get_type_hints(field)
for spec in sys.argv[1:]:
    kw = {k: hints[k](v) for k, _, v in (x.partition("=") for x in spec.split(";") if x)}
    m = field(device="cpu", **{"steps": 150, **kw})
    res = {}
    t = time.perf_counter()
    info = m.trace(noisy, sigma, 10, lambda s, im: res.setdefault(s, score(im, clean)["psnr"]))
    best = max(res, key=res.get)
    print(f"{spec:60s} auto step {info['stop_step']}: {res[info['stop_step']]:.2f} dB; oracle step {best}: "
          f"{res[best]:.2f} dB; last {res[max(res)]:.2f}; {time.perf_counter() - t:.0f} s", flush=True)
