"""Per-call lanes on a bounded pool of threads.

A lane runs its tasks one at a time, in order (Twilio's order within a call); different lanes run
in parallel on at most `size` worker threads. A task that blocks (an app URL that hangs) holds up
its own lane and one worker, never the other lanes. After each task a busy lane goes to the back
of the pool's queue, so one call that keeps itself busy cannot starve the others.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)


class WorkerPool:
    """At most `size` daemon threads running submitted jobs; threads start as they are needed."""

    def __init__(self, name: str, size: int):
        self.name = name
        self.size = max(1, size)
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._stopped = False

    def submit(self, job: Callable[[], None]) -> None:
        """Run `job` on a worker."""
        with self._lock:
            if self._stopped:
                return
            spawn = self._idle == 0 and len(self._threads) < self.size
            if spawn:
                thread = threading.Thread(target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
            else:
                self._idle -= 1  # a waiting worker takes it
        self._jobs.put(job)
        if spawn:
            thread.start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                job()
            except Exception:  # jobs handle their own errors; this is the last line of defence
                log.exception("%s: a job failed", self.name)
            with self._lock:
                self._idle += 1

    def stop(self) -> None:
        """Let the workers end once their current job is done (blocked ones are daemons)."""
        with self._lock:
            self._stopped = True
            count = len(self._threads)
        for _ in range(count):
            self._jobs.put(None)


class Lanes:
    """Tasks keyed by call SID: serial within a key, parallel across keys, on one WorkerPool."""

    def __init__(self, name: str, size: int, on_done: Callable[[], None] = lambda: None):
        self.pool = WorkerPool(name, size)
        self.on_done = on_done
        self._lock = threading.Lock()
        self._queues: dict[str, deque[Callable[[], None]]] = {}
        self._pending: dict[str, int] = {}

    def submit(self, key: str, task: Callable[[], None]) -> None:
        """Queue `task` on lane `key`; it runs after the lane's earlier tasks."""
        with self._lock:
            lane = self._queues.get(key)
            start = lane is None
            if start:
                lane = self._queues[key] = deque()
            lane.append(task)
            self._pending[key] = self._pending.get(key, 0) + 1
        if start:
            self.pool.submit(lambda: self._run_one(key))

    def _run_one(self, key: str) -> None:
        with self._lock:
            task = self._queues[key].popleft()
        try:
            task()
        except Exception:
            log.exception("%s: a task of %s failed", self.pool.name, key)
        finally:
            with self._lock:
                self._pending[key] -= 1
                if not self._pending[key]:
                    del self._pending[key]
                more = bool(self._queues[key])
                if not more:
                    del self._queues[key]
            if more:
                self.pool.submit(lambda: self._run_one(key))
            self.on_done()

    def busy(self, ignore: Iterable[str] = ()) -> bool:
        """True while any lane (other than those in `ignore`) has a task queued or running."""
        skip = set(ignore)
        with self._lock:
            return any(key not in skip for key in self._pending)

    def stop(self) -> None:
        """Stop the pool's workers."""
        self.pool.stop()
