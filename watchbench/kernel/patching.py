"""Applying, checking, undoing, importing and linting patch series on a kernel tree.

Apply is atomic: a dry run on a scratch index comes first, and if ``git am`` still
fails the work tree is put back at the commit it had, clean, before the error is raised.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watchbench.errors import CommandError, InputError, PatchError, TreeError
from watchbench.host.runner import Runner, default_runner
from watchbench.kernel import journal
from watchbench.kernel.series import (
    SERIES_FILE,
    PatchFile,
    Series,
    mail_subject,
    parse_patch,
    read_series_file,
)
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
    results: list[PatchCheck] = []
    with tempfile.TemporaryDirectory(prefix="wb-check-") as scratch:  # never in the tree
        env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        git("read-tree", onto or tree.base, env=env)
        for patch in series.patches:
            done = git("apply", "--cached", "--3way", str(patch.path), env=env, check=False)
            if done.returncode != 0:
                results.append(_locate(patch, done.stdout + done.stderr))
                break
            results.append(PatchCheck(patch, True))
    return results


def _first_failure(checks: list[PatchCheck]) -> PatchCheck | None:
    return next((c for c in checks if not c.ok), None)


def _failure_error(series: Series, failed: PatchCheck, tree: Tree, note: str) -> PatchError:
    index = series.patches.index(failed.patch) + 1
    return PatchError(
        f"series '{series.name}': patch {index}/{len(series.patches)} {failed.patch.name} "
        f"(\"{failed.patch.subject}\") does not apply to {tree.base_label} ({tree.base[:12]}): "
        f"{failed.where()}\n{note}",
        hint="rebase the patch onto this base, or check it with `./wb patches.check`",
    )


def apply(tree: Tree, series: Series, runner: Runner = default_runner,
          precheck: bool = True, onto: str | None = None) -> Tree:
    """Put ``series`` on the tree's base (or on the commit ``onto``: bisect's steps) with
    git am --3way; all or nothing."""
    git = tree.git(runner)
    dirty = git.dirty()
    if dirty:
        raise TreeError(f"{tree.src} has uncommitted changes: {', '.join(dirty[:5])}",
                        hint="commit or discard them, or run `./wb patches.reset --force`")
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


# --- imports: a source read whole into a directory beside patches/<name>, then renamed -----

MAIL_FROM = "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
TAG = re.compile(r"^\s*\[(?P<tag>[^\]]*)\]")
COUNTER = re.compile(r"(?:^|\s)0*(?P<n>\d+)/0*(?P<m>\d+)(?:\s|$)")
VERSION = re.compile(r"(?:^|\s)[vV](?P<v>\d+)(?:\s|$)")


@dataclass(frozen=True)
class Mail:
    """One patch of a source as imported: where its text is, and what its subject's
    ``[PATCH vV N/M]`` says (None: no counter)."""

    text: bytes
    subject: str
    where: str  # for messages: the source and the mail or file
    version: int = 1
    number: int | None = None
    total: int | None = None


def _mail(text: bytes, where: str) -> Mail:
    """A mail's subject read: its version and its n/m, refused when they do not parse."""
    subject = mail_subject(text.decode("utf-8", errors="surrogateescape"))
    tag = TAG.match(subject)
    version, number, total = 1, None, None
    if tag and re.search(r"\bPATCH\b|\bRFC\b", tag["tag"], re.I):
        counter, ver = COUNTER.search(tag["tag"]), VERSION.search(tag["tag"])
        if "/" in tag["tag"] and not counter:
            raise InputError(f"{where}: cannot read the patch counter of {subject[:60]!r}",
                             hint="the subject should say [PATCH n/m]; fix it or import "
                                  "the patches one directory at a time with --directory")
        if counter:
            number, total = int(counter["n"]), int(counter["m"])
        if ver:
            version = int(ver["v"])
    return Mail(text, subject, where, version, number, total)


