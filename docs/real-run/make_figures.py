"""Figures of the recorded CPU training run (docs/real-run.md): the loss curve, and generated
images next to real ones at the model's resolution.

    SPOTTHEFAKE_VAR_DIR=/tmp/realrun DEBUG=1 .venv/bin/python docs/real-run/make_figures.py cxr-pediatric-64
"""

import os
import sys
from pathlib import Path

import django
import numpy as np
from PIL import Image as PILImage

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spotthefake.settings")
django.setup()

from generation.models import GeneratorModel  # noqa: E402
from generation.plots import loss_curve_svg, read_loss_log  # noqa: E402
from pool.models import Image  # noqa: E402

OUT = Path(__file__).resolve().parent


def tile(images, size: int) -> np.ndarray:
    return np.concatenate([np.asarray(PILImage.open(i.display.open("rb")).resize((size, size)))
                           for i in images], axis=1)


def main(name: str) -> None:
    generator = GeneratorModel.objects.get(name=name)
    svg = loss_curve_svg(read_loss_log(generator.folder / "loss.jsonl"),
                         title=f"{name}: training loss")
    (OUT / "loss.svg").write_text(str(svg))
    size = generator.resolution * 2
    rows = []
    for finding in ("normal", "pneumonia"):
        fake = Image.objects.filter(truth="synthetic", finding=finding).order_by("id")[:8]
        real = Image.objects.filter(truth="real", finding=finding).order_by("id")[:8]
        rows += [tile(real, size), tile(fake, size)]
    PILImage.fromarray(np.concatenate(rows, axis=0)).save(OUT / "real-vs-generated.png")


if __name__ == "__main__":
    main(sys.argv[1])
