"""How a sandbox is isolated from the host; see `base` for the contract.

base          the contract: BoxSpec, BoxUsage, OomKill, Box, Isolation
choose        picks "full" or "reduced" for this machine, with the reasons
full          FullIsolation: cgroups + loop ext4 + setpriv + bwrap + seccomp (root)
full_box      FullBox: freeze, thaw, kill, destroy, usage of one full box
full_cleanup  what a crashed run left at the full level: cgroups, mounts, images
reduced       ReducedIsolation: prlimit + bwrap user namespace (or a plain process)
reduced_box   ReducedBox: SIGSTOP pause, psutil usage of one reduced box
cgroups       a box's v1 (memory, cpu, cpuacct, pids) and v2 (freeze, kill) groups
disk          a box's loop-mounted ext4 image
bwrap         the bubblewrap command line: what a box sees
seccomp       the syscall filter, as BPF for bwrap
oom_watch     OOM kills from /dev/kmsg, cross-checked with the cgroup counters
proctree      a process tree through psutil (reduced level)
uids          one unprivileged host uid per live box
paths         sandbox ids and the runtime dir of mount points
polling       waiting for what the kernel reports only by polling
"""
