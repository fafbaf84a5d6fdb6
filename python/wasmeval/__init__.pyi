"""Type stubs of the ``wasmeval`` package."""

import os
from typing import Any, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from ._native import LoadError as LoadError
from ._native import WasmevalError as WasmevalError

Module = Union[str, os.PathLike, bytes]
Dirs = Iterable[Union[str, Tuple[str, str], Tuple[str, str, bool]]]
JobDict = dict

def policy(
    *,
    job_timeout: Optional[float] = ...,
    memory: Union[int, str] = ...,
    fuel: Optional[int] = ...,
    dirs: Dirs = ...,
    env: Optional[Mapping[str, str]] = ...,
) -> str: ...

class RunFunction:
    def __init__(
        self,
        module: Module,
        *,
        job_timeout: Optional[float] = ...,
        memory: Union[int, str] = ...,
        fuel: Optional[int] = ...,
        dirs: Dirs = ...,
        env: Optional[Mapping[str, str]] = ...,
        kwargs: Optional[Mapping[str, Any]] = ...,
    ) -> None: ...
    @property
    def sha256(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def policy(self) -> str: ...
    @property
    def wasm(self) -> bytes: ...
    def __call__(self, job: Any, **kwargs: Any) -> dict: ...
    async def coroutine(self, job: Any, **kwargs: Any) -> dict: ...

class Evaluator:
    run_function: RunFunction
    def __init__(
        self,
        module: Union[Module, RunFunction],
        *,
        num_workers: Optional[int] = ...,
        method: str = ...,
        job_timeout: Optional[float] = ...,
        memory: Union[int, str] = ...,
        fuel: Optional[int] = ...,
        dirs: Dirs = ...,
        env: Optional[Mapping[str, str]] = ...,
        kwargs: Optional[Mapping[str, Any]] = ...,
    ) -> None: ...
    @property
    def num_workers(self) -> int: ...
    @property
    def search_id(self) -> str: ...
    def submit(self, configs: Sequence[Mapping[str, Any]]) -> List[str]: ...
    def gather(
        self, type: str = ..., size: int = ...
    ) -> Union[List[JobDict], Tuple[List[JobDict], List[JobDict]]]: ...
    async def agather(
        self, type: str = ..., size: int = ...
    ) -> Union[List[JobDict], Tuple[List[JobDict], List[JobDict]]]: ...
    def close(self) -> List[JobDict]: ...
    def cancel(self, job_id: str) -> bool: ...
    timeout: Optional[float]
    @property
    def time_left(self) -> Optional[float]: ...
    @property
    def num_pending(self) -> int: ...
    def to_json(self) -> dict: ...
    def __enter__(self) -> "Evaluator": ...
    def __exit__(self, *exc: Any) -> None: ...
