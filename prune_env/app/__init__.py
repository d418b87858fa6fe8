"""The application floor: the ``prune-env`` command, the pipeline's stages, mask selection by an
agent or a classic baseline, and the run report. The only package that imports both the
environment core and ``agents``; it needs the ``app`` extra (``pip install 'prune-env[app]'``)."""

try:
    import matplotlib  # noqa: F401
    import sb3_contrib  # noqa: F401
    import stable_baselines3  # noqa: F401
except ImportError as exc:  # a clear message instead of a traceback deep inside an import
    raise ImportError(
        f"prune_env.app (the prune-env command) needs the 'app' extra: pip install 'prune-env[app]' ({exc})"
    ) from exc
