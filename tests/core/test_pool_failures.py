"""A pool operation goes on past one image it cannot handle, and names it."""

from __future__ import annotations

import errno

import torch

from napari_crack_al.core.active.pool import iter_score_project
from napari_crack_al.core.events import MessageEvent, drain
from napari_crack_al.core.model import ModelConfig, build_model
from napari_crack_al.core.project import Project
from napari_crack_al.core.sample_project import write_sample_images

torch.set_num_threads(1)
CFG = ModelConfig(encoder="resnet18", decoder_channels=16, low_level_channels=8, rep_dim=8)


_drain = drain  # the package's one way to run a generator of events to its end


def test_rank_goes_on_when_one_suggestion_cannot_be_written(tmp_path, monkeypatch):
    write_sample_images(tmp_path / "p", n=4, size=64, seed=0)
    with Project.create(tmp_path / "p") as project:
        names = project.names()
        victim = names[1]
        real = project.set_suggestion

        def failing(name, *args, **kwargs):
            if name == victim:
                raise OSError(errno.ENAMETOOLONG, "File name too long")
            return real(name, *args, **kwargs)

        monkeypatch.setattr(project, "set_suggestion", failing)
        torch.manual_seed(0)
        events, ranking = _drain(iter_score_project(project, build_model(CFG).eval(), "v1",
                                                    strategy="hybrid", k=2, tile=64, overlap=16))
        assert sorted(ranking) == sorted(names)  # every image ranked, the victim too
        messages = [e.text for e in events if isinstance(e, MessageEvent)]
        assert any(victim in m and "could not be stored" in m and "too long" in m
                   for m in messages)
        others = [n for n in names if n != victim]
        assert all(project.suggestion_path(n).is_file() for n in others)
        assert not project.suggestion_path(victim).is_file()
