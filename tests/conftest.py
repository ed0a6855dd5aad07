import os
from pathlib import Path

import pytest

from coordsr.openmp_wait import short_spin

# As the CLI does, before torch loads: on a busy machine libgomp's default spin made the suite
# many times slower (coordsr.openmp_wait says why).
short_spin(os.environ)

import torch  # noqa: E402

# Unit tests stay deterministic and do not fight over the 2 cores with each other.
torch.set_num_threads(min(2, os.cpu_count() or 1))

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"benchmark data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def one_thread():
    """One torch thread for tests of tiny tensors: a second thread only adds synchronisation,
    which on a shared, busy machine can cost more than the whole test."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
