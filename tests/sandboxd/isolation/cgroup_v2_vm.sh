#!/bin/bash
# Run pytest on a real cgroup-v2-only kernel, from a hybrid (or any) Linux host, by hand:
#
#   apt-get install --no-install-recommends qemu-system-x86 linux-image-amd64
#   tests/sandboxd/isolation/cgroup_v2_vm.sh tests/sandboxd/isolation/test_cgroups_v2_real.py
#
# Boots Debian's kernel in QEMU with the host's / read-only over 9p (this checkout is run
# in place), mounts cgroup2 alone at /sys/fs/cgroup (no systemd), tmpfs at /tmp and /run,
# runs `.venv/bin/pytest ARGS` as root and powers off; the output is printed at the end.
# Emulates the CPU (TCG: a few minutes) unless VM_ACCEL=kvm (hangs in some nested VMs, as
# on the machine this was written on). Not part of `make test`: it needs the packages
# above and boots a machine.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../../.." && pwd)
kernel=$(ls /boot/vmlinuz-* | sort -V | tail -1)
version=${kernel#/boot/vmlinuz-}
modules=/lib/modules/$version/kernel
work=$(mktemp -d /var/tmp/cgroup-v2-vm.XXXXXX)  # under /var/tmp: the VM sees it over 9p
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/initramfs/{bin,lib/mods,proc,sys,dev,newroot} "$work/out"
cp /usr/lib/klibc/bin/* "$work/initramfs/bin/"
cp /usr/lib/klibc-*.so "$work/initramfs/lib/"
# 9p over virtio, in dependency order (Debian builds them as modules).
mods="drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_legacy_dev
  drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci fs/netfs/netfs
  fs/fscache/fscache net/9p/9pnet net/9p/9pnet_virtio fs/9p/9p"
for mod in $mods; do cp "$modules/$mod.ko" "$work/initramfs/lib/mods/"; done

cat > "$work/initramfs/init" <<EOF
#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for mod in $(for mod in $mods; do printf '%s ' "${mod##*/}"; done); do insmod /lib/mods/\$mod.ko; done
mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=262144 hostroot /newroot
umount /proc; umount /sys; umount /dev
exec run-init /newroot /bin/bash $work/inner.sh
EOF
chmod +x "$work/initramfs/init"

printf '%q ' "$@" > "$work/out/args"
cat > "$work/inner.sh" <<EOF
#!/bin/bash
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
mount -t tmpfs -o mode=1777 tmp /tmp; mount -t tmpfs -o mode=755 run /run
mkdir -p /dev/shm /dev/pts; mount -t tmpfs shm /dev/shm; mount -t devpts devpts /dev/pts
mkdir -p /run/out; mount -t 9p -o trans=virtio,version=9p2000.L out /run/out
modprobe loop; modprobe ext4; ip link set lo up
exec > /run/out/log.txt 2>&1
echo "kernel \$(uname -r); cgroup2 offers: \$(cat /sys/fs/cgroup/cgroup.controllers)"
cd $repo && PYTHONDONTWRITEBYTECODE=1 HOME=/tmp eval .venv/bin/pytest -p no:cacheprovider \$(cat /run/out/args)
echo "pytest exit \$?"; sync; echo o > /proc/sysrq-trigger
EOF
(cd "$work/initramfs" && find . | cpio -o -H newc 2>/dev/null | gzip > "$work/initrd.gz")

boot() {
    timeout "${VM_TIMEOUT_S:-900}" qemu-system-x86_64 "$@" -smp 1 -m 2048 -nographic \
        -no-reboot -kernel "$kernel" -initrd "$work/initrd.gz" -append "console=ttyS0 panic=-1" \
        -virtfs local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on \
        -virtfs local,path="$work/out",mount_tag=out,security_model=passthrough \
        -nic none > "$work/console.txt" 2>&1 || true
}
if [ "${VM_ACCEL:-tcg}" = kvm ]; then boot -enable-kvm -cpu host,-arch-capabilities
else boot -accel tcg -cpu max; fi
if [ -s "$work/out/log.txt" ]; then cat "$work/out/log.txt"; else tail -40 "$work/console.txt"; exit 1; fi
grep -q "pytest exit 0" "$work/out/log.txt"
