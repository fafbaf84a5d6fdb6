"""Ackley as a WASI command in Python: the configuration on stdin, the objective on stdout,
an error on stderr with a failing exit status.

componentize-py builds it for WASI's `wasi:cli/command` world (a command component).
"""

import json
import sys

from componentize_py_types import Err
from wit_world import exports

from objective import evaluate


class Run(exports.Run):
    def run(self) -> None:
        try:
            value = evaluate(sys.stdin.read())
        except ValueError as e:
            print(e, file=sys.stderr)
            raise Err(None)
        print(json.dumps(value))
