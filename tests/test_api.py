"""Typed model arguments and the registry."""

import dataclasses
from pathlib import Path
from typing import Literal

import pytest

from ovbench.api import ModelArgs, SegmentationModel, class_name_parts, parse_model_args, parse_pairs
from ovbench.errors import ConfigError
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
    [("sise=3", "did you mean size"), ("size=big", "expected int"), ("flag=maybe", "true or false"), ("mode=c", "one of a, b"), ("size", "not key=value")],
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
