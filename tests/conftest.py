import os
from unittest import mock

import pytest
import torch

# Two cores shared: one torch thread per xdist worker (``pytest -n 2``), two when run serially. Test
# subprocesses read OMP_NUM_THREADS, so their float sums match the worker's in-process ones bit for bit.
_THREADS = 1 if os.environ.get("PYTEST_XDIST_WORKER") else 2
os.environ["OMP_NUM_THREADS"] = str(_THREADS)
torch.set_num_threads(_THREADS)


@pytest.fixture(autouse=True)
def _environment_is_restored():
    """Each test gets the environment back as it found it. dask's Nanny sets OMP_NUM_THREADS=1 in *this*
    process before spawning workers; left there, later test subprocesses ran torch on one thread and
    their float sums no longer matched the in-process recording bit for bit."""
    with mock.patch.dict(os.environ):
        yield


@pytest.fixture(scope="session")
def toy():
    from workbench.models import load_pipeline

    return load_pipeline("toy")


@pytest.fixture(scope="session")
def sd15():
    from workbench.models import tiny_sd15

    return tiny_sd15()


@pytest.fixture(scope="session")
def sdxl():
    from workbench.models import tiny_sdxl

    return tiny_sdxl()
