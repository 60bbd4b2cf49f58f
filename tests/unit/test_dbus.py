"""pyoci's small D-Bus client: its marshalling is byte for byte the one of
jeepney (a complete pure-Python implementation, installed for the tests
only), both ways and in both byte orders."""
import pytest

from pyoci.linux.cgroups import dbus as D

jeepney = pytest.importorskip("jeepney", reason="jeepney (a test dependency) is not installed")
from jeepney import DBusAddress, new_method_call  # noqa: E402
from jeepney.low_level import Endianness, Parser  # noqa: E402

SIG = "ssa(sv)a(sa(sv))"
PROPS = [("Description", ("s", "pyoci container x")), ("Slice", ("s", "system.slice")), ("Delegate", ("b", True)),
         ("PIDs", ("au", [1234, 5])), ("MemoryMax", ("t", (1 << 64) - 1)), ("AllowedCPUs", ("ay", b"\x03\x01")),
         ("DeviceAllow", ("a(ss)", [("/dev/char/1:3", "rwm"), ("char-*", "m")])), ("DeviceAllow", ("a(ss)", [])),
         ("X", ("a{sv}", {"a": ("i", -5), "b": ("d", 1.5)})), ("N", ("n", -2)), ("Y", ("y", 7)),
         ("G", ("g", "a(sv)")), ("O", ("o", "/org/x")), ("Q", ("q", 65535)), ("Z", ("x", -(1 << 40))),
         ("E", ("as", []))]
ARGS = ["pyoci-x.scope", "replace", PROPS, [("aux.scope", [("Z", ("b", False))])]]
ADDR = DBusAddress("/org/freedesktop/systemd1", bus_name="org.freedesktop.systemd1",
                   interface="org.freedesktop.systemd1.Manager")


def mine(serial=7):
    return D.Message(D.METHOD_CALL, {D.PATH: ADDR.object_path, D.INTERFACE: ADDR.interface,
                                     D.MEMBER: "StartTransientUnit", D.DESTINATION: ADDR.bus_name,
                                     D.SIGNATURE: SIG}, ARGS, serial=serial).to_bytes()


def test_same_bytes_as_jeepney():
    theirs = new_method_call(ADDR, "StartTransientUnit", SIG, tuple(ARGS)).serialise(serial=7)
    assert mine() == theirs


def test_reads_what_jeepney_writes_in_both_byte_orders():
    for order in (Endianness.little, Endianness.big):
        jm = new_method_call(ADDR, "StartTransientUnit", SIG, tuple(ARGS))
        jm.header.endianness = order
        m = D.Message.parse(jm.serialise(serial=9))
        assert m.serial == 9 and m.body == ARGS and m.fields[D.MEMBER] == "StartTransientUnit"


def test_jeepney_reads_what_pyoci_writes():
    p = Parser()
    p.add_data(mine(11))
    jm = p.get_next_message()
    assert jm.header.serial == 11 and list(jm.body) == [ARGS[0], ARGS[1], PROPS, ARGS[3]]


def test_message_length_and_malformed_input():
    data = mine()
    assert D.message_length(data[:16]) == len(data)
    with pytest.raises(D.DBusError, match="malformed"):
        D.Message.parse(b"X" + data[1:])
    with pytest.raises(D.DBusError, match="malformed"):
        D.unmarshal("s", b"\xff\x00\x00\x00ab")


def test_addresses():
    assert D.parse_address("unix:path=/run/dbus/system_bus_socket") == ["/run/dbus/system_bus_socket"]
    assert D.parse_address("tcp:host=x;unix:abstract=/tmp/dbus-1%2c2,guid=00") == ["\0/tmp/dbus-1,2"]
