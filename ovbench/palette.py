"""One fixed colour per label value, so that every label PNG, overlay and figure the project
writes shows a class in the same colour.

Label PNGs are palette PNGs: the pixel values stay the class indices that tools read back (a
palette image decodes to its indices), and image viewers show the colours instead of near-black
grey levels.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ovbench.constants import IGNORE


def _bit_interleaved_colours() -> np.ndarray:
    """The PASCAL VOC palette construction (spreads the bits of the index over R, G and B, so
    neighbouring indices get clearly different colours), shifted by one so that index 0 is not
    black: black is kept for IGNORE."""
    colours = np.zeros((256, 3), dtype=np.uint8)
    for index in range(256):
        code, colour = index + 1, [0, 0, 0]
        for bit in range(8):
            for channel in range(3):
                colour[channel] |= ((code >> channel) & 1) << (7 - bit)
            code >>= 3
        colours[index] = colour
    colours[IGNORE] = 0
    return colours


PALETTE = _bit_interleaved_colours()


def palette_image(labels: np.ndarray) -> Image.Image:
    """A mode-P image whose pixel values are `labels` (uint8, H x W) and whose palette is PALETTE."""
    if labels.dtype != np.uint8 or labels.ndim != 2:
        raise ValueError(f"label images are uint8 (H, W), got {labels.dtype} {labels.shape}")
    image = Image.fromarray(labels)  # mode L; putpalette turns it into P with the same values
    image.putpalette(PALETTE.tobytes())
    return image


def colourize(labels: np.ndarray) -> np.ndarray:
    """(H, W) label values -> (H, W, 3) uint8 RGB."""
    return PALETTE[labels]


def blend(frame: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The frame (H, W, 3) with each pixel's class colour laid over it; IGNORE pixels untouched."""
    mixed = (1 - alpha) * frame.astype(np.float32) + alpha * colourize(labels).astype(np.float32)
    mixed[labels == IGNORE] = frame[labels == IGNORE]
    return np.rint(mixed).astype(np.uint8)


def hex_colour(index: int) -> str:
    red, green, blue = PALETTE[index].tolist()
    return f"#{red:02x}{green:02x}{blue:02x}"


LEGEND_ROW = 14  # pixels per legend line
LEGEND_SWATCH = 10


def legend_width(names: list[str]) -> int:
    """A legend panel wide enough for the longest of these names."""
    from PIL import ImageDraw, ImageFont

    draw, font = ImageDraw.Draw(Image.new("RGB", (1, 1))), ImageFont.load_default()
    longest = max((draw.textlength(name, font=font) for name in names), default=0)
    return int(LEGEND_SWATCH + 12 + longest + 0.999)


def legend_panel(entries: list[tuple[int, str]], height: int, width: int) -> np.ndarray:
    """(height, width, 3) white panel listing (label value, name) pairs with their colours, as
    many as fit; the last line says how many did not."""
    from PIL import ImageDraw, ImageFont

    panel = Image.new("RGB", (width, height), "white")
    draw, font = ImageDraw.Draw(panel), ImageFont.load_default()
    rows = max(1, (height - 4) // LEGEND_ROW)
    shown = entries if len(entries) <= rows else entries[: rows - 1]
    for row, (value, name) in enumerate(shown):
        top = 4 + row * LEGEND_ROW
        draw.rectangle([4, top, 4 + LEGEND_SWATCH, top + LEGEND_SWATCH], fill=tuple(PALETTE[value].tolist()), outline="black")
        draw.text((LEGEND_SWATCH + 8, top - 1), name, fill="black", font=font)
    if len(shown) < len(entries):
        draw.text((4, 4 + len(shown) * LEGEND_ROW - 1), f"+{len(entries) - len(shown)} more", fill="black", font=font)
    return np.asarray(panel)
