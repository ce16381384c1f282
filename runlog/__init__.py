"""runlog: a local, offline running log that flags knee-pain and cramp risk per run.

Not medical advice: levels are relative flags from population studies, never a person's
probability of injury or cramp.
"""

from __future__ import annotations

__version__ = "0.1.0"
