"""ControlNet from each parser variant's maps to faces (paper 1, Sec. III-F2, IV-E), and the ``fp controlnet``
commands.

* ``controlnet-train@<variant>``: a ControlNet (``ControlNetModel.from_unet`` on the base, or
  ``controlnet.controlnet_model``) fine-tuned on the variant's parsing export (``train`` + ``val`` maps as
  colour images of the face palette, captions of what was drawn) with diffusers' ControlNet recipe
  (``fp_diffusion.controlnet``); snapshots after each of ``controlnet.train.snapshot_epochs`` (open question
  2: what happens past one epoch); writes ``outputs/controlnet/<variant>/model``.
* ``controlnet-eval@<variant>``: for every snapshot, faces generated from the test maps (fixed seeds,
  ``controlnet.eval`` scheduler and steps), their FD against the real test faces (bootstrap s.e. over test
  images; the embedded face CLIP's space by default, as on the GAN side), LPIPS per (generated, real) pair
  or "unavailable", and the **map adherence** the paper lacks: the variant's own parser (the one whose maps
  were the condition) parses each generated face, and the mIoU between that parse and the conditioning map
  is averaged over images (mean ± s.e.). Epoch 0 is the base alone (conditioning scale 0: a ControlNet
  adds exactly zero at initialisation), the adherence of faces that ignore the map.

Paths: :mod:`fp_pipeline.stages.controlnet_common`; report: :mod:`fp_pipeline.stages.controlnet_report`.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from fp_pipeline.config import DEFAULT_PARAMS_PATH, ParamsError, load_params, section
from fp_pipeline.stages.controlnet_common import (
    base_model,
    controlnet_variants,
    eval_dir,
    face_captions_by_index,
    model_dir,
)
from fp_pipeline.stages.gan_common import checkpoint_dir, fd_label, format_cell, torch_threads
from fp_pipeline.stages.generative_eval import (
    blas_threads,
    fd_with_se,
    feature_fn,
    grid_figure,
    lpips_or_reason,
    mean_se,
    write_sample_rows,
)
from fp_pipeline.tracking import save_figure, stage_run

__all__ = ["adherence", "controlnet_app", "eval_stage", "snapshots", "train_config", "train_stage"]

_SNAPSHOT = re.compile(r"^epoch-(\d+)$")


def train_config(params: dict[str, Any]) -> Any:
    """``ControlNetTrainConfig`` from ``controlnet.train`` and ``controlnet.seed``; bad values: ParamsError."""
    from fp_diffusion.controlnet import ControlNetTrainConfig

    values = {**dict(section(params, "controlnet.train")), "seed": int(section(params, "controlnet.seed"))}
    try:
        return ControlNetTrainConfig.from_dict(values)
    except (ValueError, TypeError) as err:
        raise ParamsError(f"controlnet.train: {err}") from err


def _export(params: dict[str, Any], variant: str) -> Path:
    from fp_pipeline.stages.parsing_common import export_dir

    if variant not in controlnet_variants(params):
        raise ParamsError(
            f"--variant {variant!r} is not in controlnet.variants {controlnet_variants(params)}"
        )
    seed = int(section(params, "controlnet.export_seed"))
    if seed not in section(params, "parsing.export.seeds"):
        raise ParamsError(f"controlnet.export_seed {seed} is not in parsing.export.seeds")
    out = export_dir(variant, seed)
    if not (out / "manifest.json").is_file():
        raise FileNotFoundError(
            f"{out}/manifest.json is missing: run `dvc repro parsing-export@{variant}-...`"
        )
    return out


def _captions(params: dict[str, Any]) -> dict[str, str]:
    root, order = Path(section(params, "data.root")), str(section(params, "data.label_order"))
    return face_captions_by_index(root, ["train", "val", "test"], order)


def _test_set(export: Path, captions: dict[str, str], resolution: int) -> tuple[Any, Any, list[str]]:
    """``(labels [N, R, R] int64, real images [N, 3, R, R] in [0, 1], prompts)`` of the export's test split."""
    import torch

    from fp_diffusion.data import PairedMaps

    data = PairedMaps(export, "test", resolution=resolution)
    items = [data[i] for i in range(len(data))]
    names = [Path(str(it[2])).stem for it in items]  # "test/labels/13.png" -> the CelebA-HQ index "13"
    missing = [n for n in names if n not in captions]
    if missing:
        raise ValueError(f"{export}: test images {missing[:5]} have no caption in the dataset's annotations")
    labels = torch.stack([it[0] for it in items])
    return labels, (torch.stack([it[1] for it in items]) + 1) / 2, [captions[n] for n in names]


