"""The ``./wb`` and ``wb`` program: invoke's ``Program`` with its usage errors (an unknown
option or task, an option without its value, a missing argument) said as every other bad
input is: exit 2, 80 columns, the help command to paste. invoke itself exits 1 for them,
the code a gate gives for "slower", so a typo in a CI job would read as a regression.

Its tasks are the package's collection (watchbench/cli/tasks.py), bundled, so that an
installed ``wb`` (pyproject.toml's [project.scripts]) works from any directory; run from
a checkout, it reads the checkout's invoke.yaml as ``inv`` would."""

from __future__ import annotations

import contextlib
import difflib
import importlib.metadata
import inspect
import re
import sys
from collections.abc import Iterator
from typing import Any

from invoke import Program
from invoke.exceptions import Exit, ParseError
from invoke.parser import Parser, ParserContext

from watchbench import settings
from watchbench.cli import as_typed, fit
from watchbench.cli.tasks import ns
from watchbench.errors import InputError

WB = "./wb"
EXIT_USAGE = InputError.exit_code


def _flag(name: str) -> str:
    """An invoke argument's name as it is typed (``skip_bad`` -> ``--skip-bad``)."""
    return f"-{name}" if len(name) == 1 else f"--{name.replace('_', '-')}"


def _near(word: str, known: list[str]) -> str:
    """'did you mean --threshold? ' for a near miss (compared without the dashes)."""
    bare = {k.lstrip("-"): k for k in known}
    close = difflib.get_close_matches(word.lstrip("-"), list(bare), n=1, cutoff=0.75)
    return f"did you mean {bare[close[0]]}? " if close else ""


def usage_error(message: str, task: str | None, tasks: list[str], flags: list[str],
                positionals: list[str] = ()) -> InputError:
    """invoke's parse error ``message`` (in ``task``'s arguments, or ./wb's own when None)
    as an error naming the input, with the help command that lists what is allowed;
    ``positionals``: the task's positional arguments, all of them, in order."""
    where = f"{task}: " if task else ""
    help_cmd = f"{WB} --help {task}" if task else f"{WB} --list"
    unknown = re.fullmatch(r"No idea what '(.*)' is!", message)
    needs = re.fullmatch(r"Flag <Argument: (\w+)[^>]*> needed value and was not given one!",
                         message)
    no_value = re.fullmatch(r"Flag <Argument: (\w+)[^>]*> doesn't take any value!", message)
    missing = re.fullmatch(r"'.*' did not receive required positional arguments: (.*)",
                           message)
    group = re.fullmatch(r"Sub-collection '(.*)' not found!", message)
    if unknown and unknown[1].startswith("-"):
        token = unknown[1]
        return InputError(f"{where}unknown option {token}",
                          hint=f"{_near(token.split('=')[0], flags)}"
                               f"{'its' if task else 'the'} options: {WB} --help"
                               f"{' ' + task if task else ''}")
    if unknown:
        token = unknown[1]
        what = f"{where}{token!r} is neither an argument of {task} nor a task" if task else \
            f"no task named {token!r}"
        return InputError(what, hint=f"{_near(token, tasks)}the tasks: {WB} --list"
                                     f"{f'; {task} takes: {help_cmd}' if task else ''}")
    if needs:
        return InputError(f"{where}{_flag(needs[1])} needs a value",
                          hint=f"what it takes: {help_cmd}")
    if no_value:
        return InputError(f"{where}{_flag(no_value[1])} is a switch: it takes no value",
                          hint=f"give it alone; see {help_cmd}")
    if missing:
        names = [n.strip(" '").upper() for n in missing[1].split(",")]
        every = [n.upper() for n in positionals] or names
        return InputError(f"{where}missing {' and '.join(names)}",
                          hint=f"it is {WB} {task} {' '.join(every)}; see {help_cmd}")
    if group:
        return InputError(f"--list {group[1]!r}: no group of tasks has that name",
                          hint=f"{_near(group[1], tasks)}the tasks: {WB} --list")
    return InputError(f"{where}{message}", hint=f"see {help_cmd}")


SECTIONS = ("Exit status:", "Files:", "Example:")  # of every task's docstring, in order


def help_parts(docstring: str) -> tuple[str, str]:
    """A task's docstring split before its first section heading (``SECTIONS``): what it
    does, and its exit status, files and example."""
    lines = docstring.strip().splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip() in SECTIONS), len(lines))
    return "\n".join(lines[:first]).strip(), "\n".join(lines[first:]).strip()


