"""Patch series on disk: ``patches/<name>/series`` plus git format-patch files.

Pure parsing and validation, so every bad input is caught before a tree is touched.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from watchbench.errors import InputError

SERIES_FILE = "series"
# A series name is a directory name under patches/, never a path: --force replaces it.
SERIES_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass(frozen=True)
class Hunk:
    number: int  # 1-based within its file
    old_start: int
    old_len: int

    def covers(self, line: int) -> bool:
        return self.old_start <= line <= self.old_start + max(self.old_len, 1) - 1


@dataclass(frozen=True)
class PatchFile:
    """One patch of a series, with what a failure report needs to name."""

    path: Path
    subject: str
    files: dict[str, tuple[Hunk, ...]]

    @property
    def name(self) -> str:
        return self.path.name

    def hunk_at(self, file: str, line: int) -> Hunk | None:
        """The hunk of ``file`` whose old range holds ``line`` (git reports the hunk start)."""
        hunks = self.files.get(file, ())
        for hunk in hunks:
            if hunk.old_start == line or hunk.covers(line):
                return hunk
        return hunks[0] if len(hunks) == 1 else None


@dataclass(frozen=True)
class Series:
    name: str
    directory: Path
    patches: tuple[PatchFile, ...]

    @property
    def hash(self) -> str:
        """Identity of the series: the patches' bytes in order (names do not matter)."""
        digest = hashlib.sha256()
        for patch in self.patches:
            digest.update(hashlib.sha256(patch.path.read_bytes()).digest())
        return digest.hexdigest()[:16]

    def prefix(self, count: int) -> Series:
        """The first ``count`` patches, for per-patch measurement."""
        return Series(f"{self.name}@{count}", self.directory, self.patches[:count])


@dataclass
class _HunkBody:
    """Counts a hunk's lines against its header, so a truncated or mangled patch is named
    as such (file, hunk, line) instead of failing later inside git as a conflict."""

    path: Path
    file: str
    number: int
    header_line: int
    old_left: int
    new_left: int

    @property
    def open(self) -> bool:
        return self.old_left > 0 or self.new_left > 0

    def take(self, line: str, number: int) -> None:
        kind = line[:1]
        if kind in (" ", ""):  # context (mailers may strip a context line's lone space)
            self.old_left, self.new_left = self.old_left - 1, self.new_left - 1
        elif kind == "-":
            self.old_left -= 1
        elif kind == "+":
            self.new_left -= 1
        elif kind == "\\":  # "\ No newline at end of file"
            return
        else:
            self.cut_off(number - 1, f"line {number} ({line[:40]!r}) is not part of a hunk")
        if self.old_left < 0 or self.new_left < 0:
            self.cut_off(number, "it has more lines than its header says")

    def cut_off(self, last: int, why: str = "") -> None:
        why = why or f"the file ends at line {last}"
        raise InputError(
            f"{self.path}:{self.header_line}: the patch is cut off or corrupt: hunk "
            f"{self.number} of {self.file} ({why}; {max(self.old_left, 0)} old and "
            f"{max(self.new_left, 0)} new lines missing)",
            hint="the patch file itself is broken, so rebasing will not help: export it "
                 "again (git format-patch) or save the whole mail again")


def _hunk_line(line: str) -> bool:
    """A line that only a hunk can hold (not a header, not the mail signature ``-- ``)."""
    if line.startswith(("+++ ", "--- ")) or line in ("--", "-- "):
        return False
    return line[:1] in ("+", "-") or (line[:1] == " " and bool(line.strip()))


def check_name(name: str, flag: str = "--name") -> str:
    """``name`` if it is a safe series name (letters, digits, . _ -; at most 64; not a
    path, not hidden); else an InputError saying what is allowed."""
    if not SERIES_NAME.match(name or ""):
        shown = repr(name)[:70]
        raise InputError(f"{flag} {shown}: a series name is letters, digits, '.', '_' and "
                         "'-' (at most 64, starting with a letter or digit), never a path",
                         hint="e.g. ./wb patches.import --name my-fix --mbox thread.mbox")
    return name


# Extended git headers that make a diff without hunks (a rename, a mode change, a binary
# patch, an empty new file): git am applies them, so a series may hold them.
HEADER_ONLY = ("rename from ", "rename to ", "old mode ", "new mode ", "new file mode ",
               "deleted file mode ", "copy from ", "copy to ", "GIT binary patch",
               "Binary files ")


