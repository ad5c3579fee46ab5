"""The media store on S3 or an S3-compatible server (MinIO...), for ``media_store =
"s3://BUCKET/PREFIX"``. boto3 is imported only then (framework/web/requirements-s3.txt): request signing
is not ours to write.

The same interface as media.MediaStore, with objects ``PREFIX/<directory>/<name>`` in the
bucket for files. Uploads are still spooled to ``media_root/.incoming`` on local disk and
put from there in one request; the Content-Type sniffed from the content is stored with
the object. Served through the server at the same /media/ URLs: streamed from S3 piece by
piece (never read whole into memory) with the object's ETag and Last-Modified, one byte
range passed through as a Range (several: the whole object, as allowed), If-None-Match
passed through (304); or, with ``s3_presign_seconds``, a 302 to a presigned URL.
"""
from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from framework.server.config import ConfigError
from framework.web.media import MediaStore, mime_fields, safe_name, with_random_suffix
from framework.web.multipart import FilePart
from framework.web.responses import Response
from framework.web.sniff import sniff

T = TypeVar("T")

S3_REQUIREMENT = "framework/web/requirements-s3.txt"
READ_PIECE = 256 * 1024  # bytes pulled from S3 per piece of a streamed answer
S3_CONNECT_TIMEOUT, S3_READ_TIMEOUT = 5, 20  # seconds
SWEEP_MIN_AGE = 3600.0  # seconds: a younger object may be about to get its row on another host
SINGLE_RANGE = re.compile(r"bytes=(\d+-\d*|-\d+)")


def parse_location(value: str) -> tuple[str, str]:
    """``s3://BUCKET/PREFIX`` -> (bucket, prefix with a trailing slash, or "")."""
    bucket, _, prefix = value.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    return bucket, prefix + "/" if prefix else ""


def import_boto3() -> Any:
    try:
        import boto3
        import botocore.config
        import botocore.exceptions
    except ImportError:
        raise SystemExit("httpd: media_store is s3:// but boto3 is not installed: "
                         f"pip install -r {S3_REQUIREMENT}") from None
    return boto3, botocore.exceptions, botocore.config.Config


