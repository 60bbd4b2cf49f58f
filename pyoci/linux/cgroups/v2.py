"""The cgroupfs driver on the unified hierarchy (cgroup v2): controllers are
enabled in the parents' cgroup.subtree_control as create makes directories
(and disabled again on delete where nothing else uses them), device rules
are an eBPF program attached to the cgroup."""
from pyoci import fastos as os
from pyoci.errors import ConfigError
from pyoci.linux import cgroups as _cg


class V2(_cg.Cgroup):
    driver = "v2"
    _version = 2

    def create(self):
        # Controllers are enabled in cgroup2 only where they live there: on
        # a unified host. A cgroup2 directory alone does not tell: in a mount
        # namespace that shows only cgroup2 on a hybrid host, the cgroup2
        # root offers what v1 does not use (hugetlb here); enabling one there
        # would keep it from ever being mounted on v1. /proc/self/cgroup
        # tells, even where the v1 mounts are hidden.
        self._unified = not _cg.controllers_on_v1()
        d = self.paths.get("")
        if d is not None and self._unified:
            # as runc: every controller is enabled on the way down from the
            # hierarchy's root, in the directories above the deepest one
            # that exists; that one gets them with the first directory made
            # below it (_made), and d itself never (it holds processes)
            p = d
            while not os.path.isdir(p):
                p = os.path.dirname(p)
            for anc in _ancestors(p, _mount_of(d))[:-1]:
                added = _cg._enable_controllers(anc)
                if added:
                    self.enabled.append([anc, added])
        super().create()

    def _made(self, key, d):
        if key == "" and self._unified:
            parent = os.path.dirname(d)
            added = _cg._enable_controllers(parent)
            if added and parent not in self.created:
                self.enabled.append([parent, added])

    def dir_for(self, ctrl):
        d = self.paths.get("")
        if d is None or not ctrl:
            return d
        try:
            with open(os.path.join(d, "cgroup.controllers")) as f:
                return d if ctrl in f.read().split() else None
        except OSError:
            return None

    def apply_devices(self, res):
        """An eBPF device filter attached to the cgroup."""
        from pyoci.linux.cgroups import resources as R

        rules = R.device_rules(res)
        d = self.paths.get("")
        if d is None:
            raise ConfigError(R.R + ".devices", "no cgroup v2 hierarchy to attach a device filter to")
        from pyoci.linux.cgroups import bpf

        try:
            bpf.attach_device_filter(d, rules)
        except OSError as e:
            raise ConfigError(R.R + ".devices", "cannot attach the eBPF device filter: %s" % e.strerror)


def _mount_of(d):
    """The mount point of the cgroup2 hierarchy holding directory d."""
    for h in _cg.layout():
        if h.version == 2 and (d == h.mountpoint or d.startswith(h.mountpoint.rstrip("/") + "/")):
            return h.mountpoint
    return d


def _ancestors(d, top):
    """top, then each directory below it down to d (d included)."""
    out = [d]
    while d != top and d.startswith(top.rstrip("/") + "/"):
        d = os.path.dirname(d)
        out.append(d)
    return list(reversed(out))
