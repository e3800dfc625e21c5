"""What the Python client scenarios share: the objects of the client scenario (the same as
tests/clients/support.rs), the settings the Rust driver passes in VH_* variables, and a check
list that records every check and keeps going after a failed one.

A scenario script ends by printing {"checks": [{"what", "ok", "detail"}, ...]} as the last line
of its standard output; tests/clients/python.rs turns each failed check into a test failure.
"""

import base64
import contextlib
import hashlib
import json
import os
import traceback
import zlib

BIG_SIZE = 100 << 20
SMALL_BODY = b"hello from the vaulthalla client matrix\n"
SMALL_KEY = "small/hello.txt"
EMPTY_KEY = "small/empty.bin"
BIG_KEY = "big/big.bin"
META_KEY = "meta/doc.md"
COPY_KEY = "copy/doc.md"
META_BODY = b"# A document with metadata\n"
META_CONTENT_TYPE = "text/markdown"
META_PAIRS = {"color": "blue", "shape": "round"}
TREE_PREFIX = "tree/"
TREE_FANOUT = 50
TREE_LISTED_DIR = "tree/d7/"
BIG_RANGES = [
    (0, 0),
    (65_530, 65_545),
    (5_242_870, 5_242_889),
    (8_388_000, 8_389_000),
    (BIG_SIZE - 100, BIG_SIZE - 1),
]
# Sorted as S3 sorts keys (by UTF-8 bytes): "tree/d1/" before "tree/d10/".
TREE_KEYS = sorted(
    f"{TREE_PREFIX}d{d}/f{f}" for d in range(TREE_FANOUT) for f in range(TREE_FANOUT)
)
TREE_DIRS = sorted(f"{TREE_PREFIX}d{d}/" for d in range(TREE_FANOUT))
LISTED_DIR_KEYS = [key for key in TREE_KEYS if key.startswith(TREE_LISTED_DIR)]


class Settings:
    """The node and files the Rust driver set up, from VH_* environment variables."""

    def __init__(self):
        self.endpoint = os.environ["VH_ENDPOINT"]
        self.host = os.environ["VH_HOST"]
        self.secure = self.endpoint.startswith("https://")
        self.access_key = os.environ["VH_ACCESS_KEY"]
        self.secret_key = os.environ["VH_SECRET_KEY"]
        self.bucket = os.environ["VH_BUCKET"]
        self.work_dir = os.environ["VH_WORK_DIR"]
        self.big_path = os.path.join(self.work_dir, "big.bin")
        self.big_sha256 = os.environ["VH_BIG_SHA256"]
        # The CA bundle to verify the node's certificate with; None over plain HTTP.
        self.ca_bundle = os.environ.get("VH_CA_BUNDLE") or None

    def work_path(self, name):
        return os.path.join(self.work_dir, name)

    def big_range(self, first, last):
        with open(self.big_path, "rb") as big:
            big.seek(first)
            return big.read(last - first + 1)


class Checks:
    """Every check of a run, passed or failed, in order."""

    def __init__(self):
        self.results = []

    def ok(self, what, condition, detail=""):
        self.results.append({"what": what, "ok": bool(condition), "detail": str(detail)})
        return bool(condition)

    def eq(self, what, actual, expected):
        return self.ok(
            what,
            actual == expected,
            f"expected {expected!r}, the client reported {actual!r}",
        )

    def fail(self, what, detail):
        self.ok(what, False, detail)

    @contextlib.contextmanager
    def step(self, what):
        """Runs a step; an exception fails the step with the client's message and the run
        goes on with the next step."""
        try:
            yield
        except Exception as error:  # noqa: BLE001 - any client error is a finding to report
            where = traceback.extract_tb(error.__traceback__)[-1]
            self.fail(
                what,
                f"raised {type(error).__name__}: {error} "
                f"(at {os.path.basename(where.filename)}:{where.lineno})",
            )

    def emit(self):
        print(json.dumps({"checks": self.results}), flush=True)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def md5(data):
    return hashlib.md5(data).hexdigest()


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for piece in iter(lambda: file.read(1 << 20), b""):
            digest.update(piece)
    return digest.hexdigest()


def crc32_base64(data):
    """The CRC32 as S3 shows it in x-amz-checksum-crc32: big-endian bytes, base64."""
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def crc32_file_base64(path):
    crc = 0
    with open(path, "rb") as file:
        for piece in iter(lambda: file.read(1 << 20), b""):
            crc = zlib.crc32(piece, crc)
    return base64.b64encode(crc.to_bytes(4, "big")).decode()
