#!/usr/bin/env python3
"""Make a small OCI image of a busybox-static rootfs, as an OCI image layout tar.

    python3 bench/make_oci_image.py --out IMAGE.tar [--name NAME] [--busybox /bin/busybox]

No registry is needed: the image is one gzip layer (the rootfs of
make_bundle.make_rootfs), an image config and a manifest, in an OCI image
layout (oci-layout, index.json, blobs/sha256/...) packed into one tar that
`ctr image import` takes. The index entry carries the image name twice:
`io.containerd.image.name` (the full name ctr registers) and
`org.opencontainers.image.ref.name` (the tag). The result is byte-for-byte
reproducible for a given busybox binary (fixed mtimes, owners and order).
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_bundle  # noqa: E402

DEFAULT_NAME = "docker.io/library/pyoci-busybox:latest"
MTIME = 946684800  # 2000-01-01, for reproducible archives


def _layer_tar(rootfs):
    """The rootfs as an uncompressed tar (bytes), entries sorted, owned by root."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        paths = []
        for dirpath, dirnames, filenames in os.walk(rootfs):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                paths.append(os.path.join(dirpath, name))
        for path in sorted(paths):
            info = tar.gettarinfo(path, arcname=os.path.relpath(path, rootfs))
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = MTIME
            if info.isfile():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return buf.getvalue()


def _blob(blobs, data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return "sha256:" + digest


def _json_bytes(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def make(out, name=DEFAULT_NAME, busybox="/bin/busybox", cmd=("sh",), rootfs=None, entrypoint=None):
    """Write the image layout tar to out; returns the image name. The layer
    is a busybox-static rootfs, or the directory rootfs when given."""
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else "latest"
    with tempfile.TemporaryDirectory(prefix="pyoci-image-") as tmp:
        if rootfs is None:
            rootfs = make_bundle.make_rootfs(os.path.join(tmp, "rootfs"), busybox)
        layout = os.path.join(tmp, "layout")
        blobs = os.path.join(layout, "blobs", "sha256")
        os.makedirs(blobs)
        raw = _layer_tar(rootfs)
        gz = gzip.compress(raw, compresslevel=6, mtime=MTIME)
        layer_digest = _blob(blobs, gz)
        config = {
            "architecture": _goarch(),
            "os": "linux",
            "created": "2000-01-01T00:00:00Z",
            "config": dict({"Cmd": list(cmd), "Env": ["PATH=/bin:/sbin:/usr/bin:/usr/sbin"],
                            "WorkingDir": "/"}, **({"Entrypoint": list(entrypoint)} if entrypoint else {})),
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]},
            "history": [{"created": "2000-01-01T00:00:00Z", "created_by": "pyoci make_oci_image.py"}],
        }
        config_bytes = _json_bytes(config)
        config_digest = _blob(blobs, config_bytes)
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": len(config_bytes)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": layer_digest, "size": len(gz)}],
        }
        manifest_bytes = _json_bytes(manifest)
        manifest_digest = _blob(blobs, manifest_bytes)
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest, "size": len(manifest_bytes),
                "platform": {"architecture": _goarch(), "os": "linux"},
                "annotations": {"io.containerd.image.name": name,
                                "org.opencontainers.image.ref.name": tag},
            }],
        }
        with open(os.path.join(layout, "index.json"), "wb") as f:
            f.write(_json_bytes(index))
        with open(os.path.join(layout, "oci-layout"), "wb") as f:
            f.write(_json_bytes({"imageLayoutVersion": "1.0.0"}))
        with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
            for rel in ["oci-layout", "index.json", "blobs", "blobs/sha256"] + \
                    ["blobs/sha256/" + n for n in sorted(os.listdir(blobs))]:
                info = tar.gettarinfo(os.path.join(layout, rel), arcname=rel)
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                info.mtime = MTIME
                if info.isfile():
                    with open(os.path.join(layout, rel), "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
    return name


def _goarch():
    m = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
            "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}.get(m, m)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="the image layout tar to write")
    ap.add_argument("--name", default=DEFAULT_NAME, help="image name (default %(default)s)")
    ap.add_argument("--busybox", default="/bin/busybox")
    a = ap.parse_args()
    print(make(a.out, a.name, a.busybox))


if __name__ == "__main__":
    main()
