"""The denoising benchmark on Kodak24 (issue 14): one method and budget per call, JSON out.

Runs :func:`coordsr.denoise.bench.run_denoise_bench` on the first ``--images`` images of a
folder (all by default), optionally on central crops, and writes the rows, the summary, the
command and the machine to JSON (rows are cached, so a rerun resumes):

    nice -n 10 python benchmarks/denoise_bench.py --methods nlmeans,wavelet,tv \\
        --json benchmarks/results/denoise_kodak24_classical.json
    nice -n 10 python benchmarks/denoise_bench.py --methods zsn2n --images 3 \\
        --json benchmarks/results/denoise_kodak24_zsn2n.json
    nice -n 10 python benchmarks/denoise_bench.py --methods field --set network=siren --images 2 \\
        --crop 256 --sigmas 25 --json benchmarks/results/denoise_field_siren.json
"""

from __future__ import annotations

import argparse
import os
import sys
import typing
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    from coordsr.bench import find_images
    from coordsr.denoise.bench import format_table, run_denoise_bench, write_json
    from coordsr.methods import get_method

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "Kodak24")
    ap.add_argument("--methods", default="nlmeans,wavelet,tv")
    ap.add_argument("--sigmas", default="15,25,50")
    ap.add_argument("--images", type=int, default=0, help="first N images only (0 = all)")
    ap.add_argument("--crop", type=int, default=0, help="central crop side (0 = whole image)")
    ap.add_argument("--variant", default="float", choices=("float", "8bit"))
    ap.add_argument("--blind", action="store_true")
    ap.add_argument("--oracle-every", type=int, default=10)
    ap.add_argument("--set", action="append", default=[], help="NAME=VALUE for the methods that have it")
    ap.add_argument("--json", type=Path, required=True)
    args = ap.parse_args(argv)

    paths = find_images(args.data)[: args.images or None]
    names = [n.strip() for n in args.methods.split(",") if n.strip()]
    methods = {}
    for name in names:
        hints = typing.get_type_hints(get_method(name))
        methods[name] = {k: hints[k](v) for k, _, v in (s.partition("=") for s in args.set) if k in hints}
        methods[name]["device"] = "cpu"
    cache = REPO / "benchmarks" / "cache" / f"denoise-{args.data.name}.jsonl"
    cache.parent.mkdir(parents=True, exist_ok=True)
    rows = run_denoise_bench(paths, [float(s) for s in args.sigmas.split(",")], methods,
                             dataset=args.data.name, variant=args.variant, blind=args.blind,
                             oracle_every=args.oracle_every, crop=args.crop, cache=cache,
                             progress=lambda p: print(f"{p.done}/{p.total} {p.method} {p.image} "
                                                      f"sigma {p.sigma:g}", file=sys.stderr, flush=True))
    print(format_table(rows))
    write_json(rows, args.json, meta={"command": "python benchmarks/denoise_bench.py " + " ".join(argv or sys.argv[1:]),
                                      "loadavg_end": os.getloadavg()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
