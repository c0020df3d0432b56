"""A plain shell script per boot, for people without pvmatrix: the exact QEMU
command line of the boot (absolute paths into the cache), its serial console
on stdout, and an exit status from the same expected markers the verdict
needs (0: every one seen and no kernel panic / Xen crash; 1: not).

Only two things differ from the harness's argv: the serial log goes to a
temporary file, and a Xen boot's dom0 initramfs (the cached userspace cpio
plus the boot's own overlay, concatenated by the harness and deleted after
the boot for its size) is concatenated again into a temporary file.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from .. import __version__

CRASH = r"Kernel panic - not syncing|\(XEN\).*(Panic on CPU|Dom0 crashed|FATAL (PAGE FAULT|TRAP))"

# One awk program: is a marker with every key=value of PAT seen in REGION
# ("host" or a guest name; relayed "PVMG name| ..." lines and markers with
# guest=name belong to that guest, as in pvmatrix/boot/markers.py)?
AWK = r"""
{ line = $0; sub(/\r$/, "", line); r = "host"
  j = index(line, "PVMG ")
  if (j) { rest = substr(line, j + 5); k = index(rest, "|"); if (!k) next
           r = substr(rest, 1, k - 1); line = substr(rest, k + 1) }
  i = index(line, "PVM "); if (!i) next
  f = " " substr(line, i + 4) " "
  if (r == "host" && match(f, / guest=[^ ]+ /)) r = substr(f, RSTART + 7, RLENGTH - 8)
  if (r != region) next
  n = split(pat, t, " "); ok = 1
  for (x = 1; x <= n; x++) {
    if (t[x] ~ /=\*$/) { if (!index(f, " " substr(t[x], 1, length(t[x]) - 1))) ok = 0 }
    else if (!index(f, " " t[x] " ")) ok = 0 }
  if (ok) { found = 1; exit } }
END { exit found ? 0 : 1 }"""

TEMPLATE = """#!/bin/sh
# {what}
# Reproduces one pvmatrix boot without pvmatrix (written by pvmatrix {version}
# at boot time; paths point into its cache). Prints the serial console and
# exits 0 when every expected marker is seen (and no panic/crash), else 1.
# QEMU=/path/to/qemu-system-x86_64 overrides the QEMU program.
set -u
if [ ! -d {bootdir} ]; then
    echo "reproduce: "{bootdir}" is gone (pvmatrix deletes the oldest boot dirs past" \
         "PVMATRIX_BOOT_KEEP_MB); 'pvmatrix rerun RUN CELL' boots the cell again" >&2
    exit 2
fi
QEMU=${{QEMU:-{qemu}}}
work=$(mktemp -d)
qpid=; tpid=
cleanup() {{ [ -n "$qpid" ] && kill "$qpid" 2>/dev/null; rm -rf "$work"; }}
trap cleanup EXIT
trap 'exit 130' INT TERM
log="$work/serial.log"
: >"$log"
{prepare}
"$QEMU" {argv} &
qpid=$!
tail -s 0.3 -n +1 -f --pid="$qpid" "$log" &
tpid=$!
end=$(( $(date +%s) + {deadline} ))
while kill -0 "$qpid" 2>/dev/null; do
    if grep -v 'PVMG ' "$log" | grep -v ' guest=' | grep -q 'PVM .*stage=done' \\
            || grep -Eq '{crash}' "$log"; then
        sleep 3; break
    fi
    if [ "$(date +%s)" -ge "$end" ]; then echo "reproduce: deadline ({deadline} s) passed" >&2; break; fi
    sleep 0.5
done
kill "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null; qpid=
wait "$tpid" 2>/dev/null
seen() {{ awk -v region="$1" -v pat="$2" '{awk}' "$log"; }}
status=0
{checks}
if grep -Eq '{crash}' "$log"; then echo "reproduce: crash: $(grep -Em1 '{crash}' "$log")" >&2; status=1; fi
[ "$status" = 0 ] && echo "reproduce: ok: every expected marker seen" >&2
exit "$status"
"""


def _word(arg: str, subst: dict[str, str]) -> str:
    """ARG shell-quoted, with each literal key of SUBST replaced by its shell expression."""
    for literal, expr in subst.items():
        if literal in arg:
            return expr.join(_word(part, subst) if part else "" for part in arg.split(literal))
    return shlex.quote(arg) if arg else ""


def _pairs(args: list[str]) -> list[list[str]]:
    """Options with their values, one per line of the script."""
    out: list[list[str]] = []
    for arg in args:
        if out and len(out[-1]) == 1 and out[-1][0].startswith("-") and not arg.startswith("-"):
            out[-1].append(arg)
        else:
            out.append([arg])
    return out


def write(path: Path, what: str, cmd: list[str], serial: Path, deadline_s: float,
          checks: list[tuple[str, str]], assemble: dict[Path, list[Path]] | None = None) -> Path:
    """Write the script for CMD (whose serial goes to SERIAL) to PATH. CHECKS are
    (region, marker pattern); ASSEMBLE: files to concatenate first (target: parts)."""
    subst = {f"file:{serial}": '"file:$log"'}
    prepare = []
    for n, (target, parts) in enumerate((assemble or {}).items()):
        subst[str(target)] = f'"$work/part{n}"'
        prepare.append(f'cat {" ".join(shlex.quote(str(p)) for p in parts)} >"$work/part{n}" || exit 2')
    argv = " \\\n    ".join(" ".join(_word(a, subst) for a in pair) for pair in _pairs(cmd[1:]))
    lines = [f"seen {shlex.quote(region)} {shlex.quote(pat)} || "
             f"{{ echo {shlex.quote(f'reproduce: missing marker {pat!r} ({region})')} >&2; status=1; }}"
             for region, pat in checks]
    text = TEMPLATE.format(what=what, version=__version__, qemu=shlex.quote(cmd[0]),
                           bootdir=shlex.quote(str(path.parent)),
                           prepare="\n".join(prepare), argv=argv, deadline=int(deadline_s),
                           crash=CRASH, awk=AWK.strip(), checks="\n".join(lines))
    path.write_text(text)
    path.chmod(0o755)
    return path
