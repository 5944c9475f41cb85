"""Training runs one worker per NPU the device plugin allocated."""
import pytest

from mathtune_pipeline.errors import SpecError
from mathtune_pipeline.mindformers import launch


def test_without_an_allocation_npus_per_node_says_it():
    assert launch.local_workers(2, env={}) == 2
    assert launch.local_workers(4, env={"ASCEND_VISIBLE_DEVICES": ""}) == 4


def test_the_allocation_is_counted():
    # Huawei's plugin lists the physical ids, in the kubelet's order.
    assert launch.local_workers(4, env={"ASCEND_VISIBLE_DEVICES": "6,1,3,4"}) == 4
    # MindCluster mode: the value of Volcano's huawei.com/Ascend910 pod annotation.
    assert launch.local_workers(2, env={"ASCEND_VISIBLE_DEVICES": "Ascend910-4,Ascend910-5"}) == 2


@pytest.mark.parametrize("visible", ["0,1,2", "0,1,1,2", "0,1,2,3,4"])
def test_an_allocation_that_disagrees_with_the_spec_names_the_field(visible):
    with pytest.raises(SpecError) as err:
        launch.local_workers(4, env={"ASCEND_VISIBLE_DEVICES": visible})
    assert err.value.field == "spec.resources.npusPerNode"
    assert f"ASCEND_VISIBLE_DEVICES={visible}" in str(err.value)
