"""Artifact store throughput: ``store.put`` / ``store.get`` of a 1 GiB random file next
to plain ``cp`` of the same file, in the same run.

Every round uses a fresh store folder, so ``put`` really writes the object; a second
``put`` of the same file (dedup: hash, find the object, write nothing) is timed too.
The operations of a round run in a different order each round, and before each timed
operation the page cache's dirty data is flushed (``os.sync()``, untimed) so no
operation pays for an earlier one's write-back, and a ballast file is deleted so each
finds the same amount of just-freed memory (see ``Ballast``). The source file stays in
the page cache throughout (it is read warm by every operation alike).

The store fsyncs each object (and its folder) on ``put``; ``cp`` does not. The headline
ratios are against plain ``cp``; ``cp`` followed by ``sync FILE DIR`` (the same fsyncs
``put`` does) is reported as well, for fairness.

A benchmark, not a test: it prints figures and exits 0 whatever they are.

    .venv/bin/python bench/artifact_throughput.py [--size-mib 1024] [--rounds 3]
                                                  [--tmpdir DIR]

MB/s means 10^6 bytes per second.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from shipyard.store import open_artifacts
from shipyard.store.artifacts import ArtifactStore
from shipyard.store.hashing import hash_file

REPO = Path(__file__).resolve().parent.parent
GOAL = 0.70
CHUNK = 64 * 1024 * 1024

OPS = ("put", "put (dedup)", "get", "cp", "cp + sync")
# One order per round, cycled; "put" always precedes "put (dedup)" and "get".
ORDERS = (
    ("put", "put (dedup)", "cp", "get", "cp + sync"),
    ("cp", "cp + sync", "put", "put (dedup)", "get"),
    ("cp + sync", "put", "put (dedup)", "cp", "get"),
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="file size in MiB (1024)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (3)")
    parser.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="untimed rounds first (1): the first writes of a fresh VM's memory and disk "
        "are much slower than later ones",
    )
    parser.add_argument(
        "--no-ballast",
        action="store_true",
        help="do not free warm memory before each timed operation (see Ballast)",
    )
    parser.add_argument(
        "--tmpdir",
        default=os.environ.get("SHIPYARD_BENCH_TMPDIR") or tempfile.gettempdir(),
        help="where the scratch folder goes; best on the repo's filesystem "
        "(env SHIPYARD_BENCH_TMPDIR; default %(default)s)",
    )
    args = parser.parse_args()
    if args.rounds < 1 or args.size_mib < 1 or args.warmup < 0:
        parser.error("--rounds and --size-mib must be at least 1, --warmup at least 0")
    return args


def make_random_file(path: Path, size: int) -> None:
    with open(path, "wb") as handle:
        left = size
        while left:
            n = min(CHUNK, left)
            handle.write(os.urandom(n))
            left -= n
        handle.flush()
        os.fsync(handle.fileno())


class Ballast:
    """A scratch file whose page cache is freed just before each timed operation.

    On this kind of VM (virtio-balloon free page reporting) memory that has been free
    for a couple of seconds goes back to the host, and the next write to it costs host
    page faults: seconds of system time per GiB, all of it inside whatever memcpy
    touches the page. An operation that writes a new 1 GiB file is then fast or slow
    depending only on whether recently freed memory is at hand, which in a round
    depends on the order (the one after ``put``, whose object stays, finds none).
    Deleting this file right before every timed operation leaves ``size`` bytes of just
    freed, host-backed memory for it, so every operation starts the same way.
    Anonymous memory (mmap + munmap) does not do the job: the page cache does not get
    those pages back first. ``--no-ballast`` turns this off.
    """

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size

    def fill(self) -> None:
        if not self.size:
            return
        block = b"\xa5" * CHUNK
        with open(self.path, "wb") as handle:
            for _ in range(-(-self.size // CHUNK)):
                handle.write(block)

    def release(self) -> None:
        self.path.unlink(missing_ok=True)  # dirty pages are dropped, never written


def timed(fn: Callable[[], object], ballast: Ballast) -> float:
    ballast.release()
    os.sync()  # untimed: start each operation with no dirty pages pending
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(argv: list[str]) -> None:
    subprocess.run(argv, check=True)


def check_size(path: Path, size: int) -> None:
    actual = path.stat().st_size
    if actual != size:
        raise SystemExit(f"error: {path} has {actual} bytes, expected {size}")


Action = tuple[Callable[[], object], Path | None]  # what to time, the file it leaves


def round_actions(
    store: ArtifactStore, src: Path, work: Path, expected_oid: str, size: int
) -> dict[str, Action]:
    """The timed operations of one round, against that round's (fresh) store."""
    state: dict[str, str] = {}

    def put() -> None:
        ref = store.put(src)
        if ref.oid != expected_oid or ref.size != size:
            raise SystemExit(f"error: put returned {ref}, expected oid {expected_oid}")
        state["oid"] = ref.oid

    def get() -> None:
        store.get(state["oid"], work / "got.bin")  # verifies the content against the oid

    def cp_sync() -> None:
        run(["cp", str(src), str(work / "cps.bin")])
        run(["sync", str(work / "cps.bin"), str(work)])  # fsync the file and its folder

    return {
        "put": (put, None),
        "put (dedup)": (put, None),
        "get": (get, work / "got.bin"),
        "cp": (lambda: run(["cp", str(src), str(work / "cp.bin")]), work / "cp.bin"),
        "cp + sync": (cp_sync, work / "cps.bin"),
    }


