"""A fresh suggestion for an image the round did not score, computed when it is opened."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from napari_crack_al.core.active.on_demand import (
    FreshSuggestion,
    iter_fresh_suggestion,
    needs_fresh_suggestion,
    remember_source,
)
from napari_crack_al.core.active.round import RoundConfig, run_round
from napari_crack_al.core.active.strategies import unlabeled_candidates
from napari_crack_al.core.events import drain
from napari_crack_al.core.io.mask_io import read_mask
from napari_crack_al.core.project import Project
from napari_crack_al.core.sample_project import write_sample_images
from napari_crack_al.core.training.config import TrainConfig

torch.set_num_threads(1)

TRAIN = TrainConfig(mode="supervised", iterations=3, crop_size=64, batch_size=2, threads=1,
                    device="cpu", seed=0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A project after one round that scored only 2 of its 3 waiting images and wrote the
    suggestion of the first one only (the head of the queue)."""
    root = tmp_path_factory.mktemp("fresh") / "project"
    write_sample_images(root, n=6, size=96, seed=0)
    with Project.create(root) as project:
        for name in project.names()[:3]:
            project.accept(name, read_mask(root / "ground_truth" / f"{name}.png"))
        drain(run_round(project, RoundConfig(train=TRAIN, batch_size=1, score_seconds=1e-9,
                                             choose_source=False, suggest_next=1,
                                             seed=0)))
    return root


@pytest.fixture
def project(trained, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(trained, root)
    with Project.open(root) as p:
        yield p


def test_an_image_the_round_left_out_gets_the_current_models_suggestion(project):
    waiting = unlabeled_candidates(project)
    stale = waiting[2]  # not reached in the scoring time, not at the head: no suggestion
    assert project.record(stale).suggestion_file_version != "round-001"
    assert needs_fresh_suggestion(project, stale)
    assert not needs_fresh_suggestion(project, waiting[0])  # the round suggested it
    events, result = drain(iter_fresh_suggestion(project, stale))
    assert isinstance(result, FreshSuggestion) and result.source == "model"
    assert result in events
    assert project.record(stale).suggestion_file_version == "round-001"
    assert project.read_suggestion(stale) is not None
    assert not needs_fresh_suggestion(project, stale)
    assert drain(iter_fresh_suggestion(project, stale))[1] is None  # nothing more to do


def test_the_rounds_choice_of_source_is_followed(project):
    stale = unlabeled_candidates(project)[2]
    remember_source(project, "round-001", "none")
    _, result = drain(iter_fresh_suggestion(project, stale))
    assert result.source == "none" and result.crack_pixels == 0
    assert not project.read_suggestion(stale).any()
    assert project.record(stale).suggestion_file_version == "round-001"


def test_drafts_annotated_images_and_projects_without_a_model_are_left_alone(project, tmp_path):
    stale = unlabeled_candidates(project)[2]
    project.save_draft(stale, np.zeros(project.image_shape(stale), bool))
    assert not needs_fresh_suggestion(project, stale)
    assert drain(iter_fresh_suggestion(project, stale))[1] is None
    annotated = project.names()[0]
    assert not needs_fresh_suggestion(project, annotated)
    root = tmp_path / "new"
    write_sample_images(root, n=2, size=64, seed=0)
    with Project.create(root) as fresh:
        assert not needs_fresh_suggestion(fresh, fresh.names()[0])
