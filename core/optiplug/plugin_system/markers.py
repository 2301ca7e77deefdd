"""The pluggy markers: ``hookspec`` for the core's hook specs, ``hookimpl`` for plugins.

They live below everything else in the plugin machinery, so marking a hook imports
nothing but pluggy.
"""

from __future__ import annotations

import pluggy

PROJECT = "optiplug"
"""The pluggy project name, which is also the entry-point group plugins register in."""

hookspec = pluggy.HookspecMarker(PROJECT)
"""Marks a hook specification (core only)."""

hookimpl = pluggy.HookimplMarker(PROJECT)
"""Marks a plugin's hook implementation: ``@optiplug.plugin.hookimpl``."""
