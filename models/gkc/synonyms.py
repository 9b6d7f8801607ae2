"""GKC's text diversification: per-class synonym lists, per-segment CLIP filtering, and the
per-image vocabulary rebuilt with a drawn synonym.

Training the classifier against one fixed name per class lets the query embeddings collapse
onto those few text vectors; drawing a different (segment-appropriate) synonym each step keeps
them spread over the region of CLIP's text space that the class occupies, which is what lets
unseen names land near the right queries.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Callable, Sequence

import torch
from ovbench.models.clip_loading import encode_prompts

from ovbench.api import class_name_parts

SYNONYM_FILE = "synonyms/vspw.json"  # inside ovbench.splits; made by scripts/make_synonyms.py
FILTER_PROMPT = "a photo of {}"
FILTER_THRESHOLD = 0.1


@cache
def _packaged() -> dict[str, list[str]]:
    return json.loads(resources.files("ovbench.splits").joinpath(SYNONYM_FILE).read_text())["synonyms"]


def load_synonyms(class_names: Sequence[str]) -> list[list[str]]:
    """Synonyms of each class (its own name parts first); a name unknown to the packaged list
    (a researcher's class) gets its name parts only."""
    table = _packaged()
    return [list(table.get(name, class_name_parts(name))) for name in class_names]


class SynonymBank:
    """The synonyms of a training vocabulary with their text embeddings, computed once (the text
    tower is frozen), addressed as (class, k)."""

    def __init__(self, class_names: Sequence[str], embed: Callable[[list[str]], torch.Tensor]):
        self.synonyms = load_synonyms(class_names)
        self.embeddings = embed([s for group in self.synonyms for s in group])
        counts = torch.tensor([len(group) for group in self.synonyms])
        self.starts = torch.cumsum(counts, 0) - counts

    def draw(self, classes: torch.Tensor, kept: Sequence[Sequence[int] | None]) -> torch.Tensor:
        """One synonym per segment, uniformly among its kept ones (all when `kept[i]` is None);
        returns rows of `embeddings`."""
        rows = []
        for cls, allowed in zip(classes.tolist(), kept):
            choices = allowed if allowed is not None else range(len(self.synonyms[cls]))
            pick = choices[int(torch.randint(len(choices), ()))]
            rows.append(int(self.starts[cls]) + pick)
        return torch.tensor(rows, dtype=torch.long)


def rebuild_vocabulary(
    text: torch.Tensor, owner: torch.Tensor, classes: torch.Tensor, replacement: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The vocabulary (P, D) / owner (P,) with every part of each class in `classes` (N,)
    replaced by one row, `replacement` (N, D): the drawn synonym takes the class's slot."""
    replaced = torch.zeros(int(owner.max()) + 1, dtype=torch.bool, device=owner.device)
    replaced[classes.to(owner.device)] = True
    keep = ~replaced[owner]
    return (
        torch.cat([text[keep], replacement.to(text)]),
        torch.cat([owner[keep], classes.to(owner)]),
    )


class SynonymFilter:
    """Keeps, per segment, the synonyms CLIP finds plausible for that segment's crop:
    probability > 0.1 under a softmax over the class's synonyms of CLIP similarities to
    "a photo of {synonym}". Drops senses that do not apply ("tool" -> "puppet") per segment
    instead of per class, so a polysemous name stays usable where it fits."""

    def __init__(self, teacher: torch.nn.Module, tokenizer, synonyms: list[list[str]], threshold: float = FILTER_THRESHOLD):
        self.threshold = threshold
        self.prompts = encode_prompts(teacher, tokenizer, [FILTER_PROMPT.format(s) for group in synonyms for s in group])
        owner = torch.repeat_interleave(torch.tensor([len(group) for group in synonyms]))
        self.owner = owner.to(self.prompts.device)
        self.starts = torch.cumsum(torch.bincount(owner, minlength=len(synonyms)), 0) - torch.bincount(owner, minlength=len(synonyms))
        self.scale = float(teacher.logit_scale.detach().exp())

    def keep(self, crop_embeddings: torch.Tensor, classes: torch.Tensor) -> list[list[int]]:
        """crop_embeddings (N, D) L2-normalised CLIP image embeddings of segment crops, classes
        (N,) -> per segment the indices of its kept synonyms (never empty: the most likely one
        stays when CLIP spreads its belief over many). One batched softmax, one host transfer."""
        logits = self.scale * crop_embeddings.float() @ self.prompts.T.to(crop_embeddings.device)
        own = self.owner.to(logits.device)[None] == classes.to(logits.device)[:, None]
        probs = logits.masked_fill(~own, float("-inf")).softmax(1)
        kept = (probs > self.threshold) | (torch.arange(probs.shape[1], device=probs.device)[None] == probs.argmax(1, keepdim=True))
        rows, cols = kept.nonzero().cpu().unbind(1)
        local = cols - self.starts[classes.cpu()[rows]]
        return [local[rows == i].tolist() for i in range(len(classes))]
