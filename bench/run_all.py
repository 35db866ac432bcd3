"""`make bench`: run every benchmark with its baseline, then write bench/results.json and bench/RESULTS.md.

`python -m bench.run_all NAME …` runs only those, and still reports every result on file."""

import json
import subprocess
import sys
from datetime import UTC, datetime

from bench.common import RESULTS, ROOT

BENCHMARKS = ["price_import", "price_burst", "portfolio_read", "portfolio_replay", "portfolio_write", "rpc_concurrency",
              "gateway_read", "gateway_write", "record_cpu", "import_pricing", "shuffled_blocks", "shuffled_posts", "tick_fanout"]


def main() -> int:
    """Run the named benchmarks (all by default), then rebuild the report from every results file."""
    failed = []
    for name in sys.argv[1:] or BENCHMARKS:
        print(f"── {name}", flush=True)
        if subprocess.run([sys.executable, "-m", f"bench.{name}"], cwd=ROOT).returncode != 0:
            failed.append(name)
    report(failed)
    return 1 if failed else 0


def report(failed: list[str]) -> None:
    """Rebuild results.json and RESULTS.md from every results file on disk (no benchmark is run)."""
    documents = [json.loads((RESULTS / f"{n}.json").read_text()) for n in BENCHMARKS
                 if (RESULTS / f"{n}.json").exists()]
    (ROOT / "bench" / "results.json").write_text(json.dumps(
        {"ran_at": datetime.now(UTC).isoformat(), "failed": failed, "benchmarks": documents}, indent=2) + "\n")
    lines = ["# Benchmark results", "", "Written by `make bench` (each figure beside a baseline measured in the same "
             "run, on this 2-core machine; compare ratios, not absolute times).", "",
             "| benchmark | figure | value | baseline | ratio | goal | met |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for document in documents:
        for f in document["figures"]:
            lines.append(f"| {document['benchmark']} | {f['name']} | {f['value']:.3f} {f['unit']} | "
                         f"{f['baseline_name']}: {f['baseline_value']:.3f} | {f['ratio']:.2f} | {f['goal']} | "
                         f"{'yes' if f['met'] else '**no**'} |")
    lines += ["", *[f"- {d['benchmark']}: {d['notes']} (ran {d['ran_at'][:19]})" for d in documents if d["notes"]]]
    if failed:
        lines += ["", f"Failed to run: {', '.join(failed)}"]
    (ROOT / "bench" / "RESULTS.md").write_text("\n".join(lines) + "\n")
    print((ROOT / "bench" / "RESULTS.md").read_text())


if __name__ == "__main__":
    sys.exit(main())
