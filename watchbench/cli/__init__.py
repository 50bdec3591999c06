"""The command layer: what each task prints and which exit code it gives.

Every task in ``cli/tasks.py`` is one call into a module here. Only this layer prints (the
domain reports through the ``Progress`` it is handed) and only it turns a
``WatchbenchError`` into a message and an exit code (``command``). Below it, flows and
stages return data.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import tempfile
import textwrap
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from invoke.config import AmbiguousMergeError
from invoke.exceptions import Exit, UncastableEnvVar

import watchbench.settings
from watchbench.errors import ConfigError, InputError, InternalError, ResultsError, WatchbenchError
from watchbench.settings import (
    SHOW,
    Settings,
    check_environment,
    check_environment_values,
    env_name,
    is_checkout,
)

BAD_INPUT = (InputError, ConfigError, ResultsError)  # the errors a user mends by what they type
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a reader that left early
WIDTH = 80

# invoke's configuration layers, lowest precedence first, and how a user knows each one.
LAYERS = (("_system", "_system_path", "/etc/invoke.yaml"),
          ("_user", "_user_path", "~/.invoke.yaml"),
          ("_project", "_project_path", "invoke.yaml"),
          ("_env", None, "the environment"),
          ("_runtime", "_runtime_path", "the -f config file"))


def settings_of(c: Any) -> Settings:
    """Settings from the ``watchbench`` section of invoke's config (defaults, invoke.yaml,
    user overrides, INVOKE_WATCHBENCH_* variables), each checked against its rule; an
    error names the file or variable the bad value came from. Run inside a kernel
    checkout, reports go outside it (``Settings.outside_checkout``)."""
    check_environment(os.environ)
    config = getattr(c, "config", None)
    section = config.get("watchbench", {}) if config is not None else {}
    settings = Settings.from_mapping(_plain(section),
                                     origins(config) if config is not None else {})
    return settings.outside_checkout(Path.cwd())


def origins(config: Any) -> dict[str, str]:
    """Dotted setting key -> where its value came from (the last layer that sets it)."""
    found: dict[str, str] = {}

    def walk(mapping: Any, prefix: str, label: str, env: bool) -> None:
        for name, value in mapping.items():
            key = f"{prefix}.{name}"
            if hasattr(value, "items"):
                walk(value, key, label, env)
            found[key] = f"${env_name(key)}" if env else label

    for layer, path_attr, label in LAYERS:
        data = getattr(config, layer, None) or {}
        path = getattr(config, path_attr, None) if path_attr else None
        if hasattr(data, "get") and hasattr(data.get("watchbench"), "items"):
            walk(data["watchbench"], "watchbench", str(path or label), layer == "_env")
    return found


def _plain(value: Any) -> Any:
    if hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    return value


def split_list(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def fit(text: str, width: int = WIDTH) -> str:
    """Each line wrapped to ``width`` columns (a path longer than that stays whole)."""
    out: list[str] = []
    for line in text.splitlines():
        indent = " " * (len(line) - len(line.lstrip()) or (2 if out else 0))
        out += textwrap.wrap(line, width, subsequent_indent=indent, break_long_words=False,
                             break_on_hyphens=False) or [""]
    return "\n".join(out)


def infrastructure_failure(name: str, code: int, exc: BaseException) -> str:
    """A gate's pipeline failing: the verdict on a line of its own, whole (tests and CI
    logs look for it), and the reason under it, wrapped to 80 columns."""
    reason = "\n".join("  " + line for line in fit(str(exc), WIDTH - 2).splitlines())
    return f"watchbench {name}: INFRASTRUCTURE FAILURE (exit {code}):\n{reason}"


_WB = re.compile(r"(?<![\w/.])\./wb\b")


def as_typed(text: str) -> str:
    """Commands to paste as the user runs watchbench: ``./wb`` in a checkout, ``wb`` when
    it is installed (messages are written with ``./wb``)."""
    return text if is_checkout(watchbench.settings.PROJECT_ROOT) else _WB.sub("wb", text)


def say_error(exc: WatchbenchError) -> int:
    """The error as the user sees it, on stderr; its exit code."""
    print(fit(as_typed(f"error: {exc}")), file=sys.stderr)
    return exc.exit_code


def crash_log_dir(c: Any = None) -> Path:
    """Where an unexpected exception's traceback goes: the cache's logs/, or the temp
    directory when the settings themselves cannot be read."""
    try:
        given = os.environ.get("INVOKE_WATCHBENCH_CACHE_DIR")
        cache = settings_of(c).cache_dir if c is not None else (
            Path(given).expanduser() if given else Settings().cache_dir)
        directory = cache / "logs"
        directory.mkdir(parents=True, exist_ok=True)
        return directory
    except Exception:  # noqa: BLE001 -- a crash report must not crash
        return Path(tempfile.gettempdir())


def internal_error(exc: BaseException, tb: TracebackType | None, c: Any = None) -> InternalError:
    """An exception nobody expected, as an error naming the log that holds its traceback."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log = crash_log_dir(c) / f"crash-{stamp}-{os.getpid()}.log"
    try:
        log.write_text(f"watchbench: {' '.join(sys.argv)}\n"
                       + "".join(traceback.format_exception(type(exc), exc, tb)))
    except OSError:
        log = Path("(could not be written)")
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    return InternalError(f"internal error: {type(exc).__name__}: {first}", log=log,
                         hint=f"this is a bug in watchbench: please report it (an issue "
                              f"in the project's tracker) with the log: `cat {log}`")


