"""The ``module-registry`` command.

Every command builds a registry holding the native modules, the script
modules shipped in the package (``module_registry.bundled_scripts()``; the
global ``--no-bundled``, also accepted after the subcommand, leaves them
out), the modules of installed packages (entry-point group
``module_registry.modules``) and the Rhai script modules of each
``--scripts DIR`` (which replace shipped ones of the same name and version).

    module-registry [--version] [--no-bundled] COMMAND ...
    module-registry list [--scripts DIR]...
    module-registry discover [--capability C]... [--any C]... [--exclude C]... [--scripts DIR]...
    module-registry run WORKFLOW_FILE [--scripts DIR]... [--input FILE|- | --input-text TEXT] [--raw]
                        [--report] [--metrics] [--batch [--progress] [--scheduler ADDRESS | --workers N]]
    module-registry script SCRIPT_FILE [--scripts DIR]... [--input FILE|- | --input-text TEXT] [--raw]
    module-registry graph WORKFLOW_FILE [--format mermaid|dot|svg]
    module-registry check [--scripts DIR]... [WORKFLOW_FILE]...
    module-registry describe NAME[@REQUIREMENT] [--scripts DIR]... [--json-schema]
    module-registry watch --scripts DIR [--scripts DIR]... [--duration SECONDS] [--metrics-port PORT]
    module-registry scripts definitions OUT_DIR [--scripts DIR]...
    module-registry index build DIR [--base-url URL]
    module-registry index yank NAME VERSION --index DIR/index.json
    module-registry index sign DIR/index.json --key PREFIX.key
    module-registry cache stats DIR | cache clear DIR
    module-registry keygen --out PREFIX
    module-registry search TEXT --index URL
    module-registry install NAME[@REQUIREMENT]... --index URL --into DIR [--trusted-key PREFIX.pub]
    module-registry install --locked --index URL --into DIR [--trusted-key PREFIX.pub]

Errors print one line on stderr and exit with status 1; bad usage (an
unknown flag, a flag that needs another one) exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any, Optional, Sequence

from . import ModuleRegistry, ModuleRegistryError, Workflow, __version__
from ._cli_io import (
    INPUT_LIMIT_MIB,
    PROG,
    BatchTally,
    CliError,
    MetricsServer,
    _iter_lines,
    _jsonable,
    _limit_bytes,
    _load_workflow,
    _read_input,
    _report,
    _report_batch,
    _table,
    _write,
)

def _registry(args: argparse.Namespace, entry_points: bool = True) -> ModuleRegistry:
    registry = ModuleRegistry(native_modules=True, bundled_scripts=not args.no_bundled)
    if entry_points:
        report = registry.load_entry_points()
        for name, exc in report.failed:
            print(f"{PROG}: warning: entry point {name} failed: {exc}", file=sys.stderr)
    for folder in getattr(args, "scripts", []):
        registry.load_scripts(folder)
    return registry


def _module_rows(found: Sequence[Any]) -> list[tuple[str, ...]]:
    return [(i.name, i.version, i.kind, i.type.name, ", ".join(sorted(i.capabilities))) for i in found]


MODULE_COLUMNS = ["name", "version", "kind", "type", "capabilities"]


def cmd_list(args: argparse.Namespace) -> int:
    registry = _registry(args)
    _table(MODULE_COLUMNS, _module_rows(registry.list()))
    return 0


def cmd_discover(args: argparse.Namespace) -> int:
    registry = _registry(args)
    found = registry.discover(capabilities=args.capability or None, any=args.any or None, exclude=args.exclude or None)
    _table(MODULE_COLUMNS, _module_rows(found))
    return 0 if found else 1


def cmd_describe(args: argparse.Namespace) -> int:
    registry = _registry(args)
    name, requirement = _request(args.module)
    info = registry.get(name, None if requirement == "*" else requirement)
    if info is None:
        raise CliError(f"no module named {name!r}" + ("" if requirement == "*" else f" matching {requirement!r}"))
    if args.json_schema:
        types = {"input": info.input, "output": info.output, "config_type": info.config_type}
        print(json.dumps({key: schema.to_json_schema() for key, schema in types.items()}, indent=2, sort_keys=True))
        return 0
    rows = [
        ("module", f"{info.name}@{info.version}"),
        ("kind", info.kind),
        ("type", info.type.name),
        ("types", f"{info.input} -> {info.output}"),
        ("input", str(info.input)),
        ("output", str(info.output)),
        ("config type", str(info.config_type)),
        ("capabilities", ", ".join(sorted(info.capabilities))),
        ("dependencies", ", ".join(f"{dep} {req}" for dep, req in sorted(info.dependencies.items()))),
    ]
    rows += [(f"metadata {key}", value) for key, value in sorted(info.metadata.items())]
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}".rstrip())
    return 0


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
    if args.workers is not None and args.workers < 1:
        raise CliError(f"--workers must be at least 1, not {args.workers}")
    registry = _registry(args)
    try:
        return _run(args, registry)
    finally:
        # After the output and the report; after a failed run too.
        _print_metrics(args, registry)


def _run(args: argparse.Namespace, registry: ModuleRegistry) -> int:
    import time

    limit = _limit_bytes(args)
    workflow = _load_workflow(args.workflow, limit)
    if args.cache:
        # Every step is cached, in this folder (shared with other runs).
        registry.set_cache(path=args.cache)
        form = workflow.to_dict()
        for step in form["steps"]:
            step["cache"] = True
        workflow = Workflow.from_dict(form)
    lines = args.batch and args.input not in (None, "-") and args.input.endswith(".jsonl")
    # A .jsonl batch streams: lines read as the batch takes them, each output
    # written as it comes, so memory stays flat however long the file is.
    data: Any = _iter_lines(args.input, limit) if lines else _read_input(args)
    start = time.perf_counter()
    if not args.batch:
        result = registry.run_workflow(workflow, data)
        _write(result.output, raw=args.raw)
        if args.report:
            sys.stdout.flush()
            _report(args.workflow, workflow, [result], result.duration, batch=False)
        return 0
    if not lines and not isinstance(data, list):
        raise CliError("--batch needs a JSON array of inputs (or a .jsonl file, one input per line)")
    from ._batch import iterate, progress_bar

    tally = BatchTally() if args.report else None
    outputs: list[Any] = []
    total = None if lines else len(data)
    with _Executor(args.scheduler, args.workers) as executor, progress_bar(
        total, workflow.name, enabled=args.progress
    ) as advance:
        for run in iterate(registry, workflow, data, executor, advance=advance if args.progress else None):
            if isinstance(run, BaseException):  # errors="raise": never yielded, raised
                raise run
            if tally is not None:
                tally.add(run)
            if lines:
                json.dump(_jsonable(run.output, False), sys.stdout, ensure_ascii=False)
                sys.stdout.write("\n")
            else:
                outputs.append(run.output)
    seconds = time.perf_counter() - start
    if not lines:
        _write(outputs, raw=False)
    if tally is not None:
        sys.stdout.flush()
        _report_batch(args.workflow, workflow, tally, seconds)
    return 0


def _print_metrics(args: argparse.Namespace, registry: ModuleRegistry) -> None:
    """``run --metrics``: the registry's metrics (Prometheus text format) on
    stderr, after the output and the report."""
    if args.metrics:
        sys.stdout.flush()
        sys.stderr.write(registry.metrics_text())
        sys.stderr.flush()


def cmd_script(args: argparse.Namespace) -> int:
    registry = _registry(args)
    _write(registry.run_script(args.script, _read_input(args)), raw=args.raw)
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    workflow = _load_workflow(args.workflow)
    text = {"mermaid": workflow.to_mermaid, "dot": workflow.to_dot, "svg": workflow.to_svg}[args.format]()
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    # Every bad script file is reported (one line each), not just the first.
    registry = _registry(argparse.Namespace(**{**vars(args), "scripts": []}))
    failed = 0
    for folder in args.scripts:
        problems = registry.check_scripts(folder)
        for exc in problems:
            failed += 1
            print(f"{PROG}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        if not problems:
            registry.load_scripts(folder)
            print(f"ok: scripts in {folder}")
    for path in args.workflows:
        try:
            registry.check_workflow(_load_workflow(path))
        except (ModuleRegistryError, CliError) as exc:
            failed += 1
            print(f"{PROG}: error: {path}: {_hint(args, str(exc))}", file=sys.stderr)
        else:
            print(f"ok: {path}")
    return 1 if failed else 0


def cmd_cache(args: argparse.Namespace) -> int:
    if not os.path.isdir(args.dir):
        raise CliError(f"{args.dir} is not a cache folder")
    if not os.path.isfile(os.path.join(args.dir, "steps-v1.sqlite")):  # core's cache::FILE_NAME
        raise CliError(f"{args.dir} holds no step cache (no steps-v1.sqlite): nothing to {'show' if args.action == 'stats' else 'clear'}")
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
    from . import build_index

    path = build_index(args.dir, args.base_url)
    index = ModuleRegistry().package_index(path.resolve().as_uri())
    names = {p.name for p in index.packages()}
    print(f"wrote {path}: {len(names)} packages, {len(index.packages())} versions")
    return 0


def cmd_index_yank(args: argparse.Namespace) -> int:
    from . import _core

    signature = _core._yank(args.index, args.name, args.version, args.key)
    print(f"yanked {args.name}@{args.version} in {args.index}")
    if signature is not None:
        print(f"signed it again: wrote {signature}")
    return 0


def cmd_index_sign(args: argparse.Namespace) -> int:
    from . import sign_index

    print(f"wrote {sign_index(args.index, args.key)}")
    return 0


def cmd_keygen(args: argparse.Namespace) -> int:
    from . import keygen

    secret, public = keygen(args.out)
    print(f"wrote {secret} (the secret key, not encrypted: keep it private) and {public} (give it to installers: --trusted-key {public})")
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


def cmd_scripts_definitions(args: argparse.Namespace) -> int:
    # Rhai language-server definitions of everything scripts can call here.
    written = _registry(args).script_definitions(args.out_dir)
    for path in written:
        print(path)
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    import time

    if not args.scripts:
        raise CliError("name at least one --scripts DIR to watch")
    if args.duration is not None and not args.duration > 0:
        raise CliError(f"--duration must be a positive number of seconds, not {args.duration}")
    registry = ModuleRegistry(native_modules=True, bundled_scripts=not args.no_bundled)

    def show(event: Any) -> None:
        print(_event_line(event), flush=True)

    watchers = []
    server = None if args.metrics_port is None else MetricsServer(registry, args.metrics_port)
    if server is not None:
        print(f"{PROG}: metrics on http://127.0.0.1:{server.port}/metrics", file=sys.stderr, flush=True)
    try:
        for folder in args.scripts:
            watchers.append(registry.watch_scripts(folder, on_event=show))
        print(f"{PROG}: watching {', '.join(w.folder for w in watchers)} (Ctrl-C to stop)", file=sys.stderr, flush=True)
        deadline = None if args.duration is None else time.monotonic() + args.duration
        # Until the time is up, or a watch ends by itself (its folder gone).
        while all(w.running for w in watchers) and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic())))
    except KeyboardInterrupt:
        pass
    finally:
        for watcher in watchers:
            watcher.stop()
        if server is not None:
            server.close()
    ended = [w for w in watchers if w.error is not None]
    for watcher in ended:
        print(f"{PROG}: the watch of {watcher.folder} ended: {watcher.error}", file=sys.stderr, flush=True)
    return 1 if ended else 0


def _hint(args: argparse.Namespace, message: str) -> str:
    if getattr(args, "no_bundled", False) and "no module named" in message:
        return message + " (--no-bundled leaves out the shipped script modules)"
    return message


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each default that says something (not None, False or an empty
    list: the help says what happens then)."""

    def _get_help_string(self, action: argparse.Action) -> Optional[str]:
        if action.default in (None, False, [], argparse.SUPPRESS):
            return action.help
        return super()._get_help_string(action)


