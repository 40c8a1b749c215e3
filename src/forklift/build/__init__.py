"""``forklift build``: Dockerfiles into images, on the engine (each RUN a real container,
each step a commit). ``dockerfile`` parses, ``words`` expands variables as Docker does,
``context`` reads the build context and ``.dockerignore``; the builder drives the engine."""
