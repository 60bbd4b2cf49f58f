"""Linux signal numbers by name (the `signal` module would cost ~4 ms of
start-up: it imports enum)."""

SIGNALS = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7, "FPE": 8,
    "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15,
    "STKFLT": 16, "CHLD": 17, "CLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21,
    "TTOU": 22, "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28,
    "IO": 29, "POLL": 29, "PWR": 30, "SYS": 31,
}
SIGRTMIN, SIGRTMAX = 34, 64
SIGHUP, SIGINT, SIGKILL, SIGTERM, SIGWINCH = 1, 2, 9, 15, 28


def parse(s):
    """A signal by number or name (KILL, SIGKILL, RTMIN+3); None if unknown."""
    if s.isdigit():
        n = int(s)   # 0: only whether the process is alive (runc: `kill ID 0`)
        return n if 0 <= n <= SIGRTMAX else None
    name = s.upper()
    if name.startswith("SIG"):
        name = name[3:]
    if name in SIGNALS:
        return SIGNALS[name]
    for base, sign in (("RTMIN", 1), ("RTMAX", -1)):
        if name.startswith(base):
            off = name[len(base):]
            if off == "" or off.lstrip("+-").isdigit():
                n = (SIGRTMIN if sign > 0 else SIGRTMAX) + (int(off) if off else 0)
                if SIGRTMIN <= n <= SIGRTMAX:
                    return n
    return None
