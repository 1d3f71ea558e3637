"""The mount prober never blocks the agent and never piles up stuck calls."""

import sys
import time

from checks.disk.probe import WORKER, Prober, Unanswered, Usage
from checks.disk.check import select_mounts
from collections import namedtuple

# The real worker, with os.statvfs hanging for one path, as a stale NFS mount does.
HANGING = WORKER.replace("import os, sys, threading",
                         "import os, sys, threading, time\n"
                         "_real = os.statvfs\n"
                         "def _statvfs(p):\n"
                         "    if p == '/hung':\n"
                         "        time.sleep(3600)\n"
                         "    return _real(p)\n"
                         "os.statvfs = _statvfs")


def test_real_mount_is_measured():
    prober = Prober()
    try:
        result = prober.measure(["/"], timeout=5)["/"]
        assert isinstance(result, Usage) and result.total > 0 and 0 < result.used_ratio < 1
    finally:
        prober.close()


def test_hung_mount_is_unanswered_and_others_are_still_measured():
    prober = Prober([sys.executable, "-I", "-S", "-c", HANGING])
    try:
        started = time.monotonic()
        results = prober.measure(["/hung", "/"], timeout=1)
        assert time.monotonic() - started < 3
        assert isinstance(results["/"], Usage)
        assert isinstance(results["/hung"], Unanswered)
        again = prober.measure(["/hung", "/"], timeout=1)
        assert again["/hung"] == Unanswered("still hung from an earlier measurement")  # no second stuck call
        assert isinstance(again["/"], Usage)
    finally:
        prober.close()


def test_missing_path_is_unanswered_with_the_reason():
    prober = Prober()
    try:
        assert prober.measure(["/no/such/dir"], timeout=5)["/no/such/dir"] == Unanswered("No such file or directory", hung=False)
    finally:
        prober.close()


Part = namedtuple("Part", "device mountpoint fstype opts")


def test_pseudo_and_duplicate_filesystems_are_skipped_but_wanted_ones_kept():
    parts = [Part("/dev/sda1", "/", "ext4", "rw"), Part("proc", "/proc", "proc", "rw"),
             Part("/dev/sda1", "/var/lib/docker/bind", "ext4", "rw"), Part("tmpfs", "/run", "tmpfs", "rw"),
             Part("tmpfs", "/srv/scratch", "tmpfs", "rw"), Part("srv:/export", "/mnt/nfs", "nfs4", "rw"),
             Part("/dev/loop0", "/snap/core/1", "squashfs", "ro")]
    chosen = select_mounts(parts, {"/srv/scratch"}, exclude=())
    assert [m.path for m in chosen] == ["/", "/mnt/nfs", "/srv/scratch"]
    assert [m.path for m in select_mounts(parts, set(), exclude=("/mnt/*",))] == ["/"]


def test_odd_mount_names_travel_intact(tmp_path):
    odd = tmp_path / "a b\tc\nd ü"
    odd.mkdir()
    prober = Prober()
    try:
        assert isinstance(prober.measure([str(odd)], timeout=5)[str(odd)], Usage)
    finally:
        prober.close()
