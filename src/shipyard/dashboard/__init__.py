"""The dashboard: models, lineage, runs, deployments with live traffic, drift, alerts
and the audit log, as server-rendered pages at ``/ui``.

The gateway serves it beside the prediction API (``shipyard serve``), and
``shipyard ui`` serves it alone against a project's store. Pages are HTML strings with
every value escaped, charts are SVG drawn by our own code, and the only script is our
own static file, which polls JSON for the live parts and sends the button presses.
"""

from __future__ import annotations

from shipyard.dashboard.app import POLICY, Dashboard

__all__ = ["POLICY", "Dashboard"]
