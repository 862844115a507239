"""Task ``build``: the C parts a host's roles need, built on the host once per source hash.

The build lives in the host's build cache (``build_cache``, default /var/cache/serpens-testbed) under the
hash of what the build reads (``native/`` and ``data/ids/``: testbed/tasks/source.py), not in the install
root: a machine builds each such tree once, whichever install root asked first, and a change to the Python
or the docs reuses the build.
Namespace test hosts share this machine's file system and so share one build; separate machines each build
their own. The cache entry has its own copy of the build's inputs (a host's install root may be torn down
while another still uses the build); meson and ninja run under ``flock`` on the entry, so two hosts of one
machine never build the same tree at once. Only the targets of the host's roles are built (a generator needs
serpens-gen, not serpensd), and a target's stamp file is written only after ninja succeeded: an interrupted
build is finished by the next run, never taken for done. The host's tree links ``build/native`` to the
entry, where the harness's configured binary paths (``build/native/...``) find it.
"""

from __future__ import annotations

import shlex

from testbed.inventory import Host
from testbed.remote import Remote
from testbed.runner import Context, Task
from testbed.tasks.source import tree

SERPENS = ("serpens/serpensd", "serpens/serpens-runtime", "nfs/fw.so", "nfs/mon.so", "nfs/nat.so",
           "nfs/ids.so", "nfs/vpn.so", "nfs/synthetic.so")
TARGETS = {
    "generator": ("generator/serpens-gen",),
    "gateway": ("wire/serpens-wire", *SERPENS),
    "worker": SERPENS,
}


KEEP = 8   # build cache entries kept per machine (5-8 MB each)


def targets(host: Host) -> list[str]:
    out: list[str] = []
    for role in host.roles:
        out += TARGETS.get(role, ())
    return list(dict.fromkeys(out))


def _stamp(target: str) -> str:
    return ".stamp-" + target.replace("/", "_")


def _entry(r: Remote, h: str) -> str:
    return f"{r.host.build_cache.rstrip('/')}/{h}"


class Build(Task):
    name = "build"

    def applies(self, host: Host) -> bool:
        return bool(targets(host))

    def check(self, r: Remote, ctx: Context) -> str | None:
        t = tree(ctx)
        h = t.build_hash
        entry = _entry(r, h)
        link = r.host.path("src", t.hash, "build", "native")
        tests = [f"test -f {shlex.quote(f'{entry}/build/{_stamp(t)}')}" for t in targets(r.host)]
        tests.append(f"test \"$(readlink {shlex.quote(link)})\" = {shlex.quote(entry + '/build')}")
        if r.ok(" && ".join(tests), what="test"):
            return None
        return f"build {h} not made for {', '.join(r.host.roles)}"

    def apply(self, r: Remote, ctx: Context, why: str) -> str | None:
        t = tree(ctx)
        h = t.build_hash
        entry = shlex.quote(_entry(r, h))
        host_tree = shlex.quote(r.host.path("src", t.hash))
        want = targets(r.host)
        stamps = " ".join(shlex.quote(_stamp(t)) for t in want)
        wait = int(r.host.build_timeout_s)
        script = f"""set -e
mkdir -p {entry}
exec 9>{entry}.lock
flock -w {wait} 9
if [ ! -d {entry}/src ]; then
  rm -rf {entry}/.src-tmp
  mkdir -p {entry}/.src-tmp/data
  cp -a {host_tree}/native {entry}/.src-tmp/native
  cp -a {host_tree}/data/ids {entry}/.src-tmp/data/ids
  mv -T {entry}/.src-tmp {entry}/src
fi
if [ ! -f {entry}/build/build.ninja ]; then
  rm -rf {entry}/build
  meson setup {entry}/build {entry}/src/native --buildtype=release >{entry}/meson.log 2>&1 || {{
    tail -n 5 {entry}/meson.log >&2; exit 1; }}
fi
ninja -C {entry}/build {' '.join(shlex.quote(t) for t in want)} >{entry}/ninja.log 2>&1 || {{
  grep -m 3 -E 'error|FAILED' {entry}/ninja.log >&2; exit 1; }}
cd {entry}/build && touch {stamps}
mkdir -p {host_tree}/build
ln -sfn {entry}/build {host_tree}/build/.native-new
mv -T {host_tree}/build/.native-new {host_tree}/build/native
touch {entry}
exec 9>&-
# the cache keeps the {KEEP} entries built or used by a build most recently; an older one is removed only
# when no build holds its lock (a host whose link it was rebuilds it at its next provision)
cd {shlex.quote(r.host.build_cache)} && ls -1dt -- */ | tail -n +{KEEP + 1} | while read -r old; do
  old=${{old%/}}
  ( exec 8>"$old.lock"; flock -n 8 && rm -rf -- "$old" && rm -f -- "$old.lock" )
done
true
"""
        r.run(script, timeout=r.host.build_timeout_s, what="build")
        return f"built {len(want)} target(s) in {_entry(r, h)}"
