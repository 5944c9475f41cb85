"""MindSpore checkpoints as plain {name: numpy array} and back."""
from pathlib import Path
from typing import Dict, Optional, Union

import numpy as np


def read(path: Union[str, Path]) -> Dict[str, np.ndarray]:
    import mindspore as ms

    out = {}
    for name, param in ms.load_checkpoint(str(path)).items():
        value = param if param.dtype != ms.bfloat16 else param.astype(ms.float32)  # numpy has no bfloat16
        out[name] = value.asnumpy()
    return out


def write(params: Dict[str, np.ndarray], path: Union[str, Path], dtypes: Optional[Dict[str, object]] = None) -> Path:
    """Atomically: a crash never leaves a truncated checkpoint under the final name."""
    import mindspore as ms

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    items = []
    for name, value in params.items():
        tensor = ms.Tensor(value)
        if dtypes and name in dtypes and dtypes[name] != tensor.dtype:
            tensor = tensor.astype(dtypes[name])
        items.append({"name": name, "data": tensor})
    tmp = path.with_name(f".tmp-{path.name}")  # save_checkpoint wants the .ckpt suffix kept
    ms.save_checkpoint(items, str(tmp))
    tmp.replace(path)
    return path


def dtypes_of(path: Union[str, Path]) -> Dict[str, object]:
    import mindspore as ms

    return {name: param.dtype for name, param in ms.load_checkpoint(str(path)).items()}
