"""The contract suite, importable: any adapter (built in or from an entry point) runs the same cases.

Implement :class:`qctl.testing.driver.Driver` for the backend, then in a test module::

    from qctl.testing.contract import *  # noqa: F403 - the cases
    import pytest

    @pytest.fixture(scope="session")
    def driver():
        return MyDriver(...)

Requires pytest (the ``dev`` extra); nothing in qctl itself imports this package.
"""
