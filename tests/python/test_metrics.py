"""The registry's metrics: `metrics()`, `metrics_text()` read back by
prometheus_client's own parser, `set_metrics`, views, threads, batches on
worker processes, the prometheus_client collector, the CLI and the notebook
table."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
import pytest

import module_registry as mr

parser = pytest.importorskip("prometheus_client.parser")

SQUARE = 'const MODULE = #{ name: "sq", version: "1.0.0" }; fn process(x) { x * x }'


def halve(n: int) -> int:
    if n % 2:
        raise ValueError(f"{n} is odd")
    return n // 2


def registry() -> mr.ModuleRegistry:
    r = mr.ModuleRegistry(native_modules=True)
    r.register(mr.ModuleConfig(name="halve", version="1.0.0"), halve)
    return r


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the text format, as prometheus_client parses it."""
    out = {}
    for family in parser.text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def total(parsed: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in parsed.items() if n == name and set(labels.items()) <= ls)


def test_calls_per_outcome_in_the_dict_and_the_text_format() -> None:
    r = registry()
    inst = r.create("halve")
    for n in (2, 4, 6):
        inst.process(n)
    with pytest.raises(mr.ModuleRegistryError):
        inst.process(3)
    m = r.metrics()
    calls = m["module_registry_module_calls_total"]
    assert calls["type"] == "counter"
    by_outcome = {s["labels"]["outcome"]: s["value"] for s in calls["samples"]}
    assert by_outcome == {"ok": 3, "failed": 1}
    assert calls["samples"][0]["labels"]["implementation"] == "python"
    (hist,) = m["module_registry_module_call_duration_seconds"]["samples"]
    assert hist["count"] == 4 and hist["buckets"][-1] == (float("inf"), 4) and hist["sum"] > 0

    parsed = samples(r.metrics_text())
    name = "module_registry_module_calls_total"
    assert total(parsed, name, module="halve", version="1.0.0", implementation="python", outcome="ok") == 3
    assert total(parsed, name, outcome="failed") == 1
    assert total(parsed, "module_registry_module_call_duration_seconds_count", module="halve") == 4
    assert total(parsed, "module_registry_module_call_duration_seconds_bucket", le="+Inf") == 4
    assert total(parsed, "module_registry_modules", kind="module", implementation="python") == 1
    assert total(parsed, "module_registry_modules", implementation="native") == len(r) - 1


def test_workflows_steps_cache_hits_and_denials_are_counted() -> None:
    r = registry()
    r.set_cache()
    wf = mr.Workflow("w").then("halve", id="half", cache=True)
    r.run_workflow(wf, 4)
    r.run_workflow(wf, 4)  # a cache hit: the module is not called
    with pytest.raises(mr.WorkflowError):
        r.run_workflow(wf, 3)
    r.set_policy(mr.AccessPolicy().grant("reader", ["discover"]).grant("root", ["admin"]).assign("carol", "reader").assign("ops", "root"))
    carol = r.as_principal("carol")
    with pytest.raises(mr.PermissionDeniedError):
        carol.create("halve")
    with pytest.raises(mr.PermissionDeniedError):
        carol.metrics()
    with pytest.raises(mr.PermissionDeniedError):
        carol.metrics_text()
    parsed = samples(r.as_principal("ops").metrics_text())
    assert total(parsed, "module_registry_workflow_runs_total", workflow="w", outcome="ok") == 2
    assert total(parsed, "module_registry_workflow_runs_total", workflow="w", outcome="failed") == 1
    assert total(parsed, "module_registry_step_runs_total", step="half", status="ok") == 1
    assert total(parsed, "module_registry_step_runs_total", step="half", status="cached") == 1
    assert total(parsed, "module_registry_step_runs_total", step="half", status="failed") == 1
    assert total(parsed, "module_registry_cache_requests_total", result="hit") == 1
    assert total(parsed, "module_registry_cache_requests_total", result="miss") == 2
    assert total(parsed, "module_registry_module_calls_total", module="halve") == 2
    assert total(parsed, "module_registry_denials_total", operation="create") == 1
    assert total(parsed, "module_registry_denials_total", operation="metrics") == 2


def test_set_metrics_stops_and_resumes_counting_and_takes_only_a_bool() -> None:
    r = registry()
    inst = r.create("halve")
    inst.process(2)
    r.set_metrics(False)
    inst.process(2)
    assert r.metrics()["module_registry_module_calls_total"]["samples"][0]["value"] == 1
    r.set_metrics(True)
    inst.process(2)
    assert r.metrics()["module_registry_module_calls_total"]["samples"][0]["value"] == 2
    with pytest.raises(mr.ValidationError, match="True or False"):
        r.set_metrics(0)  # type: ignore[arg-type]


def test_sixteen_threads_keep_exact_counts() -> None:
    r = registry()
    inst = r.create("halve")
    start = threading.Barrier(16)

    def work() -> None:
        start.wait()
        for n in range(200):
            try:
                inst.process(n)
            except mr.ModuleRegistryError:
                pass

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    parsed = samples(r.metrics_text())
    assert total(parsed, "module_registry_module_calls_total", outcome="ok") == 1600
    assert total(parsed, "module_registry_module_calls_total", outcome="failed") == 1600
    assert total(parsed, "module_registry_module_call_duration_seconds_count") == 3200


def test_a_workflow_name_with_quotes_newlines_and_backslashes_is_escaped() -> None:
    r = registry()
    name = 'a "quoted"\nname \\ here'
    r.run_workflow(mr.Workflow(name).then("halve"), 2)
    parsed = samples(r.metrics_text())
    assert total(parsed, "module_registry_workflow_runs_total", workflow=name, outcome="ok") == 1


