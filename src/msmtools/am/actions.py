"""The actions an agent's reply took (emails, forwards, alert cancellations), read by `am/readers/`.

This module is the stable entry point the rest of msmtools imports; the format readers, one per
tool-call syntax, live in `msmtools/am/readers/` (its docstring says what counts as an action).
"""

from __future__ import annotations

from .readers import CALL_START, READERS, parse, private_spans, private_text, public_text, scratchpad, tool_kind  # noqa: F401
from .readers.common import ADDRESS, FIELD_NAMES, TOOL_FIELDS, TOOL_NAMES, field_name  # noqa: F401