def bench(
    work: Path, size: int, rounds: int, warmup: int, ballast_bytes: int
) -> dict[str, list[float]]:
    src = work / "source.bin"
    print(f"writing {size / 2**20:.0f} MiB of random data to {src} ...", flush=True)
    make_random_file(src, size)
    expected_oid = hash_file(src)  # untimed; also warms the page cache for every op alike

    ballast = Ballast(work / "ballast.bin", ballast_bytes)
    times: dict[str, list[float]] = {op: [] for op in OPS}
    for round_no in range(-warmup, rounds):
        store_dir = work / f"store-{round_no}"
        store = open_artifacts(str(store_dir))
        actions = round_actions(store, src, work, expected_oid, size)
        order = ORDERS[round_no % len(ORDERS)]
        took: dict[str, float] = {}
        for op in order:
            fn, output = actions[op]
            ballast.fill()
            took[op] = timed(fn, ballast)
            if output is not None:
                check_size(output, size)
                output.unlink()
        if len(list(store.oids())) != 1:
            raise SystemExit(f"error: expected one object in {store_dir}")
        shutil.rmtree(store_dir)
        name = f"round {round_no + 1}/{rounds}" if round_no >= 0 else "warm-up (untimed)"
        print(f"{name}: " + ", ".join(f"{op} {took[op]:.2f}s" for op in order), flush=True)
        if round_no >= 0:
            for op, seconds in took.items():
                times[op].append(seconds)
    return times


def main() -> int:
    args = parse_args()
    size = args.size_mib * 2**20
    tmpdir = Path(args.tmpdir)
    free = shutil.disk_usage(tmpdir).free
    if free < 4.5 * size:
        print(f"error: {tmpdir} has {free / 2**30:.1f} GiB free; need ~{4.5 * size / 2**30:.1f}")
        return 2
    same_fs = os.stat(tmpdir).st_dev == os.stat(REPO).st_dev
    print(
        f"artifact_throughput: {args.size_mib} MiB file, {args.rounds} rounds "
        f"after {args.warmup} warm-up, "
        f"{'no ballast' if args.no_ballast else 'ballast freed before each op'}, "
        f"{os.cpu_count()} CPUs; scratch under {tmpdir} "
        f"({'same filesystem as' if same_fs else 'NOT the same filesystem as'} {REPO})"
    )

    with tempfile.TemporaryDirectory(prefix="shipyard-bench-store-", dir=tmpdir) as tmp:
        ballast = 0 if args.no_ballast else size + size // 8
        times = bench(Path(tmp), size, args.rounds, args.warmup, ballast)

    mbps = {op: size / 1e6 / statistics.median(t) for op, t in times.items()}
    print()
    header = f"{'operation':<12} {'median s':>9} {'min s':>7} {'max s':>7} {'MB/s':>8} {'vs cp':>6}"
    print(header)
    print("-" * len(header))
    for op, t in times.items():
        print(
            f"{op:<12} {statistics.median(t):>9.3f} {min(t):>7.3f} {max(t):>7.3f} "
            f"{mbps[op]:>8.0f} {mbps[op] / mbps['cp']:>6.2f}"
        )
    print()
    for op in ("put", "get"):
        ratio = mbps[op] / mbps["cp"]
        print(
            f"ratio {op}/cp = {mbps[op]:.0f} / {mbps['cp']:.0f} MB/s = {ratio:.2f}   "
            f"goal >= {GOAL:.2f}: {'met' if ratio >= GOAL else 'NOT met'}"
        )
    print(
        f"for fairness: put/(cp + sync) = {mbps['put'] / mbps['cp + sync']:.2f}, "
        f"get/(cp + sync) = {mbps['get'] / mbps['cp + sync']:.2f} "
        "(put fsyncs the object and its folder; get and plain cp fsync nothing)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
