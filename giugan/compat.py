"""Every use of a private Lightning, torchmetrics or torch-fidelity name, in one place.

The versions are pinned in ``pyproject.toml``; each seam below has a test in
``tests/test_compat.py`` that fails loudly when an upgrade moves or changes it, so a version bump
is reviewed here and nowhere else.
"""

from __future__ import annotations

# ---------------------------------------------------------------------------------- Lightning

# -------------------------------------------------------------------------------- torchmetrics

# ------------------------------------------------------------------------------ torch-fidelity
