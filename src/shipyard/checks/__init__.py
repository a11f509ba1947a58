"""Quality gates: what a candidate model must show before it may ship (`shipyard check`)."""
