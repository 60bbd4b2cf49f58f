import pytest

from pyoci.cli.args import Flag, UsageError, parse
from pyoci.cli.lifecycle import parse_signal
from pyoci.cli.query import tabwrite

FLAGS = [Flag("--bundle|-b", value=True), Flag("--detach|-d"), Flag("--env|-e", value=True, multi=True)]


def test_forms():
    assert parse(["--bundle", "x", "id"], FLAGS) == ({"bundle": "x", "detach": False, "env": []}, ["id"])
    assert parse(["--bundle=x", "-d", "id"], FLAGS)[0]["bundle"] == "x"
    assert parse(["-b", "x", "--detach=false", "id"], FLAGS)[0]["detach"] is False
    assert parse(["-e", "A=1", "--env=B=2", "id"], FLAGS)[0]["env"] == ["A=1", "B=2"]


def test_positional_ends_flags():
    assert parse(["id", "sh", "-c", "x"], FLAGS)[1] == ["id", "sh", "-c", "x"]
    assert parse(["--", "-d"], FLAGS)[1] == ["-d"]


def test_errors():
    with pytest.raises(UsageError, match="not defined: --nope"):
        parse(["--nope"], FLAGS)
    with pytest.raises(UsageError, match="needs an argument"):
        parse(["--bundle"], FLAGS)


@pytest.mark.parametrize("s,n", [("0", 0), ("9", 9), ("KILL", 9), ("SIGKILL", 9), ("kill", 9), ("TERM", 15), ("SIGUSR1", 10)])
def test_signals(s, n):
    assert parse_signal(s) == n


@pytest.mark.parametrize("s", ["999", "-1", "SIGFOO", ""])
def test_bad_signals(s):
    with pytest.raises(UsageError):
        parse_signal(s)


def test_tabwrite_like_go():
    out = tabwrite([["ID", "PID"], ["averyveryverylongid", "1"]])
    assert out == "ID".ljust(22) + "PID\n" + "averyveryverylongid   1\n"
