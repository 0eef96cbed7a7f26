"""Load a Workflow from a graph module path (`graphs/lumara.py[:attr]`), like langgraph.json does."""

from __future__ import annotations

import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Mapping

from pydantic import ValidationError

from .playbook import Playbook, empty_playbook
from .workflow import Workflow


class UserError(Exception):
    """Bad input from the user; the CLI prints it as one line and exits 2."""


def _graph_path(spec: str) -> tuple[Path, str]:
    path_s, _, attr = spec.partition(":")
    if ":" in spec and len(path_s) == 1:  # a Windows drive letter, not an attribute
        path_s, attr = spec, ""
    return Path(path_s), attr


def _module(path: Path) -> ModuleType:
    """Execute a graph module; any failure becomes one UserError line naming the file and line."""
    if not path.exists():
        raise UserError(f"{path}: graph module not found")
    if path.suffix != ".py":
        raise UserError(f"{path}: a graph module must be a .py file")
    name = f"_orchestra_graph_{abs(hash(str(path.resolve())))}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise UserError(f"{path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except SyntaxError as e:
        raise UserError(f"{e.filename or path}:{e.lineno}: syntax error: {e.msg}") from None
    except Exception as e:
        frames = [f for f in traceback.extract_tb(e.__traceback__) if Path(f.filename).resolve() == path.resolve()]
        line = frames[-1].lineno if frames else 1
        if isinstance(e, ValidationError):  # e.g. a Workflow with duplicate specialist names
            from .tools import format_validation_error

            raise UserError(f"{path}:{line}: invalid {e.title}: {format_validation_error(e)}") from None
        raise UserError(f"{path}:{line}: {type(e).__name__}: {' '.join(str(e).split())}") from None
    return module


def load_workflow(spec: str) -> Workflow:
    path, attr = _graph_path(spec)
    attr = attr or "workflow"
    module = _module(path)
    if not hasattr(module, attr):
        found = [k for k, v in vars(module).items() if isinstance(v, Workflow)]
        hint = f" (Workflow objects here: {', '.join(found)})" if found else ""
        raise UserError(f"{path}: no attribute {attr!r}{hint}")
    wf = getattr(module, attr)
    if callable(wf) and not isinstance(wf, Workflow):
        wf = wf()
    if not isinstance(wf, Workflow):
        raise UserError(f"{path}:{attr}: expected an orchestra.Workflow, got {type(wf).__name__}")
    return wf.model_copy(update={"source": f"{path.resolve()}:{attr}"})


def load_reference(spec: str, attr: str, wf: Workflow) -> dict[str, Playbook] | None:
    """A graph module's hand-written reference playbooks, or None when it defines none.

    A reference is what an engineer who knows the domain would write: campaigns fly it beside the learned
    versions so a report shows how much of the oracle's lead any playbook can take back. Dreaming never reads it.
    """
    path, _ = _graph_path(spec)
    module = _module(path)
    if not attr or not hasattr(module, attr):
        return None
    ref = getattr(module, attr)
    if callable(ref):
        ref = ref()
    where = f"{path}:{attr}"
    if not isinstance(ref, Mapping):
        raise UserError(f"{where}: expected a mapping of specialist name to orchestra.Playbook, got {type(ref).__name__}")
    names = [s.name for s in wf.specialists]
    out: dict[str, Playbook] = {}
    for name, pb in ref.items():
        if name not in names:
            raise UserError(f"{where}: unknown specialist {name!r} (the workflow has {', '.join(names)})")
        if not isinstance(pb, Playbook):
            raise UserError(f"{where}[{name!r}]: expected an orchestra.Playbook, got {type(pb).__name__}")
        if pb.specialist != name:
            raise UserError(f"{where}[{name!r}]: the playbook is for specialist {pb.specialist!r}")
        out[name] = pb
    return {n: out.get(n) or empty_playbook(n) for n in names}
