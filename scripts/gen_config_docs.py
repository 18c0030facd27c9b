"""Write docs/configuration.md from the settings classes (tests check it is current)."""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic.fields import FieldInfo

from kubeingest.settings import (
    ApiSettings,
    CommonSettings,
    EmbedderSettings,
    OperatorSettings,
    SinkSettings,
)

SECTIONS = [
    ("Every process", CommonSettings, set()),
    ("Embedder (`kubeingest embedder`)", EmbedderSettings, set(CommonSettings.model_fields)),
    ("Sink (`kubeingest sink`)", SinkSettings, set(CommonSettings.model_fields) - {"metrics_port"}),
    ("HTTP API (`kubeingest api`)", ApiSettings, set(EmbedderSettings.model_fields)),
    ("Operator (`kubeingest operator`)", OperatorSettings,
     set(CommonSettings.model_fields) - {"metrics_port"}),
]


def _default(f: FieldInfo) -> str:
    if f.default_factory is not None:
        return "(computed)"
    d = f.default
    return "unset" if d is None else f"`{getattr(d, 'value', d)}`"


def render() -> str:
    out = [
        "# Configuration",
        "",
        "Every setting is an environment variable (`KUBEINGEST_` + the name in capitals); the",
        "chart fills secrets (Redis URL, Qdrant and API keys) from Kubernetes Secrets.",
        "Generated from `kubeingest/settings.py` by `python scripts/gen_config_docs.py`.",
        "",
    ]
    for title, cls, skip in SECTIONS:
        out += [f"## {title}", "", "| variable | default | meaning |", "| --- | --- | --- |"]
        for name, f in cls.model_fields.items():
            if name in skip:
                continue
            desc = (f.description or "").replace("\n", " ").replace("|", "\\|")
            out.append(f"| `KUBEINGEST_{name.upper()}` | {_default(f)} | {desc} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    target = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
    target.write_text(render())
    sys.stdout.write(f"wrote {target}\n")
