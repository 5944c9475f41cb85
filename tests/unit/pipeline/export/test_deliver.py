"""An export copied to its destination: a path on the work volume, or s3 (moto's
real S3 server on loopback, boto3's own managed upload)."""
import pytest

from mathtune_pipeline.errors import SpecError
from mathtune_pipeline.export import deliver


@pytest.fixture
def made(tmp_path):
    root = tmp_path / "export" / "hf"
    (root / "sub").mkdir(parents=True)
    (root / "config.json").write_text("{}")
    (root / "sub" / "model.safetensors").write_bytes(bytes(range(256)) * 4096)
    return root, [root / "config.json", root / "sub" / "model.safetensors"]


def test_to_a_path_relative_to_the_data_path(made, tmp_path):
    root, files = made
    where = deliver.deliver(files, root, "models/run-1", str(tmp_path / "data"), "hf")
    assert where == str(tmp_path / "data" / "models" / "run-1" / "hf")
    assert (tmp_path / "data/models/run-1/hf/sub/model.safetensors").read_bytes() == files[1].read_bytes()


def test_to_s3_and_a_bucket_that_refuses(made, moto_s3):
    root, files = made
    moto_s3.create_bucket(Bucket="models")
    where = deliver.deliver(files, root, "s3://models/runs/run-1", "/data", "hf")
    assert where == "s3://models/runs/run-1/hf/"
    body = moto_s3.get_object(Bucket="models", Key="runs/run-1/hf/sub/model.safetensors")["Body"].read()
    assert body == files[1].read_bytes()
    with pytest.raises(SpecError) as err:
        deliver.deliver(files, root, "s3://absent-bucket/runs", "/data", "hf")
    assert err.value.field == "spec.export.destination" and "NoSuchBucket" in str(err.value)


def test_another_scheme_is_refused_naming_the_field(made):
    root, files = made
    with pytest.raises(SpecError) as err:
        deliver.deliver(files, root, "gs://bucket/x", "/data", "hf")
    assert err.value.field == "spec.export.destination" and "s3://" in str(err.value)
