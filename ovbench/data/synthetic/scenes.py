"""Write a small, learnable data set in the exact VSPW_480p layout.

It lets every part of the benchmark (reader, metrics, runner, training, the CLI) run end to end
without the real 250k-frame release, and it is the built-in sample `ovbench run` uses when no
data root is given. Scenes are built so that a tiny network can learn them: each class has its
own colour (far from every other class's) and texture, stuff classes form horizontal bands whose
boundaries drift, and thing objects move linearly, leave the frame and occlude each other, so
labels change over time and the video-consistency metrics have something to measure. Raw ids
are written (0 = others, 1..124, 255 = void), including small "others" regions and void lines
along object boundaries, as in real VSPW masks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ovbench.errors import ConfigError

# Bump when the output of a given (videos, frames, height, width, seed) changes, so that a
# cached sample made by an older generator is rebuilt.
GENERATOR_VERSION = 1

# Written last into every generated root: it marks the set as synthetic (so results on it are
# never labelled VSPW) and records what made it (so a stale cached sample is noticed).
STAMP_FILE = ".ovbench_synthetic.json"

# Converted ids. Stuff is ordered top to bottom: a scene's bands follow this order.
# sky, building, wall, grandstand, tree, sea, ice, grass, road, floor
STUFF = (28, 21, 0, 34, 66, 35, 32, 15, 18, 13)
# Thing -> (shape, width / height).
THINGS = {
    60: ("ellipse", 0.45),  # person
    48: ("rect", 1.8),  # car
    62: ("ellipse", 1.4),  # dog
    11: ("rect", 0.3),  # pillar
    57: ("ellipse", 1.0),  # tyre
    76: ("rect", 1.0),  # box
    80: ("rect", 0.6),  # trash_can
    90: ("rect", 0.8),  # chair_or_seat
    89: ("rect", 1.6),  # table_or_desk
    102: ("ellipse", 0.9),  # fan
    112: ("rect", 1.5),  # blackboard
    114: ("rect", 1.3),  # screen_or_television
    92: ("rect", 2.0),  # sofa
    49: ("rect", 2.4),  # bus
}
# The pool mixes GKC's unseen classes (11 pillar, 32 ice, 34 grandstand, 57 tyre, 76 box,
# 80 trash_can, 102 fan, 112 blackboard), classes on both sides of OV2VSS's 80/44 cut, and
# common seen classes, so every protocol has seen and unseen pixels to score.
POOL = STUFF + tuple(THINGS)
OTHERS = -1  # converted id used here for raw 0 ("others"), which has an appearance too

# Val lengths cycle through these: longer than 16 frames, exactly 16 (skipped by VC16 and by
# the T <= 16 mIoU variant), and shorter than VC8's window.
VAL_LENGTHS = (24, 17, 16, 9)
TRAIN_LENGTHS = (12, 24)  # inclusive range
MIN_SIZE = 16
JPEG_QUALITY = 90


def _palette() -> dict[int, np.ndarray]:
    """Pool class -> colour on a 3x3x3 RGB grid: any two classes are at least 108 apart."""
    levels = np.array([20.0, 128.0, 236.0], dtype=np.float32)
    colours = {}
    for k, cls in enumerate(POOL + (OTHERS,)):
        g = (k * 10) % 27  # 10 is coprime with 27: a permutation that keeps neighbours apart
        colours[cls] = levels[[g // 9, g // 3 % 3, g % 3]]
    return colours


_COLOURS = _palette()


def _texture(cls: int, x: np.ndarray, y: np.ndarray, height: int) -> np.ndarray:
    """Class texture in [-1, 1]: stripes (even ids) or checks (odd ids), with an angle and a
    period (relative to the frame height) that depend on the id."""
    angle = np.deg2rad((cls * 47) % 180)
    period = height * (0.06 + 0.02 * (cls % 4))
    u = (x * np.cos(angle) + y * np.sin(angle)) * (2 * np.pi / period)
    if cls % 2 == 0:
        return np.sin(u)
    v = (y * np.cos(angle) - x * np.sin(angle)) * (2 * np.pi / period)
    return np.sign(np.sin(u) * np.sin(v))


def _boundary_ring(region: np.ndarray) -> np.ndarray:
    """Pixels of `region` with a 4-neighbour outside it (the frame edge does not count)."""
    inner = region.copy()
    inner[1:] &= region[:-1]
    inner[:-1] &= region[1:]
    inner[:, 1:] &= region[:, :-1]
    inner[:, :-1] &= region[:, 1:]
    return region & ~inner


@dataclass
class _Thing:
    cls: int
    shape: str
    centre: np.ndarray  # (x, y) at the middle of the video
    travel: np.ndarray  # (dx, dy) over the whole video
    radius: np.ndarray  # (rx, ry)
    void_edge: bool

    def region(self, x: np.ndarray, y: np.ndarray, phase: float) -> tuple[np.ndarray, ...]:
        """(pixels covered at `phase`, x and y relative to the centre: the texture moves along)."""
        cx, cy = self.centre + phase * self.travel
        dx, dy = (x - cx) / self.radius[0], (y - cy) / self.radius[1]
        inside = dx**2 + dy**2 <= 1 if self.shape == "ellipse" else (abs(dx) <= 1) & (abs(dy) <= 1)
        return inside, x - cx, y - cy


@dataclass
class _Scene:
    """One video's layout: bands (top to bottom), an "others" blob, things (back to front)."""

    bands: list[int]
    borders: list[tuple[float, float, float, float, float]]  # level, amplitude, waves, phase, drift
    others: tuple[float, float, float, int, int]  # cx, cy, radius, first frame, end frame
    things: list[_Thing]


