"""The training step MindFormers runs on CPU (imported by the training worker, registers itself).

MindFormers' `MFTrainOneStepCell` asks the device for its float status with
Ascend-only ops (NPUGetFloatStatusV2). This subclass keeps everything else
(loss scale, grad clipping, MindFormers' keyword arguments) and decides
overflow from the gradients themselves: any non-finite value is an overflow,
which is what the NPU status flag reports too.
"""
from mindspore import ops
from mindformers.tools.register import MindFormerModuleType, MindFormerRegister
from mindformers.wrapper import MFTrainOneStepCell

from .cpu import CPU_WRAPPER


class CpuTrainOneStepCell(MFTrainOneStepCell):
    def get_overflow_status(self, status, compute_output):
        flags = [ops.logical_not(ops.isfinite(grad).all()) for grad in compute_output]
        return ops.stack(flags).any()


def register() -> None:
    """Idempotent: MindFormers' registry refuses a second class under the same name."""
    if not MindFormerRegister.is_exist(MindFormerModuleType.WRAPPER, CPU_WRAPPER):
        MindFormerRegister.register_cls(CpuTrainOneStepCell, MindFormerModuleType.WRAPPER, alias=CPU_WRAPPER)


register()
