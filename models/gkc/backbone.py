"""GKC's backbone: the image trunk of a CLIP ResNet (open_clip's ModifiedResNet without its
attention pool), so the segmenter starts from CLIP's visual features and its queries live close
to CLIP's embedding space."""

from __future__ import annotations

import torch
from open_clip.modified_resnet import ModifiedResNet
from torch import nn


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
