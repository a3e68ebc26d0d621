"""``torchrun --nproc_per_node 2 -m napari_crack_al train|predict|rank`` on the CPU (gloo)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from napari_crack_al.cli.main import main
from napari_crack_al.core.active.probability import probability_path
from napari_crack_al.core.active.strategies import unlabeled_candidates
from napari_crack_al.core.io.mask_io import read_mask
from napari_crack_al.core.model import load_checkpoint
from napari_crack_al.core.project import Project
from napari_crack_al.core.sample_project import write_sample_images

pytestmark = pytest.mark.slow

torch.set_num_threads(1)

SMALL = ["--crop-size", "64", "--batch-size", "2", "--threads", "1", "--device", "cpu"]


def _torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--standalone", "-m", "napari_crack_al", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def project_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("torchrun") / "project"
    write_sample_images(root, n=10, size=96, seed=0)
    with Project.create(root) as project:
        for name in project.names()[:4]:
            project.accept(name, read_mask(root / "ground_truth" / f"{name}.png"))
    return root


@pytest.fixture(scope="module")
def model(project_root) -> Path:
    """A semi-supervised model trained by two ranks (rendezvous on this machine)."""
    work = project_root.parent
    for kind, folder in (("images", "images"), ("masks", "ground_truth")):
        (work / "labelled" / kind).mkdir(parents=True)
        for name in sorted((project_root / folder).iterdir())[:4]:
            shutil.copy(name, work / "labelled" / kind / name.name)
    proc = _torchrun("train", str(work / "labelled" / "images"), str(work / "labelled" / "masks"),
                     "--out", str(work / "ddp.pt"), "--unlabeled", str(project_root / "images"),
                     "--iterations", "30", "--val-fraction", "0", *SMALL, cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # rank 0 alone talks: one summary line, one device line naming both ranks
    assert proc.stdout.count("wrote ") == 1
    assert "rank 0 of 2 (gloo)" in proc.stderr and "rank 1 of 2" not in proc.stderr
    return work / "ddp.pt"


def test_two_ranks_write_one_checkpoint_of_the_usual_format(model):
    ckpt = load_checkpoint(model)
    assert ckpt.metadata["ranks"] == 2 and ckpt.metadata["steps"] == 30
    assert ckpt.metadata["mode"] == "semi"
    assert sorted(p.name for p in model.parent.iterdir() if p.suffix == ".pt") == ["ddp.pt"]


def test_a_one_process_run_warm_starts_from_it(model, tmp_path):
    labelled = model.parent / "labelled"
    rc = main(["train", str(labelled / "images"), str(labelled / "masks"),
               "--out", str(tmp_path / "warm.pt"), "--init", str(model), "--mode", "supervised",
               "--iterations", "2", "--val-fraction", "0", *SMALL])
    assert rc == 0
    assert load_checkpoint(tmp_path / "warm.pt").metadata["init"] == str(model)


def test_two_ranks_predict_every_image_once(model, project_root, tmp_path):
    out = tmp_path / "masks"
    proc = _torchrun("predict", str(model), str(project_root / "images"), "--out", str(out),
                     "--device", "cpu", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = sorted(p.stem for p in (project_root / "images").iterdir())
    assert sorted(p.stem for p in out.glob("*.png")) == names
    assert f"wrote {len(names)} masks" in proc.stdout and proc.stdout.count("wrote ") == 1


def test_two_ranks_score_the_pool_and_rank_0_writes_the_head_of_the_queue(model, project_root):
    proc = _torchrun("rank", str(project_root), "--model", str(model), "--k", "2",
                     "--device", "cpu", cwd=project_root.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with Project.open(project_root) as project:
        waiting = unlabeled_candidates(project)
        scored = project.get_scores()
        assert len(waiting) == 6 and all(n in scored for n in waiting)  # both shards stored
        versions = {n: project.record(n).suggestion_file_version for n in waiting}
        head = waiting[:4]  # --suggest-next defaults to 2 * k under torchrun
        assert all(versions[n] == "file:ddp.pt" for n in head)
        assert all(probability_path(project, n).exists() for n in head)
        assert not any(versions[n] == "file:ddp.pt" for n in waiting[4:])