class S3MediaStore(MediaStore):
    """Files as objects of one bucket under one prefix; names are ``directory/name``."""

    def __init__(self, settings: dict[str, Any]) -> None:
        super().__init__(settings["media_root"])  # the local spool and the memes' lock dir
        self.boto3, self.errors, config = import_boto3()
        # a request must not hang on a store that is down: short timeouts, one retry
        self.client_config = config(connect_timeout=S3_CONNECT_TIMEOUT,
                                    read_timeout=S3_READ_TIMEOUT,
                                    retries={"max_attempts": 2, "mode": "standard"})
        self.bucket, self.prefix = parse_location(settings["media_store"])
        self.endpoint_url = settings["s3_endpoint_url"] or None
        self.region = settings["s3_region"]
        self.presign_seconds = settings["s3_presign_seconds"]
        self._client: Any = None
        self._pid = 0

    @property
    def client(self) -> Any:
        """This process's client (made after fork: a client must not cross one)."""
        if self._client is None or self._pid != os.getpid():
            self._client = self.boto3.session.Session().client(
                "s3", endpoint_url=self.endpoint_url, region_name=self.region,
                config=self.client_config)
            self._pid = os.getpid()
        return self._client

    def key(self, rel_path: str) -> str:
        self.path(rel_path)  # the same names as on disk, or ValueError
        return self.prefix + rel_path

    def prepare(self) -> None:
        """The local spool as for disk, and the bucket, which must exist: one clear line."""
        super().prepare()
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (self.errors.BotoCoreError, self.errors.ClientError) as exc:
            raise ConfigError(f"media_store: bucket {self.bucket!r} is not usable at "
                              f"{self.endpoint_url or 'AWS'} ({self.region}): {exc}") from None

    def save(self, part: FilePart, directory: str, filename: str,
             record: Callable[[str], T]) -> T:
        """Put the spooled part under a free name (If-None-Match: * where the server
        supports it, so two writers never replace each other's object), then record it;
        if that fails, delete the object."""
        if not re.fullmatch(r"[a-z0-9][a-z0-9.+-]*", directory):
            raise ValueError(f"invalid media directory {directory!r}")
        content_type = sniff(part.head).mime
        name = safe_name(filename)
        for _ in range(100):
            rel_path = f"{directory}/{name}"
            if not self.exists(rel_path) and self.put_new(part.path, rel_path, content_type):
                break
            name = with_random_suffix(safe_name(filename))
        else:
            raise FileExistsError(f"no free name for {filename!r} in {directory}")
        os.unlink(part.path)
        try:
            return record(rel_path)
        except BaseException:
            self.remove(rel_path)
            raise

    def exists(self, rel_path: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(rel_path))
        except self.errors.ClientError as exc:
            if status_of(exc) == 404:
                return False
            raise
        return True

    def put_new(self, path: str, rel_path: str, content_type: str) -> bool:
        """Put the file unless the name was taken meanwhile; False if it was."""
        with open(path, "rb") as body:
            try:
                self.client.put_object(Bucket=self.bucket, Key=self.key(rel_path), Body=body,
                                       ContentType=content_type, IfNoneMatch="*")
            except self.errors.ClientError as exc:
                if status_of(exc) in (409, 412):
                    return False
                raise
        return True

    def directory(self, directory: str) -> str:
        """A local directory of that name (the memes' flock target), as for disk."""
        return super().directory(directory)

    @contextmanager
    def local_copy(self, rel_path: str) -> Iterator[str]:
        """The object downloaded to a spool file, for a reader that needs a real file."""
        os.makedirs(self.incoming, exist_ok=True)
        spool = os.path.join(self.incoming, f"s3-{os.getpid()}-{time.monotonic_ns()}")
        try:
            try:
                self.client.download_file(self.bucket, self.key(rel_path), spool)
            except self.errors.ClientError as exc:
                raise OSError(f"cannot read {rel_path} from S3: {exc}") from None
            yield spool
        finally:
            if os.path.exists(spool):
                os.unlink(spool)

    def remove(self, rel_path: str) -> bool:
        if not self.exists(rel_path):
            return False
        self.client.delete_object(Bucket=self.bucket, Key=self.key(rel_path))
        return True

    def names(self, directory: str) -> list[str]:
        """The stored files of ``directory`` older than an hour (for the orphan sweep: a
        younger one may be waiting for its row on another instance)."""
        start = self.prefix + directory + "/"
        cutoff = time.time() - SWEEP_MIN_AGE
        names = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=start):
            for item in page.get("Contents", []):
                rel_path = item["Key"][len(self.prefix):]
                if "/" not in rel_path[len(directory) + 1:] \
                        and item["LastModified"].timestamp() < cutoff:
                    names.append(rel_path)
        return sorted(names)

    # -- serving -------------------------------------------------------------------------

    def answer(self, method: str, rel_path: str, headers: Any) -> Response:
        """GET/HEAD of a stored object: streamed, or a 302 to a presigned URL."""
        try:
            key = self.key(rel_path)
        except ValueError:
            return Response(404)
        if self.presign_seconds:
            url = self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key},
                ExpiresIn=self.presign_seconds)
            return Response(302, headers=[("Location", url), ("Cache-Control", "no-store")])
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if headers.get("if-none-match"):
            args["IfNoneMatch"] = headers.get("if-none-match")
        requested = (headers.get("range") or "").replace(" ", "")
        if SINGLE_RANGE.fullmatch(requested):
            args["Range"] = requested
        try:
            if method == "HEAD":
                args.pop("Range", None)
                found = self.client.head_object(**args)
            else:
                found = self.client.get_object(**args)
        except self.errors.ClientError as exc:
            status = status_of(exc)
            if status == 304:
                return Response(304, headers=[("ETag", exc.response.get("ResponseMetadata", {})
                                               .get("HTTPHeaders", {}).get("etag", ""))])
            return Response(status if status in (403, 404, 416) else 502)
        except self.errors.BotoCoreError:  # unreachable, timed out
            return Response(503, headers=[("Retry-After", "1")])
        status = 206 if "ContentRange" in found else 200
        fields = [("ETag", found["ETag"]), ("Accept-Ranges", "bytes"),
                  ("Last-Modified", found["LastModified"].strftime(
                      "%a, %d %b %Y %H:%M:%S GMT")),
                  *mime_fields(found.get("ContentType") or "application/octet-stream")]
        if status == 206:
            fields.append(("Content-Range", found["ContentRange"]))
        response = Response(status, headers=fields)
        if method == "HEAD":
            response.stream = iter(())
        else:
            response.stream = Body(found["Body"])
        response.length = found["ContentLength"]
        return response


class Body:
    """An S3 object's body as the worker pulls it: READ_PIECE bytes at a time."""

    def __init__(self, body: Any) -> None:
        self.body = body

    def __iter__(self) -> Iterator[bytes]:
        return iter(lambda: self.body.read(READ_PIECE), b"")

    def close(self) -> None:
        self.body.close()


def status_of(exc: Any) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0) or (
        int(exc.response.get("Error", {}).get("Code", "0"))
        if str(exc.response.get("Error", {}).get("Code", "")).isdigit() else 0)

