"""Why did an option not survive olddefconfig? Read its ``depends on`` from the tree's Kconfig.

A deliberately small Kconfig reader: it finds each symbol's definitions with their own
``depends on`` lines, the enclosing ``if``/``menu``/``choice`` conditions, and whether the
symbol has a prompt, then shows each referenced symbol's value in the final .config.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from watchbench.kernel.kconfig import Setting, actual_value

ENTRY = re.compile(r"^\s*(?:menu)?config\s+([A-Za-z0-9_]+)\s*$")
DEPENDS = re.compile(r"^\s*depends\s+on\s+(.+?)\s*(?:#.*)?$")
PROMPT = re.compile(r'^\s*(?:(?:bool|tristate|string|int|hex)\s+"|prompt\s+")')
SOURCE = re.compile(r'^(|o|r|or)source\s+"([^"]+)"')
IF = re.compile(r"^if\s+(.+?)\s*(?:#.*)?$")
SYMBOL = re.compile(r"\b([A-Z][A-Z0-9_]*)\b")
KEYWORDS = {"y", "m", "n"}


@dataclass
class Definition:
    name: str
    file: str
    line: int
    depends: list[str] = field(default_factory=list)
    inherited: list[str] = field(default_factory=list)
    has_prompt: bool = False


def scan(src: Path, srcarch: str = "x86") -> dict[str, list[Definition]]:
    """Every config symbol's definitions reachable from the top Kconfig, following ``source``."""
    index: dict[str, list[Definition]] = {}
    found: list[Definition] = []
    _scan_file(src, Path("Kconfig"), [], found, srcarch, set())
    for definition in found:
        index.setdefault(definition.name, []).append(definition)
    return index


def _scan_file(src: Path, rel: Path, outer: list[str], found: list[Definition], srcarch: str,
               seen: set[Path]) -> None:
    path = src / rel
    if path in seen or not path.is_file():
        return
    seen.add(path)
    stack: list[tuple[str, list[str]]] = [("file", list(outer))]  # if/menu/choice conditions
    current: Definition | None = None
    block_conditions: list[str] | None = None  # a menu/choice collecting its own depends
    in_help = False
    for number, raw in enumerate(path.read_text(errors="replace").splitlines(), 1):
        line = raw.rstrip()
        if in_help:
            if not line or line[0] in " \t":
                continue
            in_help = False
        stripped = line.strip()
        if stripped in ("help", "---help---"):
            in_help = True
            continue
        source = SOURCE.match(stripped)
        if source:
            target = source[2].replace("$(SRCARCH)", srcarch).replace("$SRCARCH", srcarch)
            target_rel = rel.parent / target if source[1] in ("r", "or") else Path(target)
            inherited = [c for _, conds in stack for c in conds]
            for match in sorted(src.glob(str(target_rel))) if "*" in target else [src / target_rel]:
                _scan_file(src, match.relative_to(src), inherited, found, srcarch, seen)
            current = None
            continue
        entry = ENTRY.match(line)
        if entry:
            inherited = [c for _, conds in stack for c in conds]
            current = Definition(entry[1], str(rel), number, inherited=inherited)
            found.append(current)
            block_conditions = None
            continue
        depends = DEPENDS.match(line)
        if depends:
            if current is not None:
                current.depends.append(depends[1])
            elif block_conditions is not None:
                block_conditions.append(depends[1])
            continue
        if current is not None and PROMPT.match(line):
            current.has_prompt = True
            continue
        condition = IF.match(stripped)
        if condition and not line[0].isspace():
            stack.append(("if", [condition[1]]))
            current = None
        elif stripped.startswith(("menu ", "choice")) and not stripped.startswith("menuconfig"):
            block_conditions = []
            stack.append(("menu" if stripped.startswith("menu") else "choice", block_conditions))
            current = None
        elif stripped.split("#", 1)[0].strip() in ("endif", "endmenu", "endchoice"):
            kind = stripped.split("#", 1)[0].strip()[3:]
            while len(stack) > 1:
                if stack.pop()[0] == kind:
                    break
            current, block_conditions = None, None
        elif stripped.startswith(("comment ", "mainmenu ")):
            current = None


def _annotate(expression: str, dotconfig: dict[str, str]) -> str:
    names = [s for s in dict.fromkeys(SYMBOL.findall(expression)) if s not in KEYWORDS]
    values = ", ".join(f"{n}={actual_value(dotconfig, n)}" for n in names)
    return f"{expression}  [{values}]" if values else expression


def explain(setting: Setting, got: str, index: dict[str, list[Definition]],
            dotconfig: dict[str, str]) -> str:
    """A few lines telling why CONFIG_<name> ended up ``got`` instead of the requested value."""
    head = f"CONFIG_{setting.name}={setting.value} (asked at {setting.where}) ended up {got}"
    definitions = index.get(setting.name)
    if not definitions:
        return head + "\n    no such option in this tree's Kconfig files (misspelled, or removed?)"
    lines = [head]
    for d in definitions:
        conditions = d.inherited + d.depends
        if conditions:
            for cond in conditions:
                lines.append(f"    depends on {_annotate(cond, dotconfig)}   ({d.file}:{d.line})")
        else:
            lines.append(f"    defined at {d.file}:{d.line} with no 'depends on'")
    if setting.value != "n" and not any(d.has_prompt for d in definitions):
        lines.append("    it has no prompt: only a 'select' from another option can turn it on")
    return "\n".join(lines)
