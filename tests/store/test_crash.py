"""A process killed with SIGKILL while writing never leaves a partial object."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from shipyard.store import open_artifacts
from shipyard.store.hashing import hash_file

WRITER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from shipyard.store import open_artifacts

    store = open_artifacts(sys.argv[1])
    work = Path(sys.argv[2])
    i = 0
    while True:
        source = work / f"blob-{os.getpid()}-{i}"
        # small objects take the one-thread path, large ones hash while copying
        size = (8 if i % 2 else 40) * 1024 * 1024
        source.write_bytes(os.urandom(size))
        print("put", store.put(source).oid, flush=True)
        source.unlink()
        i += 1
    """
)


def test_sigkill_during_writes_leaves_only_whole_objects(tmp_path: Path) -> None:
    store_dir, work = tmp_path / "store", tmp_path / "work"
    work.mkdir()
    rng = random.Random(1234)
    completed: set[str] = set()
    for _ in range(12):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(store_dir), str(work)],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(rng.uniform(0.3, 1.5))
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        completed |= {line.split()[1] for line in out.splitlines() if line.startswith("put ")}

        store = open_artifacts(str(store_dir))
        objects = set(store.oids())
        assert completed <= objects  # everything reported as stored survived
        for oid in objects:  # and everything visible is whole
            path = store_dir / store.key(oid)
            assert hash_file(path) == oid, f"partial object visible under {oid}"
    assert completed, "the writer never finished a put: the test did not exercise anything"
