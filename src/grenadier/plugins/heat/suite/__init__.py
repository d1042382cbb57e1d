"""grenadier's built-in Heat upgrade suite (pytest modules; run by the runner in each phase).

Shipped as package data: ``test_*.py`` here, ``templates/*.yaml``. Helper modules (catalog,
inventory, operations) are plain imports of this package.
"""
