"""check: is the candidate still correct? (exit 0 pass, 4 correctness failure, 2
infrastructure). ``ci --check`` runs it before measuring."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchbench.cli import command, infrastructure_failure, settings_of, split_list
from watchbench.cli.options import STRESS_SECONDS, boot_options, non_empty, out_dir, tree_options
from watchbench.cli.standing import head_place
from watchbench.errors import InputError, WatchbenchError
from watchbench.flows.check import EXIT_INFRA, CheckOptions, CheckResult, run_check
from watchbench.host.progress import LOG_WIDTH, Progress
from watchbench.kernel.series import load_many
from watchbench.report.correctness import terminal_lines
from watchbench.settings import Settings


def options_of(settings: Settings, series: str, *, stress_seconds: int | None = None,
               accel: str | None = None, only: str | None = None, out: str | None = None,
               tree: str | None = None, base: str | None = None,
               no_wait: bool = False) -> CheckOptions:
    """The options as the tasks give them (None: the configured default); bad ones are
    refused here, as input errors, before anything is built."""
    options = CheckOptions.from_settings(
        settings, series, stress_seconds=stress_seconds, accel=accel,
        only=frozenset(split_list(only)) or None, out=Path(out) if out else None,
        tree=tree, base=base, wait=not no_wait)
    options.validate()
    return options


def report_check(flow: Callable[[Progress], CheckResult], progress: Progress | None = None) -> int:
    """A check's result printed (steps, findings with their evidence, files, the verdict
    last); a failure of the pipeline itself is exit 2 with its reason."""
    try:
        result = flow(progress or Progress("check", width=LOG_WIDTH))
    except InputError:
        raise  # the user's to mend: said as an error (cli.command), exit 2
    except WatchbenchError as exc:
        print(infrastructure_failure("check", EXIT_INFRA, exc))
        return EXIT_INFRA
    files = {"ktap": str(result.ktap), "junit": str(result.junit),
             "summary": str(result.summary), "console": str(result.booted.console_log)}
    print("\n".join(terminal_lines(result.line, result.parts, result.findings,
                                    result.step_seconds, files)))
    return result.exit_code


def _seconds(text: object) -> int | None:
    return STRESS_SECONDS.parse(text)


@command
def check(c: Any, series: str = "", stress_seconds: object = None,
          accel: str | None = None, only: str | None = None, out: str | None = None,
          tree: str | None = None, base: str | None = None, no_wait: bool = False,
          kernel_args: str | None = None, kconfig_add: list[str] | None = None,
          uncommitted: bool = False) -> int:
    settings = boot_options(settings_of(c), "check", kernel_args, kconfig_add)
    tree_options(tree, base, None)
    if only is not None:
        non_empty("--only", split_list(only), "./wb check --only conformance,stress")
    if series.strip():
        load_many(settings.series_dirs, series)
    out_dir("--out", out)
    seconds = _seconds(stress_seconds)
    options_of(settings, series, stress_seconds=seconds, accel=accel, only=only, out=out,
               tree=tree, base=base, no_wait=no_wait)  # every option good before the place
    place = head_place(settings, "check", tree=tree, base=base, series=series,
                       uncommitted=uncommitted)
    options = options_of(settings, place.series, stress_seconds=seconds, accel=accel,
                         only=only, out=out, tree=place.tree, base=place.base,
                         no_wait=no_wait)
    place.say()
    return report_check(lambda progress: run_check(settings, options, progress=progress))
