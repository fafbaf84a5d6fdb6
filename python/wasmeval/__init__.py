"""wasmeval: run functions compiled to WebAssembly, for DeepHyper's evaluators and any Python.

Every call runs in a fresh, isolated wasmtime instance: no file, socket or environment
variable unless granted, a memory cap, an optional fuel budget and a wall-clock limit. A guest
that traps, loops or exhausts its memory ends its job as a failure (``"F_timeout"``, ...); it
never raises into the search and never crashes the Python process.

- :class:`RunFunction`: a callable DeepHyper accepts as a ``run_function`` in every method
  (``serial`` through :meth:`RunFunction.coroutine`, ``thread``, ``process``, ``loky``,
  ``ray``, ``mpicomm``). It runs the job in the calling process, on the calling thread, with
  the GIL released.
- :class:`Evaluator`: the library's own evaluator (worker processes, no Python in the job
  path), with DeepHyper's API and no DeepHyper needed.
- :mod:`wasmeval.deephyper`: ``Evaluator``, a subclass of DeepHyper's that runs jobs on the
  same worker processes.

Linux x86_64, CPython 3.9 or newer.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import itertools
import json
import os
import threading
import types
import weakref
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence, Tuple, Union

from . import _native
from ._native import LoadError, WasmevalError

__all__ = ["RunFunction", "Evaluator", "LoadError", "WasmevalError", "policy"]

_BINARY = Path(__file__).parent / "bin" / "wasmeval"


def _point_at_worker() -> None:
    """Points the library at the worker binary shipped in the package (inside Python the
    current executable is ``python``); ``$WASMEVAL_WORKER_BIN`` overrides it."""
    chosen = os.environ.get("WASMEVAL_WORKER_BIN") or str(_BINARY)
    _native.set_worker_binary(chosen)


_point_at_worker()

# After a fork, the child's engines are made afresh (the ticker thread that drives timeouts is
# not inherited); the lock they live under is held across the fork so the child never
# inherits it held.
os.register_at_fork(
    before=_native.prepare_fork,
    after_in_parent=_native.forked,
    after_in_child=_native.forked,
)

def _bytes(value: Union[int, str], name: str) -> int:
    """A size: an int of bytes, or text as the command line reads it (``"512MiB"``,
    ``"2GiB"``, ``"100MB"``)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int or a size such as '512MiB', not a bool")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"{name} must be positive, not {value}")
        return value
    if not isinstance(value, str):
        raise TypeError(f"{name} must be an int or a size such as '512MiB', not {type(value).__name__}")
    try:
        return _native.parse_size(value)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None


def _seconds(value: Optional[float], name: str) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None, not {type(value).__name__}")
    if not value > 0:
        raise ValueError(f"{name} must be positive, not {value}")
    return float(value)


def policy(
    *,
    job_timeout: Optional[float] = None,
    memory: Union[int, str] = "512MiB",
    fuel: Optional[int] = None,
    dirs: Iterable[Union[str, Tuple[str, str], Tuple[str, str, bool]]] = (),
    env: Optional[Mapping[str, str]] = None,
) -> str:
    """The sandbox policy of every job, as the library's JSON.

    Args:
        job_timeout: wall-clock limit of one job, in seconds (``None``: none).
        memory: linear-memory cap of one job (``"512MiB"``, ``"2GiB"`` or bytes).
        fuel: instruction budget of one job (``None``: unmetered).
        dirs: directories granted, read-only: ``"path"`` (seen as the same path),
            ``(host, guest)``, or ``(host, guest, True)`` for read-write.
        env: environment variables granted to the guest.
    """
    timeout = _seconds(job_timeout, "job_timeout")
    if fuel is not None and (isinstance(fuel, bool) or not isinstance(fuel, int) or fuel <= 0):
        raise ValueError(f"fuel must be a positive int or None, not {fuel!r}")
    grants = []
    for d in dirs:
        if isinstance(d, (str, os.PathLike)):
            host, guest, write = os.fspath(d), os.fspath(d), False
        elif isinstance(d, (tuple, list)) and len(d) in (2, 3):
            host, guest = os.fspath(d[0]), str(d[1])
            write = bool(d[2]) if len(d) == 3 else False
        else:
            raise TypeError(f"dirs: {d!r} is not a path, (host, guest) or (host, guest, writable)")
        grants.append({"host": os.path.abspath(host), "guest": guest, "writable": write})
    env_pairs = []
    for k, v in (env or {}).items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"env: {k!r}={v!r}: names and values must be str")
        env_pairs.append([k, v])
    base = json.loads(_DEFAULT_POLICY)
    base.update(
        timeout=None if timeout is None else _duration(timeout),
        memory=_bytes(memory, "memory"),
        fuel=fuel,
        dirs=grants,
        env=env_pairs,
    )
    return json.dumps(base, sort_keys=True)


