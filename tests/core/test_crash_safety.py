"""Crash safety of the project store under SIGKILL at random moments.

A subprocess (``crash_worker.py``) runs accept / save_draft / set_suggestion /
set_scores / set_queue_order in a loop and reports each operation before
(``BEGIN``) and after (``ACK``) it runs. The test kills it with SIGKILL 5-80 ms
after it starts working, restarts it on the same project, and after every kill
checks that the project reopens intact, that everything acknowledged is on disk,
that the single operation in flight is either fully absent or visible in the
allowed order (mask file before record before draft removal), and that no
temporary file is left where it could be taken for a mask.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from napari_crack_al.core.project import Project
from napari_crack_al.core.project.store import is_temp_file

WORKER = Path(__file__).with_name("crash_worker.py")
_spec = importlib.util.spec_from_file_location("crash_worker", WORKER)
cw = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cw)

N_IMAGES = 20
MIN_KILLS = 100


def _make_project(root: Path) -> Project:
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(7)
    for i in range(N_IMAGES):
        np.save(root / "images" / f"img{i:02d}.npy", rng.random(cw.SHAPE).astype(np.float32))
    return Project.create(root, pixel_size_mm=1.0)


class Model:
    """What the parent knows must be on disk, from the worker's BEGIN/ACK lines."""

    def __init__(self, project: Project) -> None:
        self.per_image = {r.name: {"ann": None, "count": 0, "draft": None, "sugg": None, "status": r.status.value}
                          for r in project.records()}
        self.scores = None
        self.order = cw.order_checksum(project.names())

    def after(self, op: str, name: str, cs: str) -> dict[tuple[str, str], object]:
        """The resources an operation changes, and their values once it is done."""
        if op == "accept":
            rec = self.per_image[name]
            return {(name, "ann"): cs, (name, "count"): rec["count"] + 1, (name, "draft"): None,
                    (name, "status"): "annotated"}
        if op == "save_draft":
            return {(name, "draft"): cs}
        if op == "set_suggestion":
            status = self.per_image[name]["status"]
            return {(name, "sugg"): cs, (name, "status"): "suggested" if status == "new" else status}
        if op == "set_scores":
            return {("-", "scores"): cs}
        if op == "set_queue_order":
            return {("-", "order"): cs}
        raise AssertionError(f"unknown op {op}")

    def get(self, key: tuple[str, str]) -> object:
        name, what = key
        if what == "scores":
            return self.scores
        if what == "order":
            return self.order
        return self.per_image[name][what]

    def set(self, key: tuple[str, str], value: object) -> None:
        name, what = key
        if what == "scores":
            self.scores = value
        elif what == "order":
            self.order = value
        else:
            self.per_image[name][what] = value


def _observe(project: Project) -> dict[tuple[str, str], object]:
    seen: dict[tuple[str, str], object] = {}
    for rec in project.records():
        n = rec.name
        seen[(n, "ann")] = cw.mask_checksum(project.read_annotation(n))
        seen[(n, "draft")] = cw.mask_checksum(project.read_draft(n))
        seen[(n, "sugg")] = cw.mask_checksum(project.read_suggestion(n))
        seen[(n, "status")] = rec.status.value
        count = rec.annotation_seconds / cw.SECONDS_PER_ACCEPT
        assert count == int(count), f"{n}: annotation_seconds {rec.annotation_seconds} is not a whole number of accepts"
        seen[(n, "count")] = int(count)
    seen[("-", "scores")] = cw.scores_checksum({n: d["score"] for n, d in project.get_scores("score").items()})
    seen[("-", "order")] = cw.order_checksum(project.names())
    return seen


def _temp_files(project: Project) -> list[str]:
    out = []
    for folder in (project.annotations_dir, project.suggestions_dir, project.drafts_dir, project.state_dir):
        out += [f"{folder.name}/{n}" for n in os.listdir(folder) if is_temp_file(n)]
    return out


