"""GKC training end to end on a small synthetic VSPW: it learns (loss down, seen mIoU on
held-out videos far above the majority-class baseline), its checkpoints load back into the
adapter, and an interrupted run resumed from its checkpoint ends bit-identical to an
uninterrupted one."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import ovbench.models.gkc.train as train_module
import pytest
import safetensors
import torch
from ovbench.models.gkc.adapter import GKC, GKCBase
from ovbench.models.gkc.checkpoint import load_checkpoint
from ovbench.models.gkc.train import train_gkc
from ovbench.models.gkc.train_args import parse_train_args
from ovbench.models.gkc.train_step import param_groups

from ovbench.api import TrainJob
from ovbench.data.synthetic.vspw import write_synthetic_vspw
from ovbench.data.vspw import VSPW
from ovbench.errors import ConfigError
from ovbench.modelargs import parse_model_args
from ovbench.split import load_split

TINY = "config=gkc-tiny,clip_pretrained=none"
SMALL = "crop=48,crop_height=48,short_min=40,short_max=64,num_points=256,workers=0"


@pytest.fixture(scope="module")
def data_root(vspw_train) -> Path:
    """A few steps on a few frames: for resuming, checkpoints and errors."""
    return vspw_train


@pytest.fixture(scope="module")
def learnable_root(tmp_path_factory) -> Path:
    # 8 train videos cover every class of the generator's pool; the 8 val videos are held out
    return write_synthetic_vspw(tmp_path_factory.mktemp("gkc-train") / "vspw", videos=16, height=48, width=86, seed=0)


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: exact float equality between runs needs the same reduction order,
    and a 2-core test machine shared with other jobs is faster without thread contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run(cls, data_root: Path, out: Path, options: str, resume: bool = True, seed: int = 0) -> Path:
    model = cls(parse_model_args(cls.Args, TINY), torch.device("cpu"))
    job = TrainJob(
        data_root=data_root, split=load_split("vspw_train_seen"), out_dir=out, options=options,
        init=None, resume=resume, precision="fp32", seed=seed,
    )
    return model.train_model(job)


def read_log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


def seen_miou(checkpoint: Path, data_root: Path) -> tuple[float, float]:
    """(mIoU, majority-class mIoU) on vspw_seen (val videos), computed here from the confusion
    matrix definition (IoU averaged over the classes present in the ground truth)."""
    split = load_split("vspw_seen")
    model = GKC(parse_model_args(GKC.Args, f"checkpoint={checkpoint},clip_pretrained=none"), torch.device("cpu"))
    text = model.encode_text(list(split.class_names))
    data, lut, k = VSPW(data_root), split.gt_lut(), len(split.vocabulary)
    confusion = np.zeros((k, k), dtype=np.int64)
    with torch.no_grad():
        for video in data.videos("val"):
            for stem in data.frames(video):
                frame = torch.from_numpy(data.read_frame(video, stem)).permute(2, 0, 1)[None]
                gt = lut[data.read_mask(video, stem)].astype(np.int64)
                scores = torch.nn.functional.interpolate(model.predict(frame, text), size=gt.shape, mode="bilinear")
                pred = scores.argmax(1)[0].numpy()
                valid = gt != 255
                confusion += np.bincount(gt[valid] * k + pred[valid], minlength=k * k).reshape(k, k)
    rows, inter = confusion.sum(1), np.diag(confusion)
    present = rows > 0
    iou = inter[present] / (rows + confusion.sum(0) - inter)[present]
    majority = rows.max() / rows.sum() / present.sum()  # one class everywhere: its IoU is its pixel share
    return float(iou.mean()), float(majority)


@pytest.mark.slow
def test_training_reduces_the_loss_and_learns_the_seen_classes(learnable_root, tmp_path):
    data_root, out = learnable_root, tmp_path / "run"
    # the backbone is random-init here (tiny random CLIP), so it learns at the full rate
    options = f"iterations=100,batch_size=8,lr=2e-3,backbone_lr_mult=1,log_every=20,checkpoint_every=1000,{SMALL}"
    final = run(GKC, data_root, out, options)
    assert final == out / "final.safetensors" and final.is_file()
    log = read_log(out)
    assert [r["step"] for r in log] == [20, 40, 60, 80, 100]
    assert {"ce", "syn", "kd", "mask", "dice", "loss"} <= set(log[0])
    assert log[-1]["loss"] < 0.75 * log[0]["loss"]
    miou, majority = seen_miou(final, data_root)
    # 16 seen classes in the val videos; one class everywhere scores its pixel share / 16 (0.009).
    # The random text tower maps some names to nearly the same vector (road/tyre: cosine 0.99),
    # which caps what 100 steps reach (about 0.15); 0.06 is 7x the majority baseline, beyond
    # anything a model that does not tell classes apart can score.
    assert majority < 0.01
    assert miou > 0.06, miou
    metadata = load_checkpoint(final).metadata
    assert metadata["steps"] == "100" and metadata["split"] == "vspw_train_seen"
    assert json.loads(metadata["train_args"])["lr"] == 2e-3


class Interrupt(Exception):
    pass


@pytest.mark.slow
def test_an_interrupted_run_resumes_to_the_same_weights(data_root, tmp_path, monkeypatch):
    options = f"iterations=6,batch_size=2,checkpoint_every=3,log_every=1,{SMALL}"
    reference = run(GKC, data_root, tmp_path / "a", options)

    real_loader = train_module.train_loader

    def failing_loader(*args, **kwargs):
        batches = iter(real_loader(*args, **kwargs))  # made here, as train_gkc makes it: before step 0

        def stream():
            for _ in range(4):  # steps 0..3 run; step 4 never gets its batch
                yield next(batches)
            raise Interrupt

        return stream()

    monkeypatch.setattr(train_module, "train_loader", failing_loader)
    with pytest.raises(Interrupt):
        run(GKC, data_root, tmp_path / "b", options)
    state = torch.load(tmp_path / "b" / "train_state.pt", weights_only=True)
    assert state["step"] == 3 and state["weights"] == "step_0000003.safetensors"
    assert [r["step"] for r in read_log(tmp_path / "b")] == [1, 2, 3, 4]
    monkeypatch.setattr(train_module, "train_loader", real_loader)
    resumed = run(GKC, data_root, tmp_path / "b", options)

    untimed = lambda out: [{k: v for k, v in r.items() if k != "seconds"} for r in read_log(out)]
    assert untimed(tmp_path / "b") == untimed(tmp_path / "a")  # same steps, same losses
    with safetensors.safe_open(str(reference), "pt") as a, safetensors.safe_open(str(resumed), "pt") as b:
        assert sorted(a.keys()) == sorted(b.keys())
        for key in a.keys():
            assert torch.equal(a.get_tensor(key), b.get_tensor(key)), key
    # --overwrite (resume=False) on the finished folder starts over: with seed 1 it ends where a
    # fresh seed-1 run ends (a resume would have kept the seed-0 weights), with a fresh log
    other = run(GKC, data_root, tmp_path / "c", options, seed=1)
    overwritten = run(GKC, data_root, tmp_path / "b", options, resume=False, seed=1)
    assert untimed(tmp_path / "b") == untimed(tmp_path / "c")
    with safetensors.safe_open(str(reference), "pt") as a, safetensors.safe_open(str(other), "pt") as c, \
            safetensors.safe_open(str(overwritten), "pt") as b:
        assert not torch.equal(a.get_tensor("network.kd_embed.weight"), c.get_tensor("network.kd_embed.weight"))
        for key in c.keys():
            assert torch.equal(b.get_tensor(key), c.get_tensor(key)), key


@pytest.mark.slow
def test_a_half_written_log_line_does_not_stop_a_resume(data_root, tmp_path):
    options = f"iterations=2,batch_size=1,checkpoint_every=1,log_every=1,{SMALL}"
    run(GKC, data_root, tmp_path, options)
    log = tmp_path / "train_log.jsonl"
    log.write_text(log.read_text().splitlines(keepends=True)[0] + '{"step": 2, "lo')  # killed mid-write
    state = torch.load(tmp_path / "train_state.pt", weights_only=True)
    state["step"], state["weights"] = 1, "step_0000001.safetensors"
    torch.save(state, tmp_path / "train_state.pt")
    run(GKC, data_root, tmp_path, options)
    assert [r["step"] for r in read_log(tmp_path)] == [1, 2]


class Payload:  # a pickled object: weights_only loading must refuse it
    pass


@pytest.mark.parametrize("content", [b"\x80\x04 truncated", "pickled"])
def test_a_damaged_or_pickled_train_state_is_one_line_naming_it(data_root, tmp_path, content):
    from ovbench.errors import WeightsError

    if content == "pickled":
        torch.save({"step": Payload()}, tmp_path / "train_state.pt")
    else:
        (tmp_path / "train_state.pt").write_bytes(content)
    with pytest.raises(WeightsError, match=r"train_state\.pt: cannot resume") as caught:
        run(GKC, data_root, tmp_path, f"iterations=1,batch_size=1,{SMALL}")
    assert "\n" not in str(caught.value)
    run(GKC, data_root, tmp_path, f"iterations=1,batch_size=1,{SMALL}", resume=False)  # --overwrite starts over


def test_weight_decay_as_mask2former_biases_decayed_norms_and_scalars_not():
    from ovbench.models.gkc.losses import GKCCriterion, LossConfig
    from ovbench.models.gkc.network import GKCNetwork

    args = parse_train_args(GKC, "")
    network = GKCNetwork(GKC(parse_model_args(GKC.Args, TINY), torch.device("cpu")).config)
    criterion = GKCCriterion(LossConfig())
    decay = {id(p): g["weight_decay"] for g in param_groups(network, criterion, args) for p in g["params"]}
    norms = (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.BatchNorm2d, torch.nn.Embedding)
    for module in network.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            expected = 0.0 if isinstance(module, norms) or param.ndim == 0 else args.weight_decay
            assert decay[id(param)] == expected, (type(module).__name__, name)
    assert decay[id(network.class_embed[0].bias)] == args.weight_decay
    assert decay[id(network.logit_scale)] == 0.0 and decay[id(criterion.kd_scale)] == 0.0


@pytest.mark.slow
def test_checkpoint_round_trips_into_the_adapter(data_root, tmp_path, monkeypatch):
    final = run(GKCBase, data_root, tmp_path / "base", f"iterations=2,batch_size=2,log_every=1,{SMALL}")
    log = read_log(tmp_path / "base")
    assert "syn" not in log[0] and "kd" not in log[0]  # gkc-base: plain Mask2Former losses
    model = GKC(parse_model_args(GKC.Args, f"checkpoint={final},clip_pretrained=none"), torch.device("cpu"))
    with safetensors.safe_open(str(final), "pt") as handle:
        stored = {k[len("network.") :]: handle.get_tensor(k) for k in handle.keys() if k.startswith("network.")}
    state = model.network.state_dict()
    assert stored.keys() == state.keys() and all(torch.equal(stored[k], state[k]) for k in stored)
    # starting another run from it (job.init) begins from exactly these weights
    seen = {}
    real_network = train_module.GKCNetwork

    class Spy(real_network):
        def forward(self, *args, **kwargs):
            seen.setdefault("state", {k: v.clone() for k, v in self.state_dict().items()})
            return super().forward(*args, **kwargs)

    monkeypatch.setattr(train_module, "GKCNetwork", Spy)
    model = GKC(parse_model_args(GKC.Args, TINY), torch.device("cpu"))
    job = TrainJob(data_root, load_split("vspw_train_seen"), tmp_path / "init", f"iterations=1,batch_size=2,{SMALL}", final, False, "fp32", 0)
    train_gkc(model, job)
    assert all(torch.equal(seen["state"][k], stored[k]) for k in stored)


def test_train_args_reject_bad_values_and_apply_the_model_defaults():
    assert parse_train_args(GKCBase, "").kd_weight == 0 and parse_train_args(GKCBase, "").syn_weight == 0
    assert parse_train_args(GKCBase, "kd_weight=1").kd_weight == 1  # the user's word wins
    assert parse_train_args(GKC, "").kd_weight == 2.0
    with pytest.raises(ConfigError, match="iteration"):
        parse_train_args(GKC, "iteration=5")
    with pytest.raises(ConfigError, match="region_dropout"):
        parse_train_args(GKC, "region_dropout=1")
    with pytest.raises(ConfigError, match="lr_steps"):
        parse_train_args(GKC, "schedule=step,lr_steps=0.5;0.9")
    args = parse_train_args(GKC, "iterations=100,schedule=step,lr_steps=0.5:0.9")
    assert [args.lr_factor(s) for s in (0, 49, 50, 89, 90)] == pytest.approx([1, 1, 0.1, 0.1, 0.01])
    poly = parse_train_args(GKC, "iterations=100,warmup_iters=10")
    assert poly.lr_factor(0) == pytest.approx(0.1) and poly.lr_factor(50) == pytest.approx(0.5**0.9)


def test_step_builder_draws_filtered_synonyms_and_feeds_them_to_tgkd(monkeypatch):
    """With real (here: treated as real) CLIP weights every segment draws among the synonyms
    the filter keeps for its crop; its T_i is the drawn synonym's embedding, which also fills the
    class's slot in the image's rebuilt vocabulary; the teacher sees at most max_kd_regions."""
    import open_clip
    from ovbench.models.clip_loading import create_clip
    from ovbench.models.gkc.synonyms import SynonymFilter
    from ovbench.models.gkc.train_step import StepBuilder

    clip, _ = create_clip("ovbench-tiny-rn", "none")
    tokenizer = open_clip.get_tokenizer("ovbench-tiny-rn")
    names = ["tool", "chair_or_seat", "sky"]
    args = parse_train_args(GKC, "max_kd_regions=3")
    kept_log = []
    real_keep = SynonymFilter.keep

    def spy(self, embeddings, classes):
        kept = real_keep(self, embeddings, classes)
        kept_log.append((classes.tolist(), kept))
        return kept

    monkeypatch.setattr(SynonymFilter, "keep", spy)
    builder = StepBuilder(clip, tokenizer, False, names, ("{}",), args, 1, lambda message: None)
    assert builder.filter is not None and builder.teacher is clip
    torch.manual_seed(0)
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    masks = torch.zeros(3, 32, 32, dtype=torch.bool)
    masks[0, :16], masks[1, 16:, :8], masks[2, 16:, 8:] = True, True, True
    targets = [{"labels": torch.tensor([0, 1, 2]), "masks": masks}, {"labels": torch.tensor([1]), "masks": masks[:1]}]
    step = builder(images, targets)
    assert sum(len(r.targets) for r in step.kd) == 3  # capped at max_kd_regions
    # every segment is filtered, the one beyond the distillation cap too: one call per image
    assert [classes for classes, _ in kept_log] == [t["labels"].tolist() for t in targets]
    for b, (target, regions, (_, kept)) in enumerate(zip(targets, step.kd, kept_log)):
        present = target["labels"].tolist()
        text, owner = step.syn_vocab[b]
        assert sorted(owner.tolist()) == sorted([o for o in builder.owner.tolist() if o not in present] + present)
        for r, cls in enumerate(present):
            drawn = text[owner == cls][0]
            row = int((builder.bank.embeddings == drawn).all(1).nonzero()[0])
            assert row - int(builder.bank.starts[cls]) in kept[r]  # drawn among the kept ones
        for r, t_i in zip(regions.targets.tolist(), regions.text):
            assert torch.equal(text[owner == present[r]][0], t_i)  # T_i is the synonym in the class's slot
        if len(regions.targets):  # TGKD's teacher: the filter's embeddings of exactly its regions
            from ovbench.models.gkc.losses import masked_crops

            crops = masked_crops(images[b], target["masks"][regions.targets], builder.size, builder.mean, builder.std)
            with torch.no_grad():
                torch.testing.assert_close(regions.teacher, clip.encode_image(crops, normalize=True).float())


@pytest.mark.slow
def test_r101_training_without_its_imagenet_file_is_one_clear_error(data_root, tmp_path):
    from ovbench.errors import WeightsError

    model = GKC(parse_model_args(GKC.Args, f"config=gkc-r101,clip_pretrained=none,backbone_weights={tmp_path}/r101.pth"),
                torch.device("cpu"))
    job = TrainJob(data_root, load_split("vspw_train_seen"), tmp_path / "out", f"iterations=1,batch_size=1,{SMALL}", None, True, "fp32", 0)
    with pytest.raises(WeightsError, match=r"r101\.pth.*nothing is downloaded"):
        train_gkc(model, job)
    assert not (tmp_path / "out").exists()  # nothing written


def test_cpu_training_uses_the_runners_thread_policy(data_root, tmp_path, monkeypatch):
    """20 tiny iterations ran 17x slower with OpenMP threads fighting the data workers: train
    leaves cores to its workers exactly as `ovbench run` does."""
    import ovbench.run.distributed

    calls = []
    monkeypatch.setattr(ovbench.run.distributed, "leave_cores_to_workers", calls.append)
    run(GKC, data_root, tmp_path, f"iterations=1,batch_size=1,{SMALL}")
    assert calls == [0]  # SMALL has workers=0


def test_a_resume_with_other_train_args_or_another_split_is_refused(data_root, tmp_path):
    """Issue 23.2 and 23.7c: `--out` holding another training (other lr and crop, more
    iterations, another split) is one line naming what differs, never a silent continuation."""
    options = f"iterations=2,batch_size=2,checkpoint_every=1,log_every=1,{SMALL}"
    run(GKC, data_root, tmp_path / "out", options)
    with pytest.raises(ConfigError, match=r"holds another training \(.*iterations: 2 -> 3.*lr: .*pass --overwrite"):
        run(GKC, data_root, tmp_path / "out", options.replace("iterations=2", "iterations=3") + ",lr=0.002")
    model = GKC(parse_model_args(GKC.Args, TINY), torch.device("cpu"))
    other_split = dataclasses.replace(load_split("vspw_train_seen"), name="another", hash="sha256:another")
    job = TrainJob(data_root=data_root, split=other_split, out_dir=tmp_path / "out", options=options, init=None, resume=True,
                   precision="fp32", seed=0)
    with pytest.raises(ConfigError, match=r"holds another training \(data: .*another"):
        model.train_model(job)
    run(GKC, data_root, tmp_path / "out", options)  # the same training: resumes (at its end)
