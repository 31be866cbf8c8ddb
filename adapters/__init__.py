"""Built-in qctl adapters, one backend each, installed as the package ``qctl.adapters``.

``qctl/adapters`` is a symlink to this folder, so the wheel ships
``qctl/adapters/`` and never a top-level ``adapters`` package (that import name
belongs to an unrelated PyPI distribution).
"""

if __name__ != "qctl.adapters":  # e.g. `import adapters` from the repository root
    raise ImportError(f"this folder is installed as 'qctl.adapters'; import that, not {__name__!r}")
