"""How a sandbox is isolated from the host; see `base` for the contract.

base          the contract: BoxSpec, BoxUsage, OomKill, Box, Isolation
choose        picks "full" or "reduced" for this machine, with the reasons
full          FullIsolation: cgroups + loop ext4 + setpriv + bwrap + seccomp (root)
full_box      FullBox: freeze, thaw, kill, destroy, usage of one full box
full_cleanup  what a crashed run left at the full level: cgroups, mounts, images
reduced       ReducedIsolation: prlimit + bwrap user namespace (or a plain process)
reduced_box   ReducedBox: SIGSTOP pause, psutil usage of one reduced box
cgroups       a box's cgroups: the backend for this host's layout (hybrid or v2)
cgroups_common  the BoxCgroups interface, file formats, a v2 group's freeze and kill
cgroups_v1    hybrid: v1 memory, cpu, cpuacct, pids plus v2 (freeze, kill) at unified
cgroups_v2    cgroup v2 only: memory, cpu, pids, freeze, kill in one group
disk          a box's loop-mounted ext4 image
bwrap         the bubblewrap command line: what a box sees
seccomp       the syscall filter, as BPF for bwrap
oom_watch     OOM kills from /dev/kmsg, cross-checked with the cgroup counters
proctree      a process tree through psutil (reduced level)
uids          one unprivileged host uid per live box
paths         sandbox ids and the runtime dir of mount points
polling       waiting for what the kernel reports only by polling
"""
