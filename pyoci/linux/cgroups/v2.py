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
