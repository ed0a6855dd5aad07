"""Print the speed tables of the research notes from the speed scripts' JSON in benchmarks/results/.

    python benchmarks/readme_speed.py      # paste into docs/research/speed.md (they were the README's "Speed")
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_line  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def _load(name: str) -> dict | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def _s(v) -> str:
    return "not reached" if v is None else f"{v:.2f} s"


def _table(header: list[str], rows: list[list[str]], doc: dict) -> None:
    """A markdown table after a blank line, then the machine before and after its run."""
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\nMachine: {machine_line(doc['machine_before'])} (before), {machine_line(doc['machine_after'])} (after).")


def main() -> int:
    print("| preset | precision | fit 64x64 to 30 dB | fit 256x256 to 30 dB | the seed's job: 64x64 to 35 dB, "
          "drawn at 1024x1024 | render MP/s (share of the head's FLOP limit) | machine, same process |")
    print("|---|---|---|---|---|---|---|")
    for name in ("fields_speed.json", "fields_speed_bf16.json"):
        doc = _load(name)
        for r in (doc or {}).get("rows", []):
            print(f"| `{r['method']}` | {r.get('precision', 'fp32')} | {_s(r['fit64_30db_s'])} ({r['fit64_steps']} steps) "
                  f"| {_s(r['fit256_30db_s'])} ({r['fit256_steps']} steps) | {_s(r['seed_job_s'])} "
                  f"| {r['render_mpx_s']:.2f} ({r['render_fraction_of_head_limit']:.0%}) "
                  f"| {machine_line(r['machine_before'])} |")
    pre = _load("pretrained_speed.json")
    if pre:
        print()
        print("| `pretrained` | threads | seconds (best of 3, interleaved) | change against fp32 | machine |")
        print("|---|---|---|---|---|")
        for r in pre["rows"]:
            if "machine_before" not in r:
                continue
            change = "" if r.get("psnr_vs_fp32") is None else f"{r['psnr_vs_fp32']:.1f} dB PSNR between outputs"
            print(f"| {r['case']} | {r['threads']} | {r['seconds']:.2f} | {change} | {machine_line(r['machine_before'])} |")
    siren = _load("siren_speed_64.json")
    if siren:
        print()
        print("| SIREN 3x256, 64x64 fit | steps to the reference's PSNR | seconds | against siren-pytorch | render MP/s |")
        print("|---|---|---|---|---|")
        ref = siren["rows"][0]
        for r in siren["rows"]:
            ratio = "" if not r["seconds_to_target"] else f"{ref['seconds_to_target'] / r['seconds_to_target']:.2f}x"
            print(f"| {r['network']} | {r['steps_to_target']} | {_s(r['seconds_to_target'])} | {ratio} "
                  f"| {r['render_mpixels_per_s']:.3f} |")
        print(f"\nTarget {ref['target_psnr']:.2f} dB. Machine: {machine_line(siren['machine_before'])} (before), "
              f"{machine_line(siren['machine_after'])} (after).")
    cli = _load("cli_speed.json")
    if cli:
        _table(["command (64x64 -> 1024x1024)", "best wall s", "beyond `import torch`"],
               [[k, f"{v:.2f}", f"{cli['beyond_import_torch'][k]:+.2f}"] for k, v in cli["best"].items()], cli)
    omp = _load("omp_wait.json")
    if omp:
        _table(["command (64x64 -> 1024x1024)", "OpenMP wait", "idle: median s", "one core busy: median s",
                "busy / idle"],
               [[command, setting, f"{r['idle_median']:.2f}", f"{r['busy_median']:.2f}",
                 f"{r['busy_median'] / r['idle_median']:.1f}x"]
                for command, rows in omp["summary"].items() for setting, r in rows.items()], omp)
    sub = _load("subnormals.json")
    if sub:
        steps, size = sub["rows"][0]["steps"], sub["rows"][0]["size"]
        _table([f"preset ({steps} float32 steps on {size}x{size}, one thread; {sub['cpu']})", "subnormals kept",
                "flushed (default)", "speed-up", "largest output change"],
               [[f"`{r['method']}`", f"{r['best_kept_s']:.2f} s", f"{r['best_flushed_s']:.2f} s",
                 f"{r['speedup']:.2f}x", f"{r['max_output_change']:.1g}"] for r in sub["rows"]], sub)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
