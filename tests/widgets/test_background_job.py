"""BackgroundJob and Qt's thread pool: jobs never take the threads Qt's own work needs.

Qt converts a large image on its global thread pool, in parallel, while the UI thread waits
holding the GIL (a window repaint does). superqt's workers run on that same pool; when every
pool thread runs a Python job, which needs the GIL to go on, the conversion never starts and
the application hangs. This happened in CI on a 2-core machine (the pool's default size) with
two jobs running at a repaint (the detector's first suggestions and the device description).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import pytest

from napari_crack_al.widgets.worker import POOL_RESERVE, BackgroundJob, reserve_pool_threads


@pytest.fixture
def small_pool(qapp):
    """Qt's global pool limited to 2 threads (as on a 2-core machine); restored afterwards."""
    from qtpy.QtCore import QThreadPool

    pool = QThreadPool.globalInstance()
    pool.waitForDone(10_000)
    before = pool.maxThreadCount()
    pool.setMaxThreadCount(2)
    yield pool
    pool.waitForDone(10_000)
    pool.setMaxThreadCount(before)


def _spinning_jobs(n: int, stop: threading.Event) -> list[BackgroundJob]:
    def spin():
        while not stop.is_set():
            stop.wait(0.001)
            yield None

    return [BackgroundJob(spin).start() for _ in range(n)]


def test_reserve_grows_the_pool_and_never_shrinks_it(small_pool):
    assert reserve_pool_threads(small_pool) == 2  # nothing running: 0 + 1 + 1 fits in 2
    small_pool.setMaxThreadCount(64)
    assert reserve_pool_threads(small_pool) == 64


def test_running_jobs_leave_a_pool_thread_free(small_pool, qtbot):
    stop = threading.Event()
    jobs = _spinning_jobs(3, stop)
    try:
        qtbot.waitUntil(lambda: small_pool.activeThreadCount() >= 3, timeout=10_000)
        assert small_pool.maxThreadCount() - small_pool.activeThreadCount() >= POOL_RESERVE
    finally:
        stop.set()
        for job in jobs:
            job.cancel()
        qtbot.waitUntil(lambda: all(job.done for job in jobs), timeout=10_000)


_CONVERT_WHILE_JOBS_RUN = textwrap.dedent("""
    import threading
    from qtpy.QtCore import QThreadPool
    from qtpy.QtGui import QImage
    from qtpy.QtWidgets import QApplication
    from napari_crack_al.widgets.worker import BackgroundJob

    app = QApplication([])
    pool = QThreadPool.globalInstance()
    pool.setMaxThreadCount(2)
    stop = threading.Event()

    def spin():  # pure Python: needs the GIL all the time
        n = 0
        while not stop.is_set():
            n += 1
            yield n

    jobs = [BackgroundJob(spin).start() for _ in range(2)]
    while pool.activeThreadCount() < 2:
        app.processEvents()
    image = QImage(2048, 2048, QImage.Format.Format_RGB32)
    image.fill(0)
    converted = image.convertToFormat(QImage.Format.Format_RGB888)  # holds the GIL, uses the pool
    stop.set()
    for job in jobs:
        job.worker.quit()
    pool.waitForDone(10_000)
    print("converted", converted.width())
""")


@pytest.mark.slow
def test_qt_image_conversion_is_not_starved_by_two_jobs(tmp_path):
    """The hang itself, in a child process: without the reserve it never prints (verified by
    replacing ``reserve_pool_threads`` with a no-op: the child hangs until the timeout)."""
    script = tmp_path / "convert.py"
    script.write_text(_CONVERT_WHILE_JOBS_RUN)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    try:
        res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                             timeout=120, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail("Qt's image conversion hung behind two jobs on a 2-thread pool")
    assert res.returncode == 0, res.stderr
    assert "converted 2048" in res.stdout
