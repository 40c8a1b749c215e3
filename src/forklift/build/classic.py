"""A build reported as Docker's classic builder reports it to the Engine API's ``POST
/build``: one message per piece of text, ``{"stream": "Step 2/3 : RUN make"}``,
``{"stream": " ---> Running in 0123456789ab\\n"}``, the RUN's output lines, ``" --->
Using cache"``, ``" ---> 1a2b3c4d5e6f"``, then ``{"aux": {"ID": …}}`` and the
"Successfully built/tagged" notes (dockerd 20.10's messages, recorded from it).

The builder labels its steps for BuildKit's plain display (``[stage 2/3] RUN make``);
this display numbers them itself across the stages, as the classic builder does, and
shows the steps the builder makes for itself (``[internal] pull …``) by their output
only. Metadata instructions run no container here, so they show no "Running in".
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

from forklift.build.progress import Progress, Step

Emit = Callable[[dict[str, Any]], None]
# "[stage 2/3] RUN make", or the LABEL step ``build --label`` adds ("LABEL a=b")
_INSTRUCTION = re.compile(r"^(?:\[(?:\S+ )?\d+/\d+\] )?([A-Z]+\b.*)$", re.S)


class ClassicProgress(Progress):
    """Sends each message to ``emit`` (a dict, Docker's JSON message) as it happens."""

    def __init__(self, emit: Emit) -> None:
        super().__init__(None, quiet=True)
        self.emit = emit
        self.total = 0
        self._emit_lock = threading.RLock()

    def send(self, doc: dict[str, Any]) -> None:
        with self._emit_lock:
            self.emit(doc)

    def stream(self, text: str) -> None:
        self.send({"stream": text})

    def plan(self, steps: int) -> None:
        self.total = steps

    def step(self, label: str) -> Step:
        with self._lock:
            match = _INSTRUCTION.match(label)
            if match is None:
                return ClassicStep(self, 0, label)
            self._number += 1
            # two messages, as dockerd sends them
            self.stream(f"Step {self._number}/{max(self.total, self._number)} : {match.group(1)}")
            self.stream("\n")
            return ClassicStep(self, self._number, label)

    def note(self, text: str) -> None:
        self.stream(text + "\n")

    def built(self, image_id: str) -> None:
        self.send({"aux": {"ID": image_id}})


class ClassicStep(Step):
    """One step; number 0 is one of the builder's own steps (a pull, a squash)."""

    progress: ClassicProgress

    def __init__(self, progress: ClassicProgress, number: int, label: str) -> None:
        super().__init__(progress, number, label)
        self.running: str | None = None

    def container(self, container_id: str) -> None:
        self.running = container_id
        self.progress.stream(f" ---> Running in {container_id[:12]}\n")

    def line(self, text: str) -> None:
        self.tail.append(text)
        self.progress.stream(text + "\n")

    def cached(self) -> None:
        if self.number:
            self.progress.stream(" ---> Using cache\n")
            self._result()

    def done(self) -> None:
        if not self.number:
            return
        if self.running is not None:
            self.progress.stream(f"Removing intermediate container {self.running[:12]}\n")
        self._result()

    def error(self, text: str) -> None:
        """The error itself ends the stream (the caller's ``errorDetail``)."""

    def _result(self) -> None:
        short = (self.image_id or "")[7:19]   # FROM scratch: no image, as " ---> " alone
        self.progress.stream(f" ---> {short}\n")