def _ordered(mails: list[Mail], where: str, version: int | None) -> list[Mail]:
    """The series the mails make: one version, every n/m present once, in numeric order;
    or, without counters, as given. Anything else is refused: a series with a hole in it
    would be measured as if it were whole."""
    versions = sorted({m.version for m in mails})
    if version is None and len(versions) > 1:
        raise InputError(f"{where} holds versions {', '.join(f'v{v}' for v in versions)} of "
                         "the series", hint=f"choose one, e.g. ./wb patches.import ... "
                                            f"--version {versions[-1]}")
    if version is not None:
        if version not in versions:
            raise InputError(f"--version {version}: {where} holds "
                             f"{', '.join(f'v{v}' for v in versions)}",
                             hint=f"e.g. --version {versions[-1]}")
        mails = [m for m in mails if m.version == version]
    numbered = [m for m in mails if m.number is not None]
    if not numbered:
        return mails
    if len(numbered) != len(mails):
        bare = next(m for m in mails if m.number is None)
        raise InputError(f"{where}: {bare.subject[:50]!r} has no n/m counter, others have",
                         hint="import a complete series ([PATCH n/m] on every patch)")
    totals = sorted({m.total for m in mails if m.total is not None})
    if len(totals) > 1:
        raise InputError(f"{where}: the counters disagree on the count ({', '.join(map(str, totals))})",
                         hint="one version of one series at a time: choose it with --version")
    total = totals[0]
    by_number: dict[int, Mail] = {}
    for mail in mails:
        if mail.number in by_number or not 1 <= (mail.number or 0) <= total:
            raise InputError(f"{where}: patch {mail.number}/{total} is there twice or out of "
                             f"range ({mail.subject[:50]!r})",
                             hint="keep one copy of each patch (a resend: choose --version)")
        by_number[mail.number] = mail  # type: ignore[index]
    missing = [n for n in range(1, total + 1) if n not in by_number]
    if missing:
        raise InputError(f"{where}: patch {', '.join(f'{n}/{total}' for n in missing)} "
                         f"missing: {len(mails)} of {total} present",
                         hint="save the whole thread (e.g. `b4 am`) and import it again")
    return [by_number[n] for n in range(1, total + 1)]


def _split(runner: Runner, source: Path, scratch: Path, single: bool = False) -> list[bytes]:
    """The mails of ``source``, split by git itself (``git mailsplit``: CRs stripped as
    ``git am`` strips them); ``single``: a file that does not start with From is one mail."""
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        runner.run(["git", "mailsplit", *(["-b"] if single else []), f"-o{scratch}",
                    str(source)], timeout=600)
    except CommandError as exc:
        raise InputError(f"{source}: git mailsplit could not read it: "
                         f"{exc.output.strip()[-200:] or exc.message}") from None
    return [p.read_bytes() for p in sorted(scratch.iterdir())]


def _patch_of(mail: Mail, scratch: Path) -> bool:
    """Whether the mail is a patch (checked as a series patch is); False for a cover
    letter or a reply without a diff. A numbered patch without a diff is refused."""
    has_diff = any(line.startswith(b"diff --git ") for line in mail.text.splitlines())
    if not has_diff:
        if mail.number:
            raise InputError(f"{mail.where}: patch {mail.number}/{mail.total} "
                             f"({mail.subject[:50]!r}) holds no diff",
                             hint="save the whole thread again and import it again")
        return False
    probe = scratch / "probe.patch"
    probe.write_bytes(MAIL_FROM.encode() + mail.text)
    try:
        parse_patch(probe)
    except InputError as exc:
        raise InputError(exc.message.replace(str(probe), mail.where), hint=exc.hint) from None
    return True


def _with_subject(text: bytes, name: str) -> bytes:
    """A plain diff (quilt's) as a mail: git am needs a subject; its file name is one."""
    if mail_subject(text.decode("utf-8", errors="surrogateescape")):
        return text
    return f"Subject: [PATCH] {Path(name).stem}\n\n".encode() + text


def _stale(path: Path) -> bool:
    pid = path.name.rsplit("-", 1)[-1]
    return not (pid.isdigit() and os.path.exists(f"/proc/{pid}"))


