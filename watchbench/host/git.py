"""A thin git wrapper: argv lists through the runner, one identity for our commits."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from watchbench.errors import CommandError
from watchbench.host.runner import Completed, Runner, default_runner

# Commits watchbench makes (the baseline commit, git am) carry this identity, so the same
# series on the same base always yields the same commit ids.
IDENTITY = {
    "GIT_AUTHOR_NAME": "watchbench",
    "GIT_AUTHOR_EMAIL": "watchbench@localhost",
    "GIT_COMMITTER_NAME": "watchbench",
    "GIT_COMMITTER_EMAIL": "watchbench@localhost",
}
FIXED_DATE = "2000-01-01T00:00:00+0000"


class Git:
    """git commands in one repository or work tree."""

    def __init__(self, path: Path, runner: Runner = default_runner):
        self.path = Path(path)
        self.runner = runner

    def __call__(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        input: str | None = None,
        timeout: float | None = None,
    ) -> Completed:
        return self.runner.run(
            ["git", "-C", str(self.path), *args],
            env={**IDENTITY, **(env or {})},
            check=check,
            input=input,
            timeout=timeout,
        )

    def out(self, *args: str, **kw) -> str:
        return self(*args, **kw).stdout.strip()

    def rev(self, ref: str) -> str | None:
        """The commit id ``ref`` names, or None."""
        done = self("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
        return done.stdout.strip() if done.returncode == 0 else None

    def head(self) -> str:
        return self.out("rev-parse", "HEAD")

    def dirty(self) -> list[str]:
        """Tracked files with uncommitted changes (untracked files are ignored on purpose:
        Debian's tarball ignores everything, and builds happen out of tree)."""
        # --no-optional-locks: a status refreshes the index and would write it back (and
        # take index.lock) in a checkout that is the user's, not ours to write
        text = self("--no-optional-locks", "status", "--porcelain",
                    "--untracked-files=no").stdout  # " M x": keep the blank
        return [line[3:] for line in text.splitlines() if line.strip()]

    def is_repo(self) -> bool:
        try:
            return self.out("rev-parse", "--is-inside-work-tree") == "true"
        except CommandError:
            return False
