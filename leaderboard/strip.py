"""A qualitative strip per model on the HTML page: a few of the run's saved predictions.

Numbers say how often a model is wrong, pictures say how. When a run was made with
`--save-predictions png`, its label PNGs sit beside the record (`<record stem>.predictions/
<video>/<frame>.png`, class ids); the first frame of a few videos is coloured with one fixed
palette (the same class has the same colour in every model's strip) and shrunk to a thumbnail.
The strip is embedded, so its size is bounded: a few frames, small, and left out past a byte cap.
"""

from __future__ import annotations

import base64
import dataclasses
import io
from pathlib import Path

import numpy as np
from ovbench.leaderboard.records import Run
from PIL import Image

from ovbench.palette import colourize

FRAMES = 6
THUMB_HEIGHT = 72
MAX_BYTES = 200_000  # per strip, before base64


@dataclasses.dataclass(frozen=True)
class Strip:
    image: str  # data URL of one PNG holding the thumbnails side by side
    frames: list[str]  # "video/frame" of each thumbnail, left to right


def prediction_frames(run: Run, count: int = FRAMES) -> list[Path]:
    """The first saved frame of up to `count` videos, spread evenly over the videos in name order."""
    folder = run.path.with_suffix(".predictions")
    if not folder.is_dir():
        return []
    videos = sorted(d for d in folder.iterdir() if d.is_dir())
    if len(videos) > count:
        videos = [videos[i] for i in np.linspace(0, len(videos) - 1, count).round().astype(int)]
    firsts = (min(video.glob("*.png"), default=None) for video in videos)
    return [frame for frame in firsts if frame is not None]


def _thumbnail(path: Path) -> Image.Image:
    with Image.open(path) as image:
        ids = np.asarray(image)  # palette and grey PNGs both hold the class ids
    if ids.ndim != 2:
        raise ValueError(f"{ids.ndim}-D image, expected one class id per pixel")
    coloured = Image.fromarray(colourize(np.clip(ids, 0, 255).astype(np.uint8)))  # the palette of every figure
    width = max(1, round(coloured.width * THUMB_HEIGHT / coloured.height))
    return coloured.resize((width, THUMB_HEIGHT), Image.Resampling.NEAREST)  # class edges stay crisp


def prediction_strip(run: Run) -> tuple[Strip | None, str | None]:
    """The run's strip, or None with a note saying why there is none (None, None: nothing saved)."""
    frames = prediction_frames(run)
    if not frames:
        return None, None
    try:
        thumbs = [_thumbnail(frame) for frame in frames]
    except (OSError, ValueError) as err:
        return None, f"no prediction strip for {run.path}: {err}"
    gap = 4
    strip = Image.new("RGB", (sum(t.width for t in thumbs) + gap * (len(thumbs) - 1), THUMB_HEIGHT), "white")
    x = 0
    for thumb in thumbs:
        strip.paste(thumb, (x, 0))
        x += thumb.width + gap
    buffer = io.BytesIO()
    strip.save(buffer, format="PNG", optimize=True)
    if buffer.tell() > MAX_BYTES:
        return None, f"no prediction strip for {run.path}: {buffer.tell()} bytes, over the page's cap of {MAX_BYTES}"
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return Strip(url, [f"{frame.parent.name}/{frame.stem}" for frame in frames]), None
