import sys

from tests.differential.runner import main

sys.exit(main())
