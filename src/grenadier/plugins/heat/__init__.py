"""The built-in Heat plugin: configuration, launcher, services, client and upgrade suite."""

from __future__ import annotations
