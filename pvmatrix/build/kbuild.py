"""Build a kernel in a toolchain container, cached by content.

Two cache levels: the recipe key (source identity, toolchain image, recipe)
remembers which resolved config it gave, so a repeated request is answered
without starting anything; the artifact key (source identity, resolved
config, toolchain image) names the stored artifacts.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .. import artifacts, configure, sources
from . import container, toolchains, warm
from ..errors import BuildFailed, HarnessFault, UserError
from ..kernel import Kernel, in_dir
from ..paths import cache_dir, cache_root
from . import engine
from ..digest import short as short_sha256

ARTIFACTS = ("bzImage", "vmlinux", "config", "System.map", "build.log")
COMPILER_ERROR = re.compile(r"^\S+:\d+(:\d+)?: (fatal )?error: ")
OTHER_ERROR = re.compile(r"^ERROR: |\*\*\* ")


@dataclass
class BuildManifest:
    """What went into a built kernel and what building it cost: the fields
    that Build and BuildFacts share, in the order of KEY/manifest.json."""
    key: str
    dir: Path | str                  # Build: a Path; BuildFacts: its text
    source: str
    identity: str
    version: str
    toolchain: str
    image: str
    base: str
    fragments: list[str]
    config_sha256: str
    unmet: list[dict] = field(default_factory=list)
    build_s: float = 0.0
    cpu_s: float = 0.0


@dataclass
class Build(BuildManifest):
    """A built kernel: where its artifacts are, and what went into them."""
    dir: Path
    store: str = ""                  # the artifact store's URL ("" in manifests from before it)
    files: dict = field(default_factory=dict)   # relative path -> {sha256, size} or {link}
    cached: bool = False
    manifest_sha256: str = ""        # of the published manifest.json (not part of it)

    @property
    def url(self) -> str:
        """Where the artifacts are published: a directory, or a URL in a remote store."""
        return artifacts.artifact_url(self.store, self.key) if self.store else str(self.dir)

    def fetch(self) -> Path:
        """The local directory of the artifacts, fetched first if the store is remote."""
        if self.store:
            self.dir = artifacts.open_store(self.store).fetch(self.key, self.manifest_sha256 or None)
        return self.dir

    @property
    def kernel(self) -> Kernel:
        """The built kernel's files (in a remote store: after fetch())."""
        return in_dir(self.dir, f"{self.version}-{self.key[:8]}", self.key)

    def manifest(self) -> dict:
        """What the store keeps in KEY/manifest.json."""
        data = asdict(self)
        data["dir"] = str(self.dir)
        data.pop("cached")
        data.pop("manifest_sha256")
        return data

    def brief(self) -> dict:
        """The small manifest a task returns: the facts, the top-level files'
        digests (not the modules tree's), the artifact's URL and the digest of
        its published manifest, by which a consumer fetches and checks it."""
        data = self.manifest()
        data["files"] = {k: v for k, v in self.files.items() if "/" not in k}
        data.update(url=self.url, manifest_sha256=self.manifest_sha256,
                    modules_files=sum(1 for k in self.files if k.startswith("modules/")))
        return data


def artifact_key(identity: str, config_text: str, image: str) -> str:
    h = hashlib.sha256("\0".join([identity, configure.config_digest(config_text), image]).encode())
    return h.hexdigest()


def recipe_key(identity: str, recipe: configure.Recipe, image: str) -> str:
    return hashlib.sha256("\0".join([identity, recipe.key, image]).encode()).hexdigest()


BUILD_FIELDS = {f.name for f in fields(Build)} - {"cached", "dir"}


def _from_manifest(data: dict, store: artifacts.Store, cached: bool) -> Build:
    known = {k: v for k, v in data.items() if k in BUILD_FIELDS}
    return Build(**known, dir=store.local_dir(data["key"]), cached=cached)


def _load(key: str) -> Build | None:
    """The published build KEY in the artifact store, or None (not fetched: see Build.fetch)."""
    store = artifacts.open_store()
    data = store.load(key)
    return None if data is None else _from_manifest(data, store, cached=True)


def _as_requested(hit: Build, spec: str, recipe: configure.Recipe, unmet: list) -> Build:
    """A stored build seen through this request: the same artifacts may come
    from several recipes, each with its own unmet options."""
    # the memo may come from the same options asked for by fragments at other paths
    unmet = [{**u, "fragment": recipe.origin.get(u["symbol"], u.get("fragment"))} for u in unmet]
    hit.source, hit.base, hit.fragments, hit.unmet = spec, recipe.base, recipe.fragments, unmet
    return hit


