"""docs/settings.md, generated from the declarations in ``watchbench/settings.py``.

Each setting's type and default come from its dataclass field, its range from its ``Rule``,
its meaning from the comments beside it (else its ``option`` help; its section from the
class docstring), its environment variable from ``env_name``, and the ``./wb`` options that
override it for one run from ``cli/options.py`` (an ``Option`` with a ``setting``, also in
a dict such as ``options.CI``) and from the task help in
``watchbench/cli/tasks.py`` that says ``default: settings KEY``. Regenerate with ``REGENERATE``;
``tests/unit/test_settings_doc.py`` fails when the page drifts.
"""

from __future__ import annotations

import ast
import dataclasses
import io
import os
import re
import textwrap
import tokenize
from pathlib import Path
from typing import Any, get_type_hints
from unittest import mock

from watchbench.cli import LAYERS, options
from watchbench.settings import (
    EMPTY_IS_DEFAULT,
    MOVED,
    Settings,
    env_name,
)

REGENERATE = ".venv/bin/python -m watchbench.cli.settings_doc > docs/settings.md"
WIDTH = 100
KINDS = {str: "text", int: "whole number", float: "number", bool: "boolean", Path: "path",
         tuple[str, ...]: "list of names"}
# The environment variables the path defaults read, shown by name rather than by this
# machine's values (the page is the same on every machine).
XDG = ("XDG_CACHE_HOME", "XDG_DATA_HOME")
HOME = "/HOME"
HELP_SETTING = re.compile(r"\bsettings ([a-z_]+(?:\.[a-z_]+)*)")


def settings_markdown(settings_source: str | None = None, tasks_source: str | None = None) -> str:
    """The whole page. ``settings_source``/``tasks_source``: the files' text (default: read
    from the project)."""
    if settings_source is None:
        settings_source = (Path(__file__).parents[1] / "settings.py").read_text()
    if tasks_source is None:
        tasks_source = (Path(__file__).parent / "tasks.py").read_text()
    notes, docstrings = _field_notes(settings_source)
    flags = _flags(tasks_source)
    out = [_preamble()]
    top = [f for f in _fields(Settings) if not dataclasses.is_dataclass(_hint(Settings, f))]
    out.append(_section("General", "watchbench", Settings, top, notes, docstrings, flags))
    for f in _fields(Settings):
        kind = _hint(Settings, f)
        if dataclasses.is_dataclass(kind):
            out.append(_section(f"`{f.name}`", f"watchbench.{f.name}", kind, _fields(kind),
                                notes, docstrings, flags))
    out.append(_moved())
    return "\n".join(out).rstrip("\n") + "\n"


# How to set a setting, said once above the list (the layers' order is derived).
USAGE = """\
```yaml
# invoke.yaml (this checkout) or ~/.invoke.yaml (you): the key
# watchbench.ci.max_rounds is nested like this
watchbench:
  ci:
    max_rounds: 8
```

```sh
INVOKE_WATCHBENCH_CI_MAX_ROUNDS=8 ./wb ci --series my-fix
```

- The environment sets scalars only (invoke's rule), booleans as `1` or `0`; lists go
  in a file. An `INVOKE_WATCHBENCH_*` variable that names no setting is an error.
- A key that names no setting is an error that lists the known ones.
- A value is read by the setting's type and checked against its allowed values; an
  error names the file or variable it came from.
- `ci.max_rounds` must be at least `ci.min_rounds`.
- For a path or a list, an empty value (or `null`) means the default.
"""


def _preamble() -> str:
    layers = ", ".join(label for _, _, label in LAYERS)
    intro = _wrap("Every default is declared once, in `watchbench/settings.py`. Override a "
                  "setting by its key in a config file, by its environment variable, or for "
                  "one run by the option named under it. invoke reads these layers, and a "
                  f"later one wins: {layers}.")
    return "\n\n".join([
        "# Settings",
        "<!-- Generated from watchbench/settings.py by watchbench/cli/settings_doc.py; do not\n"
        f"edit. Regenerate: {REGENERATE} -->",
        intro, USAGE])


