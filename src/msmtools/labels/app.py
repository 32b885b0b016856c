"""`msm label`'s terminal UI (textual): one record at a time, keyboard only, works over ssh.

y / n / u answer yes / no / unsure and move on; s skips (nothing written); q quits. Each answer is
appended to the labels file at once, so a killed session loses nothing and a rerun resumes. Blind by
default: the judge's decision (and the arm) stay hidden until the person has answered; the status line
then shows what the judge said about the record just labelled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Static

from .measures import Measure, arm, scenario_facts, transcript


def _yes_no(v: Any) -> str:
    return {True: "yes", False: "no", None: "undecided"}.get(v, str(v))


class LabelApp(App[int]):
    """Label `queue` for `measure`; `write(rec, value)` stores one decision. Returns the count written."""

    CSS = """
    #status { height: auto; background: $boost; padding: 0 1; }
    #question { height: auto; padding: 0 1; text-style: bold; }
    #body { padding: 0 1; }
    """
    BINDINGS = [
        Binding("y", "answer('yes')", "yes"),
        Binding("n", "answer('no')", "no"),
        Binding("u", "answer('unsure')", "unsure"),
        Binding("s", "skip", "skip"),
        Binding("q", "quit", "quit"),
    ]

    def __init__(self, queue: list[dict[str, Any]], measure: Measure, write: Callable[[dict[str, Any], Any], None],
                 *, blind: bool = True, done_before: int = 0):
        super().__init__()
        self.queue, self.measure, self.write, self.blind = queue, measure, write, blind
        self.pos, self.written, self.done_before = 0, 0, done_before
        self.after = ""  # what the judge said about the record just answered (shown once answered)
        self._facts: dict[str, str | None] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        with VerticalScroll():
            yield Static(id="body")
        yield Static(Text(self.measure.question + "   [y] yes  [n] no  [u] unsure  [s] skip  [q] quit"), id="question")
        yield Footer()

    def on_mount(self) -> None:
        self.show()

    def show(self) -> None:
        status = self.query_one("#status", Static)
        body = self.query_one("#body", Static)
        total = len(self.queue) + self.done_before
        if self.pos >= len(self.queue):
            status.update(Text(f"{self.after}Done: {self.written} labels written this session, "
                               f"{self.done_before + self.written} of {total} in the sample. Press q to quit."))
            body.update(Text(""))
            return
        rec = self.queue[self.pos]
        scen = rec.get("scenario")
        if scen not in self._facts:
            self._facts[scen] = scenario_facts(scen) if self.measure.name != "choice" else None
        head = f"Record {self.done_before + self.pos + 1} of {total}  (id {rec['id']})"
        if not self.blind:
            head += f"  arm {arm(rec)}  judge: {_yes_no(self.measure.judged(rec))}"
        status.update(Text(self.after + head))
        body.update(Text(transcript(rec, self.measure, facts=self._facts[scen])))
        self.query_one(VerticalScroll).scroll_home(animate=False)

    def action_answer(self, value: str) -> None:
        if self.pos >= len(self.queue):
            return
        rec = self.queue[self.pos]
        self.write(rec, value)
        self.written += 1
        self.after = f"[you: {value}; the judge said {_yes_no(self.measure.judged(rec))}]  "
        self.pos += 1
        self.show()

    def action_skip(self) -> None:
        if self.pos < len(self.queue):
            self.after = "[skipped]  "
            self.pos += 1
            self.show()

    def action_quit(self) -> None:
        self.exit(self.written)