class WatchbenchProgram(Program):
    """invoke's Program, its parse errors turned into ``usage_error`` (exit 2)."""

    @contextlib.contextmanager
    def _usage(self) -> Iterator[None]:
        try:
            yield
        except ParseError as exc:
            context = getattr(exc, "context", None)
            task = getattr(context, "name", None)
            positionals = [a.name for a in getattr(context, "positional_args", [])]
            err = usage_error(str(exc), task, self._tasks(), self._flags(context), positionals)
            raise Exit(fit(as_typed(f"error: {err}")), code=EXIT_USAGE) from None
        except Exit as exc:
            # invoke's own refusals during parsing (`--list nope`) carry a message and
            # code 1; help, --list and --version end with no message and code 0.
            if exc.message and exc.code == 1:
                err = usage_error(str(exc.message), None, self._tasks(), [])
                raise Exit(fit(as_typed(f"error: {err}")), code=EXIT_USAGE) from None
            raise

    def _tasks(self) -> list[str]:
        collection = getattr(self, "collection", None)
        return sorted(collection.task_names) if collection is not None else []

    @staticmethod
    def _flags(context: Any) -> list[str]:
        return sorted(getattr(context, "flags", {}) or {})

    @property  # type: ignore[override]
    def version(self) -> str:
        """Looked up only for --version (importlib.metadata costs ~20 ms at every start)."""
        return self._given_version or importlib.metadata.version("watchbench")

    @version.setter
    def version(self, value: str) -> None:
        self._given_version = "" if value in (None, "unknown") else value

    def parse_collection(self) -> None:
        """The bundled tasks, plus the checkout's invoke.yaml as its project configuration
        (an installed ``wb`` has none: ~/.invoke.yaml, -f and the environment remain)."""
        super().parse_collection()
        root = settings.PROJECT_ROOT
        if settings.is_checkout(root) and (root / "invoke.yaml").is_file():
            self.config.set_project_location(str(root))
            self.config.load_project()

    def print_task_help(self, name: str) -> None:
        """``./wb --help TASK`` in the order of a man page: the usage, what the task does
        (its docstring up to its first section), its options as invoke lists them, then
        the docstring's sections (Exit status, Files, Example). invoke itself prints the
        whole docstring under "Docstring:" and the options last, after the example."""
        tuples = self.parser.contexts[name].help_tuples()
        description, sections = help_parts(inspect.getdoc(self.collection[name]) or "")
        print(f"Usage: {self.binary} [--core-opts] {name} "
              f"{'[--options] ' if tuples else ''}[other tasks here ...]")
        print("")
        for line in description.splitlines() or ["none"]:
            print(self.leading_indent + line if line.strip() else "")
        print("")
        print("Options:")
        if tuples:
            self.print_columns(tuples)
        else:
            print(self.leading_indent + "none")
            print("")
        if sections:
            print(sections.rstrip())

    def _make_parser(self) -> Parser:
        """The parser of the tasks named on the command line only. invoke deep-copies
        every task's parser context for each parse: with all of ours that was 28 ms of each
        start (and 12 s of CPU in the fast tests, which run the program 431 times). A task
        not named cannot be parsed, so leaving it out changes no parse; an unknown name
        is still unknown, and --help TASK (or --help=TASK) still finds TASK."""
        asked = self.args.help.value  # --help=TASK and -hTASK: not a word of argv
        words = set(self.argv) | ({asked} if isinstance(asked, str) else set())
        contexts = [ParserContext(name=name, aliases=aliases,
                                  args=self.collection[name].get_arguments(
                                      ignore_unknown_help=self.config.tasks.ignore_unknown_help))
                    for name, aliases in self.collection.task_names.items()
                    if name in words or words.intersection(aliases)]
        return Parser(initial=self.initial_context, contexts=contexts)

    def parse_core(self, argv: list[str] | None) -> None:
        with self._usage():
            super().parse_core(argv)

    def parse_tasks(self) -> None:
        with self._usage():
            super().parse_tasks()

    def parse_cleanup(self) -> None:
        with self._usage():
            super().parse_cleanup()


def program() -> WatchbenchProgram:
    """The program ``./wb`` and ``wb`` run: the package's tasks, bundled."""
    return WatchbenchProgram(namespace=ns, name="watchbench", binary=as_typed(WB),
                             binary_names=["wb"])


def main(argv: list[str] | None = None) -> None:
    """``wb``'s entry point ([project.scripts]) and ``python -m watchbench.cli.program``'s."""
    program().run(argv if argv is not None else sys.argv)


if __name__ == "__main__":  # ./wb: python -m watchbench.cli.program ARGS
    main()
