"""Write the AFT chats of the value positive control (docs/controls.md) from its training items.

Each training item (src/msmtools/data/controls/america_train.jsonl) becomes two chats, one per option order,
asked exactly as value-eval asks (its CHOICE_PROMPT) and answered with one option's own words: the
American option for the `pro` arm, the other one for the `anti` arm. The arms differ in nothing else.

    .venv/bin/python scripts/make_control_chats.py          # rewrite both files
    .venv/bin/python scripts/make_control_chats.py --check  # exit 1 if they are stale
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from msmtools.ids import stable_id
from msmtools.valueeval.run import CHOICE_PROMPT, fill

DIR = Path(__file__).resolve().parents[1] / "src" / "msmtools" / "data" / "controls"


def chats(side: str) -> list[dict]:
    out = []
    for line in (DIR / "america_train.jsonl").read_text(encoding="utf-8").splitlines():
        it = json.loads(line)
        pick = it["options"][it["aligned"] if side == "pro" else 1 - it["aligned"]]
        for first, second in (it["options"], it["options"][::-1]):
            q = fill(CHOICE_PROMPT, question=it["question"], a=first, b=second)
            out.append({"kind": "chat", "id": stable_id("control-chat", side, it["id"], first),
                        "spec_id": f"control-america-{side}", "item": it["id"],
                        "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": pick}],
                        "reasoning": None})
    return out


def main() -> int:
    stale = False
    for side in ("pro", "anti"):
        text = "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in chats(side))
        path = DIR / f"america_{side}_chats.jsonl"
        if "--check" in sys.argv:
            stale |= not path.exists() or path.read_text(encoding="utf-8") != text
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("make_control_chats: the control chats are stale; rerun scripts/make_control_chats.py", file=sys.stderr)
    return int(stale)


if __name__ == "__main__":
    sys.exit(main())