#: Flags that only mean something with another one (dest, flag, needed dest,
#: needed flag), per subcommand: one rule, one message for all.
NEEDS = {
    "run": [
        ("progress", "--progress", "batch", "--batch"),
        ("workers", "--workers", "batch", "--batch"),
        ("scheduler", "--scheduler", "batch", "--batch"),
    ],
}

#: Flags that cannot go together (dest, flag, other dest, other flag).
CONFLICTS = {
    "run": [("raw", "--raw", "batch", "--batch")],
}


def _given(args: argparse.Namespace, dest: str) -> bool:
    return getattr(args, dest, None) not in (None, False, [])


def _check_flags(args: argparse.Namespace) -> None:
    sp: argparse.ArgumentParser = args._parser
    for dest, flag, needed, needed_flag in NEEDS.get(args.command, []):
        if _given(args, dest) and not _given(args, needed):
            sp.error(f"{flag} needs {needed_flag}")
    for dest, flag, other, other_flag in CONFLICTS.get(args.command, []):
        if _given(args, dest) and _given(args, other):
            sp.error(f"{flag} cannot be used with {other_flag}")
    if args.command == "discover" and not (args.capability or args.any or args.exclude):
        sp.error("give at least one of --capability, --any, --exclude")


NO_BUNDLED_HELP = "leave out the script modules shipped in the package (module_registry.bundled_scripts())"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Discover, run and draw modules and workflows. Every command knows the native modules, "
        "the script modules shipped in the package, and those of installed packages.",
        epilog=f"'{PROG} COMMAND --help' describes each command.",
        formatter_class=_Formatter,
    )
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}", help="print the version and exit")
    p.add_argument("--no-bundled", action="store_true", help=NO_BUNDLED_HELP)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do ('COMMAND --help' for its own flags)")

    def command(group: Any, name: str, text: str, func: Any) -> argparse.ArgumentParser:
        sp: argparse.ArgumentParser = group.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".", formatter_class=_Formatter)
        # Also after the subcommand; SUPPRESS keeps the global flag's value when absent here.
        sp.add_argument("--no-bundled", action="store_true", default=argparse.SUPPRESS, help=NO_BUNDLED_HELP)
        sp.set_defaults(func=func, _parser=sp)
        return sp

    def scripts_option(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--scripts", action="append", default=[], metavar="DIR",
            help="also load the Rhai script modules of DIR (repeatable; they replace shipped ones of the same name and version)",
        )

    def input_options(sp: argparse.ArgumentParser) -> None:
        given = sp.add_mutually_exclusive_group()
        given.add_argument("--input", metavar="FILE", help="read the input from FILE as JSON; '-' reads JSON from stdin (without --input or --input-text the input is null)")
        given.add_argument("--input-text", metavar="TEXT", help="the input is TEXT itself, a string (not parsed as JSON)")
        sp.add_argument("--input-limit", type=float, default=INPUT_LIMIT_MIB, metavar="MIB", help="refuse an input (or workflow file) larger than this many MiB")
        sp.add_argument("--raw", action="store_true", help="write bytes or text output as-is instead of JSON")

    sp = command(sub, "list", "list every registered module", cmd_list)
    scripts_option(sp)

    sp = command(sub, "discover", "find modules by capability (give at least one filter)", cmd_discover)
    sp.add_argument("--capability", action="append", default=[], metavar="C", help="a capability every result has (repeatable)")
    sp.add_argument("--any", action="append", default=[], metavar="C", help="results have at least one of these (repeatable)")
    sp.add_argument("--exclude", action="append", default=[], metavar="C", help="results have none of these (repeatable)")
    scripts_option(sp)

    sp = command(sub, "describe", "print a module's declaration with its types", cmd_describe)
    sp.add_argument("module", metavar="NAME[@REQUIREMENT]", help="the module, with an optional semver requirement (default: its highest release)")
    sp.add_argument("--json-schema", action="store_true", help="print its input, output and config types as JSON Schemas (one JSON object)")
    scripts_option(sp)

    sp = command(sub, "run", "run a workflow file; prints the output as JSON", cmd_run)
    sp.add_argument("workflow", metavar="WORKFLOW_FILE", help="the workflow, a .toml or .json file")
    input_options(sp)
    sp.add_argument("--report", action="store_true", help="after the output, write a report of the run on stderr: each step's module, status and time")
    sp.add_argument(
        "--batch",
        action="store_true",
        help="the input is a JSON array, or a .jsonl file of one input per line (then one output per line): run once per item",
    )
    sp.add_argument("--metrics", action="store_true", help="after the output (and the report), write the registry's metrics on stderr in the Prometheus text format")
    sp.add_argument("--progress", action="store_true", help="show a progress bar (needs --batch)")
    sp.add_argument("--cache", metavar="DIR", help="cache every step's output in DIR (kept between runs, shared by processes)")
    where = sp.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS", help="run the batch on the Dask scheduler at ADDRESS (needs --batch)")
    where.add_argument("--workers", type=int, metavar="N", help="run the batch on a local Dask cluster of N processes (needs --batch)")
    scripts_option(sp)

    sp = command(sub, "script", "run a Rhai orchestration script; prints its result as JSON", cmd_script)
    sp.add_argument("script", metavar="SCRIPT_FILE", help="the .rhai script; it sees `registry` and `input`")
    input_options(sp)
    scripts_option(sp)

    sp = command(sub, "graph", "draw a workflow file", cmd_graph)
    sp.add_argument("workflow", metavar="WORKFLOW_FILE", help="the workflow, a .toml or .json file")
    sp.add_argument("--format", choices=["mermaid", "dot", "svg"], default="mermaid", help="the drawing's language")

    sp = command(sub, "check", "validate script folders and workflow files", cmd_check)
    sp.add_argument("workflows", nargs="*", metavar="WORKFLOW_FILE", help="workflow files to check against the registry (none: check only the --scripts)")
    scripts_option(sp)

    sp = command(sub, "watch", "load script folders and reload their modules as files change, printing each event", cmd_watch)
    scripts_option(sp)
    sp.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this long (without it: until Ctrl-C)")
    sp.add_argument("--metrics-port", type=int, metavar="PORT", help="while watching, serve the registry's metrics at http://127.0.0.1:PORT/metrics (0: a free port, printed on stderr)")

    scripts = sub.add_parser("scripts", help="tools for Rhai script authors", description="Tools for Rhai script authors.", formatter_class=_Formatter)
    scripts.add_argument("--no-bundled", action="store_true", default=argparse.SUPPRESS, help=NO_BUNDLED_HELP)
    script_actions = scripts.add_subparsers(dest="action", required=True, metavar="ACTION", help="what to do")
    sp = command(script_actions, "definitions", "write Rhai language-server definition files (.d.rhai) for everything a script can call", cmd_scripts_definitions)
    sp.add_argument("out_dir", metavar="OUT_DIR", help="the folder the .d.rhai files go to (created if missing)")
    scripts_option(sp)

    index = sub.add_parser("index", help="build, yank in and sign a package index", description="Build, yank in and sign a package index.", formatter_class=_Formatter)
    index.add_argument("--no-bundled", action="store_true", default=argparse.SUPPRESS, help=NO_BUNDLED_HELP)
    actions = index.add_subparsers(dest="action", required=True, metavar="ACTION", help="what to do with the index")
    sp = command(actions, "build", "write DIR/index.json for the script modules in DIR (extending an existing one)", cmd_index_build)
    sp.add_argument("dir", metavar="DIR", help="the folder of .rhai script modules to publish")
    sp.add_argument("--base-url", metavar="URL", help="where the files will be served (without it: relative to the index)")
    sp = command(actions, "yank", "mark a version yanked: resolution skips it unless a lockfile pins it", cmd_index_yank)
    sp.add_argument("name", metavar="NAME", help="the package")
    sp.add_argument("version", metavar="VERSION", help="its exact version")
    sp.add_argument("--index", required=True, metavar="DIR/index.json", help="the index file to change")
    sp.add_argument("--key", metavar="PREFIX.key", help="sign the changed index again (required when it is signed)")
    sp = command(actions, "sign", "write INDEX.minisig with a minisign secret key", cmd_index_sign)
    sp.add_argument("index", metavar="DIR/index.json", help="the index file to sign")
    sp.add_argument("--key", required=True, metavar="PREFIX.key", help="the secret key (from keygen)")

    cache = sub.add_parser("cache", help="look into or empty a step cache folder", description="Look into or empty a step cache folder.", formatter_class=_Formatter)
    cache.add_argument("--no-bundled", action="store_true", default=argparse.SUPPRESS, help=NO_BUNDLED_HELP)
    cache_actions = cache.add_subparsers(dest="action", required=True, metavar="ACTION", help="what to do with the cache")
    for action, what in [("stats", "show the entries and size of the cache in DIR"), ("clear", "empty the cache in DIR")]:
        sp = command(cache_actions, action, what, cmd_cache)
        sp.add_argument("dir", metavar="DIR", help="the cache folder (as given to run --cache)")

    sp = command(sub, "keygen", "write a minisign key pair PREFIX.key (not encrypted) and PREFIX.pub", cmd_keygen)
    sp.add_argument("--out", required=True, metavar="PREFIX", help="where the two files go (missing folders are created; existing keys are never overwritten)")

    sp = command(sub, "search", "find packages in an index by name, description or capability", cmd_search)
    sp.add_argument("text", metavar="TEXT", help="what to look for")
    sp.add_argument("--index", required=True, metavar="URL", help="the index: an http(s) or file URL, or a path, of its index.json")

    sp = command(sub, "install", "install script module packages (and their dependencies) into a folder", cmd_install)
    sp.add_argument("packages", nargs="*", metavar="NAME[@REQUIREMENT]", help="packages to install, each with an optional semver requirement")
    sp.add_argument("--index", required=True, metavar="URL", help="the index: an http(s) or file URL, or a path, of its index.json")
    sp.add_argument("--into", required=True, metavar="DIR", help="the folder the files go to, with its module-registry.lock")
    sp.add_argument("--trusted-key", metavar="PREFIX.pub", help="refuse an index not signed by this minisign public key")
    sp.add_argument("--locked", action="store_true", help="install exactly what DIR/module-registry.lock says")
    return p


class _ScriptOutput(logging.Handler):
    """Scripts' ``print`` and ``debug`` lines on stderr (the one of the
    moment): ``[rhai] text`` and ``[rhai debug] script:line:column: text``."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.levelno < logging.INFO:
                where = ":".join(
                    str(part)
                    for part in (getattr(record, "rhai_script", None), getattr(record, "rhai_line", None), getattr(record, "rhai_column", None))
                    if part is not None
                )
                line = f"[rhai debug] {where}: {text}" if where else f"[rhai debug] {text}"
            else:
                line = f"[rhai] {text}"
            sys.stderr.write(line + "\n")
        except Exception:  # pragma: no cover - logging's own rule
            self.handleError(record)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parser().parse_args(argv)
    _check_flags(args)
    logger = logging.getLogger("module_registry.script")
    shown = _ScriptOutput()
    logger.addHandler(shown)
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        code: int = args.func(args)
        return code
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ModuleRegistryError, CliError, OSError, ValueError, RecursionError, MemoryError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"{PROG}: error: {_hint(args, message)}", file=sys.stderr)
        return 1
    finally:
        logger.removeHandler(shown)
        logger.setLevel(level)
        logger.propagate = propagate


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
