import numpy as np
import pytest
import torch

from evaluation.metrics import train_feature_extractor
from tests.evaluation.phantoms import labelled_pool


@pytest.fixture(scope="package", autouse=True)
def _one_torch_thread():
    """The machines running these tests share two cores; one thread keeps timings predictable."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="package")
def real_pool() -> tuple[np.ndarray, list[str]]:
    """96 real "X-rays" of 64 px, half normal, half with an opacity: the extractor's training set."""
    return labelled_pool(96, 64, seed=0)


@pytest.fixture(scope="package")
def held_out_real() -> np.ndarray:
    """96 more real images the extractor never sees: the real side of the fidelity figures."""
    return labelled_pool(96, 64, seed=300)[0]


@pytest.fixture(scope="package")
def extractor(real_pool, _one_torch_thread):
    """One small extractor (32 px input) trained once for the whole folder (about 2 s)."""
    images, labels = real_pool
    return train_feature_extractor(
        images, labels, epochs=12, seed=0, input_size=32, version="test-extractor"
    )
