"""A round writes suggestion and probability files for the head of the queue only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_crack_al.core.active.next_suggestions import iter_suggest_next
from napari_crack_al.core.active.probability import probability_path
from napari_crack_al.core.active.round import RoundConfig, run_round
from napari_crack_al.core.active.strategies import unlabeled_candidates
from napari_crack_al.core.errors import InputError
from napari_crack_al.core.events import drain
from napari_crack_al.core.io.mask_io import read_mask
from napari_crack_al.core.model import CrackSegmenter, ModelConfig
from napari_crack_al.core.project import Project
from napari_crack_al.core.sample_project import write_sample_images
from napari_crack_al.core.training.config import TrainConfig
from napari_crack_al.core.training.data import TrainingImage

torch.set_num_threads(1)

TRAIN = TrainConfig(mode="supervised", iterations=3, crop_size=64, batch_size=2, threads=1,
                    device="cpu", seed=0)


def _project(root, n: int = 9) -> Project:
    write_sample_images(root, n=n, size=96, seed=0)
    project = Project.create(root)
    for name in project.names()[:3]:
        project.accept(name, read_mask(root / "ground_truth" / f"{name}.png"))
    return project


@pytest.mark.parametrize("suggest_next", [2, None])
def test_only_the_head_of_the_queue_gets_the_new_models_files(tmp_path, suggest_next):
    with _project(tmp_path / "p") as project:
        _, finished = drain(run_round(project, RoundConfig(
            train=TRAIN, batch_size=1, choose_source=False, suggest_next=suggest_next, seed=0)))
        waiting = unlabeled_candidates(project)
        assert finished.ranking[:len(waiting)] == waiting
        fresh = [n for n in waiting
                 if project.record(n).suggestion_file_version == finished.model_version]
        with_map = [n for n in waiting if probability_path(project, n).exists()]
        expected = waiting[:2] if suggest_next == 2 else waiting
        assert fresh == expected and with_map == expected
        # every waiting image was scored all the same
        assert set(project.get_scores()) >= set(waiting)


class _Refuses:
    """A project whose ``set_suggestion`` fails for one image."""

    state_dir = None

    def __init__(self, bad: str) -> None:
        self.bad = bad
        self.written: dict[str, np.ndarray] = {}

    def set_suggestion(self, name, mask, version):  # noqa: ANN001, ANN201
        if name == self.bad:
            raise InputError(name, "disk full")
        self.written[name] = mask


def test_an_image_that_cannot_be_written_does_not_stop_the_others():
    model = CrackSegmenter(ModelConfig(encoder="resnet18", decoder="deeplabv3plus")).eval()
    rng = np.random.default_rng(0)
    items = [TrainingImage(n, rng.normal(size=(32, 48)).astype(np.float32),
                           np.ones((32, 48), bool)) for n in ("a", "b", "c")]
    project = _Refuses("b")
    events, done = drain(iter_suggest_next(project, model, "v1", ["a", "b", "c"], iter(items),
                                           threshold=0.5, store_probabilities=False, tile=32,
                                           overlap=8))
    assert done == ["a", "c"] and sorted(project.written) == ["a", "c"]
    assert project.written["a"].shape == (32, 48) and project.written["a"].dtype == bool
    assert events[0].what == "suggestions" and events[-1].done == 2
