"""Progressive delivery: rollouts (canary, blue-green, A/B, shadow) and their controller.

``state`` keeps rollouts in the metadata store, ``window`` reads each version's traffic
from the prediction log, ``analysis``/``abtest``/``stats`` decide, ``controller`` acts,
and ``api`` is what the CLI, admin API, dashboard and monitor call.
"""
