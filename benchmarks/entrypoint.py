"""How every benchmark script ends: bad input (a missing or wrong file, a malformed config, a
value out of range) is one ``error:`` line and exit status 2, never a traceback; a bug still
shows its traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable

import yaml

from prune_env.errors import PruneEnvError

BAD_INPUT = (PruneEnvError, OSError, ValueError, yaml.YAMLError)


def run_script(main: Callable[[], int | None]) -> None:
    """``sys.exit(main())``, with :data:`BAD_INPUT` errors turned into one line and status 2."""
    try:
        code = main()
    except BAD_INPUT as exc:
        print("error: " + " ".join(str(exc).split()), file=sys.stderr)  # one line, whatever the message
        sys.exit(2)
    sys.exit(code or 0)
