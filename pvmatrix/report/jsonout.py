"""The run as JSON: the whole run in one document (schema pvmatrix.report/1),
or a published run's page (schema pvmatrix.published/1), whose full records
are already beside it under cells/: each cell's verdict and the relative
path of its record, not the records again."""

from __future__ import annotations

import json

from ..results.records import safe_name


def render(run) -> str:
    return json.dumps({"schema": "pvmatrix.report/1", "run": run.meta,
                       "cells": run.records()}, separators=(",", ":"), default=str)


def published(run) -> str:
    cells = [{"id": (c := r["cell"])["id"], "kernel": c["kernel"], "column": c["column"],
              "status": (v := r["verdict"])["status"], "detail": v.get("detail", ""),
              "reason": v.get("reason", ""), "record": f"cells/{safe_name(c['id'])}.json"}
             for r in run.records()]
    return json.dumps({"schema": "pvmatrix.published/1", "run": run.meta, "cells": cells},
                      separators=(",", ":"), default=str)