def _make(tc: toolchains.Toolchain, jobs: int) -> str:
    cc = f"ccache {tc.compiler}"
    return f"make -C /src O=/out ARCH=x86_64 -j{jobs} CC='{cc}' HOSTCC='{cc}'"


def _env() -> dict[str, str]:
    # depend mode: no extra preprocessor run on a miss, so a cold build costs
    # what plain make costs (kbuild's -Wp,-MMD gives ccache the dependencies)
    return {"CCACHE_DIR": container.CCACHE, "CCACHE_MAXSIZE": "10G",
            "CCACHE_COMPILERCHECK": "content", "CCACHE_DEPEND": "1", "CCACHE_INODECACHE": "1",
            "KBUILD_BUILD_USER": "pvmatrix",
            "KBUILD_BUILD_HOST": "pvmatrix", "KBUILD_BUILD_TIMESTAMP": "1970-01-01",
            "KBUILD_BUILD_VERSION": "1", "LC_ALL": "C"}


BUILD_SCRIPT = """set -e
echo '@@pvmatrix-step build'
{make} {targets}
if grep -q '^CONFIG_MODULES=y' /out/.config; then
  echo '@@pvmatrix-step modules_install'
  {make} INSTALL_MOD_PATH=/out/_modules modules_install
fi
echo '@@pvmatrix-step done'
""" + container.CPU_REPORT
CPU_LINE = re.compile(r"^@@pvmatrix-cpu (\d+)m([\d.]+)s (\d+)m([\d.]+)s", re.M)


def cpu_seconds(log_text: str) -> float:
    """User + system CPU time of every container step that reported it (bash `times`)."""
    return round(sum(int(um) * 60 + float(us) + int(sm) * 60 + float(ss)
                     for um, us, sm, ss in CPU_LINE.findall(log_text)), 1)


def failure(log: Path, subject: str, step: str | None = None) -> BuildFailed:
    """What the failed build LOG says: the step that failed (STEP if given, else
    the last one the log entered) and the first compiler error line (else make's)."""
    last, compiler, other = "?", "", ""
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("@@pvmatrix-step "):
            last = line.split()[1]
        elif not compiler and COMPILER_ERROR.search(line):
            compiler = line.strip()
        elif not other and OTHER_ERROR.search(line):
            other = line.strip()
    return BuildFailed(step or last, compiler or other or "no error line; see the log", log, subject)


def build(spec: str, base: str = "tinyconfig", fragments: list[str] | None = None,
          toolchain: str = "auto", jobs: int | None = None,
          limits: container.Limits | None = None) -> Build:
    """Build (or find in the cache) the kernel of SPEC with the given recipe."""
    return build_source(sources.resolve(spec), base, fragments, toolchain, jobs, limits)


def build_source(source: sources.Source, base: str = "tinyconfig",
                 fragments: list[str] | None = None, toolchain: str = "auto",
                 jobs: int | None = None, limits: container.Limits | None = None) -> Build:
    """Build (or find in the cache) the kernel of an already resolved SOURCE, its
    containers within LIMITS (default: JOBS CPUs, else this machine's)."""
    spec = source.spec
    recipe = configure.load(base, fragments or [])
    tc = toolchains.pick(toolchain, source.version)
    rkey = recipe_key(source.identity, recipe, tc.image)
    memo = cache_dir("recipes") / f"{rkey}.json"
    if memo.exists():
        seen = json.loads(memo.read_text())
        if "unmet" in seen and (hit := _load(seen["artifact_key"])):
            return _as_requested(hit, spec, recipe, seen["unmet"])

    _readable(source)
    image = toolchains.ensure_image(engine.client(), tc)
    limits = limits or container.Limits.for_jobs(jobs or os.cpu_count() or 2)
    make = _make(tc, jobs or limits.jobs)
    with warm.output_tree(source.tree, tc.image, *_expected(recipe),
                          stop_writers=container.stop_writers) as work:
        return _configure_and_build(source, recipe, tc, image, make, work, memo, limits)


def ccache_dir(source: sources.Source) -> Path:
    """The ccache of SOURCE's trust domain: builds of one domain share it, and no
    tree writes a cache another domain reads. A domain is a git repository (its
    commits, a bisection's steps), a directory (its edits), Debian's archive, or
    one tarball's content."""
    if source.kind == "git":
        domain = str(Path(source.spec.partition(":")[2].rpartition("@")[0]).resolve())
    elif source.kind == "dir":
        domain = str(source.tree)
    elif source.kind == "debian":
        domain = "debian"
    else:
        domain = source.identity
    return cache_dir("ccache", f"{source.kind}-{short_sha256(domain)}")


