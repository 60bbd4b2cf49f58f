/*
 * pyoci-init: the container's process from the end of `pyoci create` until
 * the user's program replaces it, and the final exec path of `pyoci exec`.
 *
 * The Python runtime has already built the container (namespaces, mounts,
 * pivot_root, devices, hostname, sysctls, rlimits, cwd, stdio, terminal). It
 * then executes this static binary through a read-only detached mount (or a
 * sealed memfd), so the container never sees a writable host executable
 * (CVE-2019-5736), and the waiting init costs a few hundred KiB instead of a
 * Python interpreter.
 *
 * What is left for this program, in this order:
 *   1. the LSM exec label (AppArmor's "exec PROFILE" or an SELinux context),
 *      written to the attr file it opens beneath the <procfs>/<pid>/attr fd
 *      the runtime verified (see pyoci/linux/lsm.py: the kernel lets only
 *      the opener's credentials write it, and our execve made new ones);
 *      with the caller's privileges, before anything is dropped, as runc
 *      applies its profile; an error goes to the runtime's report fd, so
 *      create (or exec) fails with it;
 *   2. wait on the exec fifo until `pyoci start` opens it (create only);
 *   3. seccomp, when no_new_privileges is off (needs CAP_SYS_ADMIN, so early);
 *   4. drop the capability bounding set;
 *   5. setgroups, setresgid, setresuid, keeping capabilities;
 *   6. capset (effective, permitted, inheritable), then ambient capabilities;
 *   7. no_new_privileges (an AppArmor exec transition from unconfined stays
 *      allowed under it; SELinux asks the policy for nnp_transition);
 *   8. umask, close every fd >= 3 + preserved fds;
 *   9. seccomp, when no_new_privileges is on (as late as possible);
 *      with SCMP_ACT_NOTIFY rules, the filter is loaded with a listener whose
 *      fd goes, with the container process state, over the socket the
 *      runtime connected to listenerPath (see pyoci/linux/seccomp.py),
 *      with, for exec, the host pid of the forked process filled in;
 *  10. execve of the resolved program.
 * First of all, every ignored signal (CPython ignores SIGPIPE and SIGXFSZ)
 * gets its default action back (see default_signals).
 *
 * Usage: pyoci-init PLAN_FD. PLAN_FD holds records: a one-byte tag, a
 * native-endian uint32 length, then that many bytes (see pyoci/runtime/plan.py,
 * which writes them).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif
#ifndef SECCOMP_FILTER_FLAG_NEW_LISTENER
#define SECCOMP_FILTER_FLAG_NEW_LISTENER (1UL << 3)
#endif
#ifndef SECCOMP_FILTER_FLAG_TSYNC_ESRCH
#define SECCOMP_FILTER_FLAG_TSYNC_ESRCH (1UL << 4)
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

#define MAX_ITEMS 65536

struct plan {
    char **argv, **envp;
    size_t argc, envc;
    const char *exe;
    int have_user;
    uint32_t uid, gid;
    int set_groups;
    gid_t *groups;
    size_t ngroups;
    int have_caps;
    uint64_t bounding, effective, inheritable, permitted, ambient;
    uint32_t last_cap;
    int nnp;
    const unsigned char *bpf;
    uint32_t bpf_len;
    uint32_t seccomp_flags;
    int listener_sock;          /* SCMP_ACT_NOTIFY: connected to listenerPath */
    const char *listener_msg;   /* the container process state (JSON) */
    uint32_t listener_msg_len;
    int fifo_fd;
    int fifo_dir_fd;     /* state dir, for a chroot without /proc; or -1 */
    uint32_t keep_fds;
    int have_umask;
    uint32_t umask_value;
    int label_dir;              /* O_PATH fd of <procfs>/<pid>/attr */
    const char *label_what;     /* error prefix: the field and the label */
    const char *label_attr;     /* the file beneath it, e.g. apparmor/exec */
    const char *label;
    uint32_t label_len;
    int setup_report;           /* create: errors before the start wait */
    int fork_report;            /* exec: fork into the pid namespace, report here */
    int go_fd;                  /* exec: wait for one byte (the cgroup was joined) */
    int go_before_fork;         /* ... before the fork (we were joined), or after */
    int set_ctty;               /* exec with a terminal: new session, fd 0 its tty */
};

/* exec (the 'F' record): errors go to the runtime as one JSON line on this
 * fd instead of the process's stderr, which is the user's. */
static int report_fd = -1;

