"""The client scenario with boto3 at its default checksum settings (CRC32 on uploads, sent as
a header over HTTP and as an aws-chunked trailer over HTTPS), over HTTP or HTTPS as VH_ENDPOINT
says. Run by tests/clients/boto3.rs; prints its checks as JSON (see scenario.py).
"""

import hashlib
from concurrent.futures import ThreadPoolExecutor

import boto3
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

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
    crc32_base64,
    crc32_file_base64,
    md5,
    sha256,
    sha256_file,
)

# boto3's TransferConfig default: 8 MiB parts, so 100 MiB is 13 parts.
PARTS_OF_BIG = -(-BIG_SIZE // (8 << 20))


def client(settings, **config):
    """An S3 client for the node: path-style addressing, no retries (a retry would hide a
    failed request), checksum settings left at their defaults."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=settings.endpoint,
        aws_access_key_id=settings.access_key,
        aws_secret_access_key=settings.secret_key,
        region_name="us-east-1",
        verify=settings.ca_bundle if settings.secure else None,
        config=Config(
            s3={"addressing_style": "path"},
            retries={"mode": "standard", "total_max_attempts": 1},
            **config,
        ),
    )


def error_code(error):
    return error.response.get("Error", {}).get("Code")


def expect_client_error(checks, what, code, call):
    try:
        call()
    except ClientError as error:
        checks.eq(what, error_code(error), code)
        return
    checks.fail(what, f"expected the client to raise {code}, it succeeded")


def small_objects(s3, settings, checks):
    bucket = settings.bucket
    for key, body in [(SMALL_KEY, SMALL_BODY), (EMPTY_KEY, b"")]:
        with checks.step(f"put_object {key}"):
            put = s3.put_object(Bucket=bucket, Key=key, Body=body)
            checks.eq(f"put_object {key} ETag", put["ETag"], f'"{md5(body)}"')
            checks.eq(f"put_object {key} ChecksumCRC32", put.get("ChecksumCRC32"), crc32_base64(body))
        with checks.step(f"get_object {key}"):
            got = s3.get_object(Bucket=bucket, Key=key)
            checks.eq(f"get_object {key} body", sha256(got["Body"].read()), sha256(body))
            checks.eq(f"get_object {key} ContentLength", got["ContentLength"], len(body))
        with checks.step(f"get_object {key} with ChecksumMode=ENABLED"):
            got = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
            # botocore validates the checksum while the body is read and raises on a mismatch.
            checks.eq(f"checksum-validated read of {key}", sha256(got["Body"].read()), sha256(body))
            checks.eq(f"get_object {key} ChecksumCRC32", got.get("ChecksumCRC32"), crc32_base64(body))
        with checks.step(f"head_object {key}"):
            head = s3.head_object(Bucket=bucket, Key=key)
            checks.eq(f"head_object {key} ContentLength", head["ContentLength"], len(body))
    with checks.step("get_object of a missing key"):
        expect_client_error(
            checks,
            "get_object of a missing key",
            "NoSuchKey",
            lambda: s3.get_object(Bucket=bucket, Key="small/none.txt"),
        )


def big_object(s3, settings, checks):
    bucket = settings.bucket
    with checks.step("upload_file of 100 MiB (multipart)"):
        s3.upload_file(settings.big_path, bucket, BIG_KEY)
    with checks.step("head_object of 100 MiB"):
        head = s3.head_object(Bucket=bucket, Key=BIG_KEY)
        checks.eq("100 MiB ContentLength", head["ContentLength"], BIG_SIZE)
        checks.ok(
            f"100 MiB ETag is a multipart ETag of {PARTS_OF_BIG} parts",
            head["ETag"].strip('"').endswith(f"-{PARTS_OF_BIG}"),
            head["ETag"],
        )
    with checks.step("download_file of 100 MiB"):
        back = settings.work_path("big.boto3.back")
        s3.download_file(bucket, BIG_KEY, back)
        checks.eq("100 MiB read back with download_file", sha256_file(back), settings.big_sha256)
    with checks.step("get_object of 100 MiB with ChecksumMode=ENABLED"):
        got = s3.get_object(Bucket=bucket, Key=BIG_KEY, ChecksumMode="ENABLED")
        digest = hashlib.sha256()
        for piece in got["Body"].iter_chunks(1 << 20):
            digest.update(piece)
        checks.eq("checksum-validated read of 100 MiB", digest.hexdigest(), settings.big_sha256)
        kind = got.get("ChecksumType")
        crc = got.get("ChecksumCRC32")
        if kind == "FULL_OBJECT":
            checks.eq("100 MiB full-object CRC32", crc, crc32_file_base64(settings.big_path))
        else:
            checks.ok(
                f"100 MiB composite CRC32 of {PARTS_OF_BIG} parts",
                crc is not None and crc.endswith(f"-{PARTS_OF_BIG}"),
                f"ChecksumType {kind!r}, ChecksumCRC32 {crc!r}",
            )
    for first, last in BIG_RANGES:
        with checks.step(f"get_object Range bytes={first}-{last}"):
            got = s3.get_object(Bucket=bucket, Key=BIG_KEY, Range=f"bytes={first}-{last}")
            checks.eq(f"bytes={first}-{last} ContentRange", got.get("ContentRange"), f"bytes {first}-{last}/{BIG_SIZE}")
            checks.eq(f"bytes={first}-{last} body", got["Body"].read(), settings.big_range(first, last))


def tree_listing(s3, settings, checks):
    bucket = settings.bucket
    with checks.step("put_object of 2,500 keys"):
        with ThreadPoolExecutor(max_workers=8) as pool:
            puts = list(pool.map(lambda key: s3.put_object(Bucket=bucket, Key=key, Body=key.encode()), TREE_KEYS))
        checks.eq("2,500 keys stored", len(puts), len(TREE_KEYS))
    paginator = s3.get_paginator("list_objects_v2")
    with checks.step("list_objects_v2 paginator with a delimiter"):
        prefixes, keys = [], []
        for page in paginator.paginate(Bucket=bucket, Prefix=TREE_PREFIX, Delimiter="/"):
            prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
            keys += [o["Key"] for o in page.get("Contents", [])]
        checks.eq("common prefixes at the top of the tree", prefixes, TREE_DIRS)
        checks.eq("keys at the top of the tree", keys, [])
    with checks.step("list_objects_v2 paginator of one directory"):
        prefixes, keys = [], []
        for page in paginator.paginate(Bucket=bucket, Prefix=TREE_LISTED_DIR, Delimiter="/"):
            prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
            keys += [o["Key"] for o in page.get("Contents", [])]
        checks.eq("keys of one directory", keys, LISTED_DIR_KEYS)
        checks.eq("prefixes of one directory", prefixes, [])
    with checks.step("list_objects_v2 paginator without a delimiter"):
        pages = list(paginator.paginate(Bucket=bucket, Prefix=TREE_PREFIX, PaginationConfig={"PageSize": 1000}))
        keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
        checks.eq("paged listing: every key once, in order", keys, TREE_KEYS)
        checks.eq("paged listing: KeyCount per page", [p.get("KeyCount") for p in pages], [1000, 1000, 500])
        checks.eq("paged listing: IsTruncated per page", [p.get("IsTruncated") for p in pages], [True, True, False])
    with checks.step("list_objects (v1) paginator without a delimiter"):
        pages = list(s3.get_paginator("list_objects").paginate(Bucket=bucket, Prefix=TREE_PREFIX, PaginationConfig={"PageSize": 1000}))
        keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
        checks.eq("v1 paged listing: every key once, in order", keys, TREE_KEYS)
        checks.eq("v1 paged listing: pages", len(pages), 3)


def metadata_and_copy(s3, settings, checks):
    bucket = settings.bucket
    with checks.step("put_object with ContentType and Metadata"):
        s3.put_object(Bucket=bucket, Key=META_KEY, Body=META_BODY, ContentType=META_CONTENT_TYPE, Metadata=META_PAIRS)
    with checks.step("copy_object"):
        copied = s3.copy_object(Bucket=bucket, Key=COPY_KEY, CopySource={"Bucket": bucket, "Key": META_KEY})
        checks.eq("copy_object ETag", copied["CopyObjectResult"]["ETag"], f'"{md5(META_BODY)}"')
    for key in [META_KEY, COPY_KEY]:
        with checks.step(f"head_object {key}"):
            head = s3.head_object(Bucket=bucket, Key=key)
            checks.eq(f"{key} ContentType", head.get("ContentType"), META_CONTENT_TYPE)
            checks.eq(f"{key} Metadata", head.get("Metadata"), META_PAIRS)
        with checks.step(f"get_object {key}"):
            got = s3.get_object(Bucket=bucket, Key=key)
            checks.eq(f"{key} body", got["Body"].read(), META_BODY)
    with checks.step("copy_object with MetadataDirective=REPLACE"):
        s3.copy_object(
            Bucket=bucket,
            Key="copy/replaced.md",
            CopySource={"Bucket": bucket, "Key": META_KEY},
            MetadataDirective="REPLACE",
            Metadata={"color": "red"},
            ContentType="text/plain",
        )
        head = s3.head_object(Bucket=bucket, Key="copy/replaced.md")
        checks.eq("replaced copy ContentType", head.get("ContentType"), "text/plain")
        checks.eq("replaced copy Metadata", head.get("Metadata"), {"color": "red"})


def presigned(s3, settings, checks):
    bucket = settings.bucket
    verify = settings.ca_bundle if settings.secure else True
    with checks.step("generate_presigned_url with the default signature version"):
        url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": SMALL_KEY}, ExpiresIn=300)
        # boto3 presigns with SigV2 (AWSAccessKeyId, Signature, Expires) unless told otherwise.
        kind = "SigV4" if "X-Amz-Signature=" in url else "SigV2"
        reply = requests.get(url, verify=verify, timeout=60)
        checks.eq(f"default ({kind}) presigned GET: status", reply.status_code, 200)
        checks.eq(f"default ({kind}) presigned GET: body", reply.content, SMALL_BODY)
    v4 = client(settings, signature_version="s3v4")
    with checks.step("generate_presigned_url get_object with s3v4"):
        url = v4.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": SMALL_KEY}, ExpiresIn=300)
        checks.ok("s3v4 presigned URL is SigV4", "X-Amz-Signature=" in url, url)
        reply = requests.get(url, verify=verify, timeout=60)
        checks.eq("s3v4 presigned GET: status", reply.status_code, 200)
        checks.eq("s3v4 presigned GET: body", reply.content, SMALL_BODY)
    with checks.step("generate_presigned_url put_object with s3v4"):
        body = b"uploaded through a presigned URL\n"
        url = v4.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "presigned/put.txt"}, ExpiresIn=300)
        reply = requests.put(url, data=body, verify=verify, timeout=60)
        checks.eq("s3v4 presigned PUT: status", reply.status_code, 200)
        got = s3.get_object(Bucket=bucket, Key="presigned/put.txt")
        checks.eq("s3v4 presigned PUT: stored body", got["Body"].read(), body)


def deletes(s3, settings, checks):
    bucket = settings.bucket
    with checks.step("delete_object"):
        deleted = s3.delete_object(Bucket=bucket, Key=SMALL_KEY)
        checks.eq("delete_object status", deleted["ResponseMetadata"]["HTTPStatusCode"], 204)
        expect_client_error(checks, "head_object after delete_object", "404", lambda: s3.head_object(Bucket=bucket, Key=SMALL_KEY))
    with checks.step("delete_objects"):
        deleted = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": EMPTY_KEY}, {"Key": COPY_KEY}]})
        checks.eq("delete_objects Deleted", sorted(d["Key"] for d in deleted.get("Deleted", [])), sorted([EMPTY_KEY, COPY_KEY]))
        checks.eq("delete_objects Errors", deleted.get("Errors", []), [])
    with checks.step("delete_bucket of a bucket with objects"):
        expect_client_error(checks, "delete_bucket of a bucket with objects", "BucketNotEmpty", lambda: s3.delete_bucket(Bucket=bucket))
    with checks.step("delete_objects of everything left"):
        errors = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                errors += s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True}).get("Errors", [])
        checks.eq("bulk delete_objects Errors", errors, [])
        checks.eq("bucket is empty", s3.list_objects_v2(Bucket=bucket).get("KeyCount"), 0)
    with checks.step("delete_bucket"):
        deleted = s3.delete_bucket(Bucket=bucket)
        checks.eq("delete_bucket status", deleted["ResponseMetadata"]["HTTPStatusCode"], 204)
        names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
        checks.ok("list_buckets after delete_bucket", bucket not in names, names)
        expect_client_error(checks, "head_bucket after delete_bucket", "404", lambda: s3.head_bucket(Bucket=bucket))


def main():
    settings = Settings()
    checks = Checks()
    s3 = client(settings)
    with checks.step("create_bucket"):
        s3.create_bucket(Bucket=settings.bucket)
        names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
        checks.ok("list_buckets after create_bucket", settings.bucket in names, names)
    small_objects(s3, settings, checks)
    big_object(s3, settings, checks)
    tree_listing(s3, settings, checks)
    metadata_and_copy(s3, settings, checks)
    presigned(s3, settings, checks)
    deletes(s3, settings, checks)
    checks.emit()


if __name__ == "__main__":
    main()
