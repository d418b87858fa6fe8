import sys

from prune_env.cli import main

sys.exit(main())