def test_a_process_pool_batch_brings_the_workers_counts_home(tmp_path: Path) -> None:
    r = mr.ModuleRegistry()
    r.register_script(SQUARE)
    r.set_cache()
    wf = mr.Workflow("w").then("sq", cache=True).then("sq", id="again", cache=True)
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as pool:
        r.run_workflow_batch(wf, [2, 2, 3], executor=pool, chunk_size=3)
        # Every step of the second batch hits, on the worker.
        r.run_workflow_batch(wf, [2, 2, 3], executor=pool, chunk_size=1)
    parsed = samples(r.metrics_text())
    assert total(parsed, "module_registry_cache_requests_total", result="hit") == 2 + 6
    assert total(parsed, "module_registry_cache_requests_total", result="miss") == 4
    assert total(parsed, "module_registry_module_calls_total", module="sq", implementation="script") == 4
    assert total(parsed, "module_registry_workflow_runs_total", workflow="w", outcome="ok") == 6
    assert total(parsed, "module_registry_step_runs_total", status="cached") == 8
    stats = r.cache_stats()
    assert (stats["hits"], stats["misses"]) == (8, 4)


def test_a_dask_cluster_batch_brings_the_workers_counts_home() -> None:
    distributed = pytest.importorskip("distributed")
    r = mr.ModuleRegistry()
    r.register_script(SQUARE)
    r.set_cache()
    wf = mr.Workflow("w").then("sq", cache=True)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        r.run_workflow_batch(wf, [1, 1, 1, 1, "x"], executor=client, chunk_size=1, errors="return")
    parsed = samples(r.metrics_text())
    # Each worker misses 1 once (at most two misses, one per worker) and hits after.
    hits = total(parsed, "module_registry_cache_requests_total", result="hit")
    misses = total(parsed, "module_registry_cache_requests_total", result="miss")
    assert hits + misses == 5 and 1 <= misses - 1 <= 2
    assert total(parsed, "module_registry_workflow_runs_total", outcome="failed") == 1
    assert total(parsed, "module_registry_module_calls_total", outcome="failed") == 1
    assert r.cache_stats()["hits"] == hits


def test_the_prometheus_client_collector_shows_the_registry() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from module_registry.prometheus import RegistryCollector

    r = registry()
    r.run_workflow(mr.Workflow("w").then("halve"), 2)
    exposition = CollectorRegistry()
    exposition.register(RegistryCollector(r))
    parsed = samples(generate_latest(exposition).decode())
    assert total(parsed, "module_registry_module_calls_total", module="halve", outcome="ok") == 1
    assert total(parsed, "module_registry_workflow_runs_total", workflow="w") == 1
    assert total(parsed, "module_registry_step_duration_seconds_count", workflow="w") == 1
    assert total(parsed, "module_registry_modules", kind="module") == len(r)
    # Each scrape reads the registry afresh.
    r.run_workflow(mr.Workflow("w").then("halve"), 2)
    parsed = samples(generate_latest(exposition).decode())
    assert total(parsed, "module_registry_module_calls_total", module="halve") == 2


def test_importing_the_package_imports_no_prometheus_client() -> None:
    code = "import sys, module_registry; assert 'prometheus_client' not in sys.modules, 'imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_cli_run_metrics_writes_the_text_format_on_stderr(tmp_path: Path) -> None:
    wf = tmp_path / "w.toml"
    wf.write_text('name = "slug"\n[[steps]]\nid = "s"\nmodule = "slugify"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "module_registry", "run", str(wf), "--input-text", "Hello World", "--metrics"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == '"hello-world"'
    parsed = samples(proc.stderr)
    assert total(parsed, "module_registry_module_calls_total", module="slugify", outcome="ok") == 1
    assert total(parsed, "module_registry_workflow_runs_total", workflow="slug", outcome="ok") == 1


def test_cli_watch_serves_metrics_on_localhost(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "module_registry", "watch", "--scripts", str(tmp_path), "--duration", "30", "--metrics-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "metrics on http://127.0.0.1:" in line, line
        url = line.split("metrics on ", 1)[1].strip()
        (tmp_path / "sq.rhai").write_text(SQUARE)
        deadline = time.monotonic() + 20
        loaded = 0.0
        while time.monotonic() < deadline and not loaded:
            with urllib.request.urlopen(url, timeout=5) as response:
                assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                loaded = total(samples(response.read().decode()), "module_registry_reloads_total", outcome="loaded")
            time.sleep(0.1)
        assert loaded == 1
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(url.replace("/metrics", "/other"), timeout=5)
        assert missing.value.code == 404
        missing.value.close()
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_the_notebook_table_shows_calls_failures_and_median() -> None:
    r = registry()
    assert "median" not in r._repr_html_()  # nothing has run yet
    inst = r.create("halve")
    inst.process(2)
    with pytest.raises(mr.ModuleRegistryError):
        inst.process(1)
    html = r._repr_html_()
    assert "<th>calls</th><th>failures</th><th>median</th>" in html
    row = next(row for row in html.split("<tr>") if "<b>halve</b>" in row)
    assert "<td>2</td><td>1</td>" in row
    assert any(unit in row for unit in ("µs</td>", "ms</td>", " s</td>"))
    # A view without admin shows the table without them.
    r.set_policy(mr.AccessPolicy().grant("reader", ["discover"]).assign("carol", "reader"))
    assert "median" not in r.as_principal("carol")._repr_html_()
