"""Ackley as a wasmeval objective run function in Python.

componentize-py turns this module into a component of wasmeval's `objective` world
(wit/objective.wit), with CPython inside; the `job` interface is `wit_world.imports.job`.
Raising Err(message) makes the job fail with that message.
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import job

from objective import evaluate


class WitWorld(wit_world.WitWorld):
    def run(self, config: str) -> str:
        try:
            value = evaluate(config)
        except ValueError as e:
            raise Err(str(e))
        job.log(f"ackley in Python, job {job.id()}")
        return json.dumps(value)
