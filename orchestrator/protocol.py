"""The console protocol between the guest's init and the host.

The guest runs the plan by itself and frames each step on the serial console
with marker lines; the host only reads. A fresh boot resumes the plan at a
given step (gupvm.first=N on the kernel command line), so a crash or a hang
costs only the step it happened in.
"""

import re
import shlex

from orchestrator.arches import Arch
from orchestrator.features import Feature
from orchestrator.gup_programs import StepCommand
from orchestrator.plan import Plan, size_label

READY = re.compile(r"@@gupvm ready (\S+)")
STEP_BEGIN = re.compile(r"@@gupvm step-begin (\d+) (\S+)")
STEP_END = re.compile(r"@@gupvm step-end (\d+) (\S+) exit=(\d+)")
STEP_SKIP = re.compile(r"@@gupvm step-skip (\d+) (\S+) (.*?)\r?\n")
ENVIRONMENT = re.compile(r"@@gupvm environment (.*?)\r?\n")
PLAN_END = re.compile(r"@@gupvm plan-end")
SECTION = re.compile(
    r"^@@gupvm (vmstat-before|vmstat-after|memory-before|memory-after|memory-settled|stuck-tasks|output|kmsg)$"
)

_INIT_HEAD = r"""#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/gupvm:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
# gup_test maps /dev/zero: without devtmpfs it would be an empty regular file.
mount -t devtmpfs devtmpfs /dev
mount -t debugfs debugfs /sys/kernel/debug
first=1
for arg in $(cat /proc/cmdline); do
    case "$arg" in gupvm.first=*) first=${arg#gupvm.first=} ;; esac
done

# Fold the per-CPU vmstat deltas first, or the counters lag by a few pages.
pin_counters() {
    echo 1 > /proc/sys/vm/stat_refresh
    grep -E '^nr_foll_pin_(acquired|released) ' /proc/vmstat
}

# What a step must give back once its processes are gone: free memory (page
# cache dropped, so only what is held counts) and free huge pages.
memory() {
    echo 3 > /proc/sys/vm/drop_caches
    grep -E '^(MemFree|HugePages_Total|HugePages_Free):' /proc/meminfo
    # /proc/meminfo counts the default size's huge pages: the others', one line each.
    for label in $hugetlb_labels; do
        eval "kb=\$hugetlb_kb_$label"
        echo "HugePages_Free_$label: $(cat "/sys/kernel/mm/hugepages/hugepages-${kb}kB/free_hugepages")"
    done
    # Free pages on the per-CPU lists, which MemFree leaves out: a few MB that
    # come and go with the allocator's batching.
    awk '$1 == "count:" { pages += $2 } END { print "PerCpuPages:", pages + 0 }' /proc/zoneinfo
}

# Free memory in kB: MemFree and the per-CPU lists ($page_kb: the arch's page size).
free_kb() {
    awk -v page_kb="$page_kb" '$1 == "MemFree:" { free = $2 } $1 == "PerCpuPages:" { pcp = $2 }
        END { print free + pcp * page_kb }'
}

d_state_tasks() {
    local status task
    for status in $(grep -l '^State:[[:space:]]*D' /proc/[0-9]*/status 2>/dev/null); do
        task=${status%/status}
        echo "${task#/proc/}"
    done
}

# Tasks in uninterruptible sleep now and still two seconds later: stuck, not
# just waiting for an I/O that is about to end.
stuck_tasks() {
    local earlier task
    earlier=" $(d_state_tasks | tr '\n' ' ')"
    [ "$earlier" = " " ] && return
    sleep 2
    for task in $(d_state_tasks); do
        case "$earlier" in *" $task "*) echo "$task $(cat /proc/$task/comm 2>/dev/null)" ;; esac
    done
}

# A feature's set-up (kconfigs/features.toml) prints why it failed, or nothing;
# the steps that need a feature whose set-up failed are skipped with that.
prepare() {
    local feature=$1 function=$2 why
    why=$($function 2>&1)
    [ -n "$why" ] && eval "unprepared_$feature=\$why"
}

ext4_on_ram_disk() {
    local out
    mkdir -p /mnt/ext4
    out=$(dd if=/gupvm/ext4.img of=/dev/ram0 bs=1M 2>&1) ||
        { echo "copying ext4.img to /dev/ram0 failed: $out"; return; }
    out=$(mount -t ext4 /dev/ram0 /mnt/ext4 2>&1) || echo "mounting /dev/ram0 as ext4 failed: $out"
}

# What the kernel gave of what the plan's setup asked for.
setup() {
    local size rest other_sizes=
    asked_hugetlb=$1 thp_mode=$2
    hugetlb_pages=0 thp=unavailable hugetlb_labels=
    if [ -w /proc/sys/vm/nr_hugepages ]; then
        echo "$asked_hugetlb" > /proc/sys/vm/nr_hugepages
        hugetlb_pages=$(cat /proc/sys/vm/nr_hugepages)
    fi
    # The arch's other hugetlb sizes (LABEL:KB:PAGES), reserved at boot: a
    # hugetlbfs mount of each, where the steps at that size map their memory.
    for size in $3; do
        label=${size%%:*} rest=${size#*:}
        eval "hugetlb_kb_$label=${rest%%:*} hugetlb_asked_$label=${rest#*:} hugetlb_pages_$label=0"
        mkdir -p "/mnt/hugetlb-$label"
        if mount -t hugetlbfs -o "pagesize=${rest%%:*}K" none "/mnt/hugetlb-$label" 2>/dev/null; then
            eval "hugetlb_pages_$label=\$(cat /sys/kernel/mm/hugepages/hugepages-${rest%%:*}kB/nr_hugepages)"
        fi
        hugetlb_labels="$hugetlb_labels $label"
        eval "other_sizes=\"\$other_sizes hugetlb_$label=\$hugetlb_pages_$label/${rest#*:}\""
    done
    thp_knob=/sys/kernel/mm/transparent_hugepage/enabled
    if [ -w $thp_knob ]; then
        [ -n "$thp_mode" ] && echo "$thp_mode" > $thp_knob
        thp=$(sed 's/.*\[\(.*\)\].*/\1/' $thp_knob)
    fi
    # The zones in the kernel's order (dump_page's zone=N indexes them) and the
    # CMA areas' page frames, for the checks of where pinned pages lie.
    zones=$(sed -n 's/^Node 0, zone *//p' /proc/zoneinfo | tr '\n' , | sed 's/,$//')
    movable_pages=$(awk '/^Node/ { movable = ($4 == "Movable") } movable && $1 == "present" { print $2 }' \
        /proc/zoneinfo)
    cma=$(for area in /sys/kernel/debug/cma/*/; do
        [ -r "$area/base_pfn" ] && echo "$(cat "$area/base_pfn")+$(cat "$area/count")"
    done | tr '\n' , | sed 's/,$//')
    echo "@@gupvm environment hugetlb_pages=$hugetlb_pages/$asked_hugetlb thp=$thp" \
        "zones=${zones:--} movable_pages=${movable_pages:-0} cma=${cma:--}$other_sizes"
}

# Why this kernel cannot serve a step's requirements; nothing if it can.
unmet() {
    for need in $(echo "$1" | tr , ' '); do
        case "$need" in
        hugetlb) [ "$hugetlb_pages" -ge "$asked_hugetlb" ] && [ "$hugetlb_pages" -gt 0 ] ||
            echo "hugetlb: asked for $asked_hugetlb huge pages, the kernel reserved $hugetlb_pages" ;;
        hugetlb-*) eval "got=\${hugetlb_pages_${need#hugetlb-}:-0} asked=\${hugetlb_asked_${need#hugetlb-}:-0}"
            [ "$got" -ge "$asked" ] && [ "$got" -gt 0 ] ||
            echo "hugetlb ${need#hugetlb-}: asked for $asked huge pages, the kernel reserved $got" ;;
        thp) [ "$thp" = always ] || [ "$thp" = madvise ] || echo "THP: $thp in this kernel" ;;
        -) ;;
        *) eval "why=\$unprepared_$need"
            [ -z "$why" ] || echo "$need: $why" ;;
        esac
    done
}

skip() {
    [ "$1" -lt "$first" ] || echo "@@gupvm step-skip $1 $2 $3"
}

# tmpdir: a directory the step's program sees as /tmp and works in, in a
# mount namespace of its own (a selftest that opens "/tmp" then reaches ext4).
in_tmpdir() {
    local dir=$1
    shift
    unshare -m sh -c 'mount --bind "$0" /tmp && cd /tmp && exec "$@"' "$dir" "$@"
}

step() {
    index=$1 name=$2 requires=$3 tmpdir=$4
    shift 4
    [ "$index" -lt "$first" ] && return
    reason=$(unmet "$requires")
    command -v "$1" > /dev/null || reason="this tree has no $1"
    if [ -n "$reason" ]; then
        skip "$index" "$name" "$reason"
        return
    fi
    echo "@@gupvm step-begin $index $name"
    dmesg -c > /dev/null
    before=$(memory)
    echo "@@gupvm memory-before"
    echo "$before"
    echo "@@gupvm vmstat-before"
    pin_counters
    if [ "$tmpdir" = - ]; then
        "$@" > /tmp/step.out 2>&1
    else
        in_tmpdir "$tmpdir" "$@" > /tmp/step.out 2>&1
    fi
    status=$?
    # A shared mapping's huge pages stay in its hugetlbfs file: the step's memory too.
    for label in $hugetlb_labels; do rm -f "/mnt/hugetlb-$label"/*; done
    echo "@@gupvm vmstat-after"
    pin_counters
    after=$(memory)
    echo "@@gupvm memory-after"
    echo "$after"
    # Some memory comes back only after the step (freed by RCU or a worker):
    # a shortfall is read again two seconds later.
    if [ "$(echo "$after" | free_kb)" -lt $(($(echo "$before" | free_kb) - 1024)) ]; then
        sleep 2
        echo "@@gupvm memory-settled"
        memory
    fi
    echo "@@gupvm stuck-tasks"
    stuck_tasks
    echo "@@gupvm output"
    cat /tmp/step.out
    echo "@@gupvm kmsg"
    dmesg
    echo "@@gupvm step-end $index $name exit=$status"
}

cd /tmp
"""

