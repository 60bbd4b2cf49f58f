/* pyoci._shim: thin wrappers for the Linux system calls that Python 3.11's
 * os module lacks. Each returns what the kernel returned; errno is read by
 * the caller through ffi.errno. No logic lives here. */
#include <stdint.h>
#include <stddef.h>

int pyoci_unshare(int flags);
int pyoci_setns(int fd, int nstype);
int pyoci_mount(const char *source, const char *target, const char *fstype,
                unsigned long flags, const char *data);
int pyoci_umount2(const char *target, int flags);
int pyoci_pivot_root(const char *new_root, const char *put_old);
int pyoci_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode,
                  uint64_t resolve);
int pyoci_open_tree(int dirfd, const char *path, unsigned int flags);
int pyoci_mount_setattr(int dirfd, const char *path, unsigned int flags,
                        uint64_t attr_set, uint64_t attr_clr,
                        uint64_t propagation, uint64_t userns_fd);
int pyoci_move_mount(int from_dirfd, const char *from_path, int to_dirfd,
                     const char *to_path, unsigned int flags);
int pyoci_prctl(int option, unsigned long a2, unsigned long a3,
                unsigned long a4, unsigned long a5);
int pyoci_sethostname(const char *name, size_t len);
int pyoci_setdomainname(const char *name, size_t len);
int pyoci_close_range(unsigned int first, unsigned int last, int flags);
long pyoci_fstatfs_type(int fd);
long pyoci_keyctl_join_session(const char *name);
int pyoci_sched_setattr(uint32_t policy, uint64_t flags, int32_t nice, uint32_t priority,
                        uint64_t runtime, uint64_t deadline, uint64_t period);
int pyoci_ioprio_set(int which, int who, int ioprio);
long pyoci_personality(unsigned long persona);
int pyoci_set_mempolicy(int mode, const unsigned long *nodemask, unsigned long maxnode);
int pyoci_fsopen(const char *fsname, unsigned int flags);
int pyoci_fsconfig(int fd, unsigned int cmd, const char *key, const char *value, int aux);
int pyoci_fsmount(int fd, unsigned int flags, unsigned int attr_flags);
