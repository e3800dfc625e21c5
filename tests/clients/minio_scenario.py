"""The client scenario with the MinIO Python SDK (plain HTTP, region found with
GetBucketLocation as the SDK does by default). Run by tests/clients/minio.rs; prints its checks
as JSON (see scenario.py).
"""

import io
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import requests
from minio import Minio
from minio.commonconfig import CopySource
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from scenario import (
    BIG_KEY,
    BIG_RANGES,
    BIG_SIZE,
    COPY_KEY,
    EMPTY_KEY,
    LISTED_DIR_KEYS,
    META_BODY,
    META_CONTENT_TYPE,
    META_KEY,
    META_PAIRS,
    SMALL_BODY,
    SMALL_KEY,
    TREE_DIRS,
    TREE_KEYS,
    TREE_LISTED_DIR,
    TREE_PREFIX,
    Checks,
    Settings,
    md5,
    sha256,
    sha256_file,
)

# fput_object picks its part size itself: 5 MiB for 100 MiB, so 20 parts.
PARTS_OF_BIG = BIG_SIZE // (5 << 20)
# The object streamed with an unknown length: 12 MiB in parts of 5 MiB.
STREAM_KEY = "big/stream.bin"
STREAM_SIZE = 12 << 20
STREAM_PART_SIZE = 5 << 20


def read_object(client, bucket, key, **kwargs):
    response = client.get_object(bucket, key, **kwargs)
    try:
        return response.read(), response.headers
    finally:
        response.close()
        response.release_conn()


def expect_s3_error(checks, what, code, call):
    try:
        call()
    except S3Error as error:
        checks.eq(what, error.code, code)
        return
    checks.fail(what, f"expected the SDK to raise {code}, it succeeded")


def small_objects(client, settings, checks):
    bucket = settings.bucket
    for key, body in [(SMALL_KEY, SMALL_BODY), (EMPTY_KEY, b"")]:
        with checks.step(f"put_object {key}"):
            put = client.put_object(bucket, key, io.BytesIO(body), len(body))
            checks.eq(f"put_object {key} etag", put.etag, md5(body))
        with checks.step(f"get_object {key}"):
            data, _ = read_object(client, bucket, key)
            checks.eq(f"get_object {key} body", sha256(data), sha256(body))
        with checks.step(f"stat_object {key}"):
            checks.eq(f"stat_object {key} size", client.stat_object(bucket, key).size, len(body))
    with checks.step("stat_object of a missing key"):
        expect_s3_error(checks, "stat_object of a missing key", "NoSuchKey", lambda: client.stat_object(bucket, "small/none.txt"))


