import sys

from modscope.cli import main

sys.exit(main())
