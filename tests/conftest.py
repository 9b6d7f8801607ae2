"""Test-wide settings (never touch the network or the user's cache) and the shared synthetic
data sets.

Each data set below is generated once per test session and shared by every module that reads
it. It is made read-only on disk, and after each module its files are compared with what was
generated (root ignores permission bits, so the comparison is what catches a stray write when
the suite runs as root). A test that edits its data takes a `private_copy` of it instead.
"""

import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("OVBENCH_CACHE", tempfile.mkdtemp(prefix="ovbench-test-cache-"))
os.environ.pop("OVBENCH_DATA_ROOT", None)
sys.path.insert(0, str(Path(__file__).parent))  # so `--plugin toy_adapters` resolves


def pytest_collection_modifyitems(items):
    """Every test that skips without CUDA is a `gpu` test, so `pytest -m gpu` on a GPU machine
    runs exactly the CUDA checks (benchmarks/gpu_check.sh does)."""
    for item in items:
        on_cuda = getattr(item, "callspec", None) is not None and item.callspec.params.get("device") == "cuda"
        if on_cuda or any(mark.kwargs.get("reason") == "needs CUDA" for mark in item.iter_markers("skipif")):
            item.add_marker(pytest.mark.gpu)


# --- shared synthetic data ----------------------------------------------------------------------

# name -> (generated root, fingerprint at generation) for every shared set made so far.
_SHARED: dict[str, tuple[Path, dict]] = {}


def _fingerprint(root: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> (size, mtime) of every file and folder: any write, removal or addition
    changes it (a folder's mtime moves when an entry is added or removed)."""
    found = {}
    for folder, _, files in os.walk(root):
        for path in [folder, *(os.path.join(folder, name) for name in files)]:
            st = os.stat(path)
            found[os.path.relpath(path, root)] = (st.st_size, st.st_mtime_ns)
    return found


def _set_writable(root: Path, writable: bool) -> None:
    """Shared data is read-only so that a stray write fails where it happens (for non-root
    users); copies and the final clean-up need it writable again."""
    write = stat.S_IWUSR if writable else 0
    for folder, _, files in os.walk(root):
        os.chmod(folder, stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | write)
        for name in files:
            os.chmod(os.path.join(folder, name), stat.S_IRUSR | stat.S_IRGRP | write)


def _shared(tmp_path_factory, name: str, write, folder: str, **params):
    """Generate `write(root, **params)` once in this session, read-only; yields its root."""
    root = write(tmp_path_factory.mktemp(name) / folder, **params)
    _set_writable(root, False)
    _SHARED[name] = (root, _fingerprint(root))
    yield root
    del _SHARED[name]
    _set_writable(root, True)  # so pytest can delete it with its other temporary folders


@pytest.fixture(scope="module", autouse=True)
def _shared_data_untouched(request):
    """Fail the module that changed a shared data set (naming it), rather than a later module
    that reads the changed data."""
    yield
    changed = [name for name, (root, before) in _SHARED.items() if _fingerprint(root) != before]
    for name in changed:  # reported once, here
        _SHARED[name] = (_SHARED[name][0], _fingerprint(_SHARED[name][0]))
    if changed:
        pytest.fail(f"{request.module.__name__} changed the shared data set(s) {', '.join(changed)}; "
                    f"a test that edits its data must take a private_copy")


@pytest.fixture
def private_copy(tmp_path):
    """private_copy(root, dest=tmp_path/<root's name>): a writable copy of a shared data set,
    for a test that deletes, damages or renames its data."""
    def copy(root: Path, dest: Path | None = None) -> Path:
        dest = Path(shutil.copytree(root, dest or tmp_path / root.name))
        _set_writable(dest, True)
        return dest

    return copy


@pytest.fixture(scope="session")
def vspw_runs(tmp_path_factory):
    """Runs whose checks need lengths around the VC windows: 3 val videos of 24, 17 and 16
    frames at 40x71 (an odd width), 3 train videos."""
    from ovbench.data.synthetic.vspw import write_synthetic_vspw

    yield from _shared(tmp_path_factory, "vspw_runs", write_synthetic_vspw, "VSPW_480p",
                       videos=6, height=40, width=71, seed=3)


@pytest.fixture(scope="session")
def vspw_small(tmp_path_factory):
    """The smallest set with varied lengths, for readers, `data verify`, scoring and short
    runs: 2 val videos (24 and 17 frames) and 2 train videos at 24x43 (an odd width)."""
    from ovbench.data.synthetic.vspw import write_synthetic_vspw

    yield from _shared(tmp_path_factory, "vspw_small", write_synthetic_vspw, "VSPW_480p",
                       videos=4, height=24, width=43, seed=2)


@pytest.fixture(scope="session")
def vspw_uniform(tmp_path_factory):
    """Many short videos for runs that skip, fail, resume or count videos: 6 val and 7 train
    videos (unequal, so that a count of the wrong subset shows) of 3 frames at 24x32."""
    from ovbench.data.synthetic.vspw import write_synthetic_vspw

    yield from _shared(tmp_path_factory, "vspw_uniform", write_synthetic_vspw, "VSPW_480p",
                       videos=13, frames=3, height=24, width=32, seed=17)


@pytest.fixture(scope="session")
def vspw_train(tmp_path_factory):
    """For a few training iterations: 2 train and 2 val videos of 3 frames at 40x71."""
    from ovbench.data.synthetic.vspw import write_synthetic_vspw

    yield from _shared(tmp_path_factory, "vspw_train", write_synthetic_vspw, "VSPW_480p",
                       videos=4, frames=3, height=40, width=71, seed=4)


@pytest.fixture(scope="session")
def vipseg_videos(tmp_path_factory):
    """VIPSeg_720P layout: 2 val videos (24, 17 frames; the stray value 200 in the first
    frame), 2 train videos, 40x60."""
    from ovbench.data.synthetic.panoptic import write_synthetic_vipseg

    yield from _shared(tmp_path_factory, "vipseg_videos", write_synthetic_vipseg, "VIPSeg_720P",
                       videos=4, height=40, width=60)


@pytest.fixture(scope="session")
def coco_images(tmp_path_factory):
    """COCO Panoptic layout: 3 val and 3 train images at 40x60, crowd segments in 2."""
    from ovbench.data.synthetic.panoptic import write_synthetic_coco

    yield from _shared(tmp_path_factory, "coco_images", write_synthetic_coco, "coco",
                       images=6, height=40, width=60)


@pytest.fixture(scope="session")
def vspw_sample():
    """The built-in sample where the CLI keeps it ($OVBENCH_CACHE/sample): made at most once
    per session, whether a test or `ovbench run` without --data-root asks first."""
    from ovbench.data.synthetic.sample import sample_root

    return sample_root()
