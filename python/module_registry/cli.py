"""The ``module-registry`` command.

Every command builds a registry holding the native modules, the modules of
installed packages (entry-point group ``module_registry.modules``) and the
Rhai script modules of each ``--scripts DIR``.

    module-registry list [--scripts DIR]...
    module-registry discover --capability C [--capability C]... [--scripts DIR]...
    module-registry run WORKFLOW_FILE [--scripts DIR]... [--input FILE|-] [--raw]
                        [--batch [--progress] [--scheduler ADDRESS | --workers N]]
    module-registry script SCRIPT_FILE [--scripts DIR]... [--input FILE|-] [--raw]
    module-registry graph WORKFLOW_FILE [--format mermaid|dot|svg]
    module-registry check [--scripts DIR]... [WORKFLOW_FILE]...
    module-registry watch --scripts DIR [--scripts DIR]... [--duration SECONDS]
    module-registry index build DIR [--base-url URL]
    module-registry index yank NAME VERSION --index DIR/index.json
    module-registry index sign DIR/index.json --key PREFIX.key
    module-registry cache stats DIR | cache clear DIR
    module-registry keygen --out PREFIX
    module-registry search TEXT --index URL
    module-registry install NAME[@REQUIREMENT]... --index URL --into DIR [--trusted-key PREFIX.pub]
    module-registry install --locked --index URL --into DIR [--trusted-key PREFIX.pub]

Errors print one line on stderr and exit with status 1 (2 for bad usage).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from typing import Any, Optional, Sequence

from . import ModuleRegistry, ModuleRegistryError, Workflow

PROG = "module-registry"


class CliError(Exception):
    """A failure to report on one line."""


def _registry(scripts: Sequence[str], entry_points: bool = True) -> ModuleRegistry:
    registry = ModuleRegistry(native_modules=True)
    if entry_points:
        report = registry.load_entry_points()
        for name, exc in report.failed:
            print(f"{PROG}: warning: entry point {name} failed: {exc}", file=sys.stderr)
    for folder in scripts:
        registry.load_scripts(folder)
    return registry


def _jsonable(value: Any, raw_bytes: bool) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, list):
        return [_jsonable(v, raw_bytes) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v, raw_bytes) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise CliError(f"the output holds a {type(value).__name__}, which has no JSON form")


def _read_input(source: Optional[str]) -> Any:
    if source is None:
        return None
    where = "stdin" if source == "-" else source
    try:
        text = sys.stdin.read() if source == "-" else open(source, encoding="utf-8").read()
    except OSError as exc:
        raise CliError(f"cannot read input {source}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise CliError(f"input {where} is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"input {where} is not JSON: {exc}") from exc
    except RecursionError as exc:
        raise CliError(f"input {where} nests too deeply to read") from exc


def _write(value: Any, raw: bool) -> None:
    if raw and isinstance(value, bytes):
        sys.stdout.buffer.write(value)
        sys.stdout.buffer.flush()
        return
    if raw and isinstance(value, str):
        sys.stdout.write(value)
        return
    json.dump(_jsonable(value, raw), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def cmd_list(args: argparse.Namespace) -> int:
    registry = _registry(args.scripts)
    rows = [(i.name, i.version, i.kind, i.type.name, ", ".join(sorted(i.capabilities))) for i in registry.list()]
    _table(["name", "version", "kind", "type", "capabilities"], rows)
    return 0


def cmd_discover(args: argparse.Namespace) -> int:
    registry = _registry(args.scripts)
    found = registry.discover(capabilities=args.capability, any=args.any or None, exclude=args.exclude or None)
    _table(
        ["name", "version", "kind", "capabilities"],
        [(i.name, i.version, i.kind, ", ".join(sorted(i.capabilities))) for i in found],
    )
    return 0 if found else 1


def _read_lines(source: str) -> list[Any]:
    """One JSON value per non-empty line of a ``.jsonl`` file."""
    try:
        with open(source, encoding="utf-8") as f:
            lines = list(f)
    except OSError as exc:
        raise CliError(f"cannot read input {source}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise CliError(f"input {source} is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    values = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            values.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise CliError(f"input {source}, line {number}, is not JSON: {exc}") from exc
        except RecursionError as exc:
            raise CliError(f"input {source}, line {number}, nests too deeply to read") from exc
    return values


class _Executor:
    """The Dask client a batch runs on, if any: one at ``--scheduler``, or a
    local cluster of ``--workers`` processes started for the run."""

    def __init__(self, scheduler: Optional[str], workers: Optional[int]) -> None:
        self.scheduler, self.workers = scheduler, workers
        self.cluster: Any = None
        self.client: Any = None

    def __enter__(self) -> Any:
        if self.scheduler is None and self.workers is None:
            return None
        try:
            import distributed
        except ImportError as exc:
            raise CliError("--scheduler and --workers need Dask: pip install 'module-registry[dask]'") from exc
        if self.workers is not None:
            self.cluster = distributed.LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=self.workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=40,  # errors only
            )
            self.client = distributed.Client(self.cluster)  # type: ignore[no-untyped-call]
        else:
            try:
                # Dask's own setting says how long to try (distributed.comm.timeouts.connect).
                self.client = distributed.Client(self.scheduler)  # type: ignore[no-untyped-call]
            except OSError as exc:
                raise CliError(f"cannot reach the Dask scheduler at {self.scheduler}: {exc}") from exc
        return self.client

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def cmd_run(args: argparse.Namespace) -> int:
    if (args.scheduler or args.workers is not None) and not args.batch:
        raise CliError("--scheduler and --workers run a --batch")
    if args.workers is not None and args.workers < 1:
        raise CliError(f"--workers must be at least 1, not {args.workers}")
    registry = _registry(args.scripts)
    workflow = Workflow.load(args.workflow)
    if args.cache:
        # Every step is cached, in this folder (shared with other runs).
        registry.set_cache(path=args.cache)
        form = workflow.to_dict()
        for step in form["steps"]:
            step["cache"] = True
        workflow = Workflow.from_dict(form)
    lines = args.batch and args.input not in (None, "-") and args.input.endswith(".jsonl")
    data = _read_lines(args.input) if lines else _read_input(args.input)
    if not args.batch:
        _write(registry.run_workflow(workflow, data).output, raw=args.raw)
        return 0
    if not isinstance(data, list):
        raise CliError("--batch needs a JSON array of inputs (or a .jsonl file, one input per line)")
    with _Executor(args.scheduler, args.workers) as executor:
        results = registry.run_workflow_batch(workflow, data, progress=args.progress, executor=executor)
    outputs = [r.output for r in results]
    if lines:
        for output in outputs:
            json.dump(_jsonable(output, False), sys.stdout, ensure_ascii=False)
            sys.stdout.write("\n")
    else:
        _write(outputs, raw=False)
    return 0


def cmd_script(args: argparse.Namespace) -> int:
    registry = _registry(args.scripts)
    _write(registry.run_script(args.script, _read_input(args.input)), raw=args.raw)
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    workflow = Workflow.load(args.workflow)
    text = {"mermaid": workflow.to_mermaid, "dot": workflow.to_dot, "svg": workflow.to_svg}[args.format]()
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    registry = _registry(args.scripts)
    for folder in args.scripts:
        print(f"ok: scripts in {folder}")
    failed = 0
    for path in args.workflows:
        try:
            registry.check_workflow(Workflow.load(path))
        except ModuleRegistryError as exc:
            failed += 1
            print(f"{PROG}: error: {path}: {exc}", file=sys.stderr)
        else:
            print(f"ok: {path}")
    return 1 if failed else 0


def cmd_cache(args: argparse.Namespace) -> int:
    if not os.path.isdir(args.dir):
        raise CliError(f"{args.dir} is not a cache folder")
    registry = ModuleRegistry()
    registry.set_cache(path=args.dir)
    if args.action == "clear":
        registry.clear_cache()
        print(f"cleared {args.dir}")
    else:
        stats = registry.cache_stats()
        print(f"{args.dir}: {stats['entries']} entries, {stats['bytes']} bytes")
    return 0


def cmd_index_build(args: argparse.Namespace) -> int:
    from . import _core

    count = _core._build_index(args.dir, args.base_url)
    print(f"wrote {os.path.join(args.dir, 'index.json')}: {count} packages")
    return 0


def cmd_index_yank(args: argparse.Namespace) -> int:
    from . import _core

    signature = _core._yank(args.index, args.name, args.version, args.key)
    print(f"yanked {args.name}@{args.version} in {args.index}")
    if signature is not None:
        print(f"signed it again: wrote {signature}")
    return 0


def cmd_index_sign(args: argparse.Namespace) -> int:
    from . import _core

    print(f"wrote {_core._sign(args.index, args.key)}")
    return 0


def cmd_keygen(args: argparse.Namespace) -> int:
    from . import _core

    secret, public = _core._keygen(args.out)
    print(f"wrote {secret} (the secret key, not encrypted: keep it private) and {public}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    index = ModuleRegistry().package_index(args.index)
    found = index.search(args.text)
    _table(
        ["name", "version", "license", "capabilities", "description"],
        [(p.name, p.version, p.license, ", ".join(p.capabilities), p.description) for p in found],
    )
    return 0 if found else 1


def _request(text: str) -> tuple[str, str]:
    name, _, requirement = text.partition("@")
    return name, requirement or "*"


def cmd_install(args: argparse.Namespace) -> int:
    from . import _core

    if args.locked and args.packages:
        raise CliError("--locked installs what the lockfile says: name no packages")
    if not args.locked and not args.packages:
        raise CliError("name at least one package to install (NAME or NAME@REQUIREMENT), or give --locked")
    installed = _core._install_packages(
        [_request(p) for p in args.packages], args.index, args.into, args.trusted_key, args.locked
    )
    for name, version, files in installed:
        print(f"installed {name}@{version}: {', '.join(files)}")
    return 0


def _event_line(event: Any) -> str:
    """One line per reload event: ``kind name@version path[: error]``."""
    what = f"{event.name}@{event.version}" if event.name else "-"
    line = f"{event.kind:<9} {what} {event.path}"
    return f"{line}: {event.error}" if event.error else line


def cmd_watch(args: argparse.Namespace) -> int:
    import time

    if not args.scripts:
        raise CliError("name at least one --scripts DIR to watch")
    if args.duration is not None and not args.duration > 0:
        raise CliError(f"--duration must be a positive number of seconds, not {args.duration}")
    registry = ModuleRegistry(native_modules=True)

    def show(event: Any) -> None:
        print(_event_line(event), flush=True)

    watchers = []
    try:
        for folder in args.scripts:
            watchers.append(registry.watch_scripts(folder, on_event=show))
        print(f"{PROG}: watching {', '.join(w.folder for w in watchers)} (Ctrl-C to stop)", file=sys.stderr, flush=True)
        if args.duration is None:
            while True:
                time.sleep(3600)
        else:
            time.sleep(args.duration)
    except KeyboardInterrupt:
        pass
    finally:
        for watcher in watchers:
            watcher.stop()
    return 0


def _table(header: list[str], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    for row in [tuple(header), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Discover, run and draw modules and workflows.")
    sub = p.add_subparsers(dest="command", required=True)

    def scripts_option(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--scripts", action="append", default=[], metavar="DIR", help="load the Rhai script modules of DIR (repeatable)")

    sp = sub.add_parser("list", help="list every registered module")
    scripts_option(sp)
    sp.set_defaults(func=cmd_list)

    sp = sub.add_parser("discover", help="find modules by capability")
    sp.add_argument("--capability", action="append", required=True, metavar="C", help="a capability every result has (repeatable)")
    sp.add_argument("--any", action="append", default=[], metavar="C", help="results have at least one of these")
    sp.add_argument("--exclude", action="append", default=[], metavar="C", help="results have none of these")
    scripts_option(sp)
    sp.set_defaults(func=cmd_discover)

    sp = sub.add_parser("run", help="run a workflow file; prints the output as JSON")
    sp.add_argument("workflow", metavar="WORKFLOW_FILE")
    sp.add_argument("--input", metavar="FILE", help="JSON input file, or - for stdin (default: null)")
    sp.add_argument("--raw", action="store_true", help="write bytes or text output as-is instead of JSON")
    sp.add_argument(
        "--batch",
        action="store_true",
        help="the input is a JSON array, or a .jsonl file of one input per line (then one output per line): run once per item",
    )
    sp.add_argument("--progress", action="store_true", help="show a progress bar for --batch")
    sp.add_argument("--cache", metavar="DIR", help="cache every step's output in DIR (kept between runs, shared by processes)")
    where = sp.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS", help="run the --batch on the Dask scheduler at ADDRESS")
    where.add_argument("--workers", type=int, metavar="N", help="run the --batch on a local Dask cluster of N processes")
    scripts_option(sp)
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("script", help="run a Rhai orchestration script; prints its result as JSON")
    sp.add_argument("script", metavar="SCRIPT_FILE")
    sp.add_argument("--input", metavar="FILE", help="JSON input file, or - for stdin (default: null)")
    sp.add_argument("--raw", action="store_true", help="write bytes or text output as-is instead of JSON")
    scripts_option(sp)
    sp.set_defaults(func=cmd_script)

    sp = sub.add_parser("graph", help="draw a workflow file")
    sp.add_argument("workflow", metavar="WORKFLOW_FILE")
    sp.add_argument("--format", choices=["mermaid", "dot", "svg"], default="mermaid")
    sp.set_defaults(func=cmd_graph)

    sp = sub.add_parser("check", help="validate script folders and workflow files")
    sp.add_argument("workflows", nargs="*", metavar="WORKFLOW_FILE")
    scripts_option(sp)
    sp.set_defaults(func=cmd_check)

    sp = sub.add_parser("watch", help="load script folders and reload their modules as files change, printing each event")
    scripts_option(sp)
    sp.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this long (default: until Ctrl-C)")
    sp.set_defaults(func=cmd_watch)

    index = sub.add_parser("index", help="build, yank in and sign a package index").add_subparsers(dest="action", required=True)
    sp = index.add_parser("build", help="write DIR/index.json for the script modules in DIR (extending an existing one)")
    sp.add_argument("dir", metavar="DIR")
    sp.add_argument("--base-url", metavar="URL", help="where the files will be served (default: relative to the index)")
    sp.set_defaults(func=cmd_index_build)
    sp = index.add_parser("yank", help="mark a version yanked: resolution skips it unless a lockfile pins it")
    sp.add_argument("name", metavar="NAME")
    sp.add_argument("version", metavar="VERSION")
    sp.add_argument("--index", required=True, metavar="DIR/index.json")
    sp.add_argument("--key", metavar="PREFIX.key", help="sign the changed index again (required when it is signed)")
    sp.set_defaults(func=cmd_index_yank)
    sp = index.add_parser("sign", help="write INDEX.minisig with a minisign secret key")
    sp.add_argument("index", metavar="DIR/index.json")
    sp.add_argument("--key", required=True, metavar="PREFIX.key")
    sp.set_defaults(func=cmd_index_sign)

    cache = sub.add_parser("cache", help="look into or empty a step cache folder").add_subparsers(dest="action", required=True)
    for action, what in [("stats", "entries and size of the cache in DIR"), ("clear", "empty the cache in DIR")]:
        sp = cache.add_parser(action, help=what)
        sp.add_argument("dir", metavar="DIR")
        sp.set_defaults(func=cmd_cache)

    sp = sub.add_parser("keygen", help="write a minisign key pair PREFIX.key (not encrypted) and PREFIX.pub")
    sp.add_argument("--out", required=True, metavar="PREFIX")
    sp.set_defaults(func=cmd_keygen)

    sp = sub.add_parser("search", help="find packages in an index by name, description or capability")
    sp.add_argument("text", metavar="TEXT")
    sp.add_argument("--index", required=True, metavar="URL")
    sp.set_defaults(func=cmd_search)

    sp = sub.add_parser("install", help="install script module packages (and their dependencies) into a folder")
    sp.add_argument("packages", nargs="*", metavar="NAME[@REQUIREMENT]")
    sp.add_argument("--index", required=True, metavar="URL")
    sp.add_argument("--into", required=True, metavar="DIR")
    sp.add_argument("--trusted-key", metavar="PREFIX.pub", help="refuse an index not signed by this minisign key")
    sp.add_argument("--locked", action="store_true", help="install exactly what DIR/module-registry.lock says")
    sp.set_defaults(func=cmd_install)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ModuleRegistryError, CliError, OSError, ValueError, RecursionError) as exc:
        message = " ".join(str(exc).split())
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
