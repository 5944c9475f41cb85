"""Bring a data uri to a local file: a path, http(s)://, or s3:// (Huawei OBS speaks S3).

A uri with no scheme is a path; a relative one resolves against the spec's
`storage.dataPath` (the work volume). Remote files are downloaded next to the
stage's output, streamed to a temp name and renamed when complete. S3 takes its
endpoint from S3_ENDPOINT (or boto3's own AWS_ENDPOINT_URL) and its credentials
from the standard AWS variables, never from the spec.

Errors that will not go away on a retry (no such file, HTTP 4xx, wrong sha256,
no credentials) are SpecErrors (exit 2); network trouble is left to raise, so
the operator retries the pod.
"""
import hashlib
import base64
import http.client
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Optional

from ..errors import SpecError

_CHUNK = 1 << 20
HTTP_TIMEOUT_SECONDS = 60


def resolve_local(uri: str, data_path: str) -> Path:
    path = Path(uri[len("file://"):] if uri.startswith("file://") else uri)
    return path if path.is_absolute() else Path(data_path) / path


def shown(uri: str) -> str:
    """The uri as messages, results and manifests show it: a password in its user part and its
    query string (a presigned URL's signature is a token) left out. Local paths as they are."""
    parts = urllib.parse.urlsplit(str(uri))
    if parts.scheme.lower() not in ("http", "https", "s3") or not (parts.password or parts.query):
        return str(uri)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    if parts.username:
        netloc = f"{parts.username}:***@{netloc}" if parts.password else f"{parts.username}@{netloc}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "<query hidden>" if parts.query else "", ""))


def _download_http(uri: str, dest: Path, field: str) -> None:
    parts = urllib.parse.urlsplit(uri)
    headers = {"User-Agent": "mathtune-pipeline"}
    if parts.username is not None:
        # urllib does not take credentials in the URL: send them as HTTP basic auth, and keep
        # them out of the URL the request (and any error about it) holds.
        token = base64.b64encode(f"{urllib.parse.unquote(parts.username)}:"
                                 f"{urllib.parse.unquote(parts.password or '')}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
        uri = urllib.parse.urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path, parts.query, ""))
    request = urllib.request.Request(uri, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response, open(dest, "wb") as out:
            shutil.copyfileobj(response, out, _CHUNK)
    except urllib.error.HTTPError as exc:
        if 400 <= exc.code < 500:
            raise SpecError(field, f"a downloadable file ({shown(uri)}: HTTP {exc.code} {exc.reason})") from None
        raise OSError(f"{shown(uri)}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, ValueError) as exc:
        # Transient (exit 1, retried), said without the URL's secrets: an exception's own text may hold
        # them. (A full disk is an OSError about the file written, and goes up as it is.)
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc.__class__.__name__
        raise OSError(f"{shown(uri)}: {reason}") from None


def s3_endpoint() -> Optional[str]:
    return os.environ.get("S3_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL") or None


def s3_client():
    """The boundary to object storage: a boto3 S3 client on the configured endpoint."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=s3_endpoint(),
                        config=Config(retries={"max_attempts": 5, "mode": "standard"},
                                      s3={"addressing_style": "path"}))


def split_s3_uri(uri: str, field: str):
    parsed = urllib.parse.urlparse(uri)
    bucket, key = parsed.netloc, parsed.path.lstrip("/")
    if not bucket or not key:
        raise SpecError(field, f"s3://bucket/key (got {shown(uri)!r})")
    return bucket, key


def _download_s3(uri: str, dest: Path, field: str, client=None) -> None:
    from botocore.exceptions import ClientError, NoCredentialsError

    bucket, key = split_s3_uri(uri, field)
    client = client or s3_client()
    try:
        client.download_file(bucket, key, str(dest))
    except NoCredentialsError as exc:
        raise SpecError(field, "S3 credentials in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)") from exc
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchKey", "NoSuchBucket", "403", "AccessDenied", "InvalidAccessKeyId",
                    "SignatureDoesNotMatch"):
            raise SpecError(field, f"a readable object ({shown(uri)}: {code})") from exc
        raise


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(uri: str, data_path: str, download_dir: Path, field: str = "spec.data.source.uri",
          sha256: str = "", s3=None, allow_dir: bool = False) -> Path:
    """A local path holding the uri's bytes, sha256-verified when `sha256` is given.
    `allow_dir`: a local directory is accepted too (the caller reads the files in it)."""
    if not isinstance(uri, str) or not uri.strip():
        raise SpecError(field, "a local path, http(s):// or s3:// uri")
    scheme = urllib.parse.urlparse(uri).scheme.lower()
    if scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt"):
        path = resolve_local(uri, data_path)
        if allow_dir and path.is_dir():
            if sha256:
                raise SpecError(field.rsplit(".", 1)[0] + ".sha256",
                                f"empty for a directory source ({shown(uri)}): a SHA-256 verifies one file")
            return path
        if not path.is_file():
            raise SpecError(field, f"an existing file{' or directory' if allow_dir else ''} ({path})")
    elif scheme in ("http", "https", "s3"):
        download_dir.mkdir(parents=True, exist_ok=True)
        name = Path(urllib.parse.urlparse(uri).path).name or "download"
        path = download_dir / name
        partial = download_dir / f".{name}.partial"
        if scheme == "s3":
            _download_s3(uri, partial, field, s3)
        else:
            _download_http(uri, partial, field)
        partial.replace(path)
    else:
        raise SpecError(field, f"a local path, http(s):// or s3:// uri (scheme {scheme!r} is not supported)")
    if sha256:
        expected = sha256.strip().lower()
        actual = sha256_of(path)
        if actual != expected:
            raise SpecError(field.rsplit(".", 1)[0] + ".sha256", f"{expected} (the file {shown(uri)} has {actual})")
    return path
