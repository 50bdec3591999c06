"""The example workflows in examples/ are valid YAML and call only tasks and options that
exist: a workflow that names a removed option fails on the user's CI, not here."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

import tasks

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yml"))


def _wb_calls(workflow: dict) -> list[list[str]]:
    calls = []
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            for line in str(step.get("run", "")).splitlines():
                line = line.split("#")[0].strip()
                if line.startswith("./wb "):
                    calls.append(shlex.split(line)[1:])
    return calls


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_wb_call_names_a_task_and_its_options(path):
    workflow = yaml.safe_load(path.read_text())
    calls = _wb_calls(workflow)
    assert calls, f"{path.name} runs no ./wb command"
    for argv in calls:
        task = tasks.ns[argv[0]]
        known = {f"--{a.name.replace('_', '-')}" for a in task.get_arguments()}
        given = [a.split("=")[0] for a in argv[1:] if a.startswith("--")]
        assert set(given) <= known, (path.name, argv, sorted(set(given) - known))


def test_the_matrix_shards_are_1_to_n_and_merged_by_a_job_that_needs_them():
    workflow = yaml.safe_load((EXAMPLES[0].parent / "github-actions-watchbench-matrix.yml")
                              .read_text())
    count = int(workflow["env"]["SHARDS"])
    shard, merge = workflow["jobs"]["shard"], workflow["jobs"]["merge"]
    assert shard["strategy"]["matrix"]["index"] == list(range(1, count + 1))
    assert merge["needs"] == "shard"
    runs = [step.get("run", "") for step in shard["steps"]]
    assert any(re.search(r'--shard "\$\{\{ matrix.index \}\}/\$SHARDS"', r) for r in runs)
    assert any("--merge shards" in step.get("run", "") for step in merge["steps"])


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_pull_requests_only_read_the_caches_and_hold_no_secrets(path):
    """docs/security.md: a pull request's series is untrusted."""
    text = path.read_text()
    workflow = yaml.safe_load(text)
    assert "pull_request_target" not in workflow[True]  # PyYAML reads `on:` as True
    assert "${{ secrets" not in text and "secrets: inherit" not in text
    assert workflow["permissions"] == {"contents": "read"}
    trusted = "${{ github.event_name == 'pull_request' && '0' || '1' }}"
    envs = [workflow.get("env", {}), *(j.get("env", {}) for j in workflow["jobs"].values())]
    assert any(e.get("INVOKE_WATCHBENCH_CCACHE_TRUSTED") == trusted for e in envs)
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/cache@"):
                assert step["if"] == "github.event_name != 'pull_request'"