def _verify(root: Path, model: Model, inflight: tuple[str, str, str] | None, kill: int) -> int:
    """Check the project after a kill, then settle the model to what is on disk. Returns temp files cleaned."""
    leftovers = len([n for f in ("annotations", ".crack-al/suggestions", ".crack-al/drafts")
                     for n in os.listdir(root / f) if is_temp_file(n)])
    project = Project.open(root)  # must not raise
    try:
        where = f"kill {kill}, in flight: {inflight}"
        assert project.integrity_check() == [], where
        assert _temp_files(project) == [], where
        names = set(project.names())
        assert len(names) == N_IMAGES, where
        stray = [f for f in os.listdir(project.annotations_dir)
                 if not (f.endswith(".png") and f[:-4] in names)]
        assert stray == [], f"{where}: unexpected files in annotations/: {stray}"
        seen = _observe(project)
        after = model.after(*inflight) if inflight else {}
        for key, value in seen.items():
            allowed = {model.get(key)}
            if key in after:
                allowed.add(after[key])
            assert value in allowed, f"{where}: {key} is {value!r}, expected one of {allowed!r}"
        if inflight and inflight[0] == "accept":
            name, before = inflight[1], model.per_image[inflight[1]]
            if seen[(name, "count")] == before["count"] + 1:  # record committed => mask file was written first
                assert seen[(name, "ann")] == inflight[2], f"{where}: record committed before the mask file"
                assert seen[(name, "status")] == "annotated", where
            else:
                assert seen[(name, "status")] == before["status"], f"{where}: half a record committed"
            if before["draft"] is not None and seen[(name, "draft")] is None:
                assert seen[(name, "count")] == before["count"] + 1, f"{where}: draft removed before the commit"
        if inflight and inflight[0] == "set_suggestion":
            name = inflight[1]
            if model.per_image[name]["status"] == "new" and seen[(name, "status")] == "suggested":
                assert seen[(name, "sugg")] == inflight[2], f"{where}: status committed before the suggestion file"
        for key, value in seen.items():
            model.set(key, value)
    finally:
        project.close()
    return leftovers


def _spawn(root: Path, seed: int) -> subprocess.Popen:
    """Start a worker; it imports, then waits for GO (started early to hide its start-up time)."""
    return subprocess.Popen([sys.executable, str(WORKER), str(root), str(seed)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _go_and_kill(proc: subprocess.Popen, delay_s: float) -> list[str]:
    """Let the worker open the project, SIGKILL it ``delay_s`` after READY; return its complete lines."""
    try:
        proc.stdin.write("GO\n")
        proc.stdin.flush()
        ready = proc.stdout.readline()
        if not ready.startswith("READY"):
            proc.kill()
            proc.wait()
            pytest.fail(f"worker did not start: {ready!r} {proc.stderr.read()}")
        time.sleep(delay_s)
        proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read()
        rc = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        stream.close()
    assert rc == -signal.SIGKILL, f"worker ended by itself (rc {rc}) before the kill:\n{stderr}"
    return rest.split("\n")[:-1]  # the last piece is "" or an unfinished line


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
def test_sigkill_at_random_moments_never_loses_acknowledged_work(tmp_path):
    root = tmp_path / "proj"
    project = _make_project(root)
    model = Model(project)
    project.close()
    del project
    rng = np.random.default_rng(2024)
    kills = acked = inflight_kills = cleaned = 0
    per_op: dict[str, int] = {}
    t0 = time.perf_counter()
    proc = _spawn(root, seed=1)
    for kill in range(1, MIN_KILLS + 1):
        lines = _go_and_kill(proc, delay_s=float(rng.uniform(0.005, 0.150)))
        kills += 1
        proc = _spawn(root, seed=kill + 1)  # imports while this kill is checked; opens the project on GO
        inflight = None
        for line in lines:
            word, op, name, cs = line.split(" ")
            if word == "BEGIN":
                assert inflight is None, line
                inflight = (op, name, cs)
            else:
                assert word == "ACK" and inflight == (op, name, cs), f"{line} does not match {inflight}"
                for key, value in model.after(op, name, cs).items():
                    model.set(key, value)
                inflight = None
                acked += 1
                per_op[op] = per_op.get(op, 0) + 1
        inflight_kills += inflight is not None
        cleaned += _verify(root, model, inflight, kill)
    proc.stdin.close()  # the spare worker exits on EOF
    assert proc.wait(timeout=30) == 0, proc.stderr.read()
    for stream in (proc.stdout, proc.stderr):
        stream.close()
    elapsed = time.perf_counter() - t0
    print(f"\ncrash safety: {kills} SIGKILLs, {acked} acknowledged operations {per_op}, "
          f"{inflight_kills} kills with an operation in flight, {cleaned} temp files cleaned, {elapsed:.1f} s")
    assert kills >= MIN_KILLS
    assert acked >= kills // 2, "the worker barely worked between kills; the test would prove little"
    assert inflight_kills > kills // 2, "too few kills landed inside an operation"
    assert set(per_op) == set(cw.OPS), per_op


def test_worker_imports_stay_light():
    """The worker restarts 100+ times: it must not pull in torch (or any GUI)."""
    code = ("import sys, runpy; sys.argv = ['w']; "
            f"runpy.run_path({str(WORKER)!r}, run_name='not_main'); "
            "import napari_crack_al.core.project.store, PIL.Image; "
            "print(sorted(m for m in ('torch', 'napari', 'qtpy', 'skimage') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
