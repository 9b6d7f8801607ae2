"""The README's adapter example runs as written: the python block after the
`<!-- adapter-example` marker is saved as my_model.py and put through `ovbench check-model`,
so the README cannot drift from the API."""

from __future__ import annotations

import re
from pathlib import Path

from ovbench.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = "<!-- adapter-example"


def adapter_example() -> str:
    text = README.read_text(encoding="utf-8")
    assert MARKER in text, f"{README} has no {MARKER} marker before the adapter example"
    block = re.search(r"```python\n(.*?)```", text[text.index(MARKER):], re.DOTALL)
    assert block, f"no ```python block after {MARKER} in {README}"
    return block.group(1)


def test_readme_adapter_passes_check_model_offline_with_the_tiny_clip(tmp_path, capsys):
    plugin = tmp_path / "my_model.py"
    plugin.write_text(adapter_example())
    code = main(["check-model", "my-model", "--plugin", str(plugin), "--device", "cpu",
                 "--model-args", "clip=ovbench-tiny-vit,pretrained=none"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "OK, the adapter honours the ovbench contract" in out
    assert "RANDOM weights" in out  # the example reports what it runs with