class _Deck:
    """Draws classes so that every class comes up once before any repeats: a split with
    enough videos then contains every class of the pool."""

    def __init__(self, items: tuple[int, ...], rng: np.random.Generator):
        self.items, self.rng, self.queue = items, rng, []

    def draw(self, k: int) -> list[int]:
        out: list[int] = []
        while len(out) < k:
            if all(c in out for c in self.queue):
                self.queue.extend(self.rng.permutation(self.items).tolist())
            c = next(c for c in self.queue if c not in out)
            self.queue.remove(c)
            out.append(c)
        return out


def _scene(n_bands: int, n_things: int, length: int, height: int, width: int,
           stuff: _Deck, things: _Deck, rng: np.random.Generator) -> _Scene:
    bands = sorted(stuff.draw(n_bands), key=STUFF.index)
    levels = np.linspace(0, 1, n_bands + 1)[1:-1] + rng.uniform(-0.08, 0.08, n_bands - 1)
    borders = [(float(lv), rng.uniform(0.01, 0.04), rng.uniform(0.5, 2.0),
                rng.uniform(0, 2 * np.pi), rng.uniform(-0.08, 0.08)) for lv in levels]
    first = int(rng.integers(0, max(1, length // 2)))
    others = (rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height,
              rng.uniform(0.06, 0.1) * height, first, first + max(1, length // 2))
    objs = []
    for i, cls in enumerate(things.draw(n_things)):
        shape, aspect = THINGS[cls]
        ry = rng.uniform(0.1, 0.2) * height
        objs.append(_Thing(
            cls, shape,
            centre=np.array([rng.uniform(0.15, 0.85) * width, rng.uniform(0.25, 0.8) * height]),
            travel=np.array([rng.choice([-1, 1]) * rng.uniform(0.3, 1.0) * width,
                             rng.uniform(-0.15, 0.15) * height]),
            radius=np.array([max(ry * aspect, 2.0), ry]),
            void_edge=i == 0 or bool(rng.random() < 0.5)))
    # Larger things go behind: a thing drawn later is smaller, so it can never hide a whole
    # thing whose centre is in the frame, and every drawn class is visible in some frame.
    objs.sort(key=lambda o: -float(np.prod(o.radius)) * (np.pi / 4 if o.shape == "ellipse" else 1))
    return _Scene(bands, borders, others, objs)


def _render(scene: _Scene, t: int, length: int, x: np.ndarray, y: np.ndarray,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame t -> (RGB uint8 image, raw uint8 mask, int16 instance map: the index of the thing
    in `scene.things` at each pixel, -1 elsewhere; panoptic layouts are written from it)."""
    height, width = x.shape
    phase = (t - (length - 1) / 2) / max(length - 1, 1)  # -0.5 .. 0.5
    image = np.empty((height, width, 3), dtype=np.float32)
    raw = np.empty((height, width), dtype=np.uint8)
    instance = np.full((height, width), -1, dtype=np.int16)

    def paint(region: np.ndarray, cls: int, u: np.ndarray, v: np.ndarray) -> None:
        texture = _texture(cls, u[region], v[region], height)
        image[region] = _COLOURS[cls] + 22.0 * texture[:, None]
        raw[region] = 0 if cls == OTHERS else cls + 1

    band = np.zeros((height, width), dtype=np.int64)
    for level, amplitude, waves, offset, drift in scene.borders:
        edge = level + amplitude * np.sin(2 * np.pi * waves * x[0] / width + offset) + drift * phase
        band += y >= edge * height
    for i, cls in enumerate(scene.bands):
        paint(band == i, cls, x, y)

    cx, cy, radius, first, end = scene.others
    if first <= t < end:
        paint((x - cx) ** 2 + (y - cy) ** 2 <= radius**2, OTHERS, x, y)

    for k, thing in enumerate(scene.things):
        region, u, v = thing.region(x, y, phase)
        paint(region, thing.cls, u, v)
        instance[region] = k
        if thing.void_edge:
            raw[_boundary_ring(region)] = 255

    image += rng.normal(0.0, 4.0, image.shape).astype(np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), raw, instance


def _lengths(videos: int, n_val: int, frames: int | None, rng: np.random.Generator) -> list[int]:
    if frames is not None:
        return [frames] * videos
    val = [VAL_LENGTHS[j % len(VAL_LENGTHS)] for j in range(n_val)]
    lo, hi = TRAIN_LENGTHS
    return val + rng.integers(lo, hi + 1, videos - n_val).tolist()


def check_args(out: Path, videos: int, frames: int | None, height: int, width: int) -> None:
    if videos < 1:
        raise ConfigError(f"videos={videos}: need at least 1")
    if frames is not None and frames < 1:
        raise ConfigError(f"frames={frames}: need at least 1")
    for name, value in (("height", height), ("width", width)):
        if value < MIN_SIZE:
            raise ConfigError(f"{name}={value}: need at least {MIN_SIZE} pixels")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out}: output exists and is not an empty folder")


@dataclass
class SynthFrame:
    """One generated frame: `raw` holds VSPW raw ids, `instance` each thing's index (-1: none),
    `scene` the video's layout (which class each thing index is)."""

    subset: str
    video: str
    t: int
    image: np.ndarray
    raw: np.ndarray
    instance: np.ndarray
    scene: _Scene


def generate_frames(*, videos: int, frames: int | None, height: int, width: int,
                    seed: int) -> Iterator[SynthFrame]:
    """The frames of every video in order, one at a time (memory stays flat); the first half of
    the videos (at least one) are val, the rest train. Every layout is written from this."""
    rng = np.random.default_rng(seed)
    n_val = max(1, videos // 2)
    lengths = _lengths(videos, n_val, frames, rng)
    names = [f"{1001 + i}_synth_{i:03d}_0" for i in range(videos)]
    decks = {split: (_Deck(STUFF, rng), _Deck(tuple(THINGS), rng)) for split in ("val", "train")}
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    for i, (name, length) in enumerate(zip(names, lengths)):
        split, j = ("val", i) if i < n_val else ("train", i - n_val)
        video_rng = np.random.default_rng([seed, i])
        if split == "val":  # alternating 3+2 bands and 4+3 things: 4 val videos hold the whole pool
            n_bands, n_things = 3 - j % 2, 4 - j % 2
        else:
            n_bands, n_things = int(video_rng.integers(2, 4)), int(video_rng.integers(2, 5))
        scene = _scene(n_bands, n_things, length, height, width, *decks[split], video_rng)
        for t in range(length):
            image, raw, instance = _render(scene, t, length, x, y, video_rng)
            yield SynthFrame(split, name, t, image, raw, instance, scene)


def write_video_tree(out: Path, folders: tuple[str, ...], save: Callable[[SynthFrame, str], None], *,
                     videos: int, frames: int | None, height: int, width: int, seed: int) -> None:
    """Make each video's `folders` ("{video}" is its name), `save(frame, stem)` every frame, then
    write `val.txt`, `train.txt` and an empty `test.txt` (VSPW's and VIPSeg's layout)."""
    check_args(out, videos, frames, height, width)
    names: dict[str, list[str]] = {"val": [], "train": []}
    for frame in generate_frames(videos=videos, frames=frames, height=height, width=width, seed=seed):
        if frame.t == 0:
            names[frame.subset].append(frame.video)
            for folder in folders:
                (out / folder.format(video=frame.video)).mkdir(parents=True)
        save(frame, f"{frame.t + 1:08d}")
    for subset in ("val", "train"):
        (out / f"{subset}.txt").write_text("".join(f"{n}\n" for n in names[subset]))
    (out / "test.txt").write_text("")


def generator_stamp(**params: int | None) -> dict:
    return {"generator_version": GENERATOR_VERSION, **params}


