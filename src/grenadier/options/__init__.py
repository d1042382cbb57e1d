"""A run's options: each declares its flag once (``flags.py``), and ``RunOptions`` checks them.

Above the services, releases and workload, whose knowledge the checks use (a database URL's
form, a constraints series, an operation mix); below every layer that runs something.
"""
