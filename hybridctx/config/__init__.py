"""Shared plumbing for settings: unknown keys answered with the nearest valid one, plug-ins from entry points."""
