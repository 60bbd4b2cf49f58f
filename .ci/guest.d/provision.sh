#!/bin/sh
# Run by `.ci/guest build` in a chroot of the freshly debootstrapped guest
# root (with /proc, /sys, /dev and the host's resolv.conf mounted in a private
# mount namespace). Arguments: the packages to install. /src is the
# harness's guest.d directory.
set -eu
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# No service starts inside the chroot.
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d

apt-get update -qq
apt-get install -y -qq --no-install-recommends "$@"
apt-get clean

# The kernel: Debian's linux-image-amd64, unpacked (not installed: no
# initramfs-tools run; the harness makes a tiny initramfs of its own).
cd /tmp
apt-get download -q linux-image-amd64
abi=$(dpkg-deb -f linux-image-amd64_*.deb Depends | tr ',|' '\n\n' | sed -n 's/^ *\(linux-image-[0-9][^ ]*\).*/\1/p' | head -1)
apt-get download -q "$abi"
# (unpacked aside: /lib is a symlink to usr/lib on Debian 12, which an
# extraction over / would replace with a directory)
dpkg-deb -x "$abi"_*.deb /tmp/kernel
cp -a /tmp/kernel/lib/modules /lib/
cp -a /tmp/kernel/boot/. /boot/
rm -rf /tmp/kernel linux-image-*.deb
kver=$(ls /lib/modules | head -1)
# Drop hardware a virtual machine never has (a third of the modules' size).
m=/lib/modules/$kver/kernel
rm -rf $m/drivers/gpu $m/drivers/media $m/drivers/infiniband $m/drivers/staging \
       $m/drivers/net/wireless $m/drivers/net/ethernet $m/drivers/bluetooth $m/drivers/iio \
       $m/drivers/isdn $m/drivers/hid $m/drivers/input/touchscreen $m/drivers/usb \
       $m/sound $m/net/wireless $m/net/mac80211 $m/net/bluetooth
depmod -a "$kver"
echo "$kver" >/boot/kernel-version

# The guest's configuration.
echo pyoci-guest >/etc/hostname
printf '127.0.0.1 localhost\n127.0.1.1 pyoci-guest\n::1 localhost ip6-localhost ip6-loopback\n' >/etc/hosts
cat >/etc/fstab <<'FSTAB'
/dev/vda  /      ext4  rw,noatime  0 0
/dev/vdb  /work  ext4  rw,noatime,nofail  0 0
ci        /ci    9p    trans=virtio,version=9p2000.L,msize=262144,nofail  0 0
FSTAB
mkdir -p /work /ci /wheels
printf '9p\n9pnet_virtio\n' >/etc/modules-load.d/ci-9p.conf
# user-mode networking (QEMU's slirp): DHCP, its resolver
mkdir -p /etc/systemd/network
printf '[Match]\nName=en* eth*\n[Network]\nDHCP=ipv4\n' >/etc/systemd/network/50-dhcp.network
# (/etc/resolv.conf, QEMU's resolver, is written by the harness after this:
# the host's is mounted over it here)
systemctl enable systemd-networkd.service
# root logs in on the console without a password (a throw-away machine)
passwd -d root

install -m 755 /src/ci-job /usr/local/sbin/ci-job
install -m 644 /src/ci-job.service /etc/systemd/system/ci-job.service
systemctl enable ci-job.service
# Nothing the job does not start itself: the engines run privately in the
# tests, timers would only steal the two CPUs.
for u in containerd.service podman.service podman.socket podman-auto-update.service podman-auto-update.timer \
         podman-restart.service podman-clean-transient.service apt-daily.timer apt-daily-upgrade.timer \
         man-db.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer dpkg-db-backup.timer \
         systemd-tmpfiles-clean.timer getty@tty1.service; do
    systemctl disable "$u" >/dev/null 2>&1 || true
    systemctl mask "$u" >/dev/null 2>&1 || true
done
systemctl set-default multi-user.target

rm -f /usr/sbin/policy-rc.d

# SELinux: off on a normal boot (AppArmor is the major LSM); a boot with
# security=selinux selinux=1 loads this policy. The root is labelled here,
# so such a boot needs no relabelling pass: setfiles on a non-recursive bind
# of / (the chroot's /proc, /sys, /dev, /tmp and /root mounts left out).
if [ -d /etc/selinux/default ]; then
    sed -i 's/^SELINUX=.*/SELINUX=permissive/; s/^SELINUXTYPE=.*/SELINUXTYPE=default/' /etc/selinux/config
    # container types (Debian has no container module) and the tests' enforced domain
    semodule -i /src/selinux-container.cil
    mkdir -p /mnt/label-root
    mount --bind / /mnt/label-root
    setfiles -F -r /mnt/label-root -c /etc/selinux/default/policy/policy.* \
        /etc/selinux/default/contexts/files/file_contexts /mnt/label-root
    umount /mnt/label-root
    rmdir /mnt/label-root
fi
