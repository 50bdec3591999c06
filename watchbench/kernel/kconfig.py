"""kconfig fragments as mappings: parse, merge with conflict detection, check survival.

Pure functions over text; the make calls live in kmake.py.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from watchbench.errors import ConfigError

SET = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")
VALUE = re.compile(r'^(y|m|n|-?\d+|0x[0-9A-Fa-f]+|"(?:[^"\\]|\\.)*")$')


@dataclass(frozen=True)
class Setting:
    """One requested option, with where it was asked for."""

    name: str  # without CONFIG_
    value: str  # y, m, n, a number or a quoted string
    source: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"

    def render(self) -> str:
        if self.value == "n":
            return f"# CONFIG_{self.name} is not set"
        return f"CONFIG_{self.name}={self.value}"


Fragment = dict[str, Setting]


def parse_fragment(text: str, source: str) -> Fragment:
    """Parse kconfig lines; a malformed or repeated line is an error naming file:line."""
    settings: Fragment = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        unset = UNSET.match(line)
        if unset:
            name, value = unset[1], "n"
        elif line.startswith("#"):
            continue
        else:
            match = SET.match(line)
            if not match or not VALUE.match(match[2]):
                raise ConfigError(
                    f"{source}:{number}: not a kconfig line: {raw!r}",
                    hint="write CONFIG_NAME=y|m|n|<number>|\"string\" or '# CONFIG_NAME is not set'",
                )
            name, value = match[1], match[2]
        name = name[len("CONFIG_"):]
        if name in settings:
            first = settings[name]
            if first.value != value:
                raise ConfigError(f"{source}:{number}: CONFIG_{name}={value} contradicts "
                                  f"CONFIG_{name}={first.value} at {first.where}")
        settings[name] = Setting(name, value, source, number)
    return settings


def load_fragment(path: Path) -> Fragment:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read kconfig fragment {path}: {exc.strerror}",
                          hint="list the fragments under kconfig/ with `./wb config --help`") from exc
    return parse_fragment(text, str(path))


def merge(fragments: list[Fragment]) -> Fragment:
    """Merge in order; the same option with two values in two fragments is an error."""
    merged: Fragment = {}
    for fragment in fragments:
        for name, setting in fragment.items():
            earlier = merged.get(name)
            if earlier and earlier.value != setting.value:
                raise ConfigError(
                    f"conflicting values for CONFIG_{name}: {earlier.value} at {earlier.where} "
                    f"and {setting.value} at {setting.where}",
                    hint="drop one of them or leave that fragment out",
                )
            merged[name] = setting
    return merged


ADDED = "--kconfig-add"  # where an option given by --kconfig-add (kconfig_add) was asked


def additions(items: tuple[str, ...] | list[str]) -> Fragment:
    """--kconfig-add options (settings ``kconfig_add``) as a fragment: ``where`` says
    ``--kconfig-add:N``, the Nth of them."""
    return parse_fragment("\n".join(items), ADDED)


def overlay(requested: Fragment, added: Fragment) -> Fragment:
    """The fragments' options, then the additions: an addition wins over a fragment's
    value of the same option (kunit's --kconfig_add), and comes last."""
    merged = {name: setting for name, setting in requested.items() if name not in added}
    return {**merged, **added}


def render(fragment: Fragment) -> str:
    return "".join(s.render() + "\n" for s in fragment.values())


def parse_dotconfig(text: str) -> dict[str, str]:
    """A .config as name -> value ('n' for '# ... is not set'; absent means invisible/n)."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        match = SET.match(line)
        if match:
            values[match[1][len("CONFIG_"):]] = match[2]
            continue
        unset = UNSET.match(line)
        if unset:
            values[unset[1][len("CONFIG_"):]] = "n"
    return values


def actual_value(dotconfig: dict[str, str], name: str) -> str:
    return dotconfig.get(name, "n")


def unmet(requested: Fragment, dotconfig: dict[str, str]) -> list[tuple[Setting, str]]:
    """Requested options whose value did not survive olddefconfig, with the value they got."""
    return [
        (setting, actual_value(dotconfig, name))
        for name, setting in requested.items()
        if actual_value(dotconfig, name) != setting.value
    ]


def is_subset(requested: Fragment, dotconfig: dict[str, str]) -> bool:
    return not unmet(requested, dotconfig)


def config_hash(dotconfig_text: str) -> str:
    """Identity of a configuration: its option lines only (not the header comments)."""
    lines = [ln for ln in dotconfig_text.splitlines() if SET.match(ln) or UNSET.match(ln)]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]