# -- training ----------------------------------------------------------------------------------------------


def train_stage(*, params_path: Path, variant: str, progress: bool = True) -> Path:
    """Fine-tune the variant's ControlNet on its exported train + val maps; snapshots per epoch; resumes."""
    from fp_diffusion.base import load_base
    from fp_diffusion.controlnet import (
        ConditionedFaces,
        load_controlnet,
        train_controlnet,
    )

    params = load_params(params_path)
    torch_threads(params, "controlnet")
    export, config = _export(params, variant), train_config(params)
    base = load_base(base_model(params))
    captions = _captions(params)
    data = ConditionedFaces(
        export, ["train", "val"], captions=captions, resolution=base.resolution, flip=True, seed=config.seed
    )
    labels, _, prompts = _test_set(export, captions, base.resolution)
    k = min(int(section(params, "controlnet.eval.grid_maps")), len(labels))
    start = section(params, "controlnet").get("controlnet_model")
    ckpt = checkpoint_dir(f"controlnet-{variant}")
    logged = {"controlnet.train": config.to_dict(), "base": base.name, "export": str(export)}
    with stage_run(f"controlnet-train@{variant}", params=logged, variant=variant, dataset=export) as run:

        def on_samples(grid: np.ndarray, step: int) -> None:
            figure = grid_figure(grid, f"{variant}, step {step}: maps | generated")
            run.log_figure(figure, f"samples/step-{step:06d}.png")

        train_controlnet(
            config,
            base,
            data,
            output_dir=model_dir(variant),
            checkpoint_dir=ckpt,
            controlnet=load_controlnet(start) if start else None,
            log=run,
            on_samples=on_samples,
            sample_every=int(section(params, "controlnet.sample_every")),
            validation_conditions=labels[:k],
            validation_prompts=prompts[:k],
            progress=progress,
            tracking_id=run.run_id,
        )
    shutil.rmtree(ckpt, ignore_errors=True)  # trained and saved: the next run of this stage starts afresh
    typer.echo(f"controlnet-train@{variant}: {len(data)} pairs -> {model_dir(variant)}")
    return model_dir(variant)


# -- evaluation --------------------------------------------------------------------------------------------


def snapshots(directory: Path) -> list[tuple[int, Path]]:
    """``[(epoch, folder)]`` of ``epoch-<e>`` snapshots under ``directory``, by epoch; an error when none."""
    found = sorted(
        (int(m.group(1)), p)
        for p in directory.glob("epoch-*")
        if (m := _SNAPSHOT.match(p.name)) and p.is_dir()
    )
    if not found:
        raise FileNotFoundError(
            f"{directory} has no epoch-<e> ControlNet snapshot: run controlnet-train first"
        )
    return found


def adherence(parser: Any, generated: Any, labels: Any, num_classes: int) -> tuple[float, float | None]:
    """Map adherence: per image, the mIoU (classes present in the map or the parse) between the parser's
    labels of ``generated [N, 3, R, R]`` in [0, 1] and the conditioning ``labels [N, R, R]``; mean ± s.e."""
    import torch

    from fp_metrics.segmentation import iou_from_confusion, per_image_confusion

    with torch.no_grad():
        parsed = parser(generated).argmax(dim=1)
    if parsed.shape[-2:] != labels.shape[-2:]:
        raise ValueError(f"parse {tuple(parsed.shape)} and maps {tuple(labels.shape)} differ in size")
    iou = iou_from_confusion(per_image_confusion(parsed, labels, num_classes))
    per_image = torch.nanmean(iou, dim=1).numpy()
    return mean_se(per_image.tolist())


