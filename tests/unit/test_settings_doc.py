"""docs/settings.md is generated from watchbench/settings.py and must not drift from it."""

from __future__ import annotations

from watchbench.cli.settings_doc import REGENERATE, WIDTH, settings_markdown
from watchbench.settings import PROJECT_ROOT, Settings, env_name

PAGE = PROJECT_ROOT / "docs" / "settings.md"


def _keys(mapping: dict, prefix: str = "") -> list[str]:
    out = []
    for name, value in mapping.items():
        key = f"{prefix}{name}"
        out += _keys(value, f"{key}.") if isinstance(value, dict) else [key]
    return out


def test_docs_settings_md_is_the_generators_output():
    assert PAGE.read_text() == settings_markdown(), (
        f"docs/settings.md is out of date with watchbench/settings.py: regenerate it with "
        f"`{REGENERATE}` and commit it")


def test_every_setting_has_its_entry_key_and_variable():
    text = settings_markdown()
    for key in _keys(Settings().as_mapping()):
        assert f"### `{key}`" in text, key
        assert f"`watchbench.{key}`" in text, key
    assert f"`{env_name('watchbench.ci.max_rounds')}`" in text
    assert "Environment: none (a list is set in a file)" in text  # fragments: no variable


def test_options_that_override_a_setting_are_named():
    text = settings_markdown()
    ci_rounds = text[text.index("### `ci.rounds`"):text.index("### `ci.min_rounds`")]
    assert "`./wb ci --rounds`" in ci_rounds
    trusted = text[text.index("### `ccache_trusted`"):text.index("### `fragments`")]
    assert "`./wb build --trusted`" in trusted


def test_the_page_is_the_same_on_every_machine(monkeypatch):
    """Path defaults are said by the variables they read, not this machine's home."""
    first = settings_markdown()
    monkeypatch.setenv("XDG_CACHE_HOME", "/elsewhere/cache")
    monkeypatch.setenv("HOME", "/home/someone")
    assert settings_markdown() == first
    assert "`$XDG_CACHE_HOME/watchbench` (`~/.cache/watchbench` when" in first


def test_lines_fit_the_docs_width():
    long = [line for line in settings_markdown().splitlines() if len(line) > WIDTH]
    assert long == []
