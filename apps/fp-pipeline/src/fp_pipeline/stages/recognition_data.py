"""``recognition-data``: render the synthetic recognition sets (``recognition.synth``) into
``outputs/recognition/data`` (the training set as an image folder and ``.rec``, RFW-like groups, ``.bin``
verification sets; :mod:`fp_pipeline.synth.recognition`)."""

from __future__ import annotations

from pathlib import Path

import typer

from fp_pipeline.config import load_params, section
from fp_pipeline.stages.recognition_common import DATA_DIR
from fp_pipeline.tracking import stage_run

__all__ = ["data_stage"]


def data_stage(*, params_path: Path, out_dir: Path | None = None, progress: bool = True) -> Path:
    """Render the synthetic recognition sets into ``out_dir`` (default ``outputs/recognition/data``)."""
    from fp_pipeline.synth.recognition import RecognitionSynthConfig, render_recognition_sets

    params = load_params(params_path)
    config = RecognitionSynthConfig.from_dict(section(params, "recognition.synth"))
    out = out_dir or DATA_DIR
    with stage_run("recognition-data", params={"recognition.synth": config.to_dict()}) as run:
        manifest = render_recognition_sets(config, out, progress=progress)
        counts = manifest["counts"]
        run(
            {
                "images": float(manifest["images_rendered"]),
                "identities": float(manifest["identities"]),
                **{f"train_identities/{g}": float(n) for g, n in counts["train"]["identities"].items()},
            },
            0,
        )
        run.log_artifact(out / "manifest.json")
    typer.echo(f"recognition-data: {manifest['images_rendered']} images in {out}")
    return out