def _generate(
    pipeline: Any, labels: Any, prompts: list[str], ecfg: dict[str, Any], seed: int, scale: float
) -> Any:
    from fp_core.seeds import derive_seed
    from fp_diffusion.controlnet import generate_from_maps

    return generate_from_maps(
        pipeline,
        labels,
        prompts,
        seeds=[derive_seed(seed, "controlnet-eval", i) for i in range(len(prompts))],
        steps=int(ecfg["steps"]),
        guidance_scale=float(ecfg["guidance_scale"]),
        controlnet_conditioning_scale=scale,
        batch_size=int(ecfg["batch_size"]),
        progress=False,
    )


def _score(
    generated: Any, real: Any, real_feats: np.ndarray, ctx: dict[str, Any], labels: Any
) -> dict[str, Any]:
    """FD (bootstrap s.e.), LPIPS (s.e. over images) or its reason, adherence (s.e. over images)."""
    fd, se = fd_with_se(ctx["features"](generated), real_feats, samples=int(ctx["ecfg"]["bootstrap"]), seed=0)
    out: dict[str, Any] = {"fd": {"mean": fd, "se": se, "se_kind": "bootstrap over test images"}}
    if ctx["lpips"] is not None:
        lp, lp_se = mean_se(ctx["lpips"](generated * 2 - 1, real * 2 - 1).double().numpy().tolist())
        out["lpips"] = {"mean": lp, "se": lp_se, "se_kind": "over test images"}
    else:
        out["lpips"] = ctx["lpips_reason"]
    mean, a_se = adherence(ctx["parser"], generated, labels, ctx["num_classes"])
    out["adherence"] = {"mean": mean, "se": a_se, "se_kind": "over test images"}
    return out


