"""What engines put in config.json that runc accepts though the schema does not."""
import json

from pyoci.config import load_bundle
from pyoci.config.validate import validate


def _load(tmp_path, devices):
    cfg = {"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "process": {"args": ["sh"], "cwd": "/"},
           "linux": {"devices": devices}}
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    return load_bundle(str(tmp_path))[1]


def test_device_file_mode_with_matching_type_bits_keeps_the_permissions(tmp_path):
    # podman --device /dev/null / --privileged: fileMode = st_mode = S_IFCHR | 0666
    cfg = _load(tmp_path, [
        {"path": "/dev/foo", "type": "c", "major": 1, "minor": 3, "fileMode": 0o20666},
        {"path": "/dev/blk", "type": "b", "major": 7, "minor": 0, "fileMode": 0o60660},
        {"path": "/dev/fifo", "type": "p", "fileMode": 0o10600},
        {"path": "/dev/u", "type": "u", "major": 1, "minor": 5, "fileMode": 0o20640},
    ])
    assert [d["fileMode"] for d in cfg["linux"]["devices"]] == [0o666, 0o660, 0o600, 0o640]
    assert validate(cfg) == []


def test_device_file_mode_other_high_bits_are_still_refused(tmp_path):
    cfg = _load(tmp_path, [
        {"path": "/dev/x", "type": "b", "major": 1, "minor": 3, "fileMode": 0o20666},   # a char type on a block device
        {"path": "/dev/y", "type": "c", "major": 1, "minor": 3, "fileMode": 512 | 0o100000},
    ])
    assert [d["fileMode"] for d in cfg["linux"]["devices"]] == [0o20666, 512 | 0o100000]
    msgs = [str(p) for p in validate(cfg)]
    assert any("linux.devices[0].fileMode: 8630 is out of range" in m for m in msgs), msgs
    assert any("linux.devices[1].fileMode" in m for m in msgs), msgs
