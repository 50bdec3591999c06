"""settings: every setting's value and where it came from, so a user who was told to fix
one (in a file or a variable) can see that the fix took and what the others are."""

from __future__ import annotations

from typing import Any

from watchbench.cli import command, fit, origins, settings_of


def setting_lines(values: dict[str, Any], where: dict[str, str], prefix: str = "watchbench"
                  ) -> list[str]:
    """``key = value  (from where)``, one per setting, sections flattened."""
    lines: list[str] = []
    for name, value in values.items():
        key = f"{prefix}.{name}"
        if isinstance(value, dict):
            lines += setting_lines(value, where, key)
            continue
        shown = ", ".join(value) if isinstance(value, list) else value if value != "" else '""'
        lines.append(f"{key} = {shown}  ({'from ' + where[key] if key in where else 'default'})")
    return lines


@command
def settings(c: Any) -> None:
    """Checked like every task's (a bad value is the same error); printed in 80 columns."""
    values = settings_of(c).as_mapping()
    config = getattr(c, "config", None)
    lines = setting_lines(values, origins(config) if config is not None else {})
    print(fit("\n".join([*lines, "", "meanings and ranges: docs/settings.md"])))
