from __future__ import annotations

from pathlib import Path

import pytest

from onevision.vision.features import CatalogueFeatures


@pytest.fixture(scope="module")
def features(tiny_encoder_dir: Path) -> CatalogueFeatures:
    return CatalogueFeatures.load(tiny_encoder_dir)
