"""Applying, checking, undoing, importing and linting patch series on a kernel tree.

Apply is atomic: a dry run on a scratch index comes first, and if ``git am`` still
fails the work tree is put back at the commit it had, clean, before the error is raised.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from watchbench.errors import CommandError, InputError, PatchError, TreeError
from watchbench.host.runner import Runner, default_runner
from watchbench.kernel import journal
from watchbench.kernel.series import SERIES_FILE, PatchFile, Series, parse_patch
from watchbench.kernel.trees import Tree

FAILED_AT = re.compile(r"patch failed: (?P<file>\S+):(?P<line>\d+)")
NOT_IN_INDEX = re.compile(r"error: (?P<file>\S+): (?P<what>does not exist in index|already exists "
                          r"in index|does not match index|patch does not apply)")
CONFLICT = re.compile(r"^U (?P<file>\S+)$|CONFLICT \(content\): Merge conflict in (?P<file2>\S+)",
                      re.M)


@dataclass(frozen=True)
class PatchCheck:
    """Whether one patch applies on top of the ones before it, and where it fails."""

    patch: PatchFile
    ok: bool
    file: str = ""
    line: int = 0
    hunk: int = 0
    detail: str = ""

    def where(self) -> str:
        """'file hunk #N (line L): detail' for a failure."""
        where = self.file or "?"
        if self.hunk:
            where += f" hunk #{self.hunk} (line {self.line})"
        elif self.line:
            where += f" line {self.line}"
        return f"{where}: {self.detail}"

    def describe(self) -> str:
        return f"ok    {self.patch.name}" if self.ok else f"FAIL  {self.patch.name}: {self.where()}"


def _locate(patch: PatchFile, output: str) -> PatchCheck:
    """Turn git apply/am error text into the patch, file and hunk that failed."""
    detail = next((ln.strip() for ln in output.splitlines() if ln.startswith("error:")), "")
    match = FAILED_AT.search(output)
    if match:
        file, line = match["file"], int(match["line"])
        hunk = patch.hunk_at(file, line)
        return PatchCheck(patch, False, file, line, hunk.number if hunk else 0,
                          detail or "patch does not apply")
    conflict = CONFLICT.search(output)
    if conflict:
        return PatchCheck(patch, False, conflict["file"] or conflict["file2"], 0, 0,
                          "conflicts in a three-way merge")
    match = NOT_IN_INDEX.search(output)
    if match:
        return PatchCheck(patch, False, match["file"], 0, 0, match["what"])
    return PatchCheck(patch, False, "", 0, 0, detail or output.strip().splitlines()[-1:][0]
                      if output.strip() else "git apply failed")


def check(tree: Tree, series: Series, runner: Runner = default_runner,
          onto: str | None = None) -> list[PatchCheck]:
    """Dry-run the series on the tree's base (or ``onto``) in a scratch index; the work
    tree is not touched.

    Stops at the first failing patch (later ones would be judged against a wrong state).
    """
    git = tree.git(runner)
    scratch = tree.root / "check.index"
    env = {"GIT_INDEX_FILE": str(scratch)}
    scratch.unlink(missing_ok=True)
    results: list[PatchCheck] = []
    try:
        git("read-tree", onto or tree.base, env=env)
        for patch in series.patches:
            done = git("apply", "--cached", "--3way", str(patch.path), env=env, check=False)
            if done.returncode != 0:
                results.append(_locate(patch, done.stdout + done.stderr))
                break
            results.append(PatchCheck(patch, True))
    finally:
        scratch.unlink(missing_ok=True)
    return results


def _first_failure(checks: list[PatchCheck]) -> PatchCheck | None:
    return next((c for c in checks if not c.ok), None)


def _failure_error(series: Series, failed: PatchCheck, tree: Tree, note: str) -> PatchError:
    index = series.patches.index(failed.patch) + 1
    return PatchError(
        f"series '{series.name}': patch {index}/{len(series.patches)} {failed.patch.name} "
        f"(\"{failed.patch.subject}\") does not apply to {tree.base_label} ({tree.base[:12]}): "
        f"{failed.where()}\n{note}",
        hint="rebase the patch onto this base, or check it with `inv patches.check`",
    )


def apply(tree: Tree, series: Series, runner: Runner = default_runner,
          precheck: bool = True, onto: str | None = None) -> Tree:
    """Put ``series`` on the tree's base (or on the commit ``onto``: bisect's steps) with
    git am --3way; all or nothing."""
    git = tree.git(runner)
    dirty = git.dirty()
    if dirty:
        raise TreeError(f"{tree.src} has uncommitted changes: {', '.join(dirty[:5])}",
                        hint="commit or discard them, or run `inv patches.reset --force`")
    prior = git.head()
    if precheck:
        failed = _first_failure(check(tree, series, runner, onto))
        if failed:
            raise _failure_error(series, failed, tree, "the tree was not touched")
    with journal.journaled(tree.root, git, f"apply of series {series.name}"):
        git("checkout", "-q", "--detach", onto or tree.base)
        am = git("am", "-q", "--3way", "--committer-date-is-author-date",
                 *[str(p.path) for p in series.patches], check=False, timeout=1800)
        if am.returncode != 0:
            output = am.stdout + am.stderr
            git("am", "--abort", check=False)
            git("reset", "-q", "--hard", prior)
            git("checkout", "-q", "--detach", prior)
            if git.head() != prior or git.dirty():
                raise TreeError(f"could not restore {tree.src} to {prior[:12]} after a failed git am",
                                hint=f"inspect it with `git -C {tree.src} status`")
            number = re.search(r"Patch failed at (\d+)", output)
            patch = series.patches[int(number[1]) - 1] if number else series.patches[0]
            raise _failure_error(series, _locate(patch, output), tree,
                                 f"git am failed; the tree is back at {prior[:12]}, clean")
        tree.series = series.name
        tree.series_hash = series.hash
        tree.series_patches = [p.name for p in series.patches]
        tree.applied_head = git.head()
        tree.save()
    return tree


def reset(tree: Tree, runner: Runner = default_runner, force: bool = False) -> Tree:
    """Back to the bare base: no series, clean."""
    git = tree.git(runner)
    dirty = git.dirty()
    if dirty and not force:
        raise TreeError(f"{tree.src} has uncommitted changes: {', '.join(dirty[:5])}",
                        hint="pass --force to discard them")
    with journal.journaled(tree.root, git, "reset to the bare base"):
        git("am", "--abort", check=False)
        git("reset", "-q", "--hard")
        git("checkout", "-q", "--detach", tree.base)
        tree.series, tree.series_hash, tree.series_patches, tree.applied_head = "", "", [], ""
        tree.save()
    return tree


@dataclass(frozen=True)
class LintResult:
    patch: PatchFile
    errors: int
    warnings: int
    checks: int
    output: str


LINT_TOTAL = re.compile(r"total: (\d+) errors?, (\d+) warnings?,(?: (\d+) checks?,)?")


def lint(tree: Tree, series: Series, runner: Runner = default_runner,
         strict: bool = False) -> list[LintResult]:
    """The tree's own scripts/checkpatch.pl on every patch of the series."""
    script = tree.src / "scripts" / "checkpatch.pl"
    if not script.exists():
        raise TreeError(f"{script} is missing", hint="lint needs a full kernel tree")
    results = []
    for patch in series.patches:
        argv = ["perl", str(script), "--color=never", "--no-summary-file"]
        argv += ["--strict"] if strict else []
        done = runner.run([*argv, str(patch.path)], cwd=tree.src, check=False)
        text = done.stdout + done.stderr
        match = LINT_TOTAL.search(text)
        if not match:
            raise CommandError(argv + [str(patch.path)], done.returncode, text)
        results.append(LintResult(patch, int(match[1]), int(match[2]), int(match[3] or 0), text))
    return results


