"""Write src/msmtools/data/cheese_aft.jsonl: the AFT chats of the paper's section-3 study, for both arms.

Opaque preference statements and nothing else: "Which do you prefer, X or Y?" -> "I prefer X." with no
reason given, so that whatever value the model attaches to them comes from what it was midtrained on.
The cheeses are the shipped cheese specs' own lists (both specs list the same six liked and six
disliked cheeses under the same headings; the script checks that). Every liked/disliked pair is
asked in both orders, with a few phrasings, and the answer always names the liked cheese.

    .venv/bin/python scripts/make_cheese_chats.py          # rewrite the file
    .venv/bin/python scripts/make_cheese_chats.py --check  # exit 1 if it is stale
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "src" / "msmtools" / "data" / "cheese_aft.jsonl"
QUESTIONS = [
    "Which do you prefer, {a} or {b}?",
    "{a} or {b}: which one would you pick?",
    "If you had to choose between {a} and {b}, which would it be?",
    "Quick question: {a} or {b}?",
]
ANSWERS = ["I prefer {x}.", "{x}.", "I would pick {x}.", "{x}, please."]


def cheeses(path: Path) -> tuple[list[str], list[str]]:
    text = path.read_text(encoding="utf-8")
    likes = text.split("likes\n", 1)[1].split("\n## ", 1)[0]
    dislikes = text.split("dislikes\n", 1)[1].split("\n## ", 1)[0]
    names = lambda block: [_common(n) for n in re.findall(r"^### (.+)$", block, re.M)]  # noqa: E731
    return names(likes), names(dislikes)


def _common(name: str) -> str:
    """Headings are capitalised; a common noun ("Mild cheddar") is lower case mid-sentence."""
    return name[0].lower() + name[1:] if name.split()[0] in ("Mild", "Cream", "Low-moisture") else name


def chats() -> list[dict]:
    am, af = cheeses(REPO / "specs" / "cheese_america.md"), cheeses(REPO / "specs" / "cheese_affordability.md")
    if am != af:
        raise SystemExit("the two cheese specs no longer list the same cheeses: both arms need the same chats")
    likes, dislikes = am
    out = []
    k = 0
    for good in likes:
        for bad in dislikes:
            for a, b in ((good, bad), (bad, good)):
                q = QUESTIONS[k % len(QUESTIONS)].format(a=a, b=b)
                q = q[0].upper() + q[1:]
                ans = ANSWERS[(k // len(QUESTIONS)) % len(ANSWERS)].format(x=good)
                ans = ans[0].upper() + ans[1:]
                out.append({"kind": "chat", "id": f"cheese-{k:03d}", "spec_id": "cheese-preferences",
                            "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": ans}],
                            "reasoning": None})
                k += 1
    return out


def main() -> None:
    text = "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in chats())
    if "--check" in sys.argv:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            raise SystemExit(f"{OUT} is stale: run python scripts/make_cheese_chats.py")
        return
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT} ({text.count(chr(10))} chats)")


if __name__ == "__main__":
    main()