def _into_place(out_dir: Path, force: bool, fill: Callable[[Path, Path], list[Mail]]) -> list[str]:
    """Write the series into a directory beside ``out_dir`` and rename it into place:
    nothing exists under the name until the series is whole and checked, and an old
    series (``force``) is replaced only then. A failure leaves no trace to block a retry."""
    if (out_dir.exists() or out_dir.is_symlink()) and not force and not (
            out_dir.is_dir() and not out_dir.is_symlink() and not any(out_dir.iterdir())):
        raise InputError(f"{out_dir} already exists",
                         hint=f"choose another --name, or replace it: ./wb patches.import "
                              f"--name {out_dir.name} --force ...")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    for old in out_dir.parent.glob(f".{out_dir.name}.*-*"):
        if _stale(old):  # left by a killed import
            shutil.rmtree(old, ignore_errors=True)
    staging = out_dir.with_name(f".{out_dir.name}.import-{os.getpid()}")
    scratch = out_dir.with_name(f".{out_dir.name}.scratch-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir()
        mails = fill(scratch, staging)
        if not mails:
            raise InputError("nothing to import: no patch with a diff was found")
        names = [f"{i:04d}-{_slug(m.subject)}.patch" for i, m in enumerate(mails, 1)]
        for name, mail in zip(names, mails, strict=True):
            text = mail.text if mail.text.startswith(b"From ") else MAIL_FROM.encode() + mail.text
            (staging / name).write_bytes(text)
        (staging / SERIES_FILE).write_text("".join(n + "\n" for n in names))
        for name in read_series_file(staging):
            parse_patch(staging / name)
        _replace(staging, out_dir)
        return names
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)


def _replace(staging: Path, out_dir: Path) -> None:
    """``staging`` renamed to ``out_dir``; what was there is moved aside first and removed
    after (a symlink or a file as itself, never what it points at)."""
    if not (out_dir.exists() or out_dir.is_symlink()):
        staging.rename(out_dir)
        return
    old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    out_dir.rename(old)
    try:
        staging.rename(out_dir)
    except OSError:
        old.rename(out_dir)
        raise
    if old.is_symlink() or not old.is_dir():
        old.unlink()
    else:
        shutil.rmtree(old)


# git on the user's checkout: no optional locks (``git status``/``diff`` would refresh and
# rewrite their index), and diffs in the one form ``git am`` applies, whatever their
# configuration says (an external diff, textconv, other prefixes, colour).
QUIET = {"GIT_OPTIONAL_LOCKS": "0"}
PLAIN = ("--no-ext-diff", "--no-textconv", "--no-color", "--src-prefix=a/", "--dst-prefix=b/",
         "--binary")
UNCOMMITTED_DIFF = ("diff", *PLAIN, "HEAD", "--")
FORMAT_PATCH = ("format-patch", "--no-signature", "--zero-commit", "--no-cover-letter",
                "--suffix=.patch", *PLAIN)


def import_range(repo: Path, revision_range: str, out_dir: Path, runner: Runner = default_runner,
                 force: bool = False) -> list[str]:
    """git format-patch of a range in the user's tree (e.g. ``merge^1..merge^2``)."""
    if ".." not in revision_range or revision_range.startswith("-"):
        raise InputError(f"--range {revision_range!r} is not a range",
                         hint="use A..B, e.g. ./wb patches.import --name NAME --tree ~/linux "
                              "--range 'M^1..M^2' (the commits a merge M brought in)")
    if not (repo / ".git").exists():
        raise InputError(f"--tree {str(repo)!r}: not a git checkout",
                         hint="give your kernel checkout, e.g. --tree ~/linux")

    def fill(scratch: Path, staging: Path) -> list[Mail]:
        scratch.mkdir()
        try:
            runner.run(["git", "-C", str(repo), *FORMAT_PATCH, "-o", str(scratch),
                        revision_range, "--"], env=QUIET, timeout=600)
        except CommandError as exc:
            raise InputError(f"--range {revision_range!r}: git format-patch failed in {repo}: "
                             f"{exc.output.strip()[-200:]}",
                             hint="check the range with `git -C TREE log --oneline RANGE`") \
                from None
        mails = [_mail(p.read_bytes(), f"--range {revision_range} {p.name}")
                 for p in sorted(scratch.glob("*.patch"))]
        return [m for m in mails if _patch_of(m, scratch)]

    return _into_place(out_dir, force, fill)