def _section(title: str, prefix: str, cls: type, fields: list[dataclasses.Field[Any]],
             notes: dict[tuple[str, str], str], docstrings: dict[str, str],
             flags: dict[str, list[str]]) -> str:
    out = [f"## {title}", ""]
    if docstrings.get(cls.__name__):
        out += [_wrap(docstrings[cls.__name__]), ""]
    defaults = _defaults(cls)
    for f in fields:
        key = f"{prefix}.{f.name}"
        short = key.removeprefix("watchbench.")
        kind = _hint(cls, f)
        out += [f"### `{short}`", ""]
        meaning = notes.get((cls.__name__, f.name), "") or f.metadata.get("option", "")
        out += [_wrap(meaning) if meaning else
                "See the section above (no comment of its own in settings.py).", ""]
        rule = f.metadata.get("rule")
        allowed = rule.describe() if rule is not None else (
            "true or false" if kind is bool else "any")
        facts = [f"Type: {KINDS.get(kind, str(kind))}; allowed: {allowed}",
                 f"Default: {_default(defaults[f.name])}",
                 f"Config key: `{key}`"]
        if kind in EMPTY_IS_DEFAULT:
            facts[-1] += " (empty: the default)"
        if kind == tuple[str, ...]:
            facts.append("Environment: none (a list is set in a file)")
        else:
            facts.append(f"Environment: `{env_name(key)}`"
                         + (" (`1` or `0`)" if kind is bool else ""))
        out += [_wrap(fact, "- ", "  ") for fact in facts]
        if flags.get(short):
            out.append(_wrap_items("- Option for one run: ", [f"`{x}`" for x in flags[short]]))
        out.append("")
    return "\n".join(out)


def _moved() -> str:
    out = ["## Moved settings", "",
           _wrap("A config file or variable naming the old key is refused with the new one."), ""]
    out += [f"- `{old.removeprefix('watchbench.')}` is now `{new.removeprefix('watchbench.')}`"
            for old, new in MOVED.items()]
    return "\n".join(out) + "\n"


def _fields(cls: type) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(cls) if f.name != "project_root"]


def _hint(cls: type, f: dataclasses.Field[Any]) -> Any:
    return get_type_hints(cls)[f.name]


def _defaults(cls: type) -> dict[str, Any]:
    """The defaults with the path ones made from variables' names, not this machine's
    home and XDG directories (both forms, when they differ)."""
    plain = {"HOME": HOME, **{v: "" for v in XDG}}
    named = {"HOME": HOME, **{v: f"${v}" for v in XDG}}
    with mock.patch.dict(os.environ, plain):
        fallback = cls()
    with mock.patch.dict(os.environ, named):
        variable = cls()
    out = {}
    for f in dataclasses.fields(cls):
        one, two = getattr(fallback, f.name), getattr(variable, f.name)
        if isinstance(one, Path) and one != two:
            out[f.name] = (two, one)
        else:
            out[f.name] = one
    return out


def _default(value: Any) -> str:
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, Path) for v in value):
        with_var, without = (str(v).replace(HOME, "~") for v in value)
        return f"`{with_var}` (`{without}` when the variable is unset)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple):
        return f"`[{', '.join(value)}]`"
    if value == "":
        return '`""` (empty)'
    return f"`{value}`"


def _wrap(text: str, first: str = "", rest: str = "") -> str:
    return textwrap.fill(text, WIDTH, initial_indent=first, subsequent_indent=rest,
                         break_long_words=False, break_on_hyphens=False)


def _wrap_items(first: str, items: list[str]) -> str:
    """``first`` and the items joined by commas, a line broken only between items."""
    lines, line = [], first
    for n, item in enumerate(items):
        piece = item + ("," if n < len(items) - 1 else "")
        if line != first and len(line) + 1 + len(piece) > WIDTH:
            lines.append(line)
            line = "  " + piece
        else:
            line += ("" if line.endswith(" ") else " ") + piece
    return "\n".join([*lines, line])


def _markdown(text: str) -> str:
    """A docstring's or comment's rst literals as Markdown, its lines joined."""
    return " ".join(text.replace("``", "`").split())


