#!/usr/bin/env python3
"""Group durability candidates on this machine's disk (issue 15), for small blobs.

    scripts/durability-candidates.py [DIR] [MESSAGES] [SIZE] [GROUP]

writes MESSAGES blobs of SIZE bytes (default 20000 x 300, groups of 200) under DIR (default a
new directory in the current one, removed afterwards) the way the stage does (a temporary file,
renamed to blobs/ab/cd/<sha256> as before index v11), made durable in each candidate way, and prints the wall time
of each next to the write floor (the same files written, one syncfs at the end):

  floor          write everything, one syncfs at the end (no crash guarantee per group)
  fsync          fdatasync each file, rename, fsync each directory touched (the old path)
  fsync-pool     the same fdatasyncs and directory fsyncs issued from a pool of 8 threads
  syncfs2        syncfs, rename, syncfs per group (stage/durable.rs), two fan-out levels
  syncfs2-flat   the same into one fan-out level (blobs/ab/<sha256>): what the stage does now
  syncfs1        rename, one syncfs per group: NOT safe with deduplication (a blob in place
                 whose data is not durable would be trusted), shown for its cost only
  pack           one pack file per group, fdatasync'd, its directory fsynced (blobs would
                 then need an offset index: verify and the maildir view read packs)
"""
import ctypes
import hashlib
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

libc = ctypes.CDLL("libc.so.6", use_errno=True)


def syncfs(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.syncfs(fd) != 0:
            raise OSError(ctypes.get_errno(), "syncfs")
    finally:
        os.close(fd)


def fsync_dir(d):
    fd = os.open(d, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


def run(mode, root, n, size, group):
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root + "/tmp")
    os.makedirs(root + "/blobs")
    syncfs(root)
    body = os.urandom(size)
    pool = ThreadPoolExecutor(8)
    levels = 1 if mode == "syncfs2-flat" else 2
    t0 = time.time()
    for g in range(0, n, group):
        ids = range(g, min(n, g + group))
        if mode == "pack":
            path = f"{root}/blobs/pack-{g}"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
            for i in ids:
                os.write(fd, body + str(i).encode())
            os.fdatasync(fd)
            os.close(fd)
            fsync_dir(root + "/blobs")
            continue
        files = []
        for i in ids:
            data = body + str(i).encode()
            h = hashlib.sha256(data).hexdigest()
            p = f"{root}/tmp/{i}.part"
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
            os.write(fd, data)
            if mode == "fsync":
                os.fdatasync(fd)
            if mode == "fsync-pool":
                files.append((p, h, fd))
            else:
                os.close(fd)
                files.append((p, h, None))
        if mode == "fsync-pool":
            list(pool.map(lambda f: os.fdatasync(f[2]), files))
            for f in files:
                os.close(f[2])
        if mode.startswith("syncfs2"):
            syncfs(root)
        dirs = set()
        for p, h, _ in files:
            d = f"{root}/blobs/{h[:2]}" + (f"/{h[2:4]}" if levels == 2 else "")
            os.makedirs(d, exist_ok=True)
            os.rename(p, f"{d}/{h}")
            dirs.add(d)
        if mode.startswith("syncfs"):
            syncfs(root)
        elif mode == "fsync":
            for d in dirs:
                fsync_dir(d)
        elif mode == "fsync-pool":
            list(pool.map(fsync_dir, dirs))
    if mode == "floor":
        syncfs(root)
    return time.time() - t0


def main():
    args = sys.argv[1:]
    base = args[0] if args else None
    n = int(args[1]) if len(args) > 1 else 20000
    size = int(args[2]) if len(args) > 2 else 300
    group = int(args[3]) if len(args) > 3 else 200
    work = tempfile.mkdtemp(prefix="durability-", dir=base or ".")
    try:
        print(f"{n} blobs of {size} bytes, groups of {group}, in {work}; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        floor = None
        for mode in ["floor", "syncfs2", "syncfs2-flat", "syncfs1", "pack", "fsync-pool", "fsync"]:
            t = run(mode, f"{work}/{mode}", n, size, group)
            shutil.rmtree(f"{work}/{mode}")
            floor = floor or t
            print(f"{mode:13} {t:7.2f} s  {t / floor:5.2f} x floor")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