static void report_error(const char *what, int err)
{
    char msg[600], out[1300];
    const char *e = strerror(err);
    int n = snprintf(msg, sizeof(msg), "%s: %c%s", what, e[0] >= 'A' && e[0] <= 'Z' ? e[0] - 'A' + 'a' : e[0],
                     e[0] ? e + 1 : "");
    if (n < 0)
        return;
    size_t o = 0;
    o += (size_t)snprintf(out, sizeof(out), "{\"type\": \"error\", \"error\": \"");
    for (const char *c = msg; *c && o < sizeof(out) - 16; c++) {
        unsigned char ch = (unsigned char)*c;
        if (ch == '"' || ch == '\\')
            o += (size_t)snprintf(out + o, sizeof(out) - o, "\\%c", ch);
        else if (ch < 0x20)
            o += (size_t)snprintf(out + o, sizeof(out) - o, "\\u%04x", ch);
        else
            out[o++] = (char)ch;
    }
    o += (size_t)snprintf(out + o, sizeof(out) - o, "\"}\n");
    (void)!write(report_fd, out, o);
}

static void die(const char *what, int err)
{
    if (report_fd >= 0) {
        report_error(what, err);
        _exit(127);
    }
    char buf[512];
    int n = snprintf(buf, sizeof(buf), "pyoci-init: %s: %s\n", what, strerror(err));
    if (n > 0)
        (void)!write(2, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
    _exit(127);
}

static uint32_t u32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t u64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static char *read_all(int fd, size_t *len)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        die("fstat plan", errno);
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        die("malloc", ENOMEM);
    size_t off = 0;
    while (off < (size_t)st.st_size) {
        ssize_t n = pread(fd, buf + off, (size_t)st.st_size - off, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("read plan", n < 0 ? errno : EIO);
        off += (size_t)n;
    }
    buf[off] = 0;
    *len = off;
    return buf;
}

/* Strings arrive without a terminating NUL: make each one a C string by
 * copying it. */
static char *cstr(const unsigned char *p, uint32_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        die("malloc", ENOMEM);
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

static void push(char ***vec, size_t *count, char *s)
{
    if (*count >= MAX_ITEMS)
        die("plan", E2BIG);
    *vec = realloc(*vec, (*count + 2) * sizeof(char *));
    if (!*vec)
        die("realloc", ENOMEM);
    (*vec)[(*count)++] = s;
    (*vec)[*count] = NULL;
}

/* A record's payload must have exactly (or, with at_least, at least) n
 * bytes: a short record would make the fields past it read the next
 * record, or past the end of the plan. */
static void need(unsigned char tag, uint32_t have, uint32_t n, int at_least)
{
    if (at_least ? have >= n : have == n)
        return;
    char what[48];
    snprintf(what, sizeof(what), "plan: record '%c' of %u bytes", tag, (unsigned)have);
    die(what, EINVAL);
}

static void parse(struct plan *p, const unsigned char *buf, size_t len)
{
    size_t off = 0;
    memset(p, 0, sizeof(*p));
    p->fifo_fd = -1;
    p->fifo_dir_fd = -1;
    p->label_dir = -1;
    p->setup_report = -1;
    p->fork_report = -1;
    p->go_fd = -1;
    p->listener_sock = -1;
    p->keep_fds = 3;
    while (off + 5 <= len) {
        unsigned char tag = buf[off];
        uint32_t n = u32(buf + off + 1);
        const unsigned char *d = buf + off + 5;
        if (n > len - off - 5)
            die("plan record", EINVAL);
        switch (tag) {
        case 'a': push(&p->argv, &p->argc, cstr(d, n)); break;
        case 'e': push(&p->envp, &p->envc, cstr(d, n)); break;
        case 'x': p->exe = cstr(d, n); break;
        case 'u': need(tag, n, 8, 0); p->have_user = 1; p->uid = u32(d); p->gid = u32(d + 4); break;
        case 'G':
            if (n % 4 || n / 4 > MAX_ITEMS)
                need(tag, n, 0, 0);
            p->set_groups = 1;
            p->ngroups = n / 4;
            p->groups = calloc(p->ngroups + 1, sizeof(gid_t));
            if (!p->groups)
                die("calloc", ENOMEM);
            for (size_t i = 0; i < p->ngroups; i++)
                p->groups[i] = u32(d + 4 * i);
            break;
        case 'c':
            need(tag, n, 44, 0);
            p->have_caps = 1;
            p->bounding = u64(d); p->effective = u64(d + 8);
            p->inheritable = u64(d + 16); p->permitted = u64(d + 24);
            p->ambient = u64(d + 32); p->last_cap = u32(d + 40);
            break;
        case 'n': need(tag, n, 0, 0); p->nnp = 1; break;
        case 's':
            need(tag, n, 4, 1);
            if ((n - 4) % sizeof(struct sock_filter) || (n - 4) / sizeof(struct sock_filter) > 0xFFFF)
                need(tag, n, 0, 0);
            p->seccomp_flags = u32(d); p->bpf = d + 4; p->bpf_len = n - 4;
            break;
        case 'L':
            need(tag, n, 5, 1);
            p->listener_sock = (int)u32(d);
            p->listener_msg = (const char *)d + 4;
            p->listener_msg_len = n - 4;
            break;
        case 'f':
            if (n != 8)
                need(tag, n, 4, 0);
            p->fifo_fd = (int)u32(d);
            p->fifo_dir_fd = n >= 8 ? (int)u32(d + 4) : -1;
            break;
        case 'k': need(tag, n, 4, 0); p->keep_fds = u32(d); break;
        case 'm': need(tag, n, 4, 0); p->have_umask = 1; p->umask_value = u32(d); break;
        case 'l': {
            /* dir fd, what NUL, attr NUL, label */
            need(tag, n, 4, 1);
            const char *w = (const char *)d + 4, *end = (const char *)d + n;
            const char *a = memchr(w, 0, (size_t)(end - w));
            const char *l = a ? memchr(a + 1, 0, (size_t)(end - a - 1)) : NULL;
            if (!l)
                need(tag, n, 0, 0);
            p->label_dir = (int)u32(d);
            p->label_what = w;
            p->label_attr = a + 1;
            p->label = l + 1;
            p->label_len = (uint32_t)(end - l - 1);
            break;
        }
        case 'R': need(tag, n, 4, 0); p->setup_report = (int)u32(d); break;
        case 'F': need(tag, n, 4, 0); p->fork_report = (int)u32(d); break;
        case 'W': need(tag, n, 8, 0); p->go_fd = (int)u32(d); p->go_before_fork = (int)u32(d + 4); break;
        case 'T': need(tag, n, 0, 0); p->set_ctty = 1; break;
        default: die("plan: unknown record", EINVAL);
        }
        off += 5 + n;
    }
    if (off != len)
        die("plan: truncated record", EINVAL);
    if (!p->exe || !p->argc)
        die("plan: no program", EINVAL);
}

/* Returns the fifo's write end, kept open (close-on-exec) until execve. */
static int wait_for_start(int fifo_fd, int dir_fd)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fifo_fd);
    /* Blocks until `pyoci start` opens the fifo for reading. */
    int fd;
    do fd = open(path, O_WRONLY | O_CLOEXEC); while (fd < 0 && errno == EINTR);
    if (fd < 0 && errno == ENOENT && dir_fd >= 0)   /* no /proc in a plain chroot */
        do fd = openat(dir_fd, "exec.fifo", O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        while (fd < 0 && errno == EINTR);
    if (fd < 0)
        die("open exec fifo", errno);
    if (write(fd, "0", 1) != 1)
        die("write exec fifo", errno);
    /* fd stays open, close-on-exec: `start` sees end-of-file once the
     * user's program was executed (or this process died), before it runs
     * the poststart hooks. */
    close(fifo_fd);
    if (dir_fd >= 0)
        close(dir_fd);
    return fd;
}

/* exec: our host pid, which the state sent to the agent names with a 0x01
 * byte (see PID_MARK in pyoci/linux/seccomp.py). */
static pid_t host_pid;

/* Hand the listener fd and the container process state to the seccomp
 * agent in one message (SCM_RIGHTS), as runc does. */
static void send_listener(const struct plan *p, int listener)
{
    char cbuf[CMSG_SPACE(sizeof(int))], pid[16];
    int pid_len = snprintf(pid, sizeof(pid), "%d", (int)host_pid);
    char *text = malloc((size_t)p->listener_msg_len * (size_t)pid_len + 1);
    size_t len = 0;
    if (!text)
        die("send seccomp listener fd to listenerPath", ENOMEM);
    for (uint32_t i = 0; i < p->listener_msg_len; i++) {
        if (p->listener_msg[i] == '\x01') {
            memcpy(text + len, pid, (size_t)pid_len);
            len += (size_t)pid_len;
        } else {
            text[len++] = p->listener_msg[i];
        }
    }
    struct iovec iov = { .iov_base = text, .iov_len = len };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                          .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
    memset(cbuf, 0, sizeof(cbuf));
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &listener, sizeof(int));
    ssize_t n;
    do n = sendmsg(p->listener_sock, &msg, MSG_NOSIGNAL); while (n < 0 && errno == EINTR);
    if (n != (ssize_t)len)
        die("send seccomp listener fd to listenerPath", n < 0 ? errno : EIO);
    free(text);
    close(listener);
    close(p->listener_sock);
}

