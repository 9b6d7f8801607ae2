"""Which videos a process runs, and in which order."""

from __future__ import annotations

from ovbench.data.reader import VideoDataset, VideoFrames
from ovbench.errors import DataError
from ovbench.split import Split


def assign_videos(videos: list[VideoFrames], count: int) -> list[list[VideoFrames]]:
    """Balance videos over `count` processes by frame count (longest first, to the least
    loaded), deterministically, so every process computes the same assignment; each share
    keeps the order of `videos`."""
    loads = [0] * count
    shares: list[list[VideoFrames]] = [[] for _ in range(count)]
    for video in sorted(videos, key=lambda v: (-len(v.frames), v.name)):
        target = min(range(count), key=lambda i: (loads[i], i))
        shares[target].append(video)
        loads[target] += len(video.frames)
    position = {video.name: i for i, video in enumerate(videos)}
    return [sorted(share, key=lambda v: position[v.name]) for share in shares]


def group_by_frame_size(data: VideoDataset, videos: list[VideoFrames]) -> list[VideoFrames]:
    """Videos of one frame size one after another, then by name. An adapter that compiles or
    captures per input shape (gkc's CUDA graphs, a few shapes kept) then does so once per size;
    in name order VideoDataset's sizes alternate. The order changes no number: records are sorted."""
    def size(video: VideoFrames) -> tuple[int, int]:
        known = data.frame_size(video.name, video.frames[0]) if video.frames else None
        return known or (1 << 30, 1 << 30)  # unreadable or empty: last (and never the first video)

    return sorted(videos, key=lambda video: (size(video), video.name))


def list_videos(data: VideoDataset, split: Split, limit: int | None = None, *, broken_ok: bool = False) -> list[VideoFrames]:
    """The split's videos and their frames. With `broken_ok` a video whose folder is missing is
    listed without frames and with the `problem` (the runner skips and names it, as it does a
    video with an unreadable frame: one missing folder must not stop a run of thousands)."""
    names = data.videos(split.subset)
    if limit is not None:
        names = names[:limit]
    if not names:
        raise DataError(f"{data.root}: the {split.subset} subset lists no videos")
    return [_video(data, name, broken_ok) for name in names]


def _video(data: VideoDataset, name: str, broken_ok: bool) -> VideoFrames:
    try:
        return VideoFrames(name, tuple(data.frames(name)))
    except DataError as err:
        if not broken_ok:
            raise
        return VideoFrames(name, (), problem=str(err))
