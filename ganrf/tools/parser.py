"""The argument parser every ganrf command line uses: a usage error is one line, not argparse's
usage block followed by the error."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    """An ``argparse.ArgumentParser`` whose usage errors are one sentence on stderr and exit
    status 2: what was wrong, then where the full usage is (``--help``). Sub-commands made with
    ``add_subparsers`` get this class too."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message}; see {self.prog} --help\n")
        sys.exit(2)