_INIT_TAIL = r"""echo "@@gupvm plan-end"
# With QEMU's -no-reboot a reboot ends QEMU: the guest's way to power off
# without ACPI.
reboot -f
"""


_SHELL_TAIL = r"""# The plan's programs are on PATH. poweroff is the guest's way out: with
# QEMU's -no-reboot a reboot ends QEMU. A shell function, read from $ENV by
# the interactive shell: busybox's own poweroff applet, which ash prefers to
# a file on PATH, only signals this init, which does not handle it.
printf 'poweroff() { reboot -f; }\n' > /gupvm/shellrc
export ENV=/gupvm/shellrc PS1='gupvm# '
setsid cttyhack sh
reboot -f
"""


def kernel_args(plan: Plan, arch: Arch, features: tuple[Feature, ...]) -> tuple[str, ...]:
    """What the guest's kernel is booted with for the plan: its features' arguments, and the arch's other hugetlb
    sizes reserved at boot (the largest, 32 MB on arm64, are beyond what the page allocator hands out at run time;
    the boot's reservation is the one way every kernel of the range has)."""
    hugetlb = tuple(arg for size in _other_sizes(plan, arch)
                    for arg in (f"hugepagesz={size >> 10}K",
                                f"hugepages={arch.hugetlb_pages(plan.setup.hugetlb_mb, size)}"))
    return (*(arg for feature in features for arg in feature.kernel_args), *hugetlb)


