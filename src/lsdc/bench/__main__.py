"""`python -m lsdc.bench [options]` = `lsdc bench [options]`."""

import sys

from lsdc.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