static void load_seccomp(const struct plan *p)
{
    struct sock_fprog prog = {
        .len = (unsigned short)(p->bpf_len / sizeof(struct sock_filter)),
        .filter = (struct sock_filter *)p->bpf,
    };
    unsigned long flags = p->seccomp_flags;
    if (p->listener_sock >= 0) {
        flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
        if (flags & SECCOMP_FILTER_FLAG_TSYNC)  /* TSYNC alone excludes a listener */
            flags |= SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
    }
    long ret = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
    if (ret < 0)
        die("seccomp", errno);
    if (p->listener_sock >= 0)
        send_listener(p, (int)ret);
}

static void set_caps(const struct plan *p)
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    data[0].effective = (uint32_t)p->effective;
    data[1].effective = (uint32_t)(p->effective >> 32);
    data[0].permitted = (uint32_t)p->permitted;
    data[1].permitted = (uint32_t)(p->permitted >> 32);
    data[0].inheritable = (uint32_t)p->inheritable;
    data[1].inheritable = (uint32_t)(p->inheritable >> 32);
    if (syscall(SYS_capset, &hdr, data) < 0)
        die("capset", errno);
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        die("clear ambient capabilities", errno);
    for (uint32_t c = 0; c <= p->last_cap && c < 64; c++)
        if ((p->ambient >> c) & 1)
            if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
                die("raise ambient capability", errno);
}

