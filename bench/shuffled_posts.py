"""Benchmark: the shuffled blocks of bench/shuffled_blocks.py, each trade posted one by one instead of imported.

`python -m bench.shuffled_posts [--blocks 3] [--block-size 1000]`
"""

import sys

from bench.shuffled_blocks import main

if __name__ == "__main__":
    sys.argv.append("--post")
    main()