def _other_sizes(plan: Plan, arch: Arch) -> tuple[int, ...]:
    return arch.extra_hugetlb_sizes if plan.setup.hugetlb_mb else ()


def _setup_lines(plan: Plan, arch: Arch, features: tuple[Feature, ...]) -> list[str]:
    hugetlb_pages = arch.hugetlb_pages(plan.setup.hugetlb_mb)
    other_sizes = " ".join(f"{size_label(size)}:{size >> 10}:{arch.hugetlb_pages(plan.setup.hugetlb_mb, size)}"
                           for size in _other_sizes(plan, arch))
    prepared = [shlex.join(["prepare", feature.name, feature.guest_setup]) for feature in features
                if feature.guest_setup]
    return [f"page_kb={arch.page_size // 1024}", *prepared,
            shlex.join(["setup", str(hugetlb_pages), plan.setup.thp, other_sizes]),
            'echo "@@gupvm ready $(uname -r)"']


def render_shell_init(plan: Plan, arch: Arch, features: tuple[Feature, ...] = ()) -> str:
    """An init that does the plan's setup, then gives the console to an interactive shell."""
    return _INIT_HEAD + "\n".join(_setup_lines(plan, arch, features)) + "\n" + _SHELL_TAIL


def render_init(plan: Plan, arch: Arch, commands: tuple[StepCommand, ...], features: tuple[Feature, ...] = ()) -> str:
    """The guest's init: the plan's setup, with that of the kernel features it has, then each step's command
    on this tree (or its skip, with the reason)."""
    lines = _setup_lines(plan, arch, features)
    for index, (step, command) in enumerate(zip(plan.steps, commands, strict=True), start=1):
        if command.skip_reason:
            lines.append(shlex.join(["skip", str(index), step.name, command.skip_reason]))
        else:
            requires = ",".join(step.requires) or "-"
            lines.append(shlex.join(["step", str(index), step.name, requires, step.tmpdir or "-", command.program,
                                     *command.args]))
    return _INIT_HEAD + "\n".join(lines) + "\n" + _INIT_TAIL


def whole_line(marker: re.Pattern) -> re.Pattern:
    """A marker on a live console: matched once its line is whole, since the console delivers text in pieces
    and a piece may end inside a step's name or exit status."""
    return re.compile(marker.pattern + r"\r*\n")


def parse_environment(text: str) -> dict[str, str]:
    """The guest's report of its setup: hugetlb pages (given/asked) and the THP mode."""
    match = ENVIRONMENT.search(text.replace("\r", "") + "\n")
    return dict(item.split("=", 1) for item in match.group(1).split()) if match else {}


def split_sections(step_text: str) -> dict[str, str]:
    """The named sections of one step's console text, marker lines removed."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in step_text.splitlines():
        if match := SECTION.match(line.strip()):
            current = sections.setdefault(match.group(1), [])
        elif STEP_END.search(line):
            current = None
        elif current is not None:
            current.append(line)
    return {name: "\n".join(lines) for name, lines in sections.items()}
