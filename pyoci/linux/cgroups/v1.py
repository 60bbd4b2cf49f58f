"""The cgroupfs driver where the resource controllers live on v1 hierarchies:
legacy hosts, and hybrid ones (v1 controllers plus a cgroup2 mount, which
gets the container's directory for placement only: no controller is ever
enabled there, or v1 could no longer mount it)."""
import errno

from pyoci import fastos as os
from pyoci.errors import ConfigError
from pyoci.linux import cgroups as _cg


class V1(_cg.Cgroup):
    driver = "v1"
    _version = 1

    def _made(self, key, d):
        if "cpuset" in key.split(","):
            _cg._init_cpuset(d)

    def create(self):
        super().create()
        for key, d in self.paths.items():
            if "cpuset" in key.split(","):
                _cg.init_cpuset_ancestors(d)

    def dir_for(self, ctrl):
        for key, d in self.paths.items():
            if key and ctrl in key.split(","):
                return d
        return None

    def _write_planned(self, w, saved):
        from pyoci.linux.cgroups import resources as R

        if isinstance(w, R.CpuPair):
            try:
                self._write(w.period, saved)
            except ConfigError as e:
                if getattr(e, "errno", None) != errno.EINVAL:
                    raise
                self._write(w.quota, saved)
                self._write(w.period, saved)
                return
            return self._write(w.quota, saved)
        if not isinstance(w, R.MemoryPair):
            return self._write(w, saved)
        # memory.memsw.limit_in_bytes must stay >= memory.limit_in_bytes
        d = self.dir_for("memory")
        cur = _cg._read_int(os.path.join(d, "memory.limit_in_bytes")) if d else 0
        for x in w.ordered(cur if cur is not None else 0):
            self._write(x, saved)

    def apply_devices(self, res):
        """devices.allow and devices.deny, in the rules' order."""
        from pyoci.linux.cgroups import resources as R

        rules = R.device_rules(res)
        d = self.dir_for("devices")
        if d is None:
            raise ConfigError(R.R + ".devices", "the devices cgroup controller is not available on this host")
        for rule in rules:
            line = R.v1_device_line(rule)
            try:
                _cg._write_file(os.path.join(d, "devices.allow" if rule[0] else "devices.deny"), line)
            except OSError as e:
                raise ConfigError(rule[5], "cannot apply device rule %r: %s" % (line, e.strerror))
