import sys

from ohlcv.cli import main

sys.exit(main())
