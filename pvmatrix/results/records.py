"""The records a run publishes, typed: the cell record (`pvmatrix.cell/1`, one
per cell in RUN/cells/ID.json) and the run record (`pvmatrix.run/1`,
RUN/run.json). Each has a JSON Schema shipped in pvmatrix/data/schema/
(validate() checks a record against it), and from_dict(to_dict()) gives back
every record ever written, unchanged.

Optional keys (absent from older records, or only on some cells) are None
here and left out of the JSON, so an old record is written back as it was.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache

from ..paths import DATA
from ..records import BootFacts, Verdict

CELL_SCHEMA = "pvmatrix.cell/1"
RUN_SCHEMA = "pvmatrix.run/1"
RUN_STATES = ("running", "interrupted", "complete")


@dataclass(frozen=True)
class Cell:
    """One recorded result: a row (kernel) and a column of the published table."""
    id: str
    stage: str
    kernel: str
    column: str
    role: str | None = None
    xen: str | None = None
    hardware: str | None = None
    device: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Cell:
        return cls(**data)


MACHINE = "machine"      # KERNEL/machine/NAME: a real machine's coverage (matrix.machines)


def machine_cell_id(kernel: str, machine: str) -> str:
    return f"{kernel}/{MACHINE}/{machine}"


def machine_of(cell: dict) -> str | None:
    """The machine an analyze cell (JSON) covers, or None for another cell."""
    parts = cell["id"].split("/")
    if cell["stage"] == "analyze" and len(parts) == 3 and parts[1] == MACHINE:
        return parts[2]
    return None


def safe_name(cell_id: str) -> str:
    """A file name for a cell id."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in cell_id)


@dataclass
class TaskDef:
    """What ran the cell (a function of matrix/tasks.py), enough to run it again."""
    func: str
    args: dict
    deps: dict[str, str]
    resources: dict[str, float]

    def to_dict(self) -> dict:
        return asdict(self)


def _drop_none(data: dict, optional: tuple[str, ...]) -> dict:
    return {k: v for k, v in data.items() if not (k in optional and v is None)}


@dataclass
class CellRecord:
    """One cell's verdict with everything needed to trust it and run it again.
    INPUTS, MANIFEST and PROVENANCE are the stage's own facts (see the schema)."""
    run_id: str
    cell: Cell
    task: str
    verdict: Verdict
    inputs: dict = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)     # source and build cells: what they made
    durations: dict[str, float | None] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)
    boot: BootFacts | None = None                    # boot cells: accel, devices, kernel...
    cached: bool = False
    finished: float | None = None
    task_def: TaskDef | None = None                  # absent before `pvmatrix rerun`
    provenance: dict | None = None                   # absent in the oldest records
    reproduce: dict | None = None                    # boot cells with a serial log
    retries: dict | None = None                      # a regression retried (matrix/retry.py)
    flaky: bool | None = None
    schema: str = CELL_SCHEMA

    OPTIONAL = ("task_def", "provenance", "reproduce", "retries", "flaky")

    def to_dict(self) -> dict:
        data = {"schema": self.schema, "run_id": self.run_id, "cell": self.cell.to_dict(),
                "task": self.task, "task_def": self.task_def and self.task_def.to_dict(),
                "verdict": self.verdict.to_dict(), "inputs": self.inputs,
                "manifest": self.manifest, "provenance": self.provenance,
                "durations": self.durations, "logs": self.logs,
                "boot": self.boot.to_dict() if self.boot is not None else None,
                "cached": self.cached, "finished": self.finished, "reproduce": self.reproduce,
                "retries": self.retries, "flaky": self.flaky}
        return _drop_none(data, self.OPTIONAL)

    @classmethod
    def from_dict(cls, data: dict) -> CellRecord:
        known = {f.name for f in fields(cls)}
        extra = set(data) - known
        if extra:
            raise ValueError(f"cell record {data.get('cell', {}).get('id')!r}: unknown keys "
                             f"{sorted(extra)} (a newer schema than {CELL_SCHEMA}?)")
        rest = {k: v for k, v in data.items() if k not in ("cell", "verdict", "task_def", "boot")}
        tdef, boot = data.get("task_def"), data.get("boot")
        return cls(cell=Cell.from_dict(data["cell"]), verdict=Verdict.from_dict(data["verdict"]),
                   task_def=TaskDef(**tdef) if tdef else None,
                   boot=BootFacts.from_dict(boot) if boot is not None else None, **rest)


@dataclass(frozen=True)
class RunFlags:
    """How a run was asked to run (`pvmatrix run`'s flags, the store from the flag
    or the environment): `--resume` continues a run the way it started."""
    recheck: bool = False
    retries: int = 2
    bisect: bool = False
    store: str | None = None
    confirm: bool = False          # --confirm: boot the roles the analyzer rules out

    # kept only when set: a run from before them writes back as it was read
    OPTIONAL = ("confirm",)

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items()
                if not (k in self.OPTIONAL and v == getattr(RunFlags, k))}

    @classmethod
    def from_dict(cls, data: dict) -> RunFlags:
        return cls(**data)

    def differing(self, asked: RunFlags) -> list[str]:
        """The flags ASKED sets (to other than the default) otherwise than these."""
        default = RunFlags()
        return [f.name for f in fields(self) if getattr(asked, f.name) != getattr(default, f.name)
                and getattr(asked, f.name) != getattr(self, f.name)]


@dataclass
class RunRecord:
    """A run: its spec, the tool and host it ran on, and how far it got."""
    run_id: str
    spec_name: str
    spec_path: str
    spec_sha256: str
    tool_version: str
    host: dict
    started: float
    kernels: list[str]
    state: str = "running"                 # one of RUN_STATES
    finished: float | None = None
    wall_s: float | None = None            # set when the run completes
    flags: RunFlags | None = None          # absent in runs from before it
    schema: str = RUN_SCHEMA

    OPTIONAL = ("wall_s", "flags")

    def to_dict(self) -> dict:
        data = {"schema": self.schema, "run_id": self.run_id, "spec_name": self.spec_name,
                "spec_path": self.spec_path, "spec_sha256": self.spec_sha256,
                "tool_version": self.tool_version, "host": self.host, "started": self.started,
                "finished": self.finished, "state": self.state, "kernels": self.kernels,
                "wall_s": self.wall_s, "flags": self.flags and self.flags.to_dict()}
        return _drop_none(data, self.OPTIONAL)

    @classmethod
    def from_dict(cls, data: dict) -> RunRecord:
        flags = data.get("flags")
        return cls(**{**data, "flags": RunFlags.from_dict(flags) if flags is not None else None})


@lru_cache(maxsize=None)
def schema(name: str) -> dict:
    """The JSON Schema of a record kind: "cell-1" or "run-1"."""
    return json.loads((DATA / "schema" / f"{name}.json").read_text())


def validate(record: dict) -> None:
    """Raise jsonschema.ValidationError unless RECORD (a cell or run record, as
    JSON) matches the schema its "schema" key names."""
    import jsonschema          # only validating needs it
    name = {CELL_SCHEMA: "cell-1", RUN_SCHEMA: "run-1"}.get(record.get("schema"))
    if name is None:
        raise jsonschema.ValidationError(f"unknown record schema {record.get('schema')!r}")
    jsonschema.validate(record, schema(name))