def _field_notes(source: str) -> tuple[dict[tuple[str, str], str], dict[str, str]]:
    """(class, field) -> the comments above and beside the field; class -> docstring.
    A field without comments of its own shares the block above the field before it when
    that block names it (``sandbox: ... ccache_trusted: ...``)."""
    comments = {tok.start[0]: tok.string.lstrip("#").strip()
                for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                if tok.type == tokenize.COMMENT}
    lines = source.splitlines()
    notes: dict[tuple[str, str], str] = {}
    docstrings: dict[str, str] = {}
    for node in ast.parse(source).body:
        if not isinstance(node, ast.ClassDef):
            continue
        docstrings[node.name] = _markdown(ast.get_docstring(node) or "")
        block_before = ""
        for item in node.body:
            if not (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)):
                continue
            name = item.target.id
            above = []
            line = item.lineno - 1
            while line >= 1 and lines[line - 1].strip().startswith("#"):
                above.insert(0, comments[line])
                line -= 1
            beside = [comments[n] for n in range(item.lineno, (item.end_lineno or item.lineno) + 1)
                      if n in comments and not lines[n - 1].strip().startswith("#")]
            block = " ".join(above)
            if not above and not beside and re.search(rf"\b{name}:", block_before):
                block = block_before
            notes[(node.name, name)] = _markdown(" ".join(filter(None, [block, *beside])))
            block_before = block
    return notes, docstrings


def _flags(tasks_source: str) -> dict[str, list[str]]:
    """Setting key -> the `./wb TASK --FLAG` options that override it for one run."""
    keys = set(_keys())
    found: dict[str, set[str]] = {}
    named = [o for v in vars(options).values()
             for o in (v.values() if isinstance(v, dict) else [v])]  # options.CI too
    for option in named:
        if isinstance(option, options.Option) and option.setting:
            task = option.example.split()[1]
            found.setdefault(option.setting, set()).add(f"./wb {task} {option.flag}")
    for task, flag, text in _task_help(tasks_source):
        for key in HELP_SETTING.findall(text):
            if key in keys:
                found.setdefault(key, set()).add(f"./wb {task} {flag}")
    return {key: sorted(value) for key, value in found.items()}


def _keys() -> list[str]:
    out = []
    for f in _fields(Settings):
        kind = _hint(Settings, f)
        if dataclasses.is_dataclass(kind):
            out += [f"{f.name}.{g.name}" for g in dataclasses.fields(kind)]
        else:
            out.append(f.name)
    return out


def _task_help(source: str) -> list[tuple[str, str, str]]:
    """(task as typed, --flag, its help text) for every option in cli/tasks.py's ``@task``s."""
    tree = ast.parse(source)
    strings = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
               for t in n.targets if isinstance(t, ast.Name)
               and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)}
    prefix: dict[str, str] = {}
    renamed: dict[str, str] = {}
    for call in ast.walk(tree):
        if not isinstance(call, ast.Call):
            continue
        if getattr(call.func, "id", None) == "Collection" and call.args and isinstance(
                call.args[0], ast.Constant):
            prefix.update({a.id: f"{call.args[0].value}." for a in call.args[1:]
                           if isinstance(a, ast.Name)})
        elif getattr(call.func, "attr", None) == "add_task" and call.args:
            for kw in call.keywords:
                if kw.arg == "name" and isinstance(call.args[0], ast.Name):
                    renamed[call.args[0].id] = kw.value.value  # type: ignore[attr-defined]
    out = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for deco in node.decorator_list:
            if not (isinstance(deco, ast.Call) and getattr(deco.func, "id", None) == "task"):
                continue
            words = {kw.arg: kw.value for kw in deco.keywords}
            name = words["name"].value if "name" in words else node.name  # type: ignore[attr-defined]
            name = prefix.get(node.name, "") + renamed.get(node.name, name)
            helps = words.get("help")
            if not isinstance(helps, ast.Dict):
                continue
            for k, v in zip(helps.keys, helps.values, strict=True):
                text = v.value if isinstance(v, ast.Constant) else strings.get(
                    getattr(v, "id", ""), "")
                if isinstance(k, ast.Constant):
                    out.append((name, "--" + k.value.replace("_", "-"), str(text)))
    return out


if __name__ == "__main__":
    print(settings_markdown(), end="")
