"""One `msm label` invocation after its options are parsed: the checks and the run. The command line
(msmtools.commands.label) only declares the options and calls `invoke`."""

from __future__ import annotations

import sys


def invoke(*, files, measure, per_stratum, who, show_judge, by, seed, output) -> None:
    """The command's body: its options arrive by name, as the command line parsed them."""
    from .. import jsonl, outputs
    from ..errors import MsmError
    from ..labels.measures import Measure
    from ..labels.sample import Plan, draw, labelled_ids, recorder

    if output == jsonl.STDIO:
        raise MsmError("-o: msm label needs a labels file to append to and resume from, not stdout")
    outputs.check([("-o", output)], [("", p) for p in files])
    plan = Plan(Measure.parse(measure), per_stratum, list(by or []), seed)
    if who:
        plan.who = who
    d = draw(files, plan, labelled_ids(output, plan))
    if not d.queue:
        print(f"msm: label: all {d.done} sampled records already labelled by {plan.who} in {output}", file=sys.stderr)
        return
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise MsmError("msm label is interactive: run it in a terminal (it works over ssh)")
    from ..labels.app import LabelApp

    with jsonl.Writer(output, append=True) as w:
        n = LabelApp(d.queue, plan.measure, recorder(w, plan, d), blind=not show_judge, done_before=d.done).run() or 0
    print(f"msm: label: {n} labels written to {output}", file=sys.stderr)


