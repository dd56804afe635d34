"""compute_reference_statistics (the giugan stats command's function)."""

from __future__ import annotations

import pytest
import torch

from giugan.metrics import compute_reference_statistics, quantize_images

from .conftest import REAL, real_state


def test_compute_reference_statistics_takes_num_real_images_and_skips_on_hit(
    standin_metrics, monkeypatch
) -> None:
    metrics = standin_metrics()
    floats = REAL.float() / 127.5 - 1.0  # float batches in [-1, 1], as (images, labels) pairs
    batches = [(floats[i : i + 64], torch.zeros(64)) for i in range(0, 160, 64)]
    path = compute_reference_statistics(metrics, batches, "shapes-train-16", 100)
    assert path.is_file() and int(metrics.scores["fid"].metric.real_features_num_samples) == 100
    direct = standin_metrics()
    direct.update_real(quantize_images(floats[:100]))
    torch.testing.assert_close(real_state(direct)[0], real_state(metrics)[0])

    hit = standin_metrics()
    calls = []
    monkeypatch.setattr(hit, "update_real", lambda images: calls.append(images))
    assert compute_reference_statistics(hit, batches, "shapes-train-16", 100) == path
    assert calls == []
    with pytest.raises(ValueError, match="ran out after 160"):
        compute_reference_statistics(standin_metrics(), [REAL], "shapes-train-16", 200)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        compute_reference_statistics(standin_metrics(), [REAL.float()], "other-16", 100)
