"""The application floor: the ``prune-env`` command, the pipeline's stages, mask selection by an
agent or a classic baseline, and the run report. ``__all__`` is its public API (what the
benchmark scripts use). The only package that imports both the
environment core and ``agents``; it needs the ``app`` extra (``pip install 'prune-env[app]'``)."""

try:
    import matplotlib  # noqa: F401
    import sb3_contrib  # noqa: F401
    import stable_baselines3  # noqa: F401
except ImportError as exc:  # a clear message instead of a traceback deep inside an import
    raise ImportError(
        f"prune_env.app (the prune-env command) needs the 'app' extra: pip install 'prune-env[app]' ({exc})"
    ) from exc

from prune_env.app.baselines import BASELINES, BISECTION_STEPS, MATCHED, run_baseline_search  # noqa: E402
from prune_env.app.config import GRID_FIELDS, PruneConfig  # noqa: E402
from prune_env.app.envs import make_env, make_problem  # noqa: E402
from prune_env.app.pipeline import (  # noqa: E402
    evaluate_run,
    finetune_network,
    run_baseline,
    run_prune,
    split_accuracies,
)
from prune_env.app.policy import PrunePolicy, load_policy, propose, train_policy  # noqa: E402
from prune_env.app.sampling import sample_ratios, scale_to_budget  # noqa: E402
from prune_env.app.search import EpisodeRecorder, search_with_agent  # noqa: E402
from prune_env.app.selection import Selection  # noqa: E402

__all__ = [
    "BASELINES",
    "BISECTION_STEPS",
    "GRID_FIELDS",
    "MATCHED",
    "EpisodeRecorder",
    "PruneConfig",
    "PrunePolicy",
    "Selection",
    "evaluate_run",
    "finetune_network",
    "make_env",
    "load_policy",
    "make_problem",
    "propose",
    "run_baseline",
    "run_baseline_search",
    "run_prune",
    "sample_ratios",
    "scale_to_budget",
    "search_with_agent",
    "split_accuracies",
    "train_policy",
]
