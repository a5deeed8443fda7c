import pytest
import torch


@pytest.fixture
def one_thread():
    """Torch on one thread: tiny models run faster so, and the numbers do not depend on how
    many cores the machine has (modules use it with pytestmark)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
