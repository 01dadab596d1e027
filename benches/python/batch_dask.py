"""A trivial batch on a 2-worker Dask LocalCluster against the same batch
here, interleaved in one run:

    python benches/python/batch_dask.py [--inputs N] [--rounds R] [--iter]

The workflow is one native `identity` step, so what is measured is what the
executor adds: the registry's pickle (sent once), the chunks' inputs, and
their results travelling back as one compact payload per chunk
(`_run_workflow_chunk`) rebuilt as results here. Prints the median round of
each side, their ratio, and the microseconds Dask adds per input. The
issue's targets: at most 3x the local batch for 1,000,000 inputs, at most
5 µs per input added at 20,000. `--iter` consumes `iter_workflow_batch`
instead of keeping `run_workflow_batch`'s list.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iter", action="store_true", help="consume iter_workflow_batch instead")
    args = parser.parse_args()

    import distributed

    import module_registry as mr

    registry = mr.ModuleRegistry(native_modules=True)
    wf = registry.pipeline("identity")
    n = args.inputs

    def batch(executor: Any) -> None:
        if args.iter:
            count = sum(1 for _ in registry.iter_workflow_batch(wf, range(n), executor=executor))
        else:
            count = len(registry.run_workflow_batch(wf, range(n), executor=executor))
        assert count == n

    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None, worker_dashboard_address=None, silence_logs=40,
    ) as cluster, distributed.Client(cluster) as client:
        batch(client)  # warm: the workers rebuild the registry once
        times: dict[str, list[float]] = {"local": [], "dask": []}
        for _ in range(args.rounds):
            for side, executor in (("local", None), ("dask", client)):
                start = time.perf_counter()
                batch(executor)
                times[side].append(time.perf_counter() - start)
    local, dask = (statistics.median(times[s]) for s in ("local", "dask"))
    print(
        f"{n} inputs, 1 native step{' (iter)' if args.iter else ''}: local {local * 1e3:.1f} ms, "
        f"dask (2 workers) {dask * 1e3:.1f} ms, {dask / local:.2f}x, "
        f"+{(dask - local) / n * 1e6:.2f} µs per input"
    )


if __name__ == "__main__":
    main()