def import_branch(repo: Path, base: str, head: str, out_dir: Path, *,
                  uncommitted: bool = False, runner: Runner = default_runner) -> list[str]:
    """The commits ``base..head`` of the user's checkout as a series (``wb ci --base``
    where the developer stands), and with ``uncommitted`` the checkout's uncommitted
    changes to tracked files as one last patch. Nothing in the checkout is changed:
    format-patch and diff only read it."""

    def fill(scratch: Path, staging: Path) -> list[Mail]:
        scratch.mkdir()
        mails: list[Mail] = []
        if base != head:
            runner.run(["git", "-C", str(repo), *FORMAT_PATCH, "-o", str(scratch),
                        f"{base}..{head}", "--"], env=QUIET, timeout=600)
            mails = [_mail(p.read_bytes(), f"commit {i} of {base[:12]}..{head[:12]}")
                     for i, p in enumerate(sorted(scratch.glob("*.patch")), 1)]
            mails = [m for m in mails if _patch_of(m, scratch)]
        if uncommitted:
            diff = scratch / "uncommitted.diff"
            runner.run(["git", "-C", str(repo), *UNCOMMITTED_DIFF[:-2], f"--output={diff}",
                        *UNCOMMITTED_DIFF[-2:]], env=QUIET, timeout=600)
            text = (f"From: watchbench <watchbench@localhost>\nSubject: [PATCH] uncommitted "
                    f"changes in {repo}\n\n---\n").encode() + diff.read_bytes()
            mail = _mail(text, f"the uncommitted changes in {repo}")
            if not _patch_of(mail, scratch):  # never measured without them, saying with
                raise InputError(f"--uncommitted: git diff HEAD in {repo} gave no patch",
                                 hint="commit the changes instead: git commit -a; then "
                                      "./wb ci --base REF")
            mails.append(mail)
        return mails

    return _into_place(out_dir, True, fill)


def import_mbox(mbox: Path, out_dir: Path, runner: Runner = default_runner,
                force: bool = False, version: int | None = None) -> list[str]:
    """Split an mbox (a saved thread or `b4 am` output) into a series: cover letters and
    replies skipped, every [n/m] present, one version, in numeric order."""
    if not mbox.is_file():
        raise InputError(f"--mbox {str(mbox)!r}: no such file",
                         hint="save the thread as an mbox (e.g. `b4 am MSGID`) and give its path")

    def fill(scratch: Path, staging: Path) -> list[Mail]:
        texts = _split(runner, mbox, scratch / "mails")
        mails = [_mail(t, f"{mbox} mail {i}") for i, t in enumerate(texts, 1)]
        patches = [m for m in mails if _patch_of(m, scratch)]
        return _ordered(patches, str(mbox), version)

    return _into_place(out_dir, force, fill)


def _natural(name: str) -> list[object]:
    """'2-x' before '10-x'."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def import_directory(source: Path, out_dir: Path, runner: Runner = default_runner,
                     force: bool = False, version: int | None = None) -> list[str]:
    """A directory of patches as a series: in the order of its quilt ``series`` file if it
    has one, else its .patch/.diff files by their [n/m] (or their names, numerically)."""
    if not source.is_dir():
        raise InputError(f"--directory {str(source)!r}: no such directory",
                         hint="give a directory of .patch files, e.g. --directory ~/out")
    quilt = (source / SERIES_FILE).is_file()
    if quilt:
        files = [source / name for name in read_series_file(source)]
    else:
        files = sorted((p for p in source.iterdir()
                        if p.suffix in (".patch", ".diff") and p.is_file()),
                       key=lambda p: _natural(p.name))

    def fill(scratch: Path, staging: Path) -> list[Mail]:
        mails = []
        for number, path in enumerate(files):
            texts = _split(runner, path, scratch / f"{number}", single=True)
            if len(texts) != 1:
                raise InputError(f"{path}: holds {len(texts)} mails, not one patch",
                                 hint=f"import it on its own: ./wb patches.import --name "
                                      f"{out_dir.name} --mbox {path}")
            mail = _mail(_with_subject(texts[0], path.name), str(path))
            if not _patch_of(mail, scratch):
                raise InputError(f"{path}: no diff in it",
                                 hint="a series directory holds patches only")
            mails.append(mail)
        if quilt:  # the series file says which patches and in what order, as for quilt
            return mails
        return _ordered(mails, str(source), version)

    return _into_place(out_dir, force, fill)
