"""Regenerate splits/synonyms/vspw.json: WordNet noun synonyms of the 124 VSPW classes.

GKC's text diversification draws, per ground-truth segment, one synonym of its class name; the
synonyms are the lemmas of every WordNet noun sense of each name part ("handrail_or_fence" ->
"handrail", "fence"). The json is committed so training needs no WordNet; this script only
documents (and redoes) how it was made, byte for byte:

    apt-get install -y wordnet-base          # WordNet 3.0 data in /usr/share/wordnet
    python scripts/make_synonyms.py          # writes splits/synonyms/vspw.json

The WordNet database files are read directly (index.noun for a lemma's senses, data.noun for
each sense's lemmas, noun.exc plus WordNet's noun suffix rules for plurals such as "textiles"),
so no nltk corpus download is needed.

Senses: a class name's first WordNet sense (the most frequent) that names a visible thing says
what kind of thing the class is (an artifact, an animal, a substance...), and only the senses
in that same lexicographer file are kept: "tool" keeps the implement and loses the slang body-part and
person senses, "stone" loses the people named Stone, "water" loses urine. Among what remains,
the per-segment CLIP filter at training time discards senses that do not match the segment.
BLOCKLIST then removes, whatever their sense, the words reviewed as vulgar or offensive or as
naming drugs, which must never become training text.
A lemma that is a name part of another VSPW class is dropped: using "instrument" (unseen) as a
synonym of "tool" (seen) would train the unseen name on seen pixels. A lemma found for several
classes ("bike": bicycle and motorcycle; "bath": bathtub and tub) is dropped too: it tells
them apart in neither, and two vocabulary slots with the same text make the cross-entropy
contradictory.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from ovbench.api import class_name_parts
from ovbench.data.vspw import load_class_names

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "splits" / "synonyms" / "vspw.json"
# WordNet's morphy detachment rules for nouns (suffix -> replacement), tried in this order.
NOUN_SUFFIX_RULES = (("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"),
                     ("shes", "sh"), ("men", "man"), ("ies", "y"))
# WordNet lexicographer files of things a segment can show: noun.Tops (03), animal, artifact,
# food, object, person, plant, substance. Not noun.location (15): its first sense would make
# "tyre" the city of Tyre ("sur") rather than a tire.
VISIBLE_KINDS = frozenset({3, 5, 6, 13, 17, 18, 20, 27})
# Reviewed by hand against the generated list: vulgar, offensive or drug words. Most are
# already gone with their senses (see above); the list is a safety net over that filter.
BLOCKLIST = frozenset({
    "arse", "ass", "ballock", "bollock", "bum", "butt", "buttocks", "cock", "dick", "fanny", "keister",
    "pecker", "piss", "pee", "piddle", "prat", "prick", "putz", "tooshie", "tush", "weewee", "urine",
    "meth", "methamphetamine", "methamphetamine hydrochloride", "methedrine", "deoxyephedrine", "shabu",
    "crank", "ice", "glass", "chalk", "trash", "khat", "kat", "qat", "quat", "african tea", "arabian tea",
    "testicle", "testis", "nut", "orchis", "egg", "old bag", "frump", "blackguard", "bounder", "cad",
    "idiot box", "boob tube", "tummy", "potbelly",
    "dope", "gage", "grass", "green goddess", "locoweed", "mary jane", "sens", "sess", "skunk", "smoke", "weed",
})


def read_index(wordnet: Path) -> dict[str, list[int]]:
    """lemma -> synset offsets of its noun senses (index.noun; license header lines start with a space)."""
    senses: dict[str, list[int]] = {}
    for line in (wordnet / "index.noun").read_text().splitlines():
        if line.startswith(" "):
            continue
        fields = line.split()
        synset_count, pointer_count = int(fields[2]), int(fields[3])
        offsets_at = 4 + pointer_count + 2
        senses[fields[0]] = [int(o) for o in fields[offsets_at : offsets_at + synset_count]]
    return senses


def read_synset_lemmas(wordnet: Path, offsets: set[int]) -> dict[int, tuple[int, list[str]]]:
    """synset offset -> (lexicographer file number, its lemmas), for the wanted synsets only
    (data.noun lines start with the offset, then the file number)."""
    lemmas: dict[int, tuple[int, list[str]]] = {}
    for line in (wordnet / "data.noun").read_text().splitlines():
        if line.startswith(" "):
            continue
        fields = line.split(" ", 4)
        offset = int(fields[0])
        if offset not in offsets:
            continue
        word_count = int(fields[3], 16)
        words = fields[4].split(" ")[: 2 * word_count : 2]
        lemmas[offset] = (int(fields[1]), [w.replace("_", " ").lower() for w in words])
    return lemmas


def read_exceptions(wordnet: Path) -> dict[str, str]:
    exceptions = {}
    for line in (wordnet / "noun.exc").read_text().splitlines():
        inflected, base = line.split()[:2]
        exceptions[inflected] = base
    return exceptions


def base_form(word: str, index: dict[str, list[int]], exceptions: dict[str, str]) -> str | None:
    """The WordNet noun lemma for `word` (already lower case, words joined by "_"), or None."""
    if word in index:
        return word
    if exceptions.get(word) in index:
        return exceptions[word]
    for suffix, replacement in NOUN_SUFFIX_RULES:
        if word.endswith(suffix) and (candidate := word[: -len(suffix)] + replacement) in index:
            return candidate
    return None


def same_kind_lemmas(offsets: list[int], synsets: dict[int, tuple[int, list[str]]]) -> set[str]:
    """Lemmas of the senses in the lexicographer file of the first sense that names a visible
    thing (none when no sense does)."""
    kinds = [synsets[o][0] for o in offsets if synsets[o][0] in VISIBLE_KINDS]
    return {w for o in offsets if kinds and synsets[o][0] == kinds[0] for w in synsets[o][1]}


def make_synonyms(wordnet: Path) -> dict[str, list[str]]:
    """class name -> its own name parts first, then the other WordNet lemmas sorted."""
    index, exceptions = read_index(wordnet), read_exceptions(wordnet)
    names = load_class_names()
    parts = {name: class_name_parts(name) for name in names}
    lemma_of = {name: [base_form(p.replace(" ", "_"), index, exceptions) for p in parts[name]] for name in names}
    wanted = {o for lemmas in lemma_of.values() for lemma in lemmas if lemma for o in index[lemma]}
    synset_lemmas = read_synset_lemmas(wordnet, wanted)
    found = {
        name: {w for lemma in lemma_of[name] if lemma for w in same_kind_lemmas(index[lemma], synset_lemmas)}
        - set(parts[name]) - BLOCKLIST
        for name in names
    }
    claims = Counter(w for name in names for w in found[name] | set(parts[name]))
    return {name: parts[name] + sorted(w for w in found[name] if claims[w] == 1) for name in names}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wordnet", type=Path, default=Path("/usr/share/wordnet"), help="WordNet 3.0 dict folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if not (args.wordnet / "index.noun").is_file():
        raise SystemExit(f"{args.wordnet}/index.noun not found: apt-get install wordnet-base, or pass --wordnet DIR")
    payload = {
        "source": "WordNet 3.0 noun lemmas of the senses of each class name part of the same kind as its first"
                  " sense, reviewed blocklist removed (scripts/make_synonyms.py)",
        "synonyms": make_synonyms(args.wordnet),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1, sort_keys=True, ensure_ascii=True) + "\n")
    total = sum(len(v) for v in payload["synonyms"].values())
    print(f"wrote {args.out}: {len(payload['synonyms'])} classes, {total} names")


if __name__ == "__main__":
    main()
