from pathlib import Path

import pytest

from watchbench.errors import ConfigError
from watchbench.kernel.kconfig import (
    config_hash,
    load_fragment,
    merge,
    parse_dotconfig,
    parse_fragment,
    render,
    unmet,
)
from watchbench.kernel.kconfig_deps import Definition, explain

KCONFIG = Path(__file__).resolve().parents[2] / "kconfig"


def test_parse_values_and_not_set():
    frag = parse_fragment('CONFIG_A=y\n# CONFIG_B is not set\n# a comment\n\nCONFIG_C="x y"\n'
                          "CONFIG_D=0x10\nCONFIG_E=-3\nCONFIG_F=m\n", "f.config")
    assert {k: s.value for k, s in frag.items()} == {
        "A": "y", "B": "n", "C": '"x y"', "D": "0x10", "E": "-3", "F": "m"}
    assert frag["B"].where == "f.config:2"
    assert frag["B"].render() == "# CONFIG_B is not set"


@pytest.mark.parametrize("line", ["CONFIG_A", "CONFIG_A=yes please", "A=y", "CONFIG_A=\"open"])
def test_malformed_line_names_file_and_line(line):
    with pytest.raises(ConfigError) as err:
        parse_fragment(f"CONFIG_OK=y\n{line}\n", "frag.config")
    assert "frag.config:2" in str(err.value)


def test_same_fragment_contradiction():
    with pytest.raises(ConfigError, match=r"f.config:3: CONFIG_A=n contradicts CONFIG_A=y at f.config:1"):
        parse_fragment("CONFIG_A=y\nCONFIG_B=y\nCONFIG_A=n\n", "f.config")


def test_merge_conflict_names_both_files_and_lines():
    a = parse_fragment("CONFIG_X=y\nCONFIG_KASAN=y\n", "a.config")
    b = parse_fragment("CONFIG_Y=y\n\n# CONFIG_KASAN is not set\n", "b.config")
    with pytest.raises(ConfigError) as err:
        merge([a, b])
    assert "a.config:2" in str(err.value) and "b.config:3" in str(err.value)


def test_merge_keeps_order_and_agreeing_duplicates():
    a = parse_fragment("CONFIG_X=y\nCONFIG_Z=y\n", "a")
    b = parse_fragment("CONFIG_Z=y\nCONFIG_W=n\n", "b")
    merged = merge([a, b])
    assert list(merged) == ["X", "Z", "W"]
    assert render(merged) == "CONFIG_X=y\nCONFIG_Z=y\n# CONFIG_W is not set\n"


def test_unmet_and_absent_means_n():
    requested = parse_fragment("CONFIG_A=y\nCONFIG_B=n\nCONFIG_C=y\n", "r")
    dot = parse_dotconfig("CONFIG_A=y\n# CONFIG_C is not set\n")
    assert [(s.name, got) for s, got in unmet(requested, dot)] == [("C", "n")]


def test_config_hash_ignores_header_comments():
    body = "CONFIG_A=y\n# CONFIG_B is not set\n"
    assert config_hash("# Linux 6.12\n# Compiler: x\n" + body) == config_hash(body)
    assert config_hash(body) != config_hash("CONFIG_A=y\n")


def test_explain_names_unmet_dependency():
    requested = parse_fragment("CONFIG_KEY_NOTIFICATIONS=y\n", "kconfig/x.config")
    setting = requested["KEY_NOTIFICATIONS"]
    index = {"KEY_NOTIFICATIONS": [Definition("KEY_NOTIFICATIONS", "security/keys/Kconfig", 128,
                                              ["KEYS && WATCH_QUEUE"], [], True)]}
    text = explain(setting, "n", index, {"KEYS": "y"})
    assert "KEYS=y, WATCH_QUEUE=n" in text and "security/keys/Kconfig:128" in text
    assert "kconfig/x.config:1" in text
    assert "no such option" in explain(parse_fragment("CONFIG_NOPE=y\n", "f")["NOPE"], "n", {}, {})


@pytest.mark.parametrize("path", sorted(KCONFIG.glob("*.config")), ids=lambda p: p.name)
def test_shipped_fragments_parse(path):
    assert load_fragment(path)


def test_shipped_fragments_merge_without_conflict():
    names = ["base", "watch_queue", "guest-9p", "debug"]
    merged = merge([load_fragment(KCONFIG / f"{n}.config") for n in names])
    for option in ("ACPI", "SMP", "WATCH_QUEUE", "KEY_NOTIFICATIONS", "9P_FS", "KASAN"):
        assert merged[option].value == "y"
