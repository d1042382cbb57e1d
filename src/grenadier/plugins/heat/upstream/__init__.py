"""Heat's own upstream API tests: the heat-tempest-plugin gabbits, run without tempest.

heat-tempest-plugin ships its API tests as declarative gabbi files
(``heat_tempest_plugin/tests/api/gabbits/*.yaml``). grenadier installs the plugin and gabbi into
a cached tools venv (never into its own environment), reads the files unchanged, and runs them
with gabbi's own loader and unittest against the running Heat (``gabbi_runner.py``, run by that
venv's Python); the built-in suite turns each gabbi test into a pytest test of the phase
(``suite/test_heat_upstream.py``).
"""
