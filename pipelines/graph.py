"""The task graph of a compiled pipeline: every task (nested in condition DAGs too) with its display name."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TaskNode:
    name: str  # the task key kfp.local logs and names its directory after, e.g. "train-generator-2"
    display_name: str  # e.g. "generator stage 2"
    component: str  # e.g. "comp-train-generator-2"
    parent: str | None  # the enclosing DAG task (a condition), None at the root
    is_dag: bool
    condition: str  # the trigger condition of this task ("" when unconditional)


@dataclass(frozen=True)
class PipelineGraph:
    nodes: dict[str, TaskNode]

    @classmethod
    def from_spec(cls, spec: Any) -> PipelineGraph:
        """From a `PipelineSpec` proto (``pipeline_func.pipeline_spec``); nodes in execution order."""
        nodes: dict[str, TaskNode] = {}

        def walk(dag: Any, parent: str | None) -> None:
            for name in _by_level(dag.tasks):
                task = dag.tasks[name]
                component = spec.components[task.component_ref.name]
                is_dag = component.WhichOneof("implementation") == "dag"
                nodes[name] = TaskNode(name, task.task_info.name or name, task.component_ref.name, parent, is_dag,
                                       task.trigger_policy.condition)
                if is_dag:
                    walk(component.dag, name)

        walk(spec.root.dag, None)
        return cls(nodes)

    def leaves(self) -> list[TaskNode]:
        """Tasks that run a container, in a topological order."""
        return [n for n in self.nodes.values() if not n.is_dag]

    def leaves_under(self, dag_task: str) -> list[str]:
        out = []
        for node in self.nodes.values():
            parent = node.parent
            while parent is not None and parent != dag_task:
                parent = self.nodes[parent].parent
            if parent == dag_task and not node.is_dag:
                out.append(node.name)
        return out

    def display_name(self, task: str) -> str:
        node = self.nodes.get(task)
        return node.display_name if node else task


def _by_level(tasks: Any) -> list[str]:
    """Task names of one DAG sorted by (longest path from a root, name): a topological order."""
    levels: dict[str, int] = {}

    def level(name: str) -> int:
        if name not in levels:
            deps = [d for d in tasks[name].dependent_tasks if d in tasks]
            levels[name] = 1 + max((level(d) for d in deps), default=-1)
        return levels[name]

    return sorted(tasks, key=lambda n: (level(n), n))
