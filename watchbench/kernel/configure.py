"""allnoconfig + our fragments, then proof that every requested option survived."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from watchbench.errors import ConfigError
from watchbench.host.files import write_atomically
from watchbench.host.runner import Runner, default_runner
from watchbench.kernel import kconfig_cache
from watchbench.kernel.kconfig import (
    ADDED,
    Fragment,
    additions,
    config_hash,
    load_fragment,
    merge,
    overlay,
    parse_dotconfig,
    render,
    unmet,
)
from watchbench.kernel.kconfig_deps import explain, scan
from watchbench.kernel.kmake import KernelMake
from watchbench.kernel.trees import Tree
from watchbench.settings import Settings


@dataclass(frozen=True)
class Configured:
    dotconfig: Path
    hash: str
    requested: Fragment


def fragment_paths(settings: Settings, names: list[str] | tuple[str, ...]) -> list[Path]:
    """Resolve fragment names (``base`` → kconfig/base.config) or paths, failing on unknown ones."""
    paths = []
    for name in names:
        path = Path(name).expanduser()
        if "/" not in name and not name.endswith(".config"):
            path = settings.kconfig_dir / f"{name}.config"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in settings.kconfig_dir.glob("*.config")))
            raise ConfigError(f"no kconfig fragment {name!r} (looked for {path})",
                              hint=f"known fragments: {known}")
        paths.append(path)
    return paths


def fragments_for(settings: Settings, tree: Tree, explicit: list[str] | None = None) -> list[str]:
    """The fragments to use: the explicit ones or the defaults, plus the bench fragment
    whenever our in-kernel benchmark series is among the applied ones."""
    names = list(explicit) if explicit else list(settings.fragments)
    bench = settings.bench_series
    if bench and bench in tree.series.split("+") and not any(Path(n).stem == bench for n in names):
        names.append(bench)
    return names


def configure(tree: Tree, settings: Settings, fragments: list[str] | tuple[str, ...],
              runner: Runner = default_runner) -> Configured:
    """Make the tree's .config from allnoconfig + fragments + the settings' kconfig_add
    (--kconfig-add); fail naming unmet dependencies. The additions are in the requested
    text, so in the allnoconfig cache key, and in the .config, so in its hash and the
    kernel's key (kernel.build.build_key)."""
    paths = fragment_paths(settings, fragments)
    requested = overlay(merge([load_fragment(p) for p in paths]), additions(settings.kconfig_add))
    stage = tree.root / "kconfig-stage"
    stage.mkdir(parents=True, exist_ok=True)
    merged = stage / "requested.config"
    merged.write_text(wanted := render(requested))
    (stage / ".config").unlink(missing_ok=True)
    key = kconfig_cache.cache_key(tree, wanted, runner)
    text = kconfig_cache.cached(settings.cache_dir, key)
    if text is None:
        KernelMake(tree.src, stage, jobs=settings.job_count, sandboxed=settings.sandbox,
                   runner=runner).allnoconfig(merged)
        text = (stage / ".config").read_text()
        kconfig_cache.remember(settings.cache_dir, key, text)
    else:
        (stage / ".config").write_text(text)  # as make left it: a ConfigError points here
    dotconfig = parse_dotconfig(text)
    dropped = unmet(requested, dotconfig)
    if dropped:
        index = scan(tree.src)
        reasons = "\n".join(explain(s, got, index, dotconfig) for s, got in dropped)
        added = any(s.source == ADDED for s, _ in dropped)
        raise ConfigError(
            f"{len(dropped)} requested option(s) did not survive allnoconfig + olddefconfig "
            f"on {tree.base_label}:\n{reasons}",
            log=stage / ".config",
            hint=("give its dependencies too, e.g. ./wb build --kconfig-add CONFIG_DEP=y "
                  "--kconfig-add CONFIG_X=y (or drop it)") if added else
            "add the missing dependencies to a fragment (or drop the option)",
        )
    digest = config_hash(text)
    configs = tree.root / "configs"
    configs.mkdir(exist_ok=True)
    dest = configs / f"{digest}.config"
    write_atomically(dest, (stage / ".config").read_bytes())  # a build trusts it by name
    tree.config_hash = digest
    tree.config_fragments = [str(p) for p in paths]
    tree.config_additions = list(settings.kconfig_add)
    tree.config_head = tree.git(runner).head()
    tree.save()
    return Configured(dest, digest, requested)
