"""Richards in Python: the same six tasks, packet routing and idle-task seed
step as richards.harn (task steps return (task, action); the scheduler
applies the action). Packets and tasks are mutable objects, as Python code
would write them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KIND_DEVICE = 0
KIND_WORK = 1


@dataclass
class Packet:
    dest: int
    kind: int
    a1: int = 0
    a2: list[int] = field(default_factory=lambda: [0, 0, 0, 0])


@dataclass
class Task:
    id: int
    pri: int
    kind: str
    queue: list[Packet]
    v1: Any  # per-kind state: a seed, a counter, packet lists or a held packet
    v2: Any
    pending: bool = False
    waiting: bool = False
    held: bool = False


HOLD = ("hold",)
SUSPEND = ("suspend",)


def idle_step(task: Task, pkt: Packet | None) -> tuple:
    task.v2 -= 1
    if task.v2 == 0:
        return HOLD
    if task.v1 % 2 == 0:
        task.v1 //= 2
        return ("release", 4)
    task.v1 = task.v1 // 2 + 53256
    return ("release", 5)


def worker_step(task: Task, pkt: Packet | None) -> tuple:
    if pkt is None:
        return SUSPEND
    task.v1 = 3 if task.v1 == 2 else 2
    pkt.dest = task.v1
    pkt.a1 = 0
    for i in range(4):
        task.v2 += 1
        if task.v2 > 26:
            task.v2 = 1
        pkt.a2[i] = task.v2
    return ("send", pkt)


def handler_step(task: Task, pkt: Packet | None) -> tuple:
    if pkt is not None:
        (task.v1 if pkt.kind == KIND_WORK else task.v2).append(pkt)
    if task.v1:
        work = task.v1[0]
        count = work.a1
        if count > 3:
            task.v1.pop(0)
            return ("send", work)
        if task.v2:
            dev = task.v2.pop(0)
            dev.a1 = work.a2[count]
            work.a1 = count + 1
            return ("send", dev)
    return SUSPEND


def device_step(task: Task, pkt: Packet | None) -> tuple:
    if pkt is None:
        if task.v1 is None:
            return SUSPEND
        packet, task.v1 = task.v1, None
        return ("send", packet)
    task.v1 = pkt
    return HOLD


STEPS = {"idle": idle_step, "worker": worker_step, "handler": handler_step, "device": device_step}


def new_task(id: int, pri: int, kind: str, queue: list[Packet], v1: Any, v2: Any) -> Task:
    has_queue = bool(queue)
    return Task(id, pri, kind, queue, v1, v2, pending=has_queue, waiting=has_queue or kind == "device")


def run(n: int) -> int:
    tasks = [
        new_task(0, 0, "idle", [], 1, n),
        new_task(1, 1000, "worker", [Packet(1, KIND_WORK), Packet(1, KIND_WORK)], 2, 0),
        new_task(2, 2000, "handler", [Packet(4, KIND_DEVICE) for _ in range(3)], [], []),
        new_task(3, 3000, "handler", [Packet(5, KIND_DEVICE) for _ in range(3)], [], []),
        new_task(4, 4000, "device", [], None, None),
        new_task(5, 5000, "device", [], None, None),
    ]
    holds = sends = 0
    current = 5
    while current >= 0:
        task = tasks[current]
        if task.held or (not task.pending and task.waiting):
            current -= 1
            continue
        pkt = None
        if task.pending and task.waiting:
            pkt = task.queue.pop(0)
            task.pending = bool(task.queue)
            task.waiting = False
        action = STEPS[task.kind](task, pkt)
        what = action[0]
        if what == "hold":
            holds += 1
            task.held = True
            current -= 1
        elif what == "suspend":
            task.waiting = True
        elif what == "release":
            other = tasks[action[1]]
            other.held = False
            if other.pri > task.pri:
                current = other.id
        else:
            sends += 1
            packet = action[1]
            target = tasks[packet.dest]
            packet.dest = current
            if not target.queue:
                target.queue.append(packet)
                target.pending = True
                if target.pri > task.pri:
                    current = target.id
            else:
                target.queue.append(packet)
    return sends * 100000 + holds