static void close_range_or_loop(unsigned int first, unsigned int last)
{
    if (first > last)
        return;
    if (syscall(SYS_close_range, first, last, 0) < 0)
        for (unsigned int fd = first; fd <= last && fd < 65536; fd++)
            close((int)fd);
}

/* Close every fd >= first but `except` and `except2` (-1: none). */
static void close_from(unsigned int first, int except, int except2)
{
    if (except2 >= 0 && (except < 0 || except2 < except)) {
        int t = except; except = except2; except2 = t;
    }
    /* now except <= except2, or except2 < 0 */
    if (except >= (int)first) {
        close_range_or_loop(first, (unsigned int)except - 1);
        first = (unsigned int)except + 1;
    }
    if (except2 >= (int)first) {
        close_range_or_loop(first, (unsigned int)except2 - 1);
        first = (unsigned int)except2 + 1;
    }
    close_range_or_loop(first, ~0U);
}

/* exec: the runtime joined the container's namespaces and executed us;
 * the pid namespace applies to our children only. Fork the process that
 * becomes the user's program (this image, never a host binary, is all the
 * container can see of it), report its host pid, and exit. The runtime puts
 * us in the container's cgroup before we fork (or, into a frozen cgroup, the
 * child, which then waits there until resumed); the child reports errors on
 * the same fd, which closes (close-on-exec) at its successful execve. */
static void wait_go(int fd)
{
    char c;
    ssize_t n;
    do n = read(fd, &c, 1); while (n < 0 && errno == EINTR);
    if (n != 1)
        _exit(127);   /* the runtime gave up on us */
    close(fd);
}

/* The exec label, for our next execve (and a fork's). The attr file is
 * opened here, beneath the verified directory, without crossing a mount or
 * following a link: a task may write only its own attributes, and only
 * with the credentials that opened the file. */
