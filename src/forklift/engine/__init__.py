"""Engine operations: what each CLI command does, callable from tests.

Images and moving them:
``images`` (import, tag, rmi, history, inspect, ls), ``transfer`` (save, load),
``distribution`` (pull, push, login, logout), ``system`` (df, prune, info, check),
``volumes`` (volume create, ls, inspect, rm), ``filters`` (every ``--filter``),
``timestamps`` (``--since``/``--until`` as Docker reads them).

Containers:
``containers`` (create, run, start, rm, diff, commit, export, ps, inspect),
``lifecycle`` (stop, kill, wait, restart, pause, top, rename, logs, attach),
``exec``, ``copy`` (cp), ``fsdiff`` (diff's algorithm), ``names`` (generated names).

Running one, beneath those:
``runner`` (the start sequence: claim, prepare, finish, shared by an attached run and
the ``monitor`` of a detached one), ``bundle`` (its runtime spec), ``process`` (a
process's environment, user and rlimits, for start and exec),
``rootfs`` (its directories and overlay mount), ``mounts`` (volumes, binds, tmpfs),
``hostconfig`` (ports, DNS, limits), ``security`` (capabilities, seccomp), ``network``
(CNI bridges, /etc/hosts), ``logfile`` (json-file log), ``tty`` (terminals). The OCI
runtime itself is behind `forklift.runtime`.
"""
