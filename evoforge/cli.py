"""The ``evoforge`` command line: run, plan, resume, report, envs, bench, models."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from evoforge.config import RESUME_SAFE_KEYS
from evoforge.errors import (
    EvoforgeError,
    RunInterrupted,
    RunTerminated,
    Terminated,
    storage_error,
)
from evoforge.progress import say


def _run_help() -> str:
    from evoforge.config import Config
    from evoforge.config.env_defaults import ENV_DEFAULTS
    from evoforge.config.loader import help_text

    own = "".join(
        f"\n  env={name}: " + ", ".join(f"{k}={v}" for k, v in values.items())
        for name, values in ENV_DEFAULTS.items()
    )
    return (
        "config keys (set as key=value, or in a YAML file):\n"
        + help_text(Config)
        + "\n\nenvironments with defaults of their own (what you set still wins):"
        + own
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="evoforge", description="Self-improvement rounds for a language model."
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--quiet", action="store_true", help="no progress bars (for log files)")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run",
        help="start a run",
        epilog=_run_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "items",
        nargs="*",
        metavar="[CONFIG.yaml] [key=value ...]",
        help="an optional YAML config, then dotted overrides",
    )
    plan = sub.add_parser(
        "plan",
        help="check a run and print its placement and resources; writes nothing",
        description="Every check `evoforge run` makes before it writes the run directory (config, "
        "environment, model, token budgets, placement against the cluster: local, or joined "
        "with ray_address=), then the placement, CPU slots, GPU shares and memory the run will "
        "hold. Nothing is written and no local cluster is started.",
    )
    plan.add_argument(
        "items",
        nargs="*",
        metavar="[CONFIG.yaml] [key=value ...]",
        help="as for `evoforge run`",
    )
    res = sub.add_parser(
        "resume",
        help="continue a stopped run",
        description="Continue a stopped run. Its config.yaml must be the config it started "
        "with; only these keys may change, by an edit or as key=value: "
        + ", ".join(RESUME_SAFE_KEYS),
    )
    res.add_argument("run_dir")
    res.add_argument("overrides", nargs="*", metavar="key=value", help="a key that may change")
    rep = sub.add_parser("report", help="write report.md and plots for a run")
    rep.add_argument("run_dir")
    envs = sub.add_parser("envs", help="list or check environments")
    envs_sub = envs.add_subparsers(dest="envs_command", required=True)
    envs_sub.add_parser("list", help="every environment evoforge can find")
    chk = envs_sub.add_parser("check", help="validate an environment (check_env)")
    chk.add_argument("name", help="a registered name, an entry point, or module:attr")
    chk.add_argument("-n", type=int, default=16, help="tasks per check")
    bench = sub.add_parser("bench", help="side-by-side measurements")
    bench.add_argument("name")
    bench.add_argument("--model", default="tiny")
    bench.add_argument("--json", dest="json_path", default=None)
    bench.add_argument("--backend", default="vllm", choices=["vllm", "hf"])
    bench.add_argument(
        "--size", default="full", choices=["full", "tiny"], help="tiny: a seconds-long smoke run"
    )
    models = sub.add_parser("models", help="prepare (convert and cache) models")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    prep = models_sub.add_parser("prepare", help="convert and cache models (default, tiny, a path)")
    prep.add_argument("specs", nargs="+")
    prep.add_argument("--cache-dir", default=None)
    for sp in (run, plan, res, rep, envs, bench, models, chk):
        sp.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
        sp.add_argument(
            "--quiet", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
    return p


def _split_items(items: list[str]) -> tuple[str | None, list[str]]:
    config, overrides = None, []
    for i, item in enumerate(items):
        if i == 0 and "=" not in item:
            config = item
        else:
            overrides.append(item)
    return config, overrides


def _cmd_envs(args: argparse.Namespace) -> int:
    from evoforge.envs.registry import get_env, list_envs

    if args.envs_command == "list":
        for e in list_envs():
            print(f"{e.name:<16} {e.description}")
        return 0
    from evoforge.config import Config
    from evoforge.envs.check import CheckedEnv, check_env

    env = CheckedEnv(get_env(args.name), Config().verify_timeout_s)
    report = check_env(env, n=args.n, echo=lambda line: print(line, flush=True))
    print(f"{args.name}: {'passed' if report.ok else f'{len(report.problems)} problem(s)'}")
    return 0 if report.ok else 1


def _cmd_plan(args: argparse.Namespace) -> int:
    from pathlib import Path

    from evoforge.config import load_config
    from evoforge.driver.preflight import validate
    from evoforge.driver.runner import default_run_dir

    config_path, overrides = _split_items(args.items)
    config = load_config(config_path, overrides)
    run_dir = Path(config.run_dir or default_run_dir(config))
    checked = validate(config, new_run_dir=run_dir)
    print(f"run directory: {run_dir} (not created)")
    print(f"environment: {checked.env.name}; model: {config.model}; backend: {config.backend}")
    for line in checked.plan.lines() if checked.plan else []:
        print(line)
    for note in checked.notes:
        print(note)
    print("plan: ok (nothing written)")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from evoforge.agents.models import resolve_model

    for spec in args.specs:
        ref = resolve_model(spec, args.cache_dir)
        print(f"{spec}: {ref.path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a character the terminal cannot show is escaped
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    # Like uvicorn and gunicorn: `module:attr` plugins resolve from the current directory too.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    debug = getattr(args, "debug", False)
    quiet = getattr(args, "quiet", False)
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not debug:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        if args.command == "run":
            from evoforge.config import load_config
            from evoforge.driver.runner import run

            config_path, overrides = _split_items(args.items)
            run(load_config(config_path, overrides), quiet=quiet)
            return 0
        if args.command == "plan":
            return _cmd_plan(args)
        if args.command == "resume":
            from evoforge.driver.runner import resume

            resume(args.run_dir, quiet=quiet, overrides=tuple(args.overrides))
            return 0
        if args.command == "report":
            from evoforge.driver.report import write_report

            print(write_report(args.run_dir))
            return 0
        if args.command == "envs":
            return _cmd_envs(args)
        if args.command == "models":
            return _cmd_models(args)
        if args.command == "bench":
            from evoforge.bench import run_bench

            run_bench(
                args.name,
                model=args.model,
                backend=args.backend,
                json_path=args.json_path,
                size=args.size,
            )
            return 0
    except RunTerminated as e:  # a run stopped by SIGTERM; it printed its line
        return e.exit_code
    except RunInterrupted as e:  # a run stopped by Ctrl-C: the line names its directory
        say(str(e))
        return e.exit_code
    except Exception as e:
        # Our errors, and a failed write anywhere (disk full, permissions), print one line.
        err = e if isinstance(e, EvoforgeError) else storage_error(e)
        if debug or err is None:
            raise
        say("error: " + " ".join(str(err).splitlines()))
        return 2
    except KeyboardInterrupt as e:  # outside a run: nothing to resume
        if isinstance(e, Terminated):
            say("terminated (SIGTERM)")
            return 143
        say("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
