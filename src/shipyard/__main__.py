import sys

from shipyard.cli.main import main

sys.exit(main())
