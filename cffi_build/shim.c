#define _GNU_SOURCE
#include <sched.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <linux/openat2.h>
#include <linux/mount.h>
#include "shim.h"

#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

int pyoci_unshare(int flags) { return unshare(flags); }
int pyoci_setns(int fd, int nstype) { return setns(fd, nstype); }

int pyoci_mount(const char *source, const char *target, const char *fstype,
                unsigned long flags, const char *data)
{
    return mount(source, target, fstype, flags, data);
}

int pyoci_umount2(const char *target, int flags) { return umount2(target, flags); }

int pyoci_pivot_root(const char *new_root, const char *put_old)
{
    return (int)syscall(SYS_pivot_root, new_root, put_old);
}

int pyoci_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode,
                  uint64_t resolve)
{
    struct open_how how = { .flags = flags, .mode = mode, .resolve = resolve };
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

int pyoci_open_tree(int dirfd, const char *path, unsigned int flags)
{
    return (int)syscall(SYS_open_tree, dirfd, path, flags);
}

int pyoci_mount_setattr(int dirfd, const char *path, unsigned int flags,
                        uint64_t attr_set, uint64_t attr_clr,
                        uint64_t propagation, uint64_t userns_fd)
{
    struct mount_attr attr = {
        .attr_set = attr_set, .attr_clr = attr_clr,
        .propagation = propagation, .userns_fd = userns_fd,
    };
    return (int)syscall(SYS_mount_setattr, dirfd, path, flags, &attr, sizeof(attr));
}

int pyoci_move_mount(int from_dirfd, const char *from_path, int to_dirfd,
                     const char *to_path, unsigned int flags)
{
    return (int)syscall(SYS_move_mount, from_dirfd, from_path, to_dirfd, to_path, flags);
}

int pyoci_prctl(int option, unsigned long a2, unsigned long a3,
                unsigned long a4, unsigned long a5)
{
    return prctl(option, a2, a3, a4, a5);
}

int pyoci_sethostname(const char *name, size_t len) { return sethostname(name, len); }
int pyoci_setdomainname(const char *name, size_t len) { return setdomainname(name, len); }

int pyoci_close_range(unsigned int first, unsigned int last, int flags)
{
    return (int)syscall(SYS_close_range, first, last, flags);
}

long pyoci_fstatfs_type(int fd)
{
    struct statfs st;
    if (fstatfs(fd, &st) < 0)
        return -1;
    return (long)st.f_type;
}

long pyoci_keyctl_join_session(const char *name)
{
    return syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, name, 0, 0, 0);
}

/* process settings (pyoci/linux/process.py) */
struct pyoci_sched_attr {
    uint32_t size, sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime, sched_deadline, sched_period;
    uint32_t sched_util_min, sched_util_max;
};

int pyoci_sched_setattr(uint32_t policy, uint64_t flags, int32_t nice, uint32_t priority,
                        uint64_t runtime, uint64_t deadline, uint64_t period)
{
    struct pyoci_sched_attr a = {
        .size = sizeof(a), .sched_policy = policy, .sched_flags = flags,
        .sched_nice = nice, .sched_priority = priority, .sched_runtime = runtime,
        .sched_deadline = deadline, .sched_period = period,
        .sched_util_min = 0, .sched_util_max = 1024,
    };
    return (int)syscall(SYS_sched_setattr, 0, &a, 0);
}

int pyoci_ioprio_set(int which, int who, int ioprio)
{
    return (int)syscall(SYS_ioprio_set, which, who, ioprio);
}

long pyoci_personality(unsigned long persona) { return syscall(SYS_personality, persona); }

int pyoci_set_mempolicy(int mode, const unsigned long *nodemask, unsigned long maxnode)
{
    return (int)syscall(SYS_set_mempolicy, mode, nodemask, maxnode);
}

int pyoci_fsopen(const char *fsname, unsigned int flags)
{
    return (int)syscall(SYS_fsopen, fsname, flags);
}

int pyoci_fsconfig(int fd, unsigned int cmd, const char *key, const char *value, int aux)
{
    return (int)syscall(SYS_fsconfig, fd, cmd, key, value, aux);
}

int pyoci_fsmount(int fd, unsigned int flags, unsigned int attr_flags)
{
    return (int)syscall(SYS_fsmount, fd, flags, attr_flags);
}