def _fig7(variant: str, labels: Any, generated: Any, real: Any, count: int, run: Any) -> None:
    import torch

    from fp_diffusion.controlnet import colorize_labels

    k = min(count, len(labels))
    maps = colorize_labels(labels[:k])
    to_u8 = lambda x: (x[:k].clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()  # noqa: E731
    gen, ref = to_u8(generated), to_u8(real)
    grid = np.concatenate([np.concatenate(list(rows), axis=1) for rows in (maps, gen, ref)], axis=0)
    save_figure(
        grid_figure(grid, f"Fig. 7, {variant}: test maps | generated | real"),
        eval_dir(variant) / "fig7.png",
        run,
    )
    write_sample_rows(eval_dir(variant) / "samples.npz", maps, gen, ref)


def _context(params: dict[str, Any], variant: str, ecfg: dict[str, Any]) -> dict[str, Any]:
    from fp_parsing.model import load_parser
    from fp_pipeline.stages.parsing_common import run_dir

    parser = load_parser(run_dir(variant, int(section(params, "controlnet.export_seed"))) / "model").eval()
    lpips, reason = lpips_or_reason(str(ecfg.get("lpips_net", "alex")))
    num_classes = int(section(params, "parsing.model.num_classes"))
    return {
        "features": feature_fn(ecfg),
        "lpips": lpips,
        "lpips_reason": reason,
        "parser": parser,
        "num_classes": num_classes,
        "ecfg": ecfg,
    }


def eval_stage(*, params_path: Path, variant: str, progress: bool = True) -> Path:
    """Score every snapshot's faces from the variant's test maps: FD, LPIPS, map adherence; Fig. 7."""
    from fp_core.atomic import write_json
    from fp_diffusion.base import load_base
    from fp_diffusion.controlnet import build_pipeline, load_controlnet

    params = load_params(params_path)
    torch_threads(params, "controlnet")
    ecfg = dict(section(params, "controlnet.eval"))
    label = fd_label(str(ecfg.get("features", "clip")))
    export, base = _export(params, variant), load_base(base_model(params))
    labels, real, prompts = _test_set(export, _captions(params), base.resolution)
    found = snapshots(model_dir(variant))
    with stage_run(
        f"controlnet-eval@{variant}", params={"controlnet.eval": ecfg}, variant=variant, dataset=export
    ) as run:
        ctx = _context(params, variant, ecfg)
        with blas_threads(params, "controlnet"):
            real_feats = ctx["features"](real)
            curve, final_images = [], None
            for epoch, folder in [(0, found[0][1]), *found]:
                pipeline = build_pipeline(base, load_controlnet(folder), scheduler=str(ecfg["scheduler"]))
                scale = 0.0 if epoch == 0 else float(ecfg["conditioning_scale"])
                generated = _generate(
                    pipeline, labels, prompts, ecfg, int(section(params, "controlnet.seed")), scale
                )
                curve.append({"epoch": epoch, **_score(generated, real, real_feats, ctx, labels)})
                if folder == found[-1][1] and epoch > 0:  # the newest snapshot: the final model's faces
                    final_images = generated
                run({f"curve/{k}": v["mean"] for k, v in curve[-1].items() if isinstance(v, dict)}, epoch)
        _fig7(variant, labels, final_images, real, int(ecfg["grid_maps"]), run)
        final = curve[-1]
        result = {
            "variant": variant,
            "fd_label": label,
            label: final["fd"],
            f"LPIPS ({ecfg.get('lpips_net', 'alex')})": final["lpips"],
            "adherence_miou": final["adherence"],
            "final_epoch": final["epoch"],
            "curve": curve,
            "images": len(labels),
            "reference": "the clean test images; adherence: the variant's parser on the generated faces vs the map",
            "epoch_0": "the base alone (conditioning scale 0), faces that ignore the map",
        }
        write_json(eval_dir(variant) / "metrics.json", result)
        run.log_artifact(eval_dir(variant) / "metrics.json")
    typer.echo(
        f"controlnet-eval@{variant}: epoch {final['epoch']}: {label} {format_cell(final['fd'])}, "
        f"adherence mIoU {format_cell(final['adherence'])}"
    )
    return eval_dir(variant) / "metrics.json"


# -- the `fp controlnet` commands (registered in cli.py) -------------------------------------------------------

controlnet_app = typer.Typer(
    help="ControlNet from the parser variants' maps to faces: diffusion base, train, eval, report.",
    no_args_is_help=True,
)
ParamsOption = Annotated[Path, typer.Option("--params", help="params.yaml to read every setting from.")]
ProgressOption = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")]
VariantOption = Annotated[str, typer.Option("--variant", help="Parser variant: one of controlnet.variants.")]


@controlnet_app.command("base")
def controlnet_base(params: ParamsOption = DEFAULT_PARAMS_PATH, progress: ProgressOption = True) -> None:
    """Train the small text-to-image base (controlnet.base) on the train faces and captions (default only)."""
    from fp_pipeline.stages.diffusion_base import base_stage

    base_stage(params_path=params, progress=progress)


@controlnet_app.command("train")
def controlnet_train(
    variant: VariantOption = "single",
    params: ParamsOption = DEFAULT_PARAMS_PATH,
    progress: ProgressOption = True,
) -> None:
    """Fine-tune the variant's ControlNet (controlnet.train) on its exported train + val maps; resumes."""
    from fp_pipeline.stages.controlnet import train_stage

    train_stage(params_path=params, variant=variant, progress=progress)


@controlnet_app.command("eval")
def controlnet_eval(
    variant: VariantOption = "single",
    params: ParamsOption = DEFAULT_PARAMS_PATH,
    progress: ProgressOption = True,
) -> None:
    """FD, LPIPS and map adherence of each snapshot's faces from the variant's test maps (controlnet.eval)."""
    from fp_pipeline.stages.controlnet import eval_stage

    eval_stage(params_path=params, variant=variant, progress=progress)


@controlnet_app.command("report")
def controlnet_report(params: ParamsOption = DEFAULT_PARAMS_PATH, progress: ProgressOption = True) -> None:
    """Table IV's diffusion rows, Fig. 7, the curve against epochs, and the verdicts."""
    from fp_pipeline.stages.controlnet_report import report_stage

    report_stage(params_path=params, progress=progress)
