"""The ``cloudmarker`` command: arguments -> config -> runner (or Airflow's own services)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from airflow_cloudmarker import __version__, environment
from airflow_cloudmarker import config as config_mod

if TYPE_CHECKING:
    from collections.abc import Sequence

EXIT_CONFIG_ERROR = 2
EXIT_AUDIT_FAILED = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line; ``--help`` and a bad option exit here (argparse's code 2, a usage error)."""
    parser = argparse.ArgumentParser(
        prog="cloudmarker",
        description=(
            "Audit clouds for security problems. Each audit of the config becomes an Airflow DAG: "
            "cloud plugins fetch records, event plugins check them, store and alert plugins keep and send them."
        ),
        epilog=(
            "Config files cascade over the built-in base config in this order: "
            + ", ".join(config_mod.DEFAULT_CONFIG_PATHS)
            + " (missing ones are skipped); -c replaces that list. "
            "Without -n, Airflow's scheduler, DAG processor, triggerer and API server (web UI) start and run "
            "the audits every day at `schedule`."
        ),
    )
    parser.add_argument(
        "-c",
        "--config",
        nargs="*",
        metavar="FILE",
        default=None,
        help="config files to cascade over the base config, in order (default: the list above)",
    )
    parser.add_argument("-n", "--now", action="store_true", help="run the audits in `run` now and exit")
    parser.add_argument(
        "-p", "--print-base-config", action="store_true", help="print the built-in base config and exit"
    )
    parser.add_argument(
        "--keep-xcoms", action="store_true", help="with -n: keep the runs' record batches (XComs) for inspection"
    )
    parser.add_argument(
        "--purge-xcoms",
        type=float,
        metavar="DAYS",
        help="delete the record batches (XComs and their object-store files) of runs older than DAYS days, and exit",
    )
    parser.add_argument(
        "--list-plugins",
        action="store_true",
        help="print every built-in plugin (kind, config path, params with defaults, checks of events) and exit",
    )
    parser.add_argument("--json", action="store_true", help="with --list-plugins: print JSON instead of a table")
    parser.add_argument("-v", "--version", action="version", version=f"cloudmarker {__version__}")
    args = parser.parse_args(argv)
    if args.json and not args.list_plugins:
        parser.error("--json goes with --list-plugins")
    return args


def _report_config(config: config_mod.Config, audit_keys: Sequence[str]) -> bool:
    """Print warnings and the problems of ``audit_keys``; return False when one of them cannot run."""
    for warning in config.warnings:
        print(f"cloudmarker: warning: {warning}", file=sys.stderr)
    ok = True
    for key in sorted(config.audit_errors):
        for problem in config.audit_errors[key]:
            if key in audit_keys:
                ok = False
                print(f"cloudmarker: error: {problem}", file=sys.stderr)
            else:
                print(f"cloudmarker: warning: audit {key} cannot run: {problem}", file=sys.stderr)
    return ok


def print_summary(results) -> None:
    """Print one table row per audit run, so a laptop run ends with what happened in numbers.

    ``new`` and ``resolved`` count the findings alerts get; ``muted`` the ones a mutelist rule
    kept from them (stored all the same).
    """
    print("\nCloudmarker summary")
    print(
        f"{'audit':<24} {'state':<10} {'records':>9} {'events':>7} {'new':>5} {'resolved':>8} {'muted':>5} "
        f"{'seconds':>8}"
    )
    for r in results:
        print(
            f"{r.audit:<24} {r.state:<10} {r.records:>9} {r.events:>7} {r.new:>5} {r.resolved:>8} {r.muted:>5} "
            f"{r.seconds:>8.1f}"
        )
        for rule in r.expired_rules:
            print(f"{'':<24} {rule}; it mutes nothing")
        if r.failed_tasks:
            print(f"{'':<24} failed tasks: {', '.join(r.failed_tasks)}")
        if r.repaired or r.skipped:
            print(f"{'':<24} repaired: {r.repaired}, skipped: {r.skipped} (records and events; the log says which)")


def apply_environment(args: argparse.Namespace, paths: Sequence[str]) -> None:
    """Set the Airflow environment of this mode before anything can import Airflow.

    Reading the config may import Airflow (a secret registered with its log masker, a user's
    plugin module importing a provider hook), and Airflow fixes its home and DAGs folder then.
    ``--purge-xcoms`` works on the Airflow the environment names, else on ``cloudmarker -n``'s own.
    """
    existing = environment.existing_paths(paths)
    if args.purge_xcoms is not None:
        if not os.environ.get("AIRFLOW_HOME"):
            environment.apply(environment.embedded_environment([]))
    elif args.now:
        environment.apply(environment.embedded_environment(existing))
    else:
        environment.apply(environment.service_environment(existing))


def purge(days: float) -> int:
    """``--purge-xcoms DAYS``: delete the record batches of runs older than ``days`` days."""
    if days < 0:
        print("cloudmarker: error: --purge-xcoms DAYS must be >= 0", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    from airflow_cloudmarker import retention

    result = retention.purge_xcoms(days)
    print(f"cloudmarker: deleted {result.xcoms} XComs of {result.runs} runs older than {days:g} days", end="")
    print(f" ({result.failed} files could not be deleted)" if result.failed else "")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command and return its exit code (``EXIT_*``) rather than exit: only ``run()`` exits."""
    args = parse_args(argv)
    if args.print_base_config:
        sys.stdout.write(config_mod.base_config_text())
        return 0
    if args.list_plugins:  # no config and no Airflow: the plugins' own declarations only
        from airflow_cloudmarker import plugins

        return plugins.print_listing(as_json=args.json)
    paths = list(config_mod.DEFAULT_CONFIG_PATHS) if args.config is None else list(args.config)
    apply_environment(args, paths)
    if args.purge_xcoms is not None:
        return purge(args.purge_xcoms)
    missing = [p for p in (args.config or []) if not os.path.isfile(os.path.expanduser(p))]
    for path in missing:
        print(f"cloudmarker: warning: config file {path} not found; skipped", file=sys.stderr)
    try:
        config = config_mod.load_config(paths)
    except config_mod.ConfigError as exc:
        for problem in exc.problems:
            print(f"cloudmarker: error: {problem}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    if not _report_config(config, config.run if args.now else list(config.audits)):
        return EXIT_CONFIG_ERROR

    if args.now:
        if not config.run:
            print("cloudmarker: nothing to run: `run` lists no audits", file=sys.stderr)
            return 0
        from airflow_cloudmarker import runner

        results = runner.run_now(config, paths, keep_xcoms=args.keep_xcoms)
        print_summary(results)
        if any(r.state == "interrupted" for r in results):
            return EXIT_INTERRUPTED
        return 0 if all(r.state == "success" for r in results) else EXIT_AUDIT_FAILED

    from airflow_cloudmarker import service

    return service.serve(config, paths)


def run() -> None:
    """The ``cloudmarker`` console script: ``main()`` with the process's arguments, as the exit status."""
    sys.exit(main())


if __name__ == "__main__":
    run()