def config_error(exc: BaseException) -> InputError | None:
    """invoke's own refusals of a configuration (a section replaced by a scalar, a list
    set from the environment) as input errors; None for anything else."""
    if isinstance(exc, AmbiguousMergeError):
        given = re.search(r"with <class '(\w+)'> \((.{0,60})", str(exc))
        what = f"a {given[1]} ({given[2].rstrip(')')})" if given else "a value"
        return InputError(f"a section of the watchbench settings was given {what} in a "
                          "config file or the environment, not a mapping",
                          hint="a section (e.g. watchbench.ci) must stay a mapping of its "
                               "settings: fix invoke.yaml, ~/.invoke.yaml or the -f file; "
                               f"then check: {SHOW}")
    if any(name.startswith("INVOKE_WATCHBENCH_") for name in os.environ):
        check_environment_values(os.environ)  # a value invoke could not cast, named
    if isinstance(exc, UncastableEnvVar):
        return InputError(f"an INVOKE_WATCHBENCH_* variable cannot set a list: {exc}",
                          hint="unset it; set lists in invoke.yaml or ~/.invoke.yaml; "
                               f"then check: {SHOW}")
    return None


def report_uncaught(exc: BaseException, tb: TracebackType | None = None) -> int:
    """What ``inv`` does with an exception that escaped everything else (invoke's config
    loading, a bug): a message, never a traceback; the exit code."""
    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) else 1
    if isinstance(exc, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    try:
        known = exc if isinstance(exc, WatchbenchError) else config_error(exc)
    except WatchbenchError as refused:
        known = refused
    return say_error(known or internal_error(exc, tb or exc.__traceback__))


def _excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if isinstance(exc, BrokenPipeError):  # `./wb --help ci | head`: the reader left
        os._exit(EXIT_BROKEN_PIPE)
    code = report_uncaught(exc, tb)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # sys.exit cannot end the process from inside the hook


def install_excepthook() -> None:
    """Called by cli/tasks.py: what escapes invoke itself (its config merge runs after our
    tasks are loaded) is said as an error, not a traceback."""
    sys.excepthook = _excepthook


# Command modules whose tasks are named with the module as a prefix (cli/tasks.py's
# collections): all of patches', only these of kernel's and vm's.
PREFIXED: dict[str, frozenset[str] | None] = {
    "patches": None, "kernel": frozenset({"fetch", "status"}),
    "vm": frozenset({"run", "shell", "probe"})}


def task_of(func: Callable[..., Any]) -> str:
    """The task a command body serves, as typed after ./wb (``patches.import``, ``all``)."""
    group, name = func.__module__.rsplit(".", 1)[-1], func.__name__.rstrip("_")
    if group in PREFIXED and (PREFIXED[group] is None or name in PREFIXED[group]):
        return f"{group}.{name}"
    return name


def with_help(exc: WatchbenchError, task: str) -> WatchbenchError:
    """Bad input says what to do with a ./wb line to paste: a hint without one gets the
    task's help (where its options and their forms are)."""
    if isinstance(exc, BAD_INPUT) and "./wb" not in (exc.hint or ""):
        exc.hint = f"{exc.hint}; see ./wb --help {task}" if exc.hint else \
            f"see ./wb --help {task}"
    return exc


def command(func: Callable[..., int | None]) -> Callable[..., None]:
    """A task body: its returned int is the exit code; a WatchbenchError becomes its
    message (with the hint and the log path) on stderr and the error's exit code; any
    other exception is an internal error whose traceback goes to a log file."""
    task = task_of(func)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            code = func(*args, **kwargs)
        except WatchbenchError as exc:
            raise Exit(code=say_error(with_help(exc, task))) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise Exit(code=EXIT_INTERRUPTED) from None
        except (Exit, BrokenPipeError):
            raise  # a reader that left (| head) is exit 141, in the excepthook
        except Exception as exc:  # noqa: BLE001 -- the last line before a traceback
            raise Exit(code=say_error(internal_error(exc, exc.__traceback__,
                                                     args[0] if args else None))) from None
        if code:
            raise Exit(code=code)

    wrapper.task = task  # type: ignore[attr-defined]  # tests: each names a real task
    return wrapper
