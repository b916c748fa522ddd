import pytest
import torch

torch.set_num_threads(2)


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
