import pytest
import torch


@pytest.fixture
def tiny_extractor(settings, tmp_path):
    """A feature extractor small enough to train in a test, stored under a fresh model root;
    torch on one thread so the figures do not depend on the machine's cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    settings.MODEL_ROOT = tmp_path / "models"
    settings.EVALUATION_EXTRACTOR = {"epochs": 2, "input_size": 32, "feature_dim": 8, "width": 4}
    yield
    torch.set_num_threads(before)
