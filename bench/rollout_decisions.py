"""Decision accuracy of canary analysis over simulated rollouts.

Issue #7 asks for rates, not a race: how often a good candidate is rolled back (false
rollback), how often a bad one reaches 100 % (missed), and how fast a bad one is
rolled back. No competing tool is run here: common progressive-delivery controllers
analyse once a minute with thresholds on point estimates, and have no simulator that
accepts the same input; this script exercises Shipyard's own ``analyse`` only.

Each simulated rollout walks the steps (default 5 -> 25 -> 50 -> 100 %) at a total
rate of ``--rate`` requests/s: every second each arm receives a Poisson number of
requests, some of which fail (``--base-error`` on stable plus the effect on the
canary), answered ones get a log-normal latency (median 5 ms, sigma 0.3, times the
effect's slowdown) and a binary prediction, and ``--feedback`` of the rows get their
true label ``--label-delay`` seconds later (stable accuracy 85 %). The controller's
look is simulated every ``--look-interval`` seconds with the window since the step
began: ``analyse`` (default policy, ``--step-duration``, plus ``--analysis`` JSON) says
promote (next step; reaching 100 % ends the rollout as promoted), hold, or rollback.

Effects (``--rollouts`` each): good candidates (identical, or a tiny harmless change),
and bad ones (errors +2 / +5 points, latency x1.5 / x3, accuracy -5 points). Printed:
per effect the share rolled back, rolled back at the first step, promoted to 100 %,
and time to rollback (seconds since the rollout began); then the false-rollback rate
(good effects) and the missed-bad rate (bad effects). A benchmark, not a test: it
exits 0 whatever the figures are.

    .venv/bin/python bench/rollout_decisions.py                  # 100 per effect, ~2-4 min
    .venv/bin/python bench/rollout_decisions.py --rollouts 30    # quick look
    .venv/bin/python bench/rollout_decisions.py --step-duration 60 --look-interval 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass, field

import numpy as np

from shipyard.rollout.analysis import ArmWindow, CanaryPolicy, analyse


@dataclass(frozen=True)
class Effect:
    name: str
    bad: bool
    error_increase: float = 0.0
    slowdown: float = 1.0
    accuracy_drop: float = 0.0


EFFECTS = (
    Effect("good: identical", bad=False),
    Effect("good: tiny (+0.1pt err, x1.05, -0.5pt acc)", False, 0.001, 1.05, 0.005),
    Effect("bad: errors +2 points", True, error_increase=0.02),
    Effect("bad: errors +5 points", True, error_increase=0.05),
    Effect("bad: latency x1.5", True, slowdown=1.5),
    Effect("bad: latency x3", True, slowdown=3.0),
    Effect("bad: accuracy -5 points", True, accuracy_drop=0.05),
)
ACCURACY = 0.85


@dataclass
class Arm:
    """One arm's traffic since its step began, as per-second pieces."""

    error_rate: float
    slowdown: float
    accuracy: float
    requests: int = 0
    errors: int = 0
    latencies: list[np.ndarray] = field(default_factory=list)
    predictions: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    labelled_predictions: list[np.ndarray] = field(default_factory=list)
    label_times: list[np.ndarray] = field(default_factory=list)

    def serve(self, rng: np.random.Generator, n: int, now: float, args: argparse.Namespace) -> None:
        errors = int(rng.binomial(n, self.error_rate))
        answered = n - errors
        self.requests += n
        self.errors += errors
        self.latencies.append(rng.lognormal(np.log(5.0 * self.slowdown), 0.3, answered))
        predicted = (rng.random(answered) < 0.3).astype(np.int64)
        self.predictions.append(predicted)
        fed = rng.random(answered) < args.feedback
        right = rng.random(int(fed.sum())) < self.accuracy
        self.labels.append(np.where(right, predicted[fed], 1 - predicted[fed]).astype(str))
        self.labelled_predictions.append(predicted[fed].astype(str))
        self.label_times.append(np.full(int(fed.sum()), now + args.label_delay))

    def window(self, now: float) -> ArmWindow:
        arrived = _joined(self.label_times, np.float64) <= now
        return ArmWindow(
            self.requests,
            self.errors,
            _joined(self.latencies, np.float64),
            _joined(self.predictions, np.int64),
            _joined(self.labels, str)[arrived],
            _joined(self.labelled_predictions, str)[arrived],
        )


def _joined(pieces: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=dtype)


@dataclass
class Outcome:
    result: str  # "promoted" or "rollback"
    step: int  # step index where it ended
    seconds: float  # since the rollout began
    reason: str = ""


