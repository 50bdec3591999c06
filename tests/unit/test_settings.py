"""Settings: the one source of defaults, invoke's overrides, scratch caches for tests."""

from pathlib import Path

import pytest
from invoke import Config
from invoke.util import yaml  # invoke reads invoke.yaml with it

from watchbench.errors import InputError
from watchbench.settings import PROJECT_ROOT, Settings


def test_scratch_links_shared_dirs_and_keeps_the_rest_apart(tmp_path):
    real = Settings()
    real.cache_dir = tmp_path / "real"
    scratch = real.scratch(tmp_path / "scratch", shared=("downloads", "ccache"))
    assert scratch.cache_dir == tmp_path / "scratch" and scratch.runs_dir == tmp_path / "scratch" / "runs"
    assert (scratch.cache_dir / "ccache").resolve() == real.cache_dir / "ccache"
    assert not (scratch.cache_dir / "trees").exists()
    assert real.cache_dir == tmp_path / "real"  # the original is not changed
    assert real.scratch(tmp_path / "scratch").cache_dir == scratch.cache_dir  # links are reused


# --- one source of defaults ---------------------------------------------------------------




def test_invoke_yaml_names_only_known_settings():
    data = yaml.safe_load((PROJECT_ROOT / "invoke.yaml").read_text())
    assert set(data) == {"watchbench"}
    Settings.from_mapping(data["watchbench"])  # raises on any unknown name


@pytest.mark.parametrize(("mapping", "message"), [
    ({"ci": {"max_round": 8}}, "unknown setting watchbench.ci.max_round"),
    ({"fragment": ["base"]}, "unknown setting watchbench.fragment"),
    ({"qemu": {"cpus": "two"}}, "setting watchbench.qemu.cpus: 'two' is not a valid int"),
    ({"ci": 4}, "setting watchbench.ci: expected a mapping"),
])
def test_a_setting_that_does_not_exist_or_does_not_parse_is_refused(mapping, message):
    with pytest.raises(InputError, match=message) as err:
        Settings.from_mapping(mapping)
    assert str(err.value).endswith("then check: ./wb settings")  # a ./wb line to paste


def test_the_defaults_round_trip_through_invoke_config_format():
    defaults = Settings()
    again = Settings.from_mapping(defaults.as_mapping())
    assert again == defaults
    changed = Settings.from_mapping({"ci": {"max_rounds": "8"}, "decision": {"alpha": 0.05},
                                     "cache_dir": "~/elsewhere", "runs_dir": ""})
    assert changed.ci.max_rounds == 8 and changed.decision.alpha == 0.05
    assert changed.cache_dir == Path.home() / "elsewhere"
    assert changed.runs_dir == defaults.runs_dir and changed.ci.min_rounds == 4


def test_tasks_hand_invoke_the_settings_defaults(monkeypatch):
    """The collection's configuration is Settings(), so an environment variable of a
    default's name overrides it (invoke only maps variables to keys that exist)."""
    import tasks
    from watchbench.cli import settings_of

    monkeypatch.setenv("INVOKE_WATCHBENCH_CI_MAX_ROUNDS", "6")
    config = Config(defaults=tasks.ns.configuration(), lazy=True)
    config.load_shell_env()
    assert settings_of(type("C", (), {"config": config})()).ci.max_rounds == 6
    assert tasks.ns.configuration()["watchbench"] == Settings().as_mapping()


def test_old_and_empty_values_are_read_as_a_user_means_them():
    """null or an empty path/list is the default; a moved setting names its new place;
    auto rounds (the old invoke.yaml's value) is still auto."""
    s = Settings.from_mapping({"cache_dir": None, "reports_dir": "", "fragments": [],
                               "qemu": None, "ci": {"rounds": "auto"}})
    defaults = Settings()
    assert (s.cache_dir, s.reports_dir, s.fragments, s.qemu) == (
        defaults.cache_dir, defaults.reports_dir, defaults.fragments, defaults.qemu)
    with pytest.raises(InputError, match="ci.threshold is now watchbench.decision.threshold"):
        Settings.from_mapping({"ci": {"threshold": 0.1}})
    with pytest.raises(InputError, match="ci.min_rounds: 1.5 is not a valid int"):
        Settings.from_mapping({"ci": {"min_rounds": 1.5}})


def test_rounds_from_the_environment_are_a_number_or_auto(monkeypatch):
    import tasks
    from watchbench.cli import settings_of
    from watchbench.flows.ci import CiOptions

    monkeypatch.setenv("INVOKE_WATCHBENCH_CI_ROUNDS", "6")
    config = Config(defaults=tasks.ns.configuration(), lazy=True)
    config.load_shell_env()
    settings = settings_of(type("C", (), {"config": config})())
    assert CiOptions.from_settings(settings, "").rounds == 6
    assert CiOptions.from_settings(Settings(), "").rounds is None  # auto


def test_the_rules_name_the_accelerators_and_explanations_that_exist():
    from watchbench.flows.explain import Explain
    from watchbench.settings import ACCELS, rule_of
    from watchbench.vm.qemu import Accel

    assert ACCELS == tuple(Accel)
    assert rule_of("ci.profile").choices == tuple(Explain)


@pytest.mark.parametrize(("mapping", "message"), [
    ({"decision": {"threshold": 5}}, "threshold: 5 (from f.yaml) must be in (0, 1)"),
    ({"decision": {"alpha": 0.6}}, "must be in (0, 0.5]"),
    ({"ci": {"rounds": "1"}}, "must be >= 2 or auto"),
    ({"ci": {"max_rounds": 3}}, "below watchbench.ci.min_rounds"),
    ({"ci": {"jobs": -1}}, "must be >= 0"),
    ({"fragments": 4}, "not a valid tuple"),
])
def test_a_value_out_of_its_range_names_where_it_came_from(mapping, message):
    origins = {"watchbench.decision.threshold": "f.yaml"}
    with pytest.raises(InputError) as err:
        Settings.from_mapping(mapping, origins)
    assert message in str(err.value)


def test_an_unknown_environment_variable_is_refused_by_name():
    from watchbench.settings import check_environment

    with pytest.raises(InputError, match="INVOKE_WATCHBENCH_CI_MAXROUNDS"):
        check_environment({"INVOKE_WATCHBENCH_CI_MAXROUNDS": "8"})
    check_environment({"INVOKE_WATCHBENCH_CI_MAX_ROUNDS": "8", "INVOKE_RUN_ECHO": "1"})