def _slug(subject: str) -> str:
    subject = re.sub(r"^\[[^\]]*\]\s*", "", subject)
    return re.sub(r"[^A-Za-z0-9_.]+", "-", subject).strip("-.")[:52] or "patch"


def _prepare_out(out_dir: Path, force: bool) -> None:
    if out_dir.exists() and any(out_dir.iterdir()):
        if not force:
            raise InputError(f"{out_dir} already exists and is not empty",
                             hint="choose another --name or pass --force to replace it")
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)


def _write_series(out_dir: Path, names: list[str]) -> None:
    if not names:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise InputError("nothing to import: no patch with a diff was found")
    (out_dir / SERIES_FILE).write_text("".join(n + "\n" for n in names))


def import_range(repo: Path, revision_range: str, out_dir: Path, runner: Runner = default_runner,
                 force: bool = False) -> list[str]:
    """git format-patch of a range in the user's tree (e.g. ``merge^1..merge^2``)."""
    if ".." not in revision_range:
        raise InputError(f"--range {revision_range!r} is not a range",
                         hint="use A..B, e.g. 'M^1..M^2' for the commits a merge M brought in")
    _prepare_out(out_dir, force)
    try:
        done = runner.run(["git", "-C", str(repo), "format-patch", "--no-signature", "--zero-commit",
                           "-o", str(out_dir), revision_range], timeout=600)
    except CommandError:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise
    names = [Path(line).name for line in done.stdout.split() if line.endswith(".patch")]
    for name in names:
        parse_patch(out_dir / name)
    _write_series(out_dir, names)
    return names


def import_mbox(mbox: Path, out_dir: Path, runner: Runner = default_runner,
                force: bool = False) -> list[str]:
    """Split an mbox (a saved thread or `b4 am` output) into a series; cover letters are skipped."""
    if not mbox.is_file():
        raise InputError(f"no such mbox: {mbox}")
    _prepare_out(out_dir, force)
    split = out_dir / ".split"
    split.mkdir()
    runner.run(["git", "mailsplit", f"-o{split}", str(mbox)])
    names = []
    for mail in sorted(split.iterdir()):
        try:
            patch = parse_patch(mail)
        except InputError:
            continue  # a cover letter or a reply without a diff
        name = f"{len(names) + 1:04d}-{_slug(patch.subject)}.patch"
        header = "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
        (out_dir / name).write_bytes(header.encode() + mail.read_bytes())
        names.append(name)
    shutil.rmtree(split)
    _write_series(out_dir, names)
    return names


def import_directory(source: Path, out_dir: Path, force: bool = False) -> list[str]:
    """Copy a directory of .patch/.diff files (in name order) into a series."""
    if not source.is_dir():
        raise InputError(f"no such directory: {source}")
    files = sorted(p for p in source.iterdir() if p.suffix in (".patch", ".diff"))
    for path in files:
        parse_patch(path)  # validate everything before writing anything
    _prepare_out(out_dir, force)
    for path in files:
        shutil.copy2(path, out_dir / path.name)
    _write_series(out_dir, [p.name for p in files])
    return [p.name for p in files]