def simulate(effect: Effect, policy: CanaryPolicy, seed: int, args: argparse.Namespace) -> Outcome:
    """One rollout through every step below 100 %, looked at every look interval."""
    rng = np.random.default_rng(seed)
    shares = [s for s in args.steps if s < 100]
    clock, tick = 0.0, args.look_interval
    for index, share in enumerate(shares):
        stable = Arm(args.base_error, 1.0, ACCURACY)
        canary = Arm(
            args.base_error + effect.error_increase,
            effect.slowdown,
            ACCURACY - effect.accuracy_drop,
        )
        elapsed = 0.0
        while True:
            elapsed += tick
            clock += tick
            stable.serve(rng, int(rng.poisson(args.rate * tick * (1 - share / 100))), elapsed, args)
            canary.serve(rng, int(rng.poisson(args.rate * tick * share / 100)), elapsed, args)
            verdict = analyse(
                stable.window(elapsed), canary.window(elapsed), policy, elapsed_s=elapsed
            )
            if verdict.action == "rollback":
                return Outcome("rollback", index, clock, verdict.reasons[0])
            if verdict.action == "promote":
                break
    return Outcome("promoted", len(shares), clock)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rollouts", type=int, default=100, help="rollouts per effect (100)")
    parser.add_argument("--rate", type=float, default=200, help="requests/s, both arms (200)")
    parser.add_argument("--steps", default="5,25,50,100", help="traffic steps, %% (5,25,50,100)")
    parser.add_argument("--step-duration", type=float, default=10, help="seconds per step (10)")
    parser.add_argument("--look-interval", type=float, default=1, help="seconds (1)")
    parser.add_argument("--label-delay", type=float, default=5, help="seconds (5)")
    parser.add_argument("--feedback", type=float, default=0.5, help="labelled share (0.5)")
    parser.add_argument("--base-error", type=float, default=0.001, help="stable (0.001)")
    parser.add_argument("--analysis", default="{}", help="extra deploy.analysis keys, JSON")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    args.steps = [float(s) for s in args.steps.split(",")]
    return args


def main() -> None:
    args = parse_args()
    analysis = {"look_interval": args.look_interval, **json.loads(args.analysis)}
    policy = CanaryPolicy.from_config(analysis, args.step_duration)
    print(
        f"{args.rollouts} rollouts per effect at {args.rate:g} req/s, steps {args.steps}, "
        f"{args.step_duration:g} s per step, a look every {args.look_interval:g} s, "
        f"labels for {args.feedback:.0%} of rows after {args.label_delay:g} s"
    )
    print(
        f"policy: min_requests {policy.min_requests}, max_wait {policy.wait_s:g} s, "
        f"alpha {policy.alpha:g} per step over {policy.check_count} checks and "
        f"{policy.looks} looks\n"
    )
    header = (
        f"{'effect':<44} {'rollback':>8} {'at 1st':>7} {'promoted':>8} {'mean s':>7} {'p90 s':>6}"
    )
    print(header)
    print("-" * len(header))
    rates: dict[bool, list[float]] = {False: [], True: []}
    started = time.perf_counter()
    for number, effect in enumerate(EFFECTS):
        outcomes = [
            simulate(effect, policy, args.seed * 100_003 + number * 10_007 + i, args)
            for i in range(args.rollouts)
        ]
        rolled = [o for o in outcomes if o.result == "rollback"]
        first = sum(o.step == 0 for o in rolled) / len(outcomes)
        promoted = 1 - len(rolled) / len(outcomes)
        seconds = [o.seconds for o in rolled]
        mean = f"{statistics.fmean(seconds):7.1f}" if seconds else f"{'-':>7}"
        p90 = f"{np.percentile(seconds, 90):6.1f}" if seconds else f"{'-':>6}"
        print(
            f"{effect.name:<44} {len(rolled) / len(outcomes):>8.1%} {first:>7.1%} "
            f"{promoted:>8.1%} {mean} {p90}"
        )
        rates[effect.bad].append(promoted if effect.bad else len(rolled) / len(outcomes))
    print(
        f"\nfalse-rollback rate (good candidates): {statistics.fmean(rates[False]):.1%}\n"
        f"missed-bad rate (bad candidates promoted to 100 %): {statistics.fmean(rates[True]):.1%}\n"
        f"({len(EFFECTS) * args.rollouts} rollouts simulated "
        f"in {time.perf_counter() - started:.0f} s)"
    )


if __name__ == "__main__":
    main()