def _readable(source: sources.Source) -> None:
    """The build user is not the tree's owner: it reads the tree as "others".
    A tree of the cache is made readable; a user's own tree is theirs to open."""
    tree = source.tree
    if tree.stat().st_mode & 0o005 == 0o005 or tree.stat().st_uid == os.geteuid() != 0:
        return
    if tree.resolve().is_relative_to(cache_root().resolve()):
        tree.chmod(tree.stat().st_mode | 0o055)
        return
    raise UserError(f"source {source.spec}: {tree} is not readable by others (mode "
                    f"{tree.stat().st_mode & 0o777:o}), and builds run as an unprivileged "
                    f"user: chmod -R o+rX {tree}")


def _expected(recipe: configure.Recipe) -> tuple[str, dict[str, str]]:
    """The recipe as warm.output_tree compares it: its base kind and the options it sets."""
    if recipe.base in configure.MAKE_BASES:
        return recipe.base, recipe.options
    return "file", {**configure.parse_config(recipe.base_text, recipe.base), **recipe.options}


def _configure_and_build(source, recipe, tc, image, make, work: Path, memo: Path,
                         limits: container.Limits) -> Build:
    mounts = container.Mounts(source.tree, work, ccache_dir(source))
    log = work / "build.log"
    (work / ".pvm-fragment").write_text(recipe.fragment_text())
    if recipe.base_text:
        (work / ".pvm-base").write_text(recipe.base_text)
    label = f"{source.version} [{tc.name}]"
    code = container.run(image, configure.script(recipe, make) + container.CPU_REPORT, mounts, log,
                         _env(), container.Progress(f"configure {label}"), limits=limits)
    if code != 0:
        raise failure(_keep_log(log, "configure-" + recipe.key[:16]),
                      f"configuring {source.spec} ({' + '.join([recipe.base, *recipe.fragments])})",
                      "configure")
    config_text = (work / ".config").read_text()
    key = artifact_key(source.identity, config_text, tc.image)
    missing = [asdict(u) for u in configure.unmet(recipe, config_text, source.tree)]
    memo.write_text(json.dumps({"artifact_key": key, "unmet": missing}))
    if hit := _load(key):
        return _as_requested(hit, source.spec, recipe, missing)

    warm.building(work)
    progress = container.Progress(f"build {label}")
    targets = "all" if "CONFIG_MODULES=y" in config_text else "bzImage vmlinux"
    code = container.run(image, BUILD_SCRIPT.format(make=make, targets=targets),
                         mounts, log, _env(), progress, limits=limits)
    seconds = round(progress.done(), 1)
    if code != 0:
        raise failure(_keep_log(log, key), f"build of {source.spec}")
    warm.record(work, *_expected(recipe), config_text)
    built = Build(key=key, dir=artifacts.open_store().local_dir(key), source=source.spec,
                  identity=source.identity, version=source.version, toolchain=tc.name,
                  image=tc.image, base=recipe.base, fragments=recipe.fragments,
                  config_sha256=configure.config_digest(config_text), unmet=missing,
                  build_s=seconds, cpu_s=cpu_seconds(log.read_text(errors="replace")))
    return _store(work, built)


def _keep_log(log: Path, name: str) -> Path:
    kept = cache_dir("failed", name) / "build.log"
    shutil.copyfile(log, kept)
    return kept


def _own_by_us(path: Path) -> None:
    """Published artifacts belong to pvmatrix's user, not to the build user
    (who must not change a kernel after it is stored)."""
    if os.geteuid() == 0:
        for root, dirs, files in os.walk(path):
            for name in (root, *(os.path.join(root, n) for n in dirs + files)):
                os.lchown(name, 0, os.getegid())


def _store(work: Path, built: Build) -> Build:
    """Move the artifacts into a staging directory and publish them in the
    artifact store (see artifacts.py: a local store takes them by renames)."""
    bzimage = work / "arch/x86/boot/bzImage"
    if not bzimage.exists() or not (work / "vmlinux").exists():
        kept = _keep_log(work / "build.log", built.key)
        raise HarnessFault(f"build of {built.source} finished but produced no bzImage/vmlinux "
                           f"(log: {kept})", log=kept)
    store = artifacts.open_store()
    tmp = store.stage(built.key)
    shutil.move(bzimage, tmp / "bzImage")
    for name, dest in (("vmlinux", "vmlinux"), (".config", "config"),
                       ("System.map", "System.map"), ("build.log", "build.log")):
        shutil.move(work / name, tmp / dest)
    if (work / "_modules").exists():
        shutil.move(work / "_modules", tmp / "modules")
    _own_by_us(tmp)
    meta = {k: v for k, v in built.manifest().items() if k not in ("files", "store")}
    published = store.publish(built.key, tmp, meta)   # another run's, if it published first
    return _from_manifest({**published, **meta}, store, cached=False)
