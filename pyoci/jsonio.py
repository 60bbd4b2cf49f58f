"""JSON through the interpreter's C accelerator (_json) only.

`import json` costs ~7 ms of CPU here (it pulls in re and enum), a third of
a whole `pyoci state`. The commands that run most often (state, start,
kill, delete) read and write small JSON documents; this module gives them
the same parser and encoder without the import cost.
"""
import _json

class _ScanContext:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo = None

    @staticmethod
    def parse_constant(name):
        return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]


_scan = _json.make_scanner(_ScanContext())
_WS = " \t\n\r"


def loads(s):
    if isinstance(s, (bytes, bytearray)):
        s = s.decode("utf-8")
    i = len(s) - len(s.lstrip(_WS))
    try:
        obj, end = _scan(s, i)
        if s[end:].strip(_WS):
            raise ValueError
    except (StopIteration, ValueError, SystemError):
        # Malformed input: let the json module say exactly what is wrong
        # (its import cost is paid only on this error path).
        import json

        return json.loads(s)
    return obj


def _floatstr(f):
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "Infinity" if f > 0 else "-Infinity"
    return float.__repr__(f)


def _unserializable(o):
    raise TypeError("Object of type %s is not JSON serializable" % type(o).__name__)


# _json's C encoder, as json.dumps(separators=(",", ":"), ensure_ascii=False)
# uses it: ~10x faster than _emit below (create writes its state documents
# and messages with it). It has no indentation; _emit does that.
_compact = _json.make_encoder(None, _unserializable, _json.encode_basestring, None, ":", ",", False, False, True)


def dumps(obj, indent=None):
    """Compact (runc's `list`) or indented (runc's `state`) JSON."""
    if indent is None:
        return "".join(_compact(obj, 0))
    out = []
    _emit(obj, out, indent, 0)
    return "".join(out)


def _emit(o, out, indent, level):
    if isinstance(o, str):
        out.append(_json.encode_basestring(o))
    elif o is None:
        out.append("null")
    elif o is True:
        out.append("true")
    elif o is False:
        out.append("false")
    elif isinstance(o, int):
        out.append(int.__repr__(o))
    elif isinstance(o, float):
        out.append(_floatstr(o))
    elif isinstance(o, (list, tuple)):
        if not o:
            out.append("[]")
            return
        _container(out, "[", "]", o, indent, level, lambda v: _emit(v, out, indent, level + 1))
    elif isinstance(o, dict):
        if not o:
            out.append("{}")
            return

        def item(kv):
            out.append(_json.encode_basestring(str(kv[0])))
            out.append(": " if indent is not None else ":")
            _emit(kv[1], out, indent, level + 1)
        _container(out, "{", "}", list(o.items()), indent, level, item)
    else:
        raise TypeError("Object of type %s is not JSON serializable" % type(o).__name__)


def _container(out, open_, close, items, indent, level, emit):
    out.append(open_)
    if indent is None:
        for i, v in enumerate(items):
            if i:
                out.append(",")
            emit(v)
    else:
        pad = "\n" + " " * (indent * (level + 1))
        for i, v in enumerate(items):
            out.append(("," if i else "") + pad)
            emit(v)
        out.append("\n" + " " * (indent * level))
    out.append(close)
