"""The Ray shell: starts or joins Ray, runs work units on worker actors, shows progress, commits the version.

Everything here is orchestration; what a unit *does* lives in `pipeline/work.py` and is tested without Ray.
"""
