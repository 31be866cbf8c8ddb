"""The contract cases, written once in qctl.testing.contract, run on each real broker (see conftest.py)."""

from qctl.testing.contract import *  # noqa: F403 - the cases are collected from this module
