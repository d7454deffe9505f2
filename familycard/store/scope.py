"""The frame every warehouse stage runs in: its run, its scratch folder and the views it registers.

A stage given a run in progress (the pipeline's) writes into it and commits nothing; a stage run on its
own starts a run on the current snapshot, carries the tables it does not write and commits, or aborts
the run if anything fails. Either way its views are dropped and its scratch folder removed.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from familycard.store.engine import Engine
from familycard.store.warehouse import Run, Warehouse


@dataclass
class StageScope:
    """What a stage works with: ``run`` (its own or the caller's), ``scratch`` and the ``views`` to drop."""

    run: Run
    own: bool
    scratch: Path
    views: list[str] = field(default_factory=list)

    def finish(self, meta: dict[str, Any]) -> None:
        """Commit the run with ``meta`` (the rest of the base carried) if the stage started it."""
        if self.own:
            self.run.carry_rest()
            self.run.commit(meta)


@contextmanager
def stage_scope(warehouse: Warehouse, engine: Engine, run: Run | None, name: str) -> Iterator[StageScope]:
    """The scope of stage ``name`` over ``run`` (None: a run of its own)."""
    own = run is None
    current = run or warehouse.begin()
    scope = StageScope(current, own, warehouse.data / "tmp" / f"{name}-{current.id}")
    try:
        yield scope
    except BaseException:
        if own:
            current.abort()
        raise
    finally:
        for view in scope.views:
            engine.drop(view)
        shutil.rmtree(scope.scratch, ignore_errors=True)
