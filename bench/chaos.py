"""Chaos: kill -9 `gridrun run` at random moments (and at forced points inside the POST/commit window)
against `gridrun sim serve` in another process, and against the built-in simulator in the killed process
itself (its world kept in the state folder), resume each time until done, with the simulator honouring
idempotency keys and ignoring them. Prints kills, resumes, duplicate paid submissions and lost outputs, then
where each kill landed in its run's working life (timed kills fire a random delay after the run's record
appears in its state) and how many kills landed in each phase.

    python bench/chaos.py [--kills 100] [--seed 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chaos_kit import PHASES, ChaosResult, chaos


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=100, help="kills in all, split between the four modes")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    bad = 0
    total_kills = 0
    print(f"{'mode':<16} {'jobs':>4} {'kills':>5} {'runs':>5} {'forced':>22} {'creates':>7} {'dup paid':>8} "
          f"{'replays':>7} {'done':>4} {'lost':>4} {'exit':>4} {'secs':>6}")
    modes = [(False, True), (False, False), (True, True), (True, False)]
    results: list[tuple[str, ChaosResult]] = []
    # four jobs (of 4 subjects) per kill of a mode, 20 at least: with fewer, the manifest is done after a few
    # kills and the rest land on runs with nothing left to do
    seeds = max(5, args.kills // len(modes))
    for in_process, honour in modes:
        with tempfile.TemporaryDirectory() as d:
            r = chaos(Path(d), kills=args.kills // len(modes), honour=honour, seed=args.seed + honour,
                      seeds=seeds, in_process=in_process)
        total_kills += r.kills
        forced = ",".join(f"{k.split('-')[0][0]}{k.split('-')[1][0]}={v}" for k, v in sorted(r.crash_points.items()))
        mode = ("in-proc " if in_process else "served ") + ("keys" if honour else "no keys")
        results.append((mode, r))
        print(f"{mode:<16} {r.jobs:>4} {r.kills:>5} {r.runs:>5} {forced:>22} {r.stats['creates']:>7} "
              f"{r.stats['duplicate_paid']:>8} {r.stats['replays']:>7} {r.done:>4} {r.lost_outputs:>4} "
              f"{r.final_exit:>4} {r.seconds:>6.1f}")
        bad += r.stats["duplicate_paid"] + r.lost_outputs + (r.stats["creates"] != r.jobs) + (r.final_exit != 0)
    print(f"total kills {total_kills}; {'OK: every job paid exactly once, nothing lost' if not bad else 'FAILED'}")
    print("forced points: as=after-submit (POST answered, id not committed), bs=before-submit, ad=after-download")
    print_landings(results)
    return 1 if bad else 0


def print_landings(results: list[tuple[str, ChaosResult]]) -> None:
    """Each kill's landing, then the kills per phase and mode."""
    print("\nwhere each kill landed (timed: seconds after the run's record appeared in its state)")
    for mode, r in results:
        for landing in r.landings:
            print(f"  {mode:<16} run {landing.run:>3}  {landing.how:<24} {landing.phase:<24} {landing.detail}")
    names = [mode for mode, _ in results]
    print(f"\n{'kills per phase':<24} " + " ".join(f"{m:>15}" for m in names) + f" {'all':>5}")
    for phase in PHASES:
        counts = [r.phases.get(phase, 0) for _, r in results]
        print(f"{phase:<24} " + " ".join(f"{n:>15}" for n in counts) + f" {sum(counts):>5}")
    early = sum(r.phases.get(PHASES[0], 0) for _, r in results)
    if early:
        print(f"{early} kill(s) landed before the run recorded itself: they prove nothing")


if __name__ == "__main__":
    sys.exit(main())
