"""`python -m generator.body`: build Anny's cache on this machine once (about 100 s the first time,
then about 2 s), so the first player or test does not pay for it. `make demo` and `make test` run it."""

from __future__ import annotations

import logging
import time

from .model import load_body_model


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    start = time.perf_counter()
    model = load_body_model()
    logging.info("body model ready: %d vertices, %d triangles, %d bones (%.1f s)", len(model.vertex_part), len(model.faces),
                 len(model.bone_labels), time.perf_counter() - start)


if __name__ == "__main__":
    main()
