"""Fixtures for the engine tests (imported by the test modules: a second
conftest.py would shadow tests/conftest.py's module name).

The engines are real: Debian's containerd 1.6 (runc shim v2, driven through
ctr) and podman 4.3 with conmon, installed by .ci/setup. They run privately
(see bench/engines.py) and are handed pyoci's installed command as the
runtime binary.
"""
import os
import shutil
import tempfile
import time

import pytest

import engines
import make_oci_image
from conftest import PYOCI, TAG, our_children, reap, subtree_controls

# The runtime-spec state root podman leaves pyoci to choose (it passes no --root).
PYOCI_DEFAULT_ROOT = "/run/pyoci"


def require(*binaries):
    if os.geteuid() != 0:
        pytest.skip("engine tests run containers as root")
    missing = [b for b in binaries if shutil.which(b) is None]
    if missing:
        msg = "not installed: %s (.ci/setup installs them)" % ", ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


def settle(names=("containerd-shim", "conmon", "podman", "ctr", "script"), timeout=10):
    """Wait until no child of ours (the session is a subreaper, so daemonised
    helpers end up here) with one of these names is alive."""
    deadline = time.monotonic() + timeout
    while True:
        reap()
        alive = [c for c in our_children() if c[1].startswith(names) and not _zombie(c[0])]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def _zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return True
    return data[data.rindex(")") + 2] == "Z"


def remove_tag_cgroups(timeout=10):
    """rmdir the empty cgroups named after this session's TAG (deepest first),
    again while the kernel still calls an empty one busy (a loaded machine
    releases a v1 cgroup a while after its last task exited)."""
    deadline = time.monotonic() + timeout
    while engines.remove_empty_cgroups(TAG) and time.monotonic() < deadline:
        time.sleep(0.05)


def cgroup_of(pid):
    """{controllers: path} from /proc/PID/cgroup."""
    from pyoci.linux.cgroups import own_cgroups

    return own_cgroups(pid)


def mounted_v1(ctrl):
    p = os.path.join("/sys/fs/cgroup", ctrl)
    return os.path.isdir(p) and os.path.ismount(p)


def read(path):
    with open(path) as f:
        return f.read()


def wait_for(pred, timeout=10, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    return pred()


@pytest.fixture(scope="session")
def oci_image(tmp_path_factory):
    tar = str(tmp_path_factory.mktemp("image") / "busybox-oci.tar")
    make_oci_image.make(tar)
    return tar


@pytest.fixture(scope="module")
def ctrd(oci_image, tmp_path_factory):
    """A private containerd for this module; its namespace is TAG, so the
    cgroups containerd asks for (/NAMESPACE/ID) carry TAG."""
    require("containerd", "ctr", "containerd-shim-runc-v2", "unshare")
    d = engines.Containerd(namespace=TAG, tmp=str(tmp_path_factory.mktemp("containerd"))).start()
    try:
        d.import_image(oci_image)
        yield d
    finally:
        d.stop()
        remove_tag_cgroups()


@pytest.fixture
def ctr(ctrd, host_guard):
    """The module's containerd, checked after each test: no task or container
    left, shims gone, pyoci's state root (the shim's --root) empty."""
    yield ctrd
    left = ctrd.clean_namespace()
    alive = settle()
    runc_root = os.path.join(engines.RUN_CONTAINERD, "runc", ctrd.namespace)
    state_left = _ids(runc_root)
    remove_tag_cgroups()
    assert not left, "containers left in containerd: %r" % left
    assert not alive, "engine processes still alive: %r" % alive
    assert not state_left, "pyoci state left in %s: %r" % (runc_root, state_left)


@pytest.fixture
def podman(host_guard):
    """podman with private storage, pyoci as --runtime (named in
    runtime_supports_json, so create/exec get --log-format=json --log FILE),
    containers under the cgroup parent /TAG."""
    require("podman", "conmon")
    controls = subtree_controls()
    pm = engines.Podman(PYOCI, tmp=podman_dir(), cgroup_parent="/" + TAG)
    yield pm
    left = pm.remove_all()
    alive = settle()
    state_left = _ids_of(PYOCI_DEFAULT_ROOT, pm.dir)
    pm.cleanup()
    remove_tag_cgroups()
    _disable_new_controllers(controls)
    assert not left, "containers left in podman: %r" % left
    assert not alive, "engine processes still alive: %r" % alive
    assert not state_left, "pyoci state left in %s: %r" % (PYOCI_DEFAULT_ROOT, state_left)


def _disable_new_controllers(before):
    """podman's cgroupfs manager enables every controller down to its cgroup
    parent, at the cgroup2 root too (with runc as well: the engine's doing,
    not the runtime's); once its cgroups are gone, the ones it enabled there
    are disabled again, so host_guard sees what pyoci changed."""
    for path, now in subtree_controls().items():
        extra = [c for c in now if c not in before.get(path, now)]
        if extra:
            try:
                with open(path, "w") as f:
                    f.write(" ".join("-" + c for c in reversed(extra)))
            except OSError:
                pass   # still in use below: host_guard reports it


def podman_dir():
    """A short directory (podman refuses a runroot over 50 characters) whose
    name carries TAG, so host_guard watches the mounts podman makes in it."""
    return tempfile.mkdtemp(prefix=TAG + "-pm-", dir="/tmp")


def _ids_of(root, bundle_dir):
    """Containers in a shared state root (other sessions use it too) whose
    bundle is under bundle_dir."""
    out = []
    for cid in _ids(root):
        try:
            with open(os.path.join(root, cid, "state.json")) as f:
                if bundle_dir in f.read():
                    out.append(cid)
        except OSError:
            pass
    return out


def _ids(root):
    """Container ids in a state root ('@' entries are pyoci's caches)."""
    try:
        return [n for n in os.listdir(root) if not n.startswith("@")]
    except FileNotFoundError:
        return []
