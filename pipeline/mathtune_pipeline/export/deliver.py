"""Copies an export to its destination: a path on the work volume, or s3:// (same
endpoint and credentials as the data sources). Files go under
`<destination>/<format>/`; an s3 upload is boto3's managed multipart transfer,
which reads each file in pieces."""
import shutil
import urllib.parse
from pathlib import Path
from typing import List

from ..data.sources import resolve_local, s3_client, split_s3_uri
from ..errors import SpecError

FIELD = "spec.export.destination"


def location(destination: str, data_path: str, fmt: str) -> str:
    if urllib.parse.urlparse(destination).scheme == "s3":
        return destination.rstrip("/") + f"/{fmt}/"
    return str(resolve_local(destination, data_path) / fmt)


def deliver(files: List[Path], root: Path, destination: str, data_path: str, fmt: str, client=None) -> str:
    """Every file (relative to `root`) to the destination; the location written."""
    where = location(destination, data_path, fmt)
    scheme = urllib.parse.urlparse(destination).scheme
    if scheme == "s3":
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, prefix = split_s3_uri(where, FIELD)
        client = client or s3_client()
        try:
            for f in files:
                client.upload_file(str(f), bucket, prefix.rstrip("/") + "/" + f.relative_to(root).as_posix())
        except (Boto3Error, BotoCoreError, ClientError, OSError) as exc:  # upload_file wraps in Boto3Error
            raise SpecError(FIELD, f"an s3 destination this run can write ({where}: {exc})") from exc
        return where
    if scheme:
        raise SpecError(FIELD, f"a path on the work volume or an s3:// uri (got {destination!r})")
    target = Path(where)
    try:
        for f in files:
            dest = target / f.relative_to(root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(".tmp-" + dest.name)
            shutil.copyfile(f, tmp)
            tmp.replace(dest)
    except OSError as exc:
        raise SpecError(FIELD, f"a directory this run can write ({target}: {exc.strerror or exc})") from exc
    return where
