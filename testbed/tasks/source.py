"""Task ``source``: the harness's source tree on the host, shipped only when its hash changed.

The tree is what ``git ls-files --cached --others --exclude-standard`` lists (tracked files and new ones
not ignored), with this checkout's working-tree content (uncommitted edits
included: what you run is what you test). Its hash is the SHA-256 over every file's path, mode and content;
the tarball is built once per run (gzip, no timestamps) and copied over SFTP.

On the host the tree lands in ``<install_root>/src/<hash>``: unpacked under a temporary name, its hash file
written inside it, renamed into place, then the ``current`` symlink is switched by a rename. An interrupted
copy or unpack leaves only temporary names, which the next run removes; it never leaves a ``current`` that
points at half a tree.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shlex
import subprocess
import tarfile
from dataclasses import dataclass

from harness.config import REPO_ROOT
from testbed.remote import HostError, Remote
from testbed.runner import Context, Task

HASH_FILE = ".tree-hash"
# what the native build reads (meson's tree, and the IDS patterns it embeds): the build cache's key, so that a
# change to the Python or the docs ships a new tree but reuses the build
BUILD_INPUTS = ("native/", "data/ids/")


@dataclass(frozen=True)
class Tree:
    hash: str
    build_hash: str
    tarball: bytes
    files: int


def tree_files() -> list[str]:
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard"], capture_output=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise HostError(f"this machine: cannot list the source tree with git ls-files in {REPO_ROOT}: "
                        f"{exc}") from None
    names = [n for n in out.decode().split("\0") if n]
    # a file deleted in the working tree but not yet in git is not part of what runs here
    return sorted(n for n in names if os.path.isfile(REPO_ROOT / n))


def build_tree() -> Tree:
    """The tree's hash and a deterministic tarball of it."""
    names = tree_files()
    digest, build = hashlib.sha256(), hashlib.sha256()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            path = REPO_ROOT / name
            data = path.read_bytes()
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            entry = name.encode() + b"\0" + oct(mode).encode() + b"\0" + hashlib.sha256(data).digest()
            digest.update(entry)
            if name.startswith(BUILD_INPUTS):
                build.update(entry)
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            tar.addfile(info, io.BytesIO(data))
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0) as f:
        f.write(raw.getvalue())
    return Tree(hash=digest.hexdigest()[:16], build_hash=build.hexdigest()[:16], tarball=gz.getvalue(),
                files=len(names))


def tree(ctx: Context) -> Tree:
    return ctx.once("tree", build_tree)


def current_hash(r: Remote) -> str | None:
    text = r.read(r.host.path("src", "current", HASH_FILE))
    return text.strip() if text else None


class Source(Task):
    name = "source"

    def check(self, r: Remote, ctx: Context) -> str | None:
        want, have = tree(ctx).hash, current_hash(r)
        if have == want:
            return None
        return f"tree {want} (host has {have or 'none'})"

    def apply(self, r: Remote, ctx: Context, why: str) -> str | None:
        t = tree(ctx)
        src = shlex.quote(r.host.path("src"))
        incoming = r.host.path("src", f".incoming-{t.hash}.tar.gz")
        r.put_bytes(t.tarball, incoming)
        script = f"""set -e
cd {src}
rm -rf .tmp-{t.hash}
mkdir .tmp-{t.hash}
tar -xzf .incoming-{t.hash}.tar.gz -C .tmp-{t.hash} --no-same-owner
echo {t.hash} > .tmp-{t.hash}/{HASH_FILE}
rm -rf {t.hash}
mv -T .tmp-{t.hash} {t.hash}
ln -sfn {t.hash} .current-new
mv -T .current-new current
rm -f .incoming-{t.hash}.tar.gz
for old in * .tmp-* .incoming-* .current-new; do
  case "$old" in {t.hash}|current) ;; *) rm -rf -- "$old" ;; esac
done
"""
        r.run(script, what="unpack the source tree")
        return f"shipped tree {t.hash} ({t.files} files, {len(t.tarball) // 1024} KiB)"