static void write_label(struct plan *p)
{
    struct open_how how = {
        .flags = O_WRONLY | O_CLOEXEC,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    int fd = (int)syscall(SYS_openat2, p->label_dir, p->label_attr, &how, sizeof(how));
    if (fd < 0 || write(fd, p->label, p->label_len) != (ssize_t)p->label_len)
        die(p->label_what, errno);
    close(fd);
    close(p->label_dir);
    p->label_dir = -1;
}

static void fork_into_pidns(struct plan *p)
{
    report_fd = p->fork_report;
    /* before the fork, which inherits the exec label */
    if (p->label_dir >= 0)
        write_label(p);
    if (p->go_fd >= 0 && p->go_before_fork)
        wait_go(p->go_fd);
    /* the child's host pid, for the seccomp agent: only we learn it */
    int pid_pipe[2] = { -1, -1 };
    if (p->listener_sock >= 0 && pipe2(pid_pipe, O_CLOEXEC) < 0)
        die("pipe", errno);
    pid_t pid = fork();
    if (pid < 0)
        die("fork", errno);
    if (pid > 0) {
        char buf[64];
        int n = snprintf(buf, sizeof(buf), "{\"type\": \"pid\", \"pid\": %d}\n", (int)pid);
        if (pid_pipe[1] >= 0)
            (void)!write(pid_pipe[1], &pid, sizeof(pid));
        (void)!write(report_fd, buf, (size_t)n);
        _exit(0);
    }
    if (pid_pipe[0] >= 0) {
        close(pid_pipe[1]);
        if (read(pid_pipe[0], &host_pid, sizeof(host_pid)) != (ssize_t)sizeof(host_pid))
            die("read the host pid", EIO);
        close(pid_pipe[0]);
    }
    if (fcntl(report_fd, F_SETFD, FD_CLOEXEC) < 0)
        die("report fd", errno);
    if (p->go_fd >= 0 && !p->go_before_fork)
        wait_go(p->go_fd);
    if (p->set_ctty) {
        if (setsid() < 0)
            die("setsid", errno);
        if (ioctl(0, TIOCSCTTY, 0) < 0)
            die("set the controlling terminal", errno);
    }
}

/* No capabilities in the config: the process keeps what it has, but never
 * inheritable or ambient capabilities it did not ask for (CVE-2022-29162:
 * they would reach programs run through file capabilities). */
static void clear_inheritable(void)
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &hdr, data) < 0)
        die("capget", errno);
    data[0].inheritable = data[1].inheritable = 0;
    if (syscall(SYS_capset, &hdr, data) < 0)
        die("capset", errno);
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        die("clear ambient capabilities", errno);
}

/* An exec keeps ignored signals ignored: without this, every container
 * process would start with SIGPIPE and SIGXFSZ ignored, as CPython sets
 * them (a program writing into a closed pipe would get EPIPE instead of
 * dying), and with whatever the runtime's caller ignored. runc's container
 * processes start with no signal ignored (runc handles every signal while
 * it starts them, so its exec resets them all): the same here. */
static void default_signals(void)
{
    struct sigaction sa;
    for (int s = 1; s < NSIG; s++) {
        if (s == SIGKILL || s == SIGSTOP)
            continue;
        if (sigaction(s, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN) {
            sa.sa_handler = SIG_DFL;
            sigaction(s, &sa, NULL);
        }
    }
}

int main(int argc, char **argv)
{
    struct plan p;
    size_t len;
    if (argc < 2)
        die("usage: pyoci-init PLAN_FD", EINVAL);
    default_signals();
    int plan_fd = atoi(argv[1]);
    unsigned char *buf = (unsigned char *)read_all(plan_fd, &len);
    close(plan_fd);
    parse(&p, buf, len);
    int started_fd = -1;

    if (p.fork_report >= 0) {
        fork_into_pidns(&p);
    } else if (p.label_dir >= 0) {
        report_fd = p.setup_report;
        write_label(&p);
        if (report_fd >= 0)
            close(report_fd);   /* create returns now */
        report_fd = -1;
    }

    if (p.fifo_fd >= 0)
        started_fd = wait_for_start(p.fifo_fd, p.fifo_dir_fd);

    if (p.bpf && !p.nnp)
        load_seccomp(&p);

    if (p.have_caps) {
        for (uint32_t c = 0; c <= p.last_cap && c < 64; c++)
            if (!((p.bounding >> c) & 1))
                if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
                    die("drop bounding capability", errno);
        if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
            die("keep capabilities", errno);
    }
    if (p.set_groups && setgroups(p.ngroups, p.groups) < 0)
        die("setgroups", errno);
    if (p.have_user) {
        if (syscall(SYS_setresgid, p.gid, p.gid, p.gid) < 0)
            die("setgid", errno);
        if (syscall(SYS_setresuid, p.uid, p.uid, p.uid) < 0)
            die("setuid", errno);
    }
    if (p.have_caps) {
        set_caps(&p);
        prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
    } else {
        clear_inheritable();
    }
    if (p.nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        die("no_new_privs", errno);
    if (p.have_umask)
        umask((mode_t)p.umask_value);

    /* Nothing of the runtime's may reach the user's program (the seccomp
     * agent's socket, if any, is closed as soon as the filter is sent). */
    close_from(p.keep_fds, p.bpf && p.nnp ? p.listener_sock : -1,
               started_fd >= 0 ? started_fd : report_fd);
    if (p.bpf && p.nnp)
        load_seccomp(&p);

    execve(p.exe, p.argv, p.envp ? p.envp : (char *[]){ NULL });
    die(p.exe, errno);
    return 127;
}
