import sys

from prune_env.app.cli import main

sys.exit(main())
