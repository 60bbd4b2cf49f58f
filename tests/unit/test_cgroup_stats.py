"""events' stats from fake cgroup files (v1 and v2), and the update/events
flag parsers."""
import pytest

from pyoci.cli.args import UsageError
from pyoci.cli.cgroup_cmds import parse_duration, parse_size, resources_from_flags
from pyoci.runtime.container import merge
from pyoci.linux import cgroups
from pyoci.linux.cgroups import resources, stats


def files(d, **kw):
    d.mkdir(parents=True, exist_ok=True)
    for k, v in kw.items():
        (d / k.replace("__", ".")).write_text(v)
    return str(d)


def test_v2_stats(tmp_path, monkeypatch):
    monkeypatch.setattr(resources, "host_page_sizes", lambda: ["2MB"])
    d = files(tmp_path / "c", cpu__stat="usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\n"
              "nr_throttled 1\nthrottled_usec 7\n", memory__max="max\n", memory__current="4096\n",
              memory__stat="anon 100\nfile 300\n", memory__events="low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n",
              memory__swap__max="0\n", memory__swap__current="0\n", pids__current="3\n", pids__max="10\n",
              io__stat="8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n",
              hugetlb__2MB__current="0\n", hugetlb__2MB__events="max 5\n")
    s = stats.collect(cgroups.Cgroup({"": d}))
    assert s["cpu"] == {"usage": {"total": 1500000, "kernel": 500000, "user": 1000000},
                        "throttling": {"periods": 4, "throttledPeriods": 1, "throttledTime": 7000}}
    assert s["memory"]["usage"] == {"limit": stats.MAX_U64, "usage": 4096, "failcnt": 2}
    assert s["memory"]["cache"] == 300 and s["memory"]["raw"] == {"anon": 100, "file": 300}
    assert s["pids"] == {"current": 3, "limit": 10}
    assert s["blkio"]["ioServiceBytesRecursive"] == [{"major": 8, "op": "Read", "value": 10},
                                                     {"major": 8, "op": "Write", "value": 20}]
    assert s["hugetlb"] == {"2MB": {"failcnt": 5}}
    assert stats.oom_count(cgroups.Cgroup({"": d})) == 1


def test_v1_stats(tmp_path, monkeypatch):
    acct = files(tmp_path / "cpuacct" / "c", cpuacct__usage="30\n", cpuacct__usage_percpu="10 20 \n",
                 cpuacct__usage_all="cpu user system\n0 6 4\n1 15 5\n", cpuacct__stat="user 2\nsystem 1\n")
    cpu = files(tmp_path / "cpu" / "c", cpu__stat="nr_periods 0\nnr_throttled 0\nthrottled_time 0\n")
    mem = files(tmp_path / "memory" / "c", memory__limit_in_bytes="1048576\n", memory__usage_in_bytes="4096\n",
                memory__max_usage_in_bytes="8192\n", memory__failcnt="0\n", memory__stat="cache 7\nrss 9\n",
                memory__oom_control="oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
    pids = files(tmp_path / "pids" / "c", pids__current="2\n", pids__max="max\n")
    cg = cgroups.Cgroup({"cpuacct": acct, "cpu": cpu, "memory": mem, "pids": pids})
    s = stats.collect(cg)
    hz = __import__("os").sysconf("SC_CLK_TCK")
    assert s["cpu"]["usage"] == {"total": 30, "percpu": [10, 20], "percpu_kernel": [4, 5], "percpu_user": [6, 15],
                                 "kernel": 10**9 // hz, "user": 2 * 10**9 // hz}
    assert s["cpu"]["throttling"] == {}
    assert s["memory"]["usage"] == {"limit": 1048576, "usage": 4096, "max": 8192, "failcnt": 0}
    assert s["memory"]["cache"] == 7 and list(s["memory"]) == ["cache", "usage", "swap", "kernel", "kernelTCP", "raw"]
    assert s["pids"] == {"current": 2}
    assert s["hugetlb"] == {} and s["network_interfaces"] is None
    assert stats.oom_count(cg) == 3


def test_parse_size_like_runc():
    assert parse_size("1024", "--memory") == 1024
    assert parse_size("64M", "--memory") == 64 << 20
    assert parse_size("1.5g", "--memory") == 3 << 29
    assert parse_size("2GiB", "--memory") == 2 << 30
    assert parse_size("512kb", "--memory") == 512 << 10
    assert parse_size("-1", "--memory-swap") == -1
    for bad in ("abc", "", "-5", "1x", "M"):
        with pytest.raises(UsageError):
            parse_size(bad, "--memory")


def test_parse_duration_go_forms():
    assert parse_duration("5s") == 5
    assert parse_duration("250ms") == 0.25
    assert parse_duration("1m30s") == 90
    assert parse_duration("1.5h") == 5400
    for bad in ("5", "s", "5x", ""):
        with pytest.raises(UsageError):
            parse_duration(bad)


def test_update_flags_to_resources_and_merge():
    r = resources_from_flags({"memory": "1G", "memory_swap": "-1", "cpu_share": "512", "cpu_quota": "-1",
                              "cpuset_cpus": "0-1", "pids_limit": "100", "blkio_weight": "300"})
    assert r == {"memory": {"limit": 1 << 30, "swap": -1}, "cpu": {"shares": 512, "quota": -1, "cpus": "0-1"},
                 "pids": {"limit": 100}, "blockIO": {"weight": 300}}
    with pytest.raises(UsageError):
        resources_from_flags({"cpu_period": "-3"})
    assert merge({"memory": {"limit": 5, "checkBeforeUpdate": True}}, {"memory": {"limit": 7}, "pids": {"limit": 1}}) \
        == {"memory": {"limit": 7, "checkBeforeUpdate": True}, "pids": {"limit": 1}}
