"""Deliberately broken engines and ops: each triggers one tracer.diagnose finding."""
