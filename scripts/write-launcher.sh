#!/bin/bash
# write-launcher.sh VENV DEST — write the `forklift` command for forklift installed in VENV.
#
# It is the console script pip writes (import forklift.cli.fast, call main) run by
# `python -S`: site's work at every start (pyvenv.cfg, the .pth files, setuptools'
# distutils hook) costs some 3 ms, a twentieth of an `exec`, and forklift needs none of
# it but the venv's packages (click, rich, httpx…) and the directory forklift is
# imported from (the packages' own, or an editable install's source tree), which the
# script puts after the standard library, where site puts them; PYTHONPATH still comes
# first. What forklift starts with sys.executable starts the ordinary way.
set -euo pipefail
"$1/bin/python" - "$2" <<'PY'
import os
import sys
import sysconfig

import forklift

dest = sys.argv[1]
paths = [sysconfig.get_paths()["purelib"],
         os.path.dirname(os.path.dirname(os.path.abspath(forklift.__file__)))]
script = (f"#!{sys.executable} -S\n"
          "import sys\n"
          f"sys.path += [p for p in {tuple(dict.fromkeys(paths))!r} if p not in sys.path]\n"
          "from forklift.cli.fast import main\n"
          "main()\n")
tmp = f"{dest}.tmp.{os.getpid()}"
with open(tmp, "w") as f:
    f.write(script)
os.chmod(tmp, 0o755)
os.replace(tmp, dest)
PY