def _duration(seconds: float) -> dict:
    whole = int(seconds)
    return {"secs": whole, "nanos": int(round((seconds - whole) * 1e9))}


_DEFAULT_POLICY = _native.default_policy()

# The loaded modules of this process, by (sha256, policy): unpickling a RunFunction whose
# module is here neither hashes nor compiles it again. Emptied in a child of fork (its
# parent's engines are not usable there).
_MODULES: dict = {}
_MODULES_PID = os.getpid()
_MODULES_LOCK = threading.Lock()


def _module(name: str, wasm: bytes, sha256: str, policy_json: str) -> "_native.Module":
    global _MODULES_PID
    key = (sha256, policy_json)
    with _MODULES_LOCK:
        if _MODULES_PID != os.getpid():
            _MODULES.clear()
            _MODULES_PID = os.getpid()
        module = _MODULES.get(key)
    if module is None:
        module = _native.Module(name, wasm, policy_json)
        with _MODULES_LOCK:
            module = _MODULES.setdefault(key, module)
    return module


def _called_as(job, **kwargs):
    """What a RunFunction's call looks like to ``inspect``: ``(job, **kwargs)``."""


class _Instances:
    """Where cloudpickle (Ray's, loky's) finds each live RunFunction by its qualified name:
    found "by reference", it is pickled through ``RunFunction.__reduce__`` like any object."""

    def __init__(self) -> None:
        self._live = weakref.WeakValueDictionary()
        self._next = itertools.count()

    def add(self, rf: "RunFunction") -> str:
        key = f"rf{next(self._next)}"
        self._live[key] = rf
        return f"_instances.{key}"

    def __getattr__(self, key: str) -> "RunFunction":
        try:
            return self._live[key]
        except KeyError:
            raise AttributeError(key) from None


_instances = _Instances()


