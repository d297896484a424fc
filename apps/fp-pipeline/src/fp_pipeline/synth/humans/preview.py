"""Contact sheet of a rendered dataset: a grid of images with their face (red) and hand (green) boxes."""

from __future__ import annotations

import json
import os
from pathlib import Path

from PIL import Image, ImageDraw

__all__ = ["contact_sheet"]


def contact_sheet(
    data_dir: str | os.PathLike[str], path: str | os.PathLike[str], *, count: int = 32, columns: int = 8
) -> Path:
    """Save the first ``count`` images of ``data_dir`` (the metadata.jsonl layout) with boxes to ``path``."""
    root = Path(data_dir)
    lines = (root / "metadata.jsonl").read_text(encoding="utf-8").splitlines()[:count]
    records = [json.loads(line) for line in lines if line.strip()]
    if not records:
        raise ValueError(f"{root / 'metadata.jsonl'} lists no images")
    tiles = []
    for record in records:
        tile = Image.open(root / record["file_name"]).convert("RGB")
        draw = ImageDraw.Draw(tile)
        for boxes, colour in ((record["face_boxes"], (255, 0, 0)), (record["hand_boxes"], (0, 255, 0))):
            for x0, y0, x1, y1 in boxes:
                draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=colour)
        tiles.append(tile)
    width, height = tiles[0].size
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (width * min(columns, len(tiles)), height * rows))
    for k, tile in enumerate(tiles):
        sheet.paste(tile, ((k % columns) * width, (k // columns) * height))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out
