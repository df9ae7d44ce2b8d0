"""verifiers 0.4 (``verifiers.v1``) tasksets written the way its users write them, for the
``env=verifiers:...`` tests: ``load_taskset()`` gives the default one, the others each use a part
evoforge does not support yet."""

from __future__ import annotations

import re

import verifiers.v1 as vf


class SumData(vf.TaskData):
    a: int
    b: int


class SumTask(vf.Task[SumData]):
    """Two rewards: the right sum (weight 0.7), and an answer of even length (weight 0.3), which
    a random model meets half the time."""

    @vf.reward(weight=0.7)
    async def correct(self, task: SumData, trace: vf.Trace) -> float:
        numbers = re.findall(r"-?\d+", trace.last_reply)
        return float(bool(numbers) and int(numbers[-1]) == task.a + task.b)

    @vf.reward(weight=0.3)
    async def even_length(self, trace: vf.Trace) -> float:
        return float(len(trace.last_reply) % 2 == 0)


class SumTaskset(vf.Taskset[SumTask]):
    def load(self):
        for i in range(60):
            a, b = 3 * i + 1, 7 * i % 23
            data = SumData(
                prompt=f"What is {a} + {b}?", system_prompt="Answer with a number.", a=a, b=b
            )
            yield SumTask(data, self.config.task)


def load_taskset() -> SumTaskset:
    return SumTaskset(vf.TasksetConfig())


class ShellToolset(vf.Toolset):
    @vf.tool
    async def shell(self, command: str) -> str:
        """Run a command."""
        return command


class ToolTaskset(SumTaskset):
    @classmethod
    def toolsets(cls, config):
        return [ShellToolset(vf.ToolsetConfig())]


class BoxTask(SumTask):
    NEEDS_CONTAINER = True


class ContainerTaskset(vf.Taskset[BoxTask]):
    def load(self):
        yield BoxTask(SumData(prompt="1 + 1?", a=1, b=1))


class FileTask(SumTask):
    @vf.reward(weight=1.0)
    async def file_written(self, trace: vf.Trace, runtime) -> float:
        return 1.0


class RuntimeRewardTaskset(vf.Taskset[FileTask]):
    def load(self):
        yield FileTask(SumData(prompt="1 + 1?", a=1, b=1))


class UserOpensTaskset(vf.Taskset[SumTask]):
    def load(self):
        yield SumTask(SumData(a=1, b=1))