class RunFunction:
    """A run function compiled to WebAssembly, callable as DeepHyper's ``run_function``.

    ``RunFunction(module)`` takes a path to a ``.wasm`` (or ``.wat``) file, or the bytes.
    Each call runs one job in a fresh sandboxed instance **in the calling process**, on the
    calling thread, with the GIL released (a thread pool uses every core). It takes
    DeepHyper's ``RunningJob`` (its ``parameters`` and ``id``; the guest's ``record`` reaches
    ``job.record`` and its ``stopped()`` asks ``job.stopped()``, at most every 10 ms) or a
    plain ``dict`` of parameters, and returns DeepHyper's run-function output:
    ``{"objective": ..., "metadata": {...}}``, where the objective is a float, a list for
    multi-objective guests, or an ``"F_<kind>"`` string for a failed job (``"F_timeout"``,
    ``"F_memory"``, ``"F_trap"``, ...). The metadata carries ``timestamp_start`` and
    ``timestamp_end`` (``time.monotonic()``, as DeepHyper's ``@profile`` stamps them), the
    guest's own keys, and ``failure``/``failure_message`` for failed jobs.

    A guest can never crash the Python process: it is a sandbox. The object is picklable
    (the module's bytes, their sha256 and the policy); unpickling in a process that already
    loaded the same module and policy reuses it, without hashing or compiling again. It
    survives ``fork``: the child loads the module again from the compile cache.

    Args:
        module: path to the module, or its bytes.
        job_timeout: wall-clock limit of one job, in seconds.
        memory: linear-memory cap of one job (``"512MiB"``, ``"2GiB"`` or bytes).
        fuel: instruction budget of one job.
        dirs: directories granted (see :func:`policy`).
        env: environment variables granted.
        kwargs: keyword arguments the guest reads with ``job::kwargs()``; DeepHyper's
            ``run_function_kwargs`` given at call time are added to them.
    """

    def __init__(
        self,
        module: Union[str, os.PathLike, bytes],
        *,
        job_timeout: Optional[float] = None,
        memory: Union[int, str] = "512MiB",
        fuel: Optional[int] = None,
        dirs: Iterable = (),
        env: Optional[Mapping[str, str]] = None,
        kwargs: Optional[Mapping[str, Any]] = None,
    ) -> None:
        if isinstance(module, (bytes, bytearray, memoryview)):
            name, wasm = "<bytes>", bytes(module)
        elif isinstance(module, (str, os.PathLike)):
            name = os.fspath(module)
            try:
                wasm = Path(name).read_bytes()
            except OSError as e:
                raise LoadError(f"{name}: {e.strerror or e}") from None
        else:
            raise TypeError(f"module must be a path or bytes, not {type(module).__name__}")
        if kwargs is not None and not isinstance(kwargs, Mapping):
            raise TypeError(f"kwargs must be a dict, not {type(kwargs).__name__}")
        self._name = name
        self._wasm = wasm
        self._sha256 = hashlib.sha256(wasm).hexdigest()
        self._policy = policy(job_timeout=job_timeout, memory=memory, fuel=fuel, dirs=dirs, env=env)
        self._kwargs = dict(kwargs or {})
        self._kwargs_json = json.dumps(self._kwargs)
        self._reload()
        self._name_it()

    def _name_it(self) -> None:
        self.__name__ = Path(self._name).stem
        self.__module__ = __name__
        self.__qualname__ = _instances.add(self)

    # A function, as `inspect` (and so Ray) sees it; pickle and copy look at the real type.
    @property
    def __class__(self):
        return types.FunctionType

    __code__ = _called_as.__code__
    __defaults__ = None
    __kwdefaults__ = None
    __annotations__: dict = {}
    __signature__ = inspect.signature(_called_as)

    @property
    def sha256(self) -> str:
        """The sha256 of the module's bytes, hex."""
        return self._sha256

    @property
    def name(self) -> str:
        """The module's path (``"<bytes>"`` for bytes)."""
        return self._name

    @property
    def policy(self) -> str:
        """The sandbox policy, as the library's JSON."""
        return self._policy

    @property
    def wasm(self) -> bytes:
        """The module's bytes."""
        return self._wasm

    def __repr__(self) -> str:
        return f"wasmeval.RunFunction({self._name!r}, sha256={self._sha256[:12]}...)"

    def __reduce__(self):
        return (_restore, (self._name, self._wasm, self._sha256, self._policy, self._kwargs))

    def __call__(self, job: Any, **kwargs: Any) -> dict:
        """Runs one job (a DeepHyper ``RunningJob`` or a dict of parameters) and returns
        DeepHyper's run-function output."""
        if isinstance(job, Mapping) and not hasattr(job, "parameters"):
            parameters, job_id, observer = job, "0.0", None
        else:
            parameters = getattr(job, "parameters", None)
            if not isinstance(parameters, Mapping):
                raise TypeError(
                    f"a RunFunction takes a dict or DeepHyper's RunningJob, not {type(job).__name__}"
                )
            job_id = str(getattr(job, "id", "0.0"))
            observer = job if hasattr(job, "record") and hasattr(job, "stopped") else None
        kwargs_json = self._kwargs_json
        if kwargs:
            kwargs_json = json.dumps({**self._kwargs, **kwargs})
        if self._loaded_pid != os.getpid():
            self._reload()
        out = self._loaded.run(job_id, json.dumps(dict(parameters)), kwargs_json, observer)
        return json.loads(out)

    _loaded_pid = None

    def _reload(self) -> None:
        self._loaded = _module(self._name, self._wasm, self._sha256, self._policy)
        self._loaded_pid = os.getpid()

    async def coroutine(self, job: Any, **kwargs: Any) -> dict:
        """The same call as a coroutine, for DeepHyper's ``serial`` method: the job runs on
        a thread of the event loop's default executor, so the loop never blocks."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(self, job, **kwargs))


def _restore(name: str, wasm: bytes, sha256: str, policy_json: str, kwargs: dict) -> RunFunction:
    """Unpickles a RunFunction, reusing this process's module when it has it."""
    rf = RunFunction.__new__(RunFunction)
    rf._name, rf._wasm, rf._sha256, rf._policy = name, wasm, sha256, policy_json
    rf._kwargs = kwargs
    rf._kwargs_json = json.dumps(kwargs)
    rf._reload()
    rf._name_it()
    return rf


def _run_function(module, **policy_and_kwargs) -> RunFunction:
    """`module` if it is a RunFunction (its policy kept), else one made from it."""
    if isinstance(module, RunFunction):
        return module
    return RunFunction(module, **policy_and_kwargs)


def _pool(run_function: RunFunction, method: str, num_workers: Optional[int], kwargs: dict):
    """The library's evaluator of `run_function` (`kwargs` added to the function's own)."""
    if num_workers is None:
        num_workers = os.cpu_count() or 1
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
        raise ValueError(f"num_workers must be a positive int, not {num_workers!r}")
    if not isinstance(method, str):
        raise TypeError(f"method must be a str, not {type(method).__name__}")
    return _native.Pool(
        run_function.name, run_function.wasm, run_function.policy, method, num_workers,
        json.dumps({**run_function._kwargs, **kwargs}),
    )


