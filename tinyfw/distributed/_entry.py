"""A launched worker: run the script as ``python script.py args`` would, and leave its
traceback in TINYFW_DIST_ERROR_FILE when it fails, for the launcher to show."""
from __future__ import annotations

import os
import runpy
import sys
import traceback


def main() -> None:
    """Run sys.argv[1] as __main__ with the remaining arguments."""
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit:
        raise
    except BaseException:
        path = os.environ.get("TINYFW_DIST_ERROR_FILE")
        if path:
            with open(path, "w") as f:
                f.write(traceback.format_exc())
        raise


if __name__ == "__main__":
    main()
