"""MindFormers configs on disk, and models built from them by MindFormers itself.

Imports of MindSpore/MindFormers happen inside the functions: rendering a
config (the operator's tests, `prepare`) must not pay for them.
"""
import os
from pathlib import Path
from typing import Any, Dict, Union

import numpy as np
import yaml


def use_output_dir(path: Union[str, Path]) -> None:
    """Where MindFormers puts its logs and side files in this process (default ./output, the
    working directory's). Read when MindFormers is first imported, so call this before."""
    os.environ["LOCAL_DEFAULT_PATH"] = str(path)


class _NoAliases(yaml.SafeDumper):
    """Write shared dicts out in full: MindFormers reads anchors, people read plain YAML better."""

    def ignore_aliases(self, data):
        return True


def write_config(config: Dict[str, Any], path: Union[str, Path]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(yaml.dump(config, Dumper=_NoAliases, sort_keys=False, allow_unicode=True), encoding="utf-8")
    tmp.replace(path)
    return path


def load_config(source: Union[str, Path, Dict[str, Any]]):
    """A `MindFormerConfig` from a YAML path or a dict: MindFormers' own parsing and checks."""
    from mindformers import MindFormerConfig

    if isinstance(source, dict):
        return MindFormerConfig(**source)
    return MindFormerConfig(str(source))


def set_cpu_context(seed: int = 0) -> None:
    import mindspore as ms

    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    ms.set_seed(seed)


def build_network(config):
    """The model of a MindFormers config, LoRA applied by MindFormers' pet code when configured."""
    from mindformers.models.build_model import build_network as mf_build

    return mf_build(config.model)


def trainable_count(network) -> int:
    return int(sum(np.prod(p.shape) for p in network.trainable_params()))


def total_count(network) -> int:
    return int(sum(np.prod(p.shape) for p in network.get_parameters()))