def _jobs(text: str) -> list:
    return json.loads(text)


class Evaluator:
    """The library's evaluator, with DeepHyper's API and no DeepHyper needed.

    Jobs run on ``num_workers`` worker processes (``method="process"``, the default) or
    threads (``"thread"``, ``"serial"``) of the library: no Python in the job path. Jobs are
    dicts: ``job_id``, ``status``, ``config``, ``objective`` (a float, a list, or an
    ``"F_<kind>"`` string), ``metadata`` (``timestamp_submit``, ``timestamp_start``,
    ``timestamp_end``, ``timestamp_gather`` on the search's time axis, the guest's keys,
    ``failure``...), ``intermediate`` (the ``record`` series) and ``log``.

    A blocking :meth:`gather` can be interrupted with Ctrl-C; :meth:`agather` waits without
    blocking a running event loop (Jupyter).
    """

    def __init__(
        self,
        module: Union[str, os.PathLike, bytes, RunFunction],
        *,
        num_workers: Optional[int] = None,
        method: str = "process",
        job_timeout: Optional[float] = None,
        memory: Union[int, str] = "512MiB",
        fuel: Optional[int] = None,
        dirs: Iterable = (),
        env: Optional[Mapping[str, str]] = None,
        kwargs: Optional[Mapping[str, Any]] = None,
    ) -> None:
        self.run_function = _run_function(
            module, job_timeout=job_timeout, memory=memory, fuel=fuel, dirs=dirs, env=env,
            kwargs=kwargs,
        )
        self._pool = _pool(self.run_function, method, num_workers, {})

    @property
    def num_workers(self) -> int:
        """The number of workers."""
        return self._pool.num_workers

    @property
    def search_id(self) -> str:
        """The search id (jobs are ``"<search_id>.<n>"``)."""
        return self._pool.search_id

    def submit(self, configs: Sequence[Mapping[str, Any]]) -> list:
        """Submits configurations (dicts); returns their job ids."""
        configs = list(configs)
        for c in configs:
            if not isinstance(c, Mapping):
                raise TypeError(f"a configuration must be a dict, not {type(c).__name__}")
        return self._pool.submit(json.dumps([dict(c) for c in configs]))

    def gather(self, type: str = "ALL", size: int = 1):
        """Waits for ``"ALL"`` pending jobs or a ``"BATCH"`` of at least ``size``; returns
        this evaluator's finished jobs, or ``(local, other)`` when other evaluators of the
        search finished some."""
        local, other = self._pool.gather(_gather_size(type, size))
        local, other = _jobs(local), _jobs(other)
        return (local, other) if other else local

    async def agather(self, type: str = "ALL", size: int = 1):
        """:meth:`gather` for a running event loop: waits on a thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.gather, type, size)

    def close(self) -> list:
        """Stops running and queued jobs and returns every job not gathered yet (unfinished
        ones ``CANCELLED`` with ``"F_CANCELLED"``); the workers exit."""
        return _jobs(self._pool.close())

    def cancel(self, job_id: str) -> bool:
        """Asks a submitted job to stop; False for an unknown or gathered job."""
        return self._pool.cancel(job_id)

    @property
    def timeout(self) -> Optional[float]:
        """The evaluator-wide time limit in seconds (DeepHyper's ``timeout``), or None."""
        return getattr(self, "_timeout", None)

    @timeout.setter
    def timeout(self, value: Optional[float]) -> None:
        self._pool.set_timeout(_seconds(value, "timeout"))
        self._timeout = value

    @property
    def time_left(self) -> Optional[float]:
        """Seconds left before the time limit, if set."""
        return self._pool.time_left()

    @property
    def num_pending(self) -> int:
        """Jobs submitted and not gathered yet."""
        return self._pool.num_pending()

    def to_json(self) -> dict:
        """DeepHyper's ``to_json``: ``{"type": ..., "num_workers": ...}``."""
        return json.loads(self._pool.to_json())

    def __enter__(self) -> "Evaluator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _gather_size(type: str, size: int) -> Optional[int]:
    if type == "ALL":
        return None
    if type == "BATCH":
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be a positive int, not {size!r}")
        return size
    raise ValueError(f"gather type must be 'ALL' or 'BATCH', not {type!r}")
