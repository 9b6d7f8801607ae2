"""GKC's backbones: the image trunk of a CLIP ResNet (open_clip's ModifiedResNet without its
attention pool), so the segmenter starts from CLIP's visual features and its queries live close
to CLIP's embedding space; and the paper's second variant, an ImageNet ResNet-101 (torchvision's
weights, read from a local file: nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from open_clip.modified_resnet import ModifiedResNet
from ovbench.models.gkc.config import GKCConfig
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from ovbench.errors import WeightsError, first_line

# torchvision's IMAGENET1K_V1 ResNet-101 (the classic weights detectron2-era models start from)
RESNET101_FILE = "resnet101-63fe2227.pth"
RESNET101_URL = f"https://download.pytorch.org/models/{RESNET101_FILE}"


def default_resnet101_file() -> Path:
    """Where torchvision itself would have cached the weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / RESNET101_FILE


def build_backbone(config: GKCConfig) -> nn.Module:
    if config.backbone == "torchvision-resnet101":
        return TorchvisionResNetTrunk()
    return CLIPResNetTrunk(config.backbone_layers, config.backbone_width, config.frozen_backbone_bn)


class CLIPResNetTrunk(ModifiedResNet):
    """Stem and layer1..4 of a CLIP ResNet, returning the stride 4/8/16/32 maps ("res2".."res5").

    Parameter names are those of `clip_model.visual`, so CLIP's weights load by name.
    With `frozen_bn`, batch norms are frozen as Mask2Former freezes pretrained ResNets
    (detectron2's FrozenBN): always in eval mode, scales and shifts not trained. They stay
    nn.BatchNorm2d modules, so eval uses the fused one-kernel batch norm, also under autocast."""

    def __init__(self, layers: list[int], width: int, frozen_bn: bool):
        # output_dim/heads/image_size only shape the attention pool, which is dropped below
        super().__init__(layers, output_dim=width * 32, heads=1, image_size=32, width=width)
        self.attnpool = None
        self.channels = [width * 4, width * 8, width * 16, width * 32]
        self.frozen_bn = frozen_bn
        if frozen_bn:
            for norm in self._batch_norms():
                norm.weight.requires_grad_(False)
                norm.bias.requires_grad_(False)
            self.train(self.training)

    def _batch_norms(self) -> list[nn.BatchNorm2d]:
        return [m for m in self.modules() if isinstance(m, nn.BatchNorm2d)]

    def train(self, mode: bool = True) -> CLIPResNetTrunk:
        super().train(mode)
        if self.frozen_bn:
            for norm in self._batch_norms():
                norm.train(False)
        return self

    def load_pretrained(self, clip_model: nn.Module | None, weights_file: Path | None) -> None:
        """Initialise from the CLIP model's image tower (the weights file is not used)."""
        if clip_model is not None:
            self.load_clip_visual(clip_model.visual)

    def load_clip_visual(self, visual: nn.Module) -> None:
        """Copy the trunk weights of a CLIP ResNet image tower (attention pool excluded)."""
        own = self.state_dict()
        source = {key: value for key, value in visual.state_dict().items() if key in own}
        missing = sorted(set(own) - set(source))
        if missing:
            raise ValueError(f"CLIP visual tower lacks trunk weights, e.g. {missing[0]!r}: is it a ResNet?")
        self.load_state_dict(source)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        features = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            features.append(x)
        return features


class TorchvisionResNetTrunk(nn.Module):
    """torchvision's ResNet-101 without pooling and classifier, returning res2..res5 (strides
    4/8/16/32), with frozen batch norms as Mask2Former's R-101 (detectron2's FrozenBN: fixed
    statistics, scales and shifts not trained). Parameter names are torchvision's, so its
    ImageNet state dict loads by name."""

    def __init__(self):
        super().__init__()
        resnet = torchvision.models.resnet101(weights=None, norm_layer=FrozenBatchNorm2d)
        self.conv1, self.bn1, self.relu, self.maxpool = resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4
        self.channels = [256, 512, 1024, 2048]

    def load_pretrained(self, clip_model: nn.Module | None, weights_file: Path | None) -> None:
        """Initialise from torchvision's ImageNet weights in `weights_file` (default: torch's hub
        cache). Never a silent random init: a missing or unreadable file is one clear error."""
        path = Path(weights_file) if weights_file is not None else default_resnet101_file()
        if not path.is_file():
            raise WeightsError(
                f"gkc-r101 starts from torchvision's ImageNet ResNet-101, not found at {path} (nothing is downloaded):"
                f" fetch {RESNET101_URL} there, or pass backbone_weights=FILE"
            )
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            own = self.state_dict()
            self.load_state_dict({key: value for key, value in state.items() if key in own})
        except Exception as error:  # truncated, pickled objects, another network's weights
            raise WeightsError(f"{path}: not torchvision's ResNet-101 state dict ({first_line(error)})") from None

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        features = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            features.append(x)
        return features
