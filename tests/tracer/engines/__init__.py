"""Small DeZero-style engines in the styles seen in the wild, used as tracing fixtures."""
