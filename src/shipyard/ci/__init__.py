"""CI/CD integration: pipelines for five CI systems and the pull-request comment.

``shipyard ci init`` writes a pipeline that runs ``run → check`` on pull requests,
``register → approval → deploy`` on the main branch and ``monitor`` on a schedule, in
the way each system does those things (``init.py``, one module per provider).
``shipyard ci report`` turns a check's report.json into the provider's comment and
posts it (``report.py``).
"""

from __future__ import annotations

from shipyard.ci.facts import Facts, facts_from_config
from shipyard.ci.init import PROVIDERS, render_pipeline, write_pipeline
from shipyard.ci.report import Comment, post_comment, render_comment

__all__ = [
    "PROVIDERS",
    "Comment",
    "Facts",
    "facts_from_config",
    "post_comment",
    "render_comment",
    "render_pipeline",
    "write_pipeline",
]
