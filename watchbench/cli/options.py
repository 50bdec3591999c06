"""Options as a user types them: parsed and checked against the rule of the setting they
stand for (``settings.Rule``), in the command layer, before anything is downloaded,
built or booted. A bad one is an InputError naming the option, the value, what is
allowed and a command to paste instead."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from watchbench.errors import InputError
from watchbench.settings import (
    ACCELS,
    Rule,
    Settings,
    ci_options,
    default_of,
    field_of,
    rule_of,
    type_of,
)
from watchbench.suite.definition import Suite, load_suite

NOUNS = {int: "a whole number", float: "a number"}


@dataclass(frozen=True)
class Option:
    """One option: its flag, its type, its rule and an example to paste."""

    flag: str
    kind: type
    rule: Rule
    example: str
    setting: str = ""  # the setting it overrides: its default is said in the hint

    def hint(self) -> str:
        default = f" (left out: setting {self.setting} = {default_of(self.setting)})" \
            if self.setting else ""
        return f"e.g. {self.example}{default}"

    def parse(self, text: object) -> Any:
        """None stays None (not given); anything else parsed and checked."""
        if text is None:
            return None
        raw = str(text).strip()
        if self.kind is str or (self.rule.words and raw in self.rule.words):
            value: Any = raw
        else:
            try:
                value = self.kind(raw)
            except ValueError:
                raise InputError(f"{self.flag} {text!r}: not {NOUNS[self.kind]}; it must be "
                                 f"{self.rule.describe()}", hint=self.hint()) from None
        refused = self.rule.refusal(value)
        if refused:
            raise InputError(f"{self.flag} {text!r}: {refused}", hint=self.hint())
        return value


def ci_option(name: str, key: str) -> Option:
    """``./wb ci --NAME`` from the setting it stands for (``settings.ci_options``): its
    type, rule and example are the setting's declaration. A setting of text without a
    rule (``ci.suite``) takes any text here; its use checks it."""
    found, kind = field_of(key), type_of(key)
    rule = found.metadata.get("rule", Rule(check=lambda _: ""))
    flag = f"--{name.replace('_', '-')}"
    return Option(flag, int if kind is str and rule.words else kind, rule,
                  f"./wb ci {flag} {found.metadata['example']}", key)


# ./wb ci's options that stand for a setting, by name (--rounds: a number, or auto).
CI = {name: ci_option(name, key) for name, key in ci_options().items()}
TOP = Option("--top", int, Rule(1), "./wb profile --top 5")
STRESS_SECONDS = Option("--stress-seconds", int, rule_of("check.stress_seconds"),
                        "./wb check --stress-seconds 60", "check.stress_seconds")
# 0: the configured rounds (settings bisect.rounds)
BISECT_ROUNDS = Option("--rounds", int, Rule(0),
                       "./wb bisect GOOD BAD BENCHMARK --rounds 3", "bisect.rounds")
BISECT_ACCEL = Option("--accel", str, rule_of("bisect.accel"),
                      "./wb bisect GOOD BAD BENCHMARK --accel icount", "bisect.accel")
BISECT_JOBS = Option("--jobs", int, rule_of("bisect.jobs"),
                     "./wb bisect GOOD BAD BENCHMARK --jobs 2", "bisect.jobs")
TIMEOUT = Option("--timeout", float, rule_of("qemu.boot_timeout"),
                 "./wb vm.run --timeout 600 -- cat /proc/version", "qemu.boot_timeout")
VM_ACCEL = Option("--accel", str, rule_of("qemu.accel"), "./wb vm.run --accel tcg -- true",
                  "qemu.accel")
BENCH_ACCEL = Option("--accel", str, Rule(choices=("auto", *ACCELS)),
                     "./wb bench --accel icount", "qemu.accel")


def suite_named(project_root: Path, name: str, flag: str = "--suite") -> Suite:
    """The suite a --suite names, read now, so a typo is refused before any build."""
    if not name.strip():
        raise InputError(f"{flag} '': give a suite name",
                         hint="e.g. ./wb bench --suite quick (the suites: bench/suites/)")
    return load_suite(project_root, name)


def benchmark_names(suite: Suite) -> set[str] | None:
    """The benchmarks a suite runs, or None when an entry does not list its own."""
    names: set[str] = set()
    for run in suite.benchmarks:
        if not run.benchmarks:
            return None
        names.update(run.benchmarks)
    return names


def non_empty(flag: str, items: list[str], example: str) -> list[str]:
    """A list option that was given must name something (``--runs ,`` is a typo)."""
    if not items:
        raise InputError(f"{flag}: the list is empty", hint=f"e.g. {example}")
    return items


def out_dir(flag: str, text: str | None) -> Path | None:
    """A directory to write into: it may be missing (made later), never a file."""
    if text is None:
        return None
    path = Path(text)
    if not text.strip():
        raise InputError(f"{flag} '': give a directory", hint=f"e.g. {flag} reports")
    bad = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if bad is not None:
        raise InputError(f"{flag} {text!r}: {bad} is a file, not a directory",
                         hint=f"give a directory, e.g. {flag} reports")
    return path


def out_file(flag: str, text: str | None) -> Path | None:
    """A file to write: never a directory, and its directory is not a file."""
    if text is None:
        return None
    path = Path(text)
    if not text.strip() or path.is_dir():
        raise InputError(f"{flag} {text!r}: is a directory, not a file name" if text.strip()
                         else f"{flag} '': give a file name",
                         hint=f"give a file, e.g. {flag} {path / 'out' if text.strip() else 'out'}")
    out_dir(flag, str(path.parent))
    return path


def tree_options(tree: str | None, base: str | None, tarball: str | None) -> None:
    """--tree/--base/--tarball as a whole, before anything is fetched or extracted."""
    if tree is not None and tarball is not None:
        raise InputError("give either --tree or --tarball, not both",
                         hint="e.g. ./wb kernel.fetch --tree ~/linux --base v6.12")
    if base is not None and tree is None:
        raise InputError(f"--base {base!r} is for --tree: the commit your series applies to",
                         hint="e.g. ./wb kernel.fetch --tree ~/linux --base v6.12")
    if tree is not None:
        if not Path(tree).expanduser().is_dir():
            raise InputError(f"--tree {tree!r}: no such directory",
                             hint="give your kernel checkout, e.g. --tree ~/linux --base v6.12")
        if not (base or "").strip():
            raise InputError(f"--tree {tree!r} needs --base REF (the commit the series "
                             "applies to)", hint=f"e.g. ./wb kernel.fetch --tree {tree} --base v6.12")
    if tarball is not None and not Path(tarball).expanduser().is_file():
        raise InputError(f"--tarball {tarball!r}: no such file",
                         hint="e.g. ./wb kernel.fetch --tarball ~/linux-6.12.tar.xz")


GC_KEEP = {kind: Option(f"--keep-{kind}", int, rule_of(f"gc.{setting}"),
                        f"./wb gc --keep-{kind} {default_of(f'gc.{setting}')}", f"gc.{setting}")
           for kind, setting in (("runs", "runs"), ("kernels", "kernels"),
                                 ("builds", "build_dirs"), ("boots", "boots"))}
GC_DAYS = Option("--older-than", float, rule_of("gc.days"), "./wb gc --older-than 14", "gc.days")


def boot_options(settings: Settings, task: str, kernel_args: str | None = None,
                 kconfig_add: list[str] | None = None) -> Settings:
    """The settings with this command's --kernel-args and --kconfig-add (each replaces
    the setting of its name when given), checked by the settings' rules before anything
    is built or booted: both go into what is built and booted, and into the provenance."""
    if kernel_args is not None:
        refused = rule_of("kernel_args").refusal(kernel_args)
        if refused:
            shown = repr(kernel_args) if len(kernel_args) <= 70 else \
                f"{kernel_args[:60]!r}... ({len(kernel_args)} characters)"
            raise InputError(f"--kernel-args {shown}: {refused}",
                             hint=f"e.g. ./wb {task} --kernel-args 'nokaslr mitigations=off' "
                                  f"(left out: setting kernel_args = "
                                  f"{default_of('kernel_args')!r})")
        settings = replace(settings, kernel_args=kernel_args)
    if kconfig_add:
        refused = rule_of("kconfig_add").refusal(tuple(kconfig_add))
        if refused:
            raise InputError(f"--kconfig-add: {refused}",
                             hint=f"e.g. ./wb {task} --kconfig-add CONFIG_DEBUG_INFO_DWARF5=y "
                                  "--kconfig-add CONFIG_FRAME_WARN=2048 (repeat it per option)")
        settings = replace(settings, kconfig_add=tuple(kconfig_add))
    return settings
