"""Split definitions as data: one protocol JSON file per protocol (and GKC's synonym lists in
`synonyms/`), installed as package data of `ovbench.splits`. The code that reads them is
`ovbench.split` (Split, load_split, list_splits), re-exported here so that
`from ovbench.splits import load_split` keeps working."""

from ovbench.split import Split, list_splits, load_split

__all__ = ["Split", "list_splits", "load_split"]