def mail_subject(text: str) -> str:
    """The Subject: header of a mail-form patch, unfolded ("" when its headers, which end
    at the first blank line, have none)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            break
        if line.startswith("Subject:"):
            subject = line[len("Subject:"):].strip()
            for cont in lines[i + 1:]:
                if not cont.startswith((" ", "\t")):
                    break
                subject += " " + cont.strip()
            return subject
    return ""


def parse_patch(path: Path) -> PatchFile:
    """Check that ``path`` is a mail-form patch (Subject + a diff) and index its hunks."""
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise InputError(f"cannot read patch {path}: {exc.strerror}") from exc
    lines = text.splitlines()
    subject = mail_subject(text)
    if not subject:
        raise InputError(
            f"{path}: not a git format-patch file (no Subject: header before the body)",
            hint="create patches with `git format-patch` or import them: "
                 "./wb patches.import --name NAME --mbox FILE",
        )
    files: dict[str, list[Hunk]] = {}
    current: str | None = None
    header_file = ""
    saw_diff = False
    body: _HunkBody | None = None  # the hunk whose lines are being read
    for number, line in enumerate(lines, 1):
        if body is not None and body.open:
            body.take(line, number)
            continue
        if line.startswith("diff --git "):
            saw_diff = True
            current = None
            named = line[len("diff --git "):].split(" b/")[0]
            header_file = named[2:] if named.startswith("a/") else named
        elif saw_diff and current is None and line.startswith(HEADER_ONLY):
            files.setdefault(header_file, [])
        elif line.startswith("--- "):
            old = line[4:].split("\t")[0]
            current = old[2:] if old.startswith("a/") else old
        elif line.startswith("+++ ") and current == "/dev/null":
            new = line[4:].split("\t")[0]
            current = new[2:] if new.startswith("b/") else new
        elif line.startswith("@@"):
            match = HUNK.match(line)
            if not match or current is None:
                raise InputError(f"{path}:{number}: malformed hunk header: {line[:60]!r}")
            hunks = files.setdefault(current, [])
            hunks.append(Hunk(len(hunks) + 1, int(match[1]), int(match[2] or 1)))
            body = _HunkBody(path, current, len(hunks), number, int(match[2] or 1),
                             int(match[4] or 1))
        elif body is not None and current is not None and _hunk_line(line):
            body.cut_off(number, f"line {number} follows it but its header counted no more")
    if body is not None and body.open:
        body.cut_off(len(lines))
    if not saw_diff or not files:
        raise InputError(f"{path}: patch has no diff (no 'diff --git' with hunks)",
                         hint="a series may only list patches that change files")
    return PatchFile(path, subject, {k: tuple(v) for k, v in files.items()})


def read_series_file(directory: Path) -> list[str]:
    """Entry names from ``series``: order kept, comments and blanks skipped, errors named."""
    series_file = directory / SERIES_FILE
    if not directory.is_dir():
        raise InputError(f"no series directory {directory}",
                         hint="the series there are: ./wb patches.list")
    if not series_file.is_file():
        raise InputError(f"{directory} has no '{SERIES_FILE}' file listing its patches in order")
    names: list[str] = []
    seen: dict[str, int] = {}
    try:
        text = series_file.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        line = series_file.read_bytes()[:exc.start].count(b"\n") + 1
        raise InputError(f"{series_file}:{line}: not UTF-8 text (byte {exc.start})",
                         hint="a series file lists patch file names, one a line, in UTF-8: "
                              "fix it, or import the patches again with ./wb patches.import"
                         ) from None
    for number, raw in enumerate(text.splitlines(), 1):
        entry = raw.split("#", 1)[0].strip()
        if not entry:
            continue
        entry = entry.split()[0]  # quilt allows options after the name (e.g. -p1)
        if entry in seen:
            raise InputError(
                f"{series_file}:{number}: '{entry}' is listed twice (first at line {seen[entry]})",
                hint="remove the duplicate line",
            )
        seen[entry] = number
        if entry.startswith("/") or ".." in Path(entry).parts:
            raise InputError(f"{series_file}:{number}: '{entry}' is a path out of "
                             f"{directory}", hint="list the patch files of the directory")
        if not (directory / entry).is_file():
            raise InputError(f"{series_file}:{number}: '{entry}' is listed but no such file exists "
                             f"in {directory}")
        names.append(entry)
    if not names:
        raise InputError(f"{series_file}: the series is empty",
                         hint="list the patch files, one per line, in the order they apply")
    return names


def load_series(patches_dir: Path | Sequence[Path], name: str) -> Series:
    """Load and validate the series ``name`` under ``patches_dir`` (or the first of several
    directories that has it: your patches/, then the shipped ones)."""
    # A path is taken from where the user stands: the patches are applied from the tree.
    dirs = [patches_dir] if isinstance(patches_dir, Path) else list(patches_dir)
    if "/" in name:
        directory = Path(name).resolve()
    else:
        directory = next((d / name for d in dirs if (d / name).is_dir()), dirs[0] / name)
    names = read_series_file(directory)
    return Series(directory.name, directory, tuple(parse_patch(directory / n) for n in names))


def load_many(patches_dir: Path | Sequence[Path], names: str) -> Series:
    """``a,b`` → one series of a's patches then b's, named ``a+b`` (e.g. our bench patch + yours)."""
    parts = [load_series(patches_dir, n.strip()) for n in names.split(",") if n.strip()]
    if not parts:
        raise InputError("no series named", hint="give --series NAME[,NAME...]")
    if len(parts) == 1:
        return parts[0]
    return Series("+".join(p.name for p in parts), parts[0].directory,
                  tuple(patch for part in parts for patch in part.patches))


def list_series(patches_dir: Path | Sequence[Path]) -> list[Path]:
    """Directories under ``patches_dir`` (or several: a name in an earlier one hides the
    same name in a later one) that hold a series file."""
    found: dict[str, Path] = {}
    for directory in [patches_dir] if isinstance(patches_dir, Path) else patches_dir:
        if directory.is_dir():
            for p in sorted(directory.iterdir()):
                if not p.name.startswith(".") and (p / SERIES_FILE).is_file():
                    found.setdefault(p.name, p)
    return sorted(found.values(), key=lambda p: p.name)
