"""Shared fixtures. HF_HUB_OFFLINE must be set before huggingface_hub is imported."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import pathlib  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]


def sipakmed_root() -> pathlib.Path | None:
    """The real SIPaKMeD copy: $CERVATTN_SIPAKMED or ../shared/sipakmed beside the repository."""
    path = pathlib.Path(os.environ.get("CERVATTN_SIPAKMED", REPO.parent / "shared" / "sipakmed"))
    return path if (path / "splits.csv").is_file() else None


@pytest.fixture
def real_sipakmed() -> pathlib.Path:
    root = sipakmed_root()
    if root is None:
        pytest.skip("real SIPaKMeD data not found: set CERVATTN_SIPAKMED or place it in ../shared/sipakmed")
    return root


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    """Seed every test, and run it on one torch thread: on a shared 2-core machine several threads
    make small models 10-100x slower (OpenMP oversubscription)."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def perturbed_model(arch: str, seed: int = 0, **kwargs) -> torch.nn.Module:
    """A model in eval mode whose every tensor differs from a fresh init, so a load that silently
    skipped a tensor would show in its outputs."""
    import timm

    torch.manual_seed(seed)
    model = timm.create_model(arch, **kwargs)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                tensor.add_(torch.randn_like(tensor) * 0.05)
                if name.endswith("running_var"):
                    tensor.abs_().add_(0.5)
    return model.eval()
