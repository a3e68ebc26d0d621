"""The panels' out-of-memory advice is the core's, and an OOM inside a job reaches the UI thread.

(The Train panel's notification itself is tested in test_train_widget.py.)
"""

from __future__ import annotations

import torch

from napari_crack_al.core import memory_advice
from napari_crack_al.widgets.worker import OUT_OF_MEMORY_ADVICE, BackgroundJob, is_out_of_memory

OOM_TYPE = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError


def test_the_panels_use_the_cores_detection_and_advice():
    from napari_crack_al.widgets import train_progress

    assert is_out_of_memory is memory_advice.is_out_of_memory
    assert OUT_OF_MEMORY_ADVICE is memory_advice.OUT_OF_MEMORY_ADVICE
    assert train_progress.is_out_of_memory is memory_advice.is_out_of_memory
    assert train_progress.OUT_OF_MEMORY_ADVICE is memory_advice.OUT_OF_MEMORY_ADVICE


def test_an_out_of_memory_error_in_a_job_reaches_the_done_handler(qtbot):
    seen = []

    def work():
        yield "step 1"
        raise OOM_TYPE("CUDA out of memory. Tried to allocate 2.00 GiB")

    job = BackgroundJob(work, on_event=seen.append, on_done=seen.append).start()
    qtbot.waitUntil(lambda: job.done, timeout=10_000)
    assert seen[0] == "step 1" and seen[-1] is job.outcome
    assert not job.outcome.completed and isinstance(job.outcome.error, OOM_TYPE)
    assert is_out_of_memory(job.outcome.error)


def test_a_failed_job_does_not_keep_its_work_alive():
    """The traceback of a failed job drops its frames' locals: a model (GPU memory) is freed."""
    import gc
    import weakref

    from napari_crack_al.widgets.worker import JobOutcome, _guarded

    class Model:
        pass

    alive = []

    def work():
        model = Model()
        alive.append(weakref.ref(model))
        yield "step"
        raise OOM_TYPE("CUDA out of memory")

    outcome = JobOutcome()
    list(_guarded(work, outcome, None, []))
    gc.collect()
    assert isinstance(outcome.error, OOM_TYPE)
    assert alive[0]() is None