def big_objects(client, settings, checks):
    bucket = settings.bucket
    with checks.step("fput_object of 100 MiB (multipart)"):
        client.fput_object(bucket, BIG_KEY, settings.big_path)
    with checks.step("stat_object of 100 MiB"):
        stat = client.stat_object(bucket, BIG_KEY)
        checks.eq("100 MiB size", stat.size, BIG_SIZE)
        checks.ok(f"100 MiB etag is a multipart ETag of {PARTS_OF_BIG} parts", stat.etag.endswith(f"-{PARTS_OF_BIG}"), stat.etag)
    with checks.step("fget_object of 100 MiB"):
        back = settings.work_path("big.minio.back")
        client.fget_object(bucket, BIG_KEY, back)
        checks.eq("100 MiB read back with fget_object", sha256_file(back), settings.big_sha256)
    for first, last in BIG_RANGES:
        with checks.step(f"get_object offset={first} length={last - first + 1}"):
            data, headers = read_object(client, bucket, BIG_KEY, offset=first, length=last - first + 1)
            checks.eq(f"range {first}-{last} Content-Range", headers.get("content-range"), f"bytes {first}-{last}/{BIG_SIZE}")
            checks.eq(f"range {first}-{last} body", data, settings.big_range(first, last))
    with checks.step("put_object of a stream of unknown length with part_size"):
        stream = settings.big_range(0, STREAM_SIZE - 1)
        client.put_object(bucket, STREAM_KEY, io.BytesIO(stream), length=-1, part_size=STREAM_PART_SIZE)
        stat = client.stat_object(bucket, STREAM_KEY)
        parts = -(-STREAM_SIZE // STREAM_PART_SIZE)
        checks.eq("streamed object size", stat.size, STREAM_SIZE)
        checks.ok(f"streamed object etag is a multipart ETag of {parts} parts", stat.etag.endswith(f"-{parts}"), stat.etag)
        data, _ = read_object(client, bucket, STREAM_KEY)
        checks.eq("streamed object read back", sha256(data), sha256(stream))


def tree_listing(client, settings, checks):
    bucket = settings.bucket
    with checks.step("put_object of 2,500 keys"):
        def put(key):
            body = key.encode()
            return client.put_object(bucket, key, io.BytesIO(body), len(body))

        with ThreadPoolExecutor(max_workers=8) as pool:
            puts = list(pool.map(put, TREE_KEYS))
        checks.eq("2,500 keys stored", len(puts), len(TREE_KEYS))
    with checks.step("list_objects at the top of the tree"):
        listed = list(client.list_objects(bucket, prefix=TREE_PREFIX))
        checks.eq("directories at the top of the tree", [o.object_name for o in listed if o.is_dir], TREE_DIRS)
        checks.eq("objects at the top of the tree", [o.object_name for o in listed if not o.is_dir], [])
    with checks.step("list_objects of one directory"):
        listed = list(client.list_objects(bucket, prefix=TREE_LISTED_DIR))
        checks.eq("objects of one directory", [o.object_name for o in listed if not o.is_dir], LISTED_DIR_KEYS)
        checks.eq("directories of one directory", [o.object_name for o in listed if o.is_dir], [])
    with checks.step("list_objects recursive"):
        listed = [o.object_name for o in client.list_objects(bucket, prefix=TREE_PREFIX, recursive=True)]
        checks.eq("recursive listing: every key once, in order", listed, TREE_KEYS)
    with checks.step("list_objects recursive with ListObjects v1"):
        listed = [o.object_name for o in client.list_objects(bucket, prefix=TREE_PREFIX, recursive=True, use_api_v1=True)]
        checks.eq("recursive v1 listing: every key once, in order", listed, TREE_KEYS)


def metadata_and_copy(client, settings, checks):
    bucket = settings.bucket
    with checks.step("put_object with content_type and metadata"):
        client.put_object(bucket, META_KEY, io.BytesIO(META_BODY), len(META_BODY), content_type=META_CONTENT_TYPE, metadata=META_PAIRS)
    with checks.step("copy_object"):
        copied = client.copy_object(bucket, COPY_KEY, CopySource(bucket, META_KEY))
        checks.eq("copy_object etag", copied.etag, md5(META_BODY))
    for key in [META_KEY, COPY_KEY]:
        with checks.step(f"stat_object {key}"):
            stat = client.stat_object(bucket, key)
            checks.eq(f"{key} content_type", stat.content_type, META_CONTENT_TYPE)
            meta = {name: stat.metadata.get(f"x-amz-meta-{name}") for name in META_PAIRS}
            checks.eq(f"{key} metadata", meta, META_PAIRS)
            data, _ = read_object(client, bucket, key)
            checks.eq(f"{key} body", data, META_BODY)


def presigned(client, settings, checks):
    bucket = settings.bucket
    with checks.step("presigned_get_object"):
        url = client.presigned_get_object(bucket, SMALL_KEY, expires=timedelta(minutes=5))
        reply = requests.get(url, timeout=60)
        checks.eq("presigned GET: status", reply.status_code, 200)
        checks.eq("presigned GET: body", reply.content, SMALL_BODY)
    with checks.step("presigned_put_object"):
        body = b"uploaded through a presigned URL\n"
        url = client.presigned_put_object(bucket, "presigned/put.txt", expires=timedelta(minutes=5))
        reply = requests.put(url, data=body, timeout=60)
        checks.eq("presigned PUT: status", reply.status_code, 200)
        data, _ = read_object(client, bucket, "presigned/put.txt")
        checks.eq("presigned PUT: stored body", data, body)


def deletes(client, settings, checks):
    bucket = settings.bucket
    with checks.step("remove_object"):
        client.remove_object(bucket, SMALL_KEY)
        expect_s3_error(checks, "stat_object after remove_object", "NoSuchKey", lambda: client.stat_object(bucket, SMALL_KEY))
    with checks.step("remove_objects"):
        errors = list(client.remove_objects(bucket, [DeleteObject(EMPTY_KEY), DeleteObject(COPY_KEY)]))
        checks.eq("remove_objects errors", [(e.name, e.code) for e in errors], [])
        left = {o.object_name for o in client.list_objects(bucket, recursive=True)}
        checks.eq("remove_objects removed both", sorted({EMPTY_KEY, COPY_KEY} & left), [])
    with checks.step("remove_bucket of a bucket with objects"):
        expect_s3_error(checks, "remove_bucket of a bucket with objects", "BucketNotEmpty", lambda: client.remove_bucket(bucket))
    with checks.step("remove_objects of everything left"):
        left = [DeleteObject(o.object_name) for o in client.list_objects(bucket, recursive=True)]
        errors = list(client.remove_objects(bucket, left))
        checks.eq("bulk remove_objects errors", [(e.name, e.code) for e in errors], [])
        checks.eq("bucket is empty", list(client.list_objects(bucket, recursive=True)), [])
    with checks.step("remove_bucket"):
        client.remove_bucket(bucket)
        checks.eq("bucket_exists after remove_bucket", client.bucket_exists(bucket), False)


def main():
    settings = Settings()
    checks = Checks()
    client = Minio(settings.host, access_key=settings.access_key, secret_key=settings.secret_key, secure=False)
    with checks.step("make_bucket"):
        client.make_bucket(settings.bucket)
        checks.eq("bucket_exists after make_bucket", client.bucket_exists(settings.bucket), True)
        names = [b.name for b in client.list_buckets()]
        checks.ok("list_buckets after make_bucket", settings.bucket in names, names)
    small_objects(client, settings, checks)
    big_objects(client, settings, checks)
    tree_listing(client, settings, checks)
    metadata_and_copy(client, settings, checks)
    presigned(client, settings, checks)
    deletes(client, settings, checks)
    checks.emit()


if __name__ == "__main__":
    main()
