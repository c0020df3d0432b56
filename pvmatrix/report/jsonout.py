"""The whole run as one JSON document (schema pvmatrix.report/1)."""

from __future__ import annotations

import json


def render(run) -> str:
    return json.dumps({"schema": "pvmatrix.report/1", "run": run.meta,
                       "cells": run.records()}, separators=(",", ":"), default=str)
