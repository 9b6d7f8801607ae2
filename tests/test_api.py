"""Typed model arguments and the registry."""

import dataclasses
from pathlib import Path
from typing import Annotated, Literal

import pytest

from ovbench.api import SegmentationModel, class_name_parts
from ovbench.errors import ConfigError
from ovbench.modelargs import ModelArgs, PositiveInt, Range, parse_model_args, parse_pairs
from ovbench.registry import get_model_class, register_model


@dataclasses.dataclass
class Args(ModelArgs):
    checkpoint: str | None = None
    size: int = 3
    scale: float = 1.0
    flag: bool = False
    mode: Literal["a", "b"] = "a"
    path: Path = Path(".")


def test_values_are_typed():
    args = parse_model_args(Args, "checkpoint=x.safetensors,size=5,scale=0.5,flag=yes,mode=b,path=~/w")
    assert args == Args("x.safetensors", 5, 0.5, True, "b", Path("~/w").expanduser())
    assert parse_model_args(Args, "checkpoint=none").checkpoint is None
    assert parse_model_args(Args, {"size": 7}).size == 7
    assert parse_pairs("a=1,b=x=y") == {"a": "1", "b": "x=y"}


@pytest.mark.parametrize(
    "spec, message",
    [("sise=3", "did you mean size"), ("size=big", "expected int"), ("flag=maybe", "true or false"), ("mode=c", "one of a, b"), ("size", "not key=value"),
     ("size=1,size=2", "size is given twice"), ("=3", "no key before '='")],
)
def test_bad_arguments_name_the_key(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_model_args(Args, spec)


def test_required_argument():
    @dataclasses.dataclass
    class Needs(ModelArgs):
        checkpoint: str

    with pytest.raises(ConfigError, match="missing model argument"):
        parse_model_args(Needs, "")


def test_class_name_parts():
    assert class_name_parts("billboard_or_Bulletin_Board") == ["billboard", "bulletin board"]
    assert class_name_parts("wall") == ["wall"]


def test_registry_rejects_a_second_class_under_one_id():
    @register_model("test-dup")
    class First(SegmentationModel):
        def encode_text(self, names): ...
        def predict(self, frames, text): ...

    with pytest.raises(ConfigError, match="registered twice"):
        @register_model("test-dup")
        class Second(First):
            pass

    assert get_model_class("test-dup") is First
    with pytest.raises(ConfigError, match="did you mean test-dup"):
        get_model_class("test-dpu")


@dataclasses.dataclass
class Bounded(ModelArgs):
    input_size: PositiveInt | None = None
    crops: PositiveInt = 4
    fraction: Annotated[float, Range(min=0, max=1)] = 0.5


@pytest.mark.parametrize(
    "spec, message",
    [
        ("input_size=0", r"input_size=0: must be in 1..inf"),
        ("input_size=-448", r"input_size=-448: must be in 1..inf"),
        ("crops=0", r"crops=0: must be in 1..inf"),
        ("fraction=1.5", r"fraction=1.5: must be in 0..1"),
        ("fraction=-0.1", r"fraction=-0.1: must be in 0..1"),
        ("fraction=nan", r"fraction='nan': expected a finite number"),
        ("fraction=inf", r"fraction='inf': expected a finite number"),
    ],
)
def test_bounded_arguments_are_refused_by_name(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_model_args(Bounded, spec)


def test_bounds_accept_their_edges_and_none():
    assert parse_model_args(Bounded, "input_size=1,crops=1,fraction=0") == Bounded(1, 1, 0.0)
    assert parse_model_args(Bounded, "input_size=none,fraction=1").input_size is None
    assert parse_model_args(Bounded, {"input_size": 448}).input_size == 448


@pytest.mark.parametrize("size", ["0", "-1"])
def test_gkc_input_size_names_the_argument_not_the_model(tmp_path, capsys, size):
    from ovbench.cli import main

    code = main(["run", "--model", "gkc", "--split", "vspw_unseen", "--model-args", f"input_size={size}", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("ovbench: error:")]
    assert code == 2 and len(errors) == 1 and f"model argument input_size={size}: must be in 1..inf" in errors[0]
