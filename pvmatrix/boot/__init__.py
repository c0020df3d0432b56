"""Boot harness: kernels booted for real in QEMU, bare metal and under Xen
(PV dom0, PV and PVH domU), each role judged from the serial log.

    from pvmatrix.boot import run_cells, load_kernel
    cells = run_cells(load_kernel(build.dir), ["baremetal", "dom0", "domU-pv", "domU-pvh"])
    for c in cells: print(c.role, c.verdict.status, c.verdict.reason)
"""

from .harness import Boot, Cell, Guest, boot_baremetal, boot_xen, run_cells
from .hosted import run_hosted
from ..kernel import Kernel
from .kernel import from_build, load as load_kernel
from .roles import Role, all_roles
from ..records import Evidence, Verdict

__all__ = ["Boot", "Cell", "Evidence", "Guest", "Kernel", "Role", "Verdict", "all_roles", "boot_baremetal",
           "boot_xen", "from_build", "load_kernel", "run_cells", "run_hosted"]
